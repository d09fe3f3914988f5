/**
 * Moving replicas, with real processes (cluster-harness.ts, four brokers): a replica moves to the
 * spare broker under a publish load (its leader's, so leadership moves too) — the new replica
 * catches up and joins the in-sync set, the old one leaves and its files go — with no publish
 * failed or lost; `ferry cluster drain` then moves every replica off a broker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { isFerryError } from '../../src/errors.js';
import { LAUNCHER } from '../../bench/checkout.js';
import { eventually } from '../helpers.js';
import { useTestCluster } from './cluster-harness.js';

const SUITE_TIMEOUT_MS = 240_000;
const SETTLE_MS = 30_000;

const suite = useTestCluster({ brokers: 4, startTimeoutMs: SUITE_TIMEOUT_MS });

test('reassign - the leader\'s replica moves to the spare broker under load: it catches up, the old one leaves with its files, nothing fails or is lost', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('moving', { replicas: 3, minInSync: 2, durability: 'always' });
  for (let i = 0; i < 50; i++) await suite.client.publish('moving', `m${i}`, { id: `m${i}` });
  const before = await suite.partition0('moving');
  const replicas = [...(before.replicas ?? [])];
  const spare = suite.cluster.brokers.find((broker) => !replicas.includes(broker.nodeId))!.nodeId;
  const leaving = before.leader!;

  const confirmed = new Set<string>(Array.from({ length: 50 }, (_, i) => `m${i}`));
  const failed: unknown[] = [];
  let producing = true;
  let next = 50;
  const producer = (async () => {
    while (producing) {
      const batch = Array.from({ length: 10 }, () => `m${next++}`);
      await Promise.all(batch.map((value) => suite.client.publish('moving', value, { id: value }).then(() => confirmed.add(value), (error: unknown) => failed.push(error))));
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();

  await assert.rejects(suite.client.reassignReplica('moving', { replace: spare, with: leaving }), (error) => isFerryError(error, 'INVALID_ARGUMENT'));
  const started = await suite.client.reassignReplica('moving', { replace: leaving, with: spare });
  assert.deepEqual(started.moves, [{ topic: 'moving', from: leaving, to: spare }]);
  await eventually(
    async () => {
      const now = await suite.partition0('moving');
      return !(now.replicas ?? []).includes(leaving) && (now.inSync ?? []).includes(spare) && (now.inSync ?? []).length === 3;
    },
    { timeoutMs: SETTLE_MS },
  ).catch((error: unknown) => {
    throw new Error(`${String(error)}\n${suite.cluster.describe().slice(-8000)}`);
  });
  const after = await suite.partition0('moving');
  assert.notEqual(after.leader, leaving, 'leadership left the moved replica');
  assert.deepEqual([...(after.replicas ?? [])].sort(), [...replicas.filter((nodeId) => nodeId !== leaving), spare].sort());
  await eventually(() => !existsSync(join(suite.cluster.broker(leaving).dataDir, 'topics', 'moving')), { timeoutMs: SETTLE_MS });
  const atMove = confirmed.size;
  await eventually(() => confirmed.size >= atMove + 50, { timeoutMs: SETTLE_MS });
  producing = false;
  await producer;
  assert.deepEqual(failed, [], 'no publish failed');

  const stored = new Map<string, number>();
  const stream = await suite.client.subscribe('moving', { from: 'earliest' });
  const end = (await suite.partition0('moving')).highWatermark!;
  for await (const message of stream) {
    stored.set(message.value.toString(), (stored.get(message.value.toString()) ?? 0) + 1);
    if (message.offset + 1 >= end) break;
  }
  await stream.close();
  const wrong = [...confirmed].filter((value) => stored.get(value) !== 1);
  assert.deepEqual(wrong, [], `confirmed ${confirmed.size}, end ${end}`);
  for (const replica of (await suite.partition0('moving')).replicaOffsets ?? []) assert.ok(replica.endOffset >= end, `${replica.nodeId} holds everything`);
});

test('reassign - ferry cluster drain moves every replica and leadership off a broker', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const now = await suite.partition0('moving');
  const drained = now.leader!;
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [LAUNCHER, 'cluster', 'drain', drained, '--json', '--timeout-ms', String(SETTLE_MS)], {
    env: { ...process.env, FERRY_URL: `ferry://${suite.cluster.servers.join(',')}` },
  });
  const report = JSON.parse(stdout) as { moves: Array<{ topic: string; from: string; to: string }>; refused: unknown[]; completed: boolean };
  assert.equal(report.completed, true, stdout);
  assert.ok(report.moves.some((move) => move.topic === 'moving' && move.from === drained), stdout);
  const after = await suite.partition0('moving');
  assert.ok(!(after.replicas ?? []).includes(drained), JSON.stringify(after));
  assert.notEqual(after.leader, drained);
  assert.equal((after.inSync ?? []).length, 3);
  await suite.client.publish('moving', 'after-drain');
});

test('reassign - the admin API moves a replica (POST /api/cluster/reassign) and refuses a drain of an unknown broker', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const now = await suite.partition0('moving');
  const replicas = now.replicas ?? [];
  const spare = suite.cluster.brokers.find((broker) => !replicas.includes(broker.nodeId))!.nodeId;
  const replace = replicas.find((nodeId) => nodeId !== now.leader)!;
  const http = suite.cluster.broker(replicas[0]!).httpPort;
  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`http://127.0.0.1:${http}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const moved = await post('/api/cluster/reassign', { topic: 'moving', replace, with: spare });
  assert.equal(moved.status, 200, await moved.clone().text());
  assert.deepEqual(((await moved.json()) as { moves: unknown[] }).moves, [{ topic: 'moving', from: replace, to: spare }]);
  await eventually(
    async () => {
      const after = await suite.partition0('moving');
      return !(after.replicas ?? []).includes(replace) && (after.inSync ?? []).includes(spare);
    },
    { timeoutMs: SETTLE_MS },
  );
  const unknown = await post('/api/cluster/drain', { node: 'n99' });
  assert.equal(unknown.status, 400, await unknown.clone().text());
});
