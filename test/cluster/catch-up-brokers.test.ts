/**
 * Catch-up from the leader's segments with real processes (cluster-harness.ts, three brokers): a
 * new replica of a topic whose early segments retention deleted copies the leader's sealed
 * segments (checked against its digests), fetches the tail, joins the in-sync set, and verifies
 * equal to the leader; a follower whose log ends before the leader's log start (it was down while
 * retention ran) starts over from the leader's start the same way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { eventually } from '../helpers.js';
import { useTestCluster } from './cluster-harness.js';

const SUITE_TIMEOUT_MS = 300_000;
/** Retention runs every 30 s on its own timer: long enough for it and the catch-up after it. */
const SETTLE_MS = 90_000;
const SEGMENT_BYTES = 8 * 1024;
const RETAINED_RECORDS = 300;

const suite = useTestCluster({ brokers: 3, startTimeoutMs: SUITE_TIMEOUT_MS });

async function publish(topic: string, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => suite.client.publish(topic, `${topic}-${i + j}-`.padEnd(150, 'x'), { id: `${topic}-${i + j}` })));
  }
}

function firstSegmentBase(dataDir: string, topic: string): number {
  const names = readdirSync(join(dataDir, 'topics', topic, 'partitions', '0')).filter((name) => name.endsWith('.log')).sort();
  return Number(names[0]!.slice(0, 20));
}

test('catch-up - a new replica of a topic whose early segments retention deleted copies the leader\'s segments and joins the in-sync set', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('retained', { replicas: 2, minInSync: 1, durability: 'interval', partitions: 1, segmentBytes: SEGMENT_BYTES, retention: { recordsMax: RETAINED_RECORDS } });
  await publish('retained', 0, 900);
  const before = await suite.partition0('retained');
  const spare = suite.cluster.brokers.find((broker) => !(before.replicas ?? []).includes(broker.nodeId))!;
  const leaving = (before.replicas ?? []).find((nodeId) => nodeId !== before.leader)!;
  // Retention (a 30 s timer) deletes the early segments on the leader.
  await eventually(async () => (await suite.partition0('retained')).startOffset > 0, { timeoutMs: SETTLE_MS });
  const leaderStart = (await suite.partition0('retained')).startOffset;

  await suite.client.reassignReplica('retained', { replace: leaving, with: spare.nodeId });
  await eventually(
    async () => {
      const now = await suite.partition0('retained');
      return (now.inSync ?? []).includes(spare.nodeId) && !(now.replicas ?? []).includes(leaving);
    },
    { timeoutMs: SETTLE_MS },
  ).catch((error: unknown) => {
    throw new Error(`${String(error)}\n${suite.cluster.describe().slice(-8000)}`);
  });
  assert.match(spare.output, /"cluster\.follower\.caught_up"/, 'the new replica copied the leader\'s segments');
  assert.ok(firstSegmentBase(spare.dataDir, 'retained') >= leaderStart, 'it holds nothing below the leader\'s start');
  await publish('retained', 900, 100);
  await eventually(async () => (await suite.client.verifyTopic('retained')).ok, { timeoutMs: SETTLE_MS });
});

test('catch-up - a follower that was down while retention deleted past its end starts over from the leader\'s start', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const now = await suite.partition0('retained');
  const follower = suite.cluster.broker((now.replicas ?? []).find((nodeId) => nodeId !== now.leader)!);
  await follower.stop();
  const end = (await suite.partition0('retained')).nextOffset;
  await publish('retained', 10_000, 700);
  await eventually(async () => (await suite.partition0('retained')).startOffset > end, { timeoutMs: SETTLE_MS });
  await follower.start();
  await eventually(async () => (await suite.partition0('retained')).inSync?.includes(follower.nodeId) === true, { timeoutMs: SETTLE_MS }).catch((error: unknown) => {
    throw new Error(`${String(error)}\n${suite.cluster.describe().slice(-8000)}`);
  });
  assert.match(follower.output, /"cluster\.follower\.reset"/);
  assert.match(follower.output, /"cluster\.follower\.caught_up"/);
  await eventually(async () => (await suite.client.verifyTopic('retained')).ok, { timeoutMs: SETTLE_MS });
});
