/**
 * What the cluster client tells the application when a leadership ends under it, against fake
 * brokers in cluster mode (the in-memory broker behind the real TCP server, with METADATA answered
 * from a picture the test sets): a publish the leader appended and could not commit gives up with
 * TIMEOUT, outcome unknown — never with the NOT_LEADER of a later try — while a publish refused
 * outright stays refused; a subscription moved to the topic's new leader is announced
 * ('subscriptionMoved') and starts a new generation. test/cluster/publish-outcome.test.ts drives
 * the same with real brokers and etcd.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Message, type SubscriptionMovedEvent } from '../../src/client/index.js';
import { FerryError, isFerryError } from '../../src/errors.js';
import type { PublishMessage, PublishResult } from '../../src/broker/types.js';
import { eventually } from '../helpers.js';
import { endSubscriptions, fakeCluster, type Picture } from './fake-cluster.js';

const REQUEST_TIMEOUT_MS = 600;

test('cluster outcome - a publish the leader appended and then lost its leadership over gives up with TIMEOUT, outcome unknown, not NOT_LEADER', async () => {
  const picture: Picture = { leader: 'n1', epoch: 1 };
  const cluster = await fakeCluster(1, picture);
  const fake = cluster.brokers[0]!.fake;
  let calls = 0;
  fake.publish = async (): Promise<PublishResult[]> => {
    calls++;
    // Appended, shipped, then the leadership ended before the high watermark covered it; no leader yet.
    picture.leader = '';
    picture.epoch = 2;
    throw new FerryError('NOT_LEADER', 'topic t has no leader right now; the write was appended', {
      detail: { topic: 't', leader: null, address: null, epoch: 2, appended: true },
    });
  };
  const client = await connect({ servers: cluster.servers, requestTimeoutMs: REQUEST_TIMEOUT_MS });
  try {
    assert.equal(client.isCluster, true);
    const startedMs = performance.now();
    const outcome = await client.publish('t', 'maybe', { id: 'm-1' }).then(
      () => 'stored',
      (error: unknown) => error,
    );
    const tookMs = performance.now() - startedMs;
    assert.ok(isFerryError(outcome, 'TIMEOUT'), `outcome unknown, not a refusal: ${String(outcome)}`);
    assert.deepEqual(outcome.detail, { outcome: 'unknown', lastCode: 'NOT_LEADER' });
    assert.ok(isFerryError(outcome.cause, 'NOT_LEADER'));
    assert.equal(calls, 1, 'no leader to send it to again');
    assert.ok(tookMs < REQUEST_TIMEOUT_MS + 500, `gave up within its timeout (${Math.round(tookMs)} ms)`);
  } finally {
    await client.close();
    await cluster.close();
  }
});

test('cluster outcome - a publish refused outright (nothing appended) with no leader in time stays a NOT_LEADER refusal', async () => {
  const picture: Picture = { leader: 'n1', epoch: 1 };
  const cluster = await fakeCluster(1, picture);
  const fake = cluster.brokers[0]!.fake;
  fake.publish = async (_topic: string, _messages: readonly PublishMessage[]): Promise<PublishResult[]> => {
    picture.leader = '';
    picture.epoch = 2;
    throw new FerryError('NOT_LEADER', 'topic t has no leader right now', { detail: { topic: 't', leader: null, address: null, epoch: 2 } });
  };
  const client = await connect({ servers: cluster.servers, requestTimeoutMs: REQUEST_TIMEOUT_MS });
  try {
    await assert.rejects(client.publish('t', 'refused', { id: 'r-1' }), (error: unknown) => isFerryError(error, 'NOT_LEADER') && error.detail?.['outcome'] === undefined);
  } finally {
    await client.close();
    await cluster.close();
  }
});

test('cluster outcome - a subscription moved to the new leader without a lost connection is announced and starts a new generation', async () => {
  const picture: Picture = { leader: 'n1', epoch: 1 };
  const cluster = await fakeCluster(2, picture);
  const [first, second] = cluster.brokers;
  const client = await connect({ servers: cluster.servers });
  const moves: SubscriptionMovedEvent[] = [];
  client.on('subscriptionMoved', (event: SubscriptionMovedEvent) => moves.push(event));
  try {
    const subscription = await client.subscribe('t', { group: 'g', from: 'earliest' });
    assert.equal(subscription.generation, 1);
    await first!.fake.publish('t', [{ value: Buffer.from('on-n1') }]);
    const early = (await subscription.next()).value as Message;
    assert.equal(early.value.toString(), 'on-n1');

    // n1 hands the topic to n2 and ends the subscription with NOT_LEADER; the connection to n1 stays up.
    picture.leader = 'n2';
    picture.epoch = 2;
    endSubscriptions(first!.fake, 'NOT_LEADER', 'topic t is led by n2');

    await eventually(() => assert.equal(moves.length, 1));
    assert.equal(moves[0]!.subscription, subscription);
    assert.equal(moves[0]!.topic, 't');
    assert.equal(moves[0]!.group, 'g');
    assert.equal(moves[0]!.generation, 1, 'the generation that ended');
    assert.ok(isFerryError(moves[0]!.error, 'NOT_LEADER'));
    await eventually(() => assert.equal(subscription.generation, 2));
    assert.equal(client.isConnected, true);

    await second!.fake.publish('t', [{ value: Buffer.from('on-n2') }]);
    const later = (await subscription.next()).value as Message;
    assert.equal(later.value.toString(), 'on-n2');
    await later.ack();
    // The ack of a message of the ended generation goes nowhere: n2 never delivered it.
    await early.ack();
    assert.equal(await subscription.close(), true, 'n2 answered the UNSUBSCRIBE (for generation 2 only)');
    assert.equal(moves.length, 1);
  } finally {
    await client.close();
    await cluster.close();
  }
});
