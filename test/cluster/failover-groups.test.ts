/**
 * A topic's queue-group state moves with its leadership, with real processes (cluster-harness.ts):
 * after the leader is SIGKILLed, acked messages are not delivered again, a nacked one keeps its
 * delay and delivery count, a delayed message is not delivered early, and a dead letter is in one
 * place; a rolling restart of every broker with SIGTERM under a publish and consume load fails no
 * publish, loses none, and delivers no acked message again; a dead-letter topic the cluster creates
 * for a group is replicated as the group's topic is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Message } from '../../src/client/index.js';
import { eventually } from '../helpers.js';
import { useTestCluster } from './cluster-harness.js';

const SUITE_TIMEOUT_MS = 240_000;
const SETTLE_MS = 20_000;
/** The nacked message's delay and the delayed message's: long enough to span the failover. */
const NACK_DELAY_MS = 4_000;
const PUBLISH_DELAY_MS = 6_000;
/**
 * Acks are fire-and-forget: once the group's ack floor shows them, the leader's journal holds them,
 * and its followers fetch them within a long-poll round trip. No API shows a group journal's high
 * watermark, so the test waits this long before the kill.
 */
const JOURNAL_REPLICATION_MS = 1_000;

const suite = useTestCluster({ startTimeoutMs: SUITE_TIMEOUT_MS });

async function inSyncOf(topic: string): Promise<number> {
  return ((await suite.client.describeTopic(topic)).partitions[0]!.inSync ?? []).length;
}

test('failover - a queue group after its leader is SIGKILLed: acked not redelivered, nacked keeps its delay and count, delayed not early, the dead letter in one place', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('tasks', { replicas: 3, minInSync: 2, durability: 'always' });
  await suite.client.createTopic('tasks-dead', { replicas: 3, minInSync: 2, durability: 'always' });
  for (let i = 0; i < 20; i++) await suite.client.publish('tasks', `t${i}`, { id: `t${i}` });
  const deliverAtMs = Date.now() + PUBLISH_DELAY_MS;
  await suite.client.publish('tasks', 'late', { id: 'late', deliverAt: deliverAtMs });

  const subscription = await suite.client.subscribe('tasks', { group: 'workers', prefetch: 20, deliveriesMax: 5, deadLetterTopic: 'tasks-dead', ackTimeoutMs: 60_000 });
  const iterator = subscription[Symbol.asyncIterator]();
  const first: Message[] = [];
  while (first.length < 20) first.push((await iterator.next()).value as Message);
  assert.deepEqual(first.map((message) => message.value.toString()).sort(), Array.from({ length: 20 }, (_, i) => `t${i}`).sort());
  const byValue = new Map(first.map((message) => [message.value.toString(), message]));
  for (let i = 0; i < 15; i++) await byValue.get(`t${i}`)!.ack();
  await byValue.get('t15')!.reject('poison');
  const nackedAtMs = Date.now();
  await byValue.get('t16')!.nack({ delayMs: NACK_DELAY_MS });
  // t17..t19 stay in flight.
  await eventually(async () => (await suite.client.describeGroup('tasks', 'workers')).partitions[0]!.ackFloor >= 16, { timeoutMs: SETTLE_MS });
  await new Promise((resolve) => setTimeout(resolve, JOURNAL_REPLICATION_MS));

  const victim = suite.cluster.broker(await suite.leaderOf('tasks'));
  await victim.kill();

  // The subscription follows the new leader: t16 after its delay, t17..t19 (in flight), then `late`.
  const again = new Map<string, { atMs: number; deliveryCount: number }>();
  while (!again.has('late') || again.size < 5) {
    const next = await iterator.next();
    assert.equal(next.done, false, 'the subscription goes on');
    const message = next.value as Message;
    const value = message.value.toString();
    assert.ok(!again.has(value), `${value} delivered once after the failover`);
    again.set(value, { atMs: Date.now(), deliveryCount: message.deliveryCount });
    await message.ack();
  }
  await subscription.close();
  assert.notEqual(await suite.leaderOf('tasks'), victim.nodeId);
  assert.deepEqual([...again.keys()].sort(), ['late', 't16', 't17', 't18', 't19'], `only what was not acked comes again\n${suite.cluster.describe().slice(-12_000)}`);
  assert.ok(again.get('t16')!.atMs >= nackedAtMs + NACK_DELAY_MS, `t16 waited out its nack delay (${again.get('t16')!.atMs - nackedAtMs} ms)`);
  assert.equal(again.get('t16')!.deliveryCount, 2, 'the nacked message kept its delivery count');
  for (const value of ['t17', 't18', 't19']) assert.equal(again.get(value)!.deliveryCount, 2, `${value} was delivered before`);
  assert.ok(again.get('late')!.atMs >= deliverAtMs, `the delayed message came ${deliverAtMs - again.get('late')!.atMs} ms early`);
  assert.equal(again.get('late')!.deliveryCount, 1);

  // The dead letter is in the dead-letter topic, once, and nowhere else.
  const dead: string[] = [];
  const stream = await suite.client.subscribe('tasks-dead', { from: 'earliest' });
  const end = (await suite.client.describeTopic('tasks-dead')).partitions[0]!.highWatermark!;
  assert.equal(end, 1, 'one dead letter');
  for await (const message of stream) {
    dead.push(message.value.toString());
    if (message.offset + 1 >= end) break;
  }
  await stream.close();
  assert.deepEqual(dead, ['t15']);
  const group = await suite.client.describeGroup('tasks', 'workers');
  assert.equal(group.deadLetteredTotal >= 1, true);
  assert.equal(group.pending, 0, JSON.stringify(group));
  await victim.start();
  await eventually(async () => (await inSyncOf('tasks')) === 3, { timeoutMs: SETTLE_MS });
});

