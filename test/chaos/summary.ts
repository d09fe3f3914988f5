/**
 * Prints the results in chaos-results/*.json as the Markdown table of docs/RELIABILITY.md:
 * `node --import tsx test/chaos/summary.ts [--commit <prefix>]` (only the runs of that commit);
 * with `--cluster`, the cluster runs (chaos-results/cluster-*.json) and their queue anomalies.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { RunResult } from './harness.js';
import type { ClusterRunResult } from './cluster-harness.js';

const RESULTS_DIR = fileURLToPath(new URL('../../chaos-results/', import.meta.url));

const { values } = parseArgs({ options: { commit: { type: 'string' }, cluster: { type: 'boolean', default: false } } });
if (values.cluster) {
  printCluster();
  process.exit(0);
}
const rows = readdirSync(RESULTS_DIR)
  .filter((name) => name.endsWith('.json') && !name.startsWith('cluster-'))
  .sort()
  .map((name) => JSON.parse(readFileSync(RESULTS_DIR + name, 'utf8')) as RunResult)
  .filter((result) => values.commit === undefined || result.machine.commit.startsWith(values.commit));

console.log('| run | result | confirmed | lost | unexpected | duplicates (allowed / failing) | faults, recovery | commit |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const result of rows) {
  const c = result.check;
  if (c === null) continue;
  const d = c.duplicates;
  const failing = d.afterConfirmedAck + d.ackIgnored + d.storedTwice + d.copyVanished;
  const allowed = d.total - failing;
  const faults = result.schedule.filter((step) => step.fault !== 'none').length;
  const profile = result.profile === 'short' && result.scenario !== 'short' ? ' (short)' : '';
  // Without the final drain the loss figures mean nothing: say so instead of printing them.
  const drained = result.drain !== null;
  const verdict = result.passed ? 'pass' : drained ? '**FAIL**' : '**FAIL** (aborted, no drain)';
  console.log(
    `| ${result.scenario}${profile} seed ${result.seed} | ${verdict} | ${c.confirmed} | ${drained ? c.lost : '—'} | ${c.unexpected} | ` +
      `${allowed} / ${failing} | ${faults} faults, ${result.recovery.restarts} restarts, ready p50 ${result.recovery.readyMsP50} ms, max ${result.recovery.readyMsMax} ms | ${result.machine.commit} |`,
  );
}

function printCluster(): void {
  const results = readdirSync(RESULTS_DIR)
    .filter((name) => name.startsWith('cluster-') && name.endsWith('.json'))
    .sort()
    .map((name) => JSON.parse(readFileSync(RESULTS_DIR + name, 'utf8')) as ClusterRunResult)
    .filter((result) => values.commit === undefined || result.machine.commit.startsWith(values.commit));
  console.log('| run | result | confirmed | lost | stored twice | inconsistent offsets | aborted reads | redelivered after confirmed ack | ack ignored | order | replicas differ (positions compared) | faults | load avg | commit |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const result of results) {
    const a = result.anomalies;
    const c = result.check;
    if (a === null || c === null) continue;
    const verdict = result.passed ? 'pass' : result.drain === null ? '**FAIL** (aborted, no drain)' : '**FAIL**';
    const kinds = Object.entries(result.faults.byKind)
      .map(([kind, count]) => `${kind} ${count}`)
      .join(', ');
    console.log(
      `| ${result.scenario}${result.topic.durability === 'always' ? '' : ` (${result.topic.durability})`}${result.profile === 'short' && result.scenario !== 'short' ? ' (short)' : ''} seed ${result.seed} | ${verdict} | ${c.confirmed} | ${a.lost} | ${a.storedTwice} | ${a.inconsistentOffsets} | ${a.abortedReads} | ` +
        `${a.redeliveredAfterConfirmedAck} | ${a.ackIgnored} | ${a.orderViolations} | ${a.replicasDiffer} (${result.replicas?.recordsCompared ?? '—'}) | ${result.faults.total}: ${kinds} | ` +
        `${result.machine.loadAverage1m.start} → ${result.machine.loadAverage1m.end} | ${result.machine.commit} |`,
    );
  }
}
