/**
 * A controlled handover with real processes (cluster-harness.ts): the leader of a topic under a
 * steady publish load gets SIGTERM. It hands the topic to an in-sync follower and leaves the
 * in-sync set with its leadership, so the new leader confirms at once instead of waiting for the
 * old one to count as gone (FOLLOWER_GONE_MS, a second); requests that meet the change wait for it
 * on the brokers and then go to the new leader at once. No publish fails, the pause is short, and
 * the old leader, restarted, joins the in-sync set again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../helpers.js';
import { useTestCluster } from './cluster-harness.js';

const SUITE_TIMEOUT_MS = 180_000;
const SETTLE_MS = 20_000;
/** One publish per tick, each awaited on its own (an open-loop load). */
const PUBLISH_EVERY_MS = 2;
/**
 * The longest pause in confirmations a handover may cause here. The target on a quiet machine is
 * 100 ms; this leaves room for a loaded test machine while failing the old handover, whose new
 * leader confirmed nothing for a second.
 */
const HANDOVER_GAP_MAX_MS = 600;

const suite = useTestCluster({ startTimeoutMs: SUITE_TIMEOUT_MS });

async function partitionOf(topic: string): Promise<{ leader: string; inSync: string[] }> {
  const partition = (await suite.client.describeTopic(topic)).partitions[0]!;
  return { leader: partition.leader ?? '', inSync: [...(partition.inSync ?? [])].sort() };
}

/** The longest time between consecutive confirmations from `fromMs` on (the last one before it included). */
function longestGapMs(confirmedAt: readonly number[], fromMs: number): number {
  let gap = 0;
  const start = Math.max(0, confirmedAt.findIndex((at) => at >= fromMs) - 1);
  for (let i = start + 1; i < confirmedAt.length; i++) gap = Math.max(gap, confirmedAt[i]! - confirmedAt[i - 1]!);
  return gap;
}

test('handover - the leader stopped with SIGTERM under load: no publish fails, confirms pause briefly, it leaves the in-sync set and rejoins after a restart', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('moving', { replicas: 3, minInSync: 2, durability: 'always' });
  const confirmedAt: number[] = [];
  const failed: unknown[] = [];
  let sent = 0;
  const ticker = setInterval(() => {
    const value = `m${sent++}`;
    suite.client.publish('moving', value, { id: value }).then(
      () => confirmedAt.push(performance.now()),
      (error: unknown) => failed.push(error),
    );
  }, PUBLISH_EVERY_MS);
  try {
    await eventually(() => confirmedAt.length >= 300, { timeoutMs: SETTLE_MS });
    const before = await partitionOf('moving');
    assert.deepEqual(before.inSync, ['n1', 'n2', 'n3']);
    const victim = suite.cluster.broker(before.leader);
    const stoppedAtMs = performance.now();
    assert.equal(await victim.stop(), 0, `${victim.nodeId} shut down cleanly`);
    const after = await partitionOf('moving');
    assert.notEqual(after.leader, victim.nodeId);
    assert.ok(!after.inSync.includes(victim.nodeId), `the old leader left the in-sync set with its leadership: ${after.inSync.join(', ')}`);
    const atStop = confirmedAt.length;
    await eventually(() => confirmedAt.length >= atStop + 300, { timeoutMs: SETTLE_MS });
    const gapMs = longestGapMs(confirmedAt, stoppedAtMs);
    assert.ok(gapMs < HANDOVER_GAP_MAX_MS, `confirmations paused ${gapMs.toFixed(0)} ms over the handover\n${suite.cluster.describe().slice(-6000)}`);

    await victim.start();
    await eventually(async () => (await partitionOf('moving')).inSync.length === 3, { timeoutMs: SETTLE_MS });
  } finally {
    clearInterval(ticker);
  }
  await eventually(() => confirmedAt.length + failed.length === sent, { timeoutMs: SETTLE_MS });
  assert.deepEqual(failed, [], 'the application saw no failed publish');
});
