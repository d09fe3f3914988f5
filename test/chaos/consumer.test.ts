/**
 * The chaos consumer (consumer.ts) against fake brokers in cluster mode: when the client moves its
 * subscription to the topic's new leader without a lost connection (the old leader ends it with
 * NOT_LEADER), the consumer starts a new generation, so the barrier the new leader answers does
 * not vouch for the ack sent to the old one — and a later redelivery of that message is not taken
 * for a delivery after a confirmed ack (docs/RELIABILITY.md, "Found by the cluster suite", 8).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type SubscriptionMovedEvent } from '../../src/client/index.js';
import { eventually } from '../helpers.js';
import { endSubscriptions, fakeCluster, type Picture } from '../client/fake-cluster.js';
import { check } from './checker.js';
import { Consumer } from './consumer.js';
import { encodeValue, HistoryWriter, readHistories, type EventOf, type HistoryEvent } from './history.js';

const SETTINGS = {
  group: 'g',
  prefetch: 10,
  ackTimeoutMs: 30_000,
  backoffMs: [100],
  deliveriesMax: 5,
  holdMsMax: 1,
  nackChance: 0,
  // No rotation during the test: the only barrier is the one at stop().
  rotateMsMin: 600_000,
  rotateMsMax: 600_000,
  requestTimeoutMs: 2_000,
};

test('chaos consumer - a subscription moved to the new leader starts a new generation: its barrier does not confirm acks sent to the old leader', async () => {
  const picture: Picture = { leader: 'n1', epoch: 1 };
  const cluster = await fakeCluster(2, picture);
  const [first] = cluster.brokers;
  const dir = mkdtempSync(join(tmpdir(), 'ferry-consumer-'));
  const path = join(dir, 'history.jsonl');
  const history = new HistoryWriter(path);
  const client = await connect({ servers: cluster.servers, requestTimeoutMs: SETTINGS.requestTimeoutMs });
  const events = (): HistoryEvent[] => {
    history.flush();
    return readHistories([path]);
  };
  const consumer = new Consumer('c0', client, 't', SETTINGS, history, () => 0.5);
  try {
    consumer.start();
    const value = encodeValue({ p: 'p0', s: 0, a: 1 }, 64);
    await eventually(() => assert.equal(first!.fake.subscriptions.size, 1));
    await first!.fake.publish('t', [{ value }]);
    await eventually(() => assert.ok(events().some((event) => event.k === 'ak'), 'acked on n1'));
    // n1 has taken the ack (an ack arriving after the move would be a settle error, failing the barrier anyway).
    await eventually(() => assert.equal(first!.fake.topics.get('t')!.groups.get('g')!.inFlight.size, 0));

    // n1 hands the topic to n2: the subscription moves, the connection to n1 stays up.
    picture.leader = 'n2';
    picture.epoch = 2;
    let moved: SubscriptionMovedEvent | undefined;
    client.on('subscriptionMoved', (event: SubscriptionMovedEvent) => (moved = event));
    endSubscriptions(first!.fake, 'NOT_LEADER', 'topic t is led by n2');
    await eventually(() => assert.equal(moved?.subscription.generation, 2, 'made again on n2'));
    await consumer.stop();
    history.close();

    const recorded = readHistories([path]);
    const ack = recorded.find((event): event is EventOf<'ak'> => event.k === 'ak')!;
    const move = recorded.find((event): event is EventOf<'rc'> => event.k === 'rc');
    const barrier = recorded.find((event): event is EventOf<'bar'> => event.k === 'bar')!;
    assert.ok(move !== undefined && move.moved === true, 'the move is in the history');
    assert.equal(barrier.ok, true, `n2 answered the UNSUBSCRIBE, no settle error: ${JSON.stringify(recorded)}`);
    assert.equal(barrier.g, ack.g + 1, 'the barrier belongs to the new generation');
    assert.equal(move.g, barrier.g);

    // n2 (which never got the ack) delivers the message again, well after that barrier.
    const publishedT = recorded[0]!.t - 10;
    const attempt: HistoryEvent[] = [
      { k: 'pi', t: publishedT, p: 'p0', s: 0, a: 1 },
      { k: 'po', t: publishedT + 1, p: 'p0', s: 0, a: 1, part: 0, off: 0 },
    ];
    const redelivery: HistoryEvent = { k: 'd', t: barrier.t + 5_000, kind: 'group', c: 'c0', sub: 1, g: barrier.g, part: 0, off: 0, dc: 2, p: 'p0', s: 0, a: 1 };
    const result = check([...attempt, ...recorded, redelivery].sort((a, b) => a.t - b.t), { durability: 'always', ackTimeoutMs: SETTINGS.ackTimeoutMs });
    assert.equal(result.duplicates.afterConfirmedAck, 0, JSON.stringify(result.samples));
    assert.equal(result.duplicates.redeliveryAfterUnconfirmedAck, 1);
  } finally {
    await consumer.stop();
    history.close();
    await client.close();
    await cluster.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
