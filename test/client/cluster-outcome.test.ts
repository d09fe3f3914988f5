/**
 * What the cluster client tells the application when a leadership ends under it, against fake
 * brokers in cluster mode (the in-memory broker behind the real TCP server, with METADATA answered
 * from a picture the test sets): a publish the leader appended and could not commit gives up with
 * TIMEOUT, outcome unknown — never with the NOT_LEADER of a later try — while a publish refused
 * outright stays refused. test/cluster/publish-outcome.test.ts drives the same with real brokers
 * and etcd.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.js';
import { FerryError, isFerryError } from '../../src/errors.js';
import type { PublishMessage, PublishResult } from '../../src/broker/types.js';
import { fakeCluster, type Picture } from './fake-cluster.js';

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
