/**
 * Replication with real processes: one etcd and three `ferry serve` brokers on loopback
 * (cluster-harness.ts). A replicated topic is served by its leader; describe shows its in-sync set;
 * when the leader is SIGKILLed under load, another takes over and the client carries on, every
 * confirmed message is stored exactly once, and the restarted broker catches up and rejoins.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFerryError } from '../../src/errors.js';
import { eventually } from '../helpers.js';
import { useTestCluster } from './cluster-harness.js';

/** Starting etcd and three brokers, then the failure cases, on a loaded 2-core machine. */
const SUITE_TIMEOUT_MS = 180_000;
/** Waits for the cluster to settle after a fault: elections take milliseconds, a frozen leader a lease. */
const SETTLE_MS = 20_000;

const suite = useTestCluster({ startTimeoutMs: SUITE_TIMEOUT_MS });

async function inSyncOf(topic: string): Promise<string[]> {
  return [...((await suite.client.describeTopic(topic)).partitions[0]!.inSync ?? [])].sort();
}

test('replication - a topic on three brokers: publish and consume through its leader, describe shows the in-sync set and each replica', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const created = await suite.client.createTopic('orders', { replicas: 3, minInSync: 2, durability: 'always', partitions: 2 });
  assert.deepEqual([...(created.partitions[0]!.replicas ?? [])].sort(), ['n1', 'n2', 'n3']);
  for (let i = 0; i < 20; i++) await suite.client.publish('orders', `m${i}`, { key: `k${i % 4}` });
  const info = await suite.client.describeTopic('orders');
  assert.equal(info.partitions.length, 2);
  for (const partition of info.partitions) {
    assert.deepEqual([...(partition.inSync ?? [])].sort(), ['n1', 'n2', 'n3'], JSON.stringify(partition));
    assert.equal(partition.highWatermark, partition.nextOffset, 'everything published is committed');
    for (const replica of partition.replicaOffsets ?? []) assert.equal(replica.endOffset, partition.nextOffset, `${replica.nodeId} holds it all`);
  }
  const subscription = await suite.client.subscribe('orders', { group: 'billing', from: 'earliest' });
  const seen = new Set<string>();
  for await (const message of subscription) {
    seen.add(message.value.toString());
    await message.ack();
    if (seen.size === 20) break;
  }
  await subscription.close();
  assert.equal(seen.size, 20);
  // Over Connect JSON (the gRPC services) too: the leader stores it; any other broker names the leader.
  const leader = await suite.leaderOf('orders');
  const publishJson = (httpPort: number): Promise<Response> =>
    fetch(`http://127.0.0.1:${httpPort}/ferry.v1.MessageService/Publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'orders', messages: [{ value: Buffer.from('over-grpc').toString('base64'), partition: 0 }] }),
    });
  const stored = await publishJson(suite.cluster.broker(leader).httpPort);
  assert.equal(stored.status, 200, await stored.clone().text());
  const other = suite.cluster.brokers.find((broker) => broker.nodeId !== leader)!;
  const refused = await publishJson(other.httpPort);
  const body = (await refused.json()) as { code?: string; message?: string };
  assert.equal(refused.status, 503, JSON.stringify(body));
  assert.match(body.message ?? '', new RegExp(`led by ${leader}`));
  const after = await suite.client.describeTopic('orders');
  assert.equal(after.partitions[0]!.highWatermark, after.partitions[0]!.nextOffset);
});

test('replication - more replicas than live brokers is NOT_ENOUGH_REPLICAS', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await assert.rejects(suite.client.createTopic('too-many', { replicas: 4 }), (error) => isFerryError(error, 'NOT_ENOUGH_REPLICAS'));
});

test('replication - the leader SIGKILLed under load: another leads at once, every confirmed publish is stored exactly once, and the old one catches up and rejoins', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('jobs', { replicas: 3, minInSync: 2, durability: 'always' });
  const confirmed = new Set<string>();
  const failed: unknown[] = [];
  let running = true;
  let next = 0;
  const producer = (async () => {
    while (running) {
      const batch = Array.from({ length: 10 }, () => `job-${next++}`);
      await Promise.all(
        batch.map((value) =>
          suite.client.publish('jobs', value, { id: value }).then(
            () => confirmed.add(value),
            (error: unknown) => failed.push(error),
          ),
        ),
      );
    }
  })();
  await eventually(() => confirmed.size >= 200, { timeoutMs: SETTLE_MS });
  const victim = suite.cluster.broker(await suite.leaderOf('jobs'));
  await victim.kill();
  const atKill = confirmed.size;
  await eventually(() => confirmed.size >= atKill + 200, { timeoutMs: SETTLE_MS });
  await victim.start();
  await eventually(async () => (await inSyncOf('jobs')).length === 3, { timeoutMs: SETTLE_MS });
  running = false;
  await producer;
  assert.deepEqual(failed, [], 'the application saw no failed publish');
  // Every confirmed message, exactly once.
  const stored = new Map<string, number>();
  const stream = await suite.client.subscribe('jobs', { from: 'earliest' });
  const end = (await suite.client.describeTopic('jobs')).partitions[0]!.highWatermark!;
  for await (const message of stream) {
    stored.set(message.value.toString(), (stored.get(message.value.toString()) ?? 0) + 1);
    if (message.offset + 1 >= end) break;
  }
  await stream.close();
  const wrong = [...confirmed].filter((value) => stored.get(value) !== 1).map((value) => `${value}:${stored.get(value) ?? 0}`);
  assert.deepEqual(wrong, [], `confirmed ${confirmed.size}, stored ${stored.size}, end ${end}\n${suite.cluster.describe().slice(-6000)}`);
  const leader = await suite.leaderOf('jobs');
  assert.notEqual(leader, victim.nodeId);
  const info = (await suite.client.describeTopic('jobs')).partitions[0]!;
  for (const replica of info.replicaOffsets ?? []) assert.ok(replica.endOffset >= end, `${replica.nodeId} caught up (${replica.endOffset} of ${end})`);
});
