/**
 * The short cluster chaos profile, part of `npm test`: three brokers and etcd on loopback behind the
 * fault proxies, an `always` topic with 3 replicas and minInSync 2 under load, and seven faults (a
 * leader and a follower SIGKILL, the leader frozen past its lease, the leader cut off from its
 * followers and then from etcd, etcd killed, a follower's power lost). Bounded: it stops itself.
 * The full scenarios run with `npm run chaos -- --cluster` (docs/RELIABILITY.md). Replay with
 * FERRY_CHAOS_SEED=<seed>. Needs etcd on the PATH (Debian: etcd-server).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runClusterScenario, type ClusterRunResult } from './cluster-harness.js';

/** Fixed by default so that CI runs are comparable; any seed must pass. */
const SEED = Number(process.env.FERRY_CHAOS_SEED ?? 1);
/** About 1.5 minutes alone; the bound leaves room for a loaded 2-core machine. */
const RUN_TIMEOUT_MS = 360_000;

let result: ClusterRunResult;
const lines: string[] = [];

before(
  async () => {
    result = await runClusterScenario({ scenario: 'short', seed: SEED, profile: 'short', resultsDir: null, keepFailedWorkDir: false, log: (line) => lines.push(line) });
  },
  { timeout: RUN_TIMEOUT_MS },
);

function explain(): string {
  return `${result.command}\n${lines.join('\n')}\n${JSON.stringify(result.anomalies?.samples ?? {}, null, 2)}`;
}

test('cluster chaos - short profile: every fault injected, every broker back and the replicas compared', (t) => {
  t.diagnostic(`seed ${SEED}: ${result.faults.total} faults ${JSON.stringify(result.faults.byKind)} in ${(result.durationMs / 1000).toFixed(0)} s`);
  assert.equal(result.faults.total, 7, explain());
  assert.ok(result.drain?.scanComplete, explain());
  assert.ok(result.replicas !== null && result.replicas.recordsCompared > 0, explain());
  assert.ok(result.check!.confirmed > 0, 'the workload confirmed nothing');
});

test('cluster chaos - short profile: no queue anomaly on an always topic with 3 replicas and minInSync 2', () => {
  const a = result.anomalies!;
  assert.deepEqual(
    {
      lost: a.lost,
      storedTwice: a.storedTwice,
      inconsistentOffsets: a.inconsistentOffsets,
      abortedReads: a.abortedReads,
      redeliveredAfterConfirmedAck: a.redeliveredAfterConfirmedAck,
      ackIgnored: a.ackIgnored,
      orderViolations: a.orderViolations,
      replicasDiffer: a.replicasDiffer,
      unexpected: a.unexpected,
    },
    { lost: 0, storedTwice: 0, inconsistentOffsets: 0, abortedReads: 0, redeliveredAfterConfirmedAck: 0, ackIgnored: 0, orderViolations: 0, replicasDiffer: 0, unexpected: 0 },
    explain(),
  );
  assert.deepEqual(result.failures, [], explain());
});
