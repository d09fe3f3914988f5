/**
 * Prints the results in chaos-results/*.json as the Markdown table of docs/RELIABILITY.md:
 * `node --import tsx test/chaos/summary.ts [--commit <prefix>]` (only the runs of that commit).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { RunResult } from './harness.js';

const RESULTS_DIR = fileURLToPath(new URL('../../chaos-results/', import.meta.url));

const { values } = parseArgs({ options: { commit: { type: 'string' } } });
const rows = readdirSync(RESULTS_DIR)
  .filter((name) => name.endsWith('.json'))
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