test('failover - a rolling restart of every broker with SIGTERM under load: no failed publish, none lost, no acked message delivered again', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('rolling', { replicas: 3, minInSync: 2, durability: 'always' });
  const confirmed = new Set<string>();
  const failed: unknown[] = [];
  let producing = true;
  let next = 0;
  const producer = (async () => {
    while (producing) {
      const batch = Array.from({ length: 10 }, () => `r${next++}`);
      await Promise.all(
        batch.map((value) =>
          suite.client.publish('rolling', value, { id: value }).then(
            () => confirmed.add(value),
            (error: unknown) => failed.push(error),
          ),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();

  const consumer = await connect({ servers: suite.cluster.servers, requestTimeoutMs: 15_000 });
  const acked = new Set<string>();
  const ackedAgain: string[] = [];
  const subscription = await consumer.subscribe('rolling', { group: 'rollers', prefetch: 50 });
  const consuming = (async () => {
    for await (const message of subscription) {
      const value = message.value.toString();
      if (acked.has(value)) ackedAgain.push(`${value} (delivery ${message.deliveryCount})`);
      await message.ack();
      acked.add(value);
    }
  })();

  await eventually(() => confirmed.size >= 200, { timeoutMs: SETTLE_MS });
  for (const broker of suite.cluster.brokers) {
    const before = confirmed.size;
    assert.equal(await broker.stop(), 0, `${broker.nodeId} shut down cleanly`);
    await eventually(() => confirmed.size >= before + 100, { timeoutMs: SETTLE_MS });
    await broker.start();
    await eventually(async () => (await inSyncOf('rolling')) === 3, { timeoutMs: SETTLE_MS });
  }
  producing = false;
  await producer;
  assert.deepEqual(failed, [], 'the application saw no failed publish');
  await eventually(() => [...confirmed].every((value) => acked.has(value)), { timeoutMs: SETTLE_MS });
  await subscription.close();
  await consuming;
  await consumer.close();
  assert.deepEqual(ackedAgain, [], 'no acked message was delivered again');

  const stored = new Map<string, number>();
  const stream = await suite.client.subscribe('rolling', { from: 'earliest' });
  const end = (await suite.client.describeTopic('rolling')).partitions[0]!.highWatermark!;
  for await (const message of stream) {
    stored.set(message.value.toString(), (stored.get(message.value.toString()) ?? 0) + 1);
    if (message.offset + 1 >= end) break;
  }
  await stream.close();
  const wrong = [...confirmed].filter((value) => stored.get(value) !== 1).map((value) => `${value}:${stored.get(value) ?? 0}`);
  assert.deepEqual(wrong, [], `confirmed ${confirmed.size}, stored ${stored.size}, end ${end}`);
});

test('failover - a broker restarted while etcd still names it leader leads again only at a new epoch, with its log intact', { timeout: SUITE_TIMEOUT_MS }, async () => {
  // One replica: nobody else can take the topic while its broker is down.
  await suite.client.createTopic('solo', { replicas: 1, minInSync: 1, durability: 'always' });
  for (let i = 0; i < 5; i++) await suite.client.publish('solo', `s${i}`);
  const before = (await suite.client.describeTopic('solo')).partitions[0]!;
  const owner = suite.cluster.broker(before.leader!);
  await owner.kill();
  await owner.start();
  await eventually(async () => (await suite.client.describeTopic('solo')).partitions[0]!.epoch! > before.epoch!, { timeoutMs: SETTLE_MS }).catch((error: unknown) => {
    throw new Error(`${String(error)}\n${owner.output.slice(-6000)}`);
  });
  const after = (await suite.client.describeTopic('solo')).partitions[0]!;
  assert.equal(after.leader, owner.nodeId);
  assert.equal(after.epoch, before.epoch! + 1, 'one new epoch');
  assert.match(owner.output, /cluster\.leader\.reclaimed/);
  await suite.client.publish('solo', 's5');
  const seen: string[] = [];
  const stream = await suite.client.subscribe('solo', { from: 'earliest' });
  for await (const message of stream) {
    seen.push(message.value.toString());
    if (seen.length === 6) break;
  }
  await stream.close();
  assert.deepEqual(seen, ['s0', 's1', 's2', 's3', 's4', 's5']);
});

test('failover - a publish repeating an id from before the failover is a duplicate at the new leader, answered with the first copy', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('once', { replicas: 3, minInSync: 2, durability: 'always' });
  const first = new Map<string, number>();
  for (let i = 0; i < 50; i++) first.set(`o${i}`, (await suite.client.publish('once', `o${i}`, { id: `o${i}` })).offset);
  // The followers noted these ids as they replicated them; the new leader takes the notes over.
  await eventually(async () => (await inSyncOf('once')) === 3, { timeoutMs: SETTLE_MS });
  const victim = suite.cluster.broker(await suite.leaderOf('once'));
  await victim.kill();
  await eventually(async () => (await suite.leaderOf('once')) !== victim.nodeId, { timeoutMs: SETTLE_MS });
  for (const index of [0, 25, 49]) {
    const again = await suite.client.publish('once', `o${index}`, { id: `o${index}` });
    assert.equal(again.duplicate, true, `o${index} is a duplicate`);
    assert.equal(again.offset, first.get(`o${index}`));
  }
  const fresh = await suite.client.publish('once', 'new', { id: 'o-new' });
  assert.equal(fresh.duplicate ?? false, false);
  assert.equal(fresh.offset, 50);
  // The last test of the file: the cluster stops with the victim down.
});

test('dead letters - the dead-letter topic the cluster creates for a group is replicated as the group\'s topic is, and always synced', { timeout: SUITE_TIMEOUT_MS }, async () => {
  // Not the brokers' defaults (3 live brokers: 3 replicas, minInSync 2). Durability `always` whatever
  // the source's: with `interval`, a power loss of every replica could take back a committed copy
  // whose original's settlement survived.
  await suite.client.createTopic('jobs', { replicas: 2, minInSync: 1, durability: 'interval', syncIntervalMs: 50 });
  await suite.client.publish('jobs', 'poison', { id: 'poison' });
  const subscription = await suite.client.subscribe('jobs', { group: 'workers', prefetch: 1 });
  const iterator = subscription[Symbol.asyncIterator]();
  const message = (await iterator.next()).value as Message;
  await message.reject('poison');
  await subscription.close();
  const dlq = await suite.client.describeTopic('jobs.dlq');
  // (TOPIC_INFO carries durability and the placement, not minInSync.)
  assert.equal(dlq.config.durability, 'always');
  assert.equal(dlq.partitions[0]!.replicas?.length, 2, JSON.stringify(dlq.partitions[0]));
  assert.equal(dlq.partitions[0]!.highWatermark, 1, 'the dead letter is committed there');
});
