/**
 * The short chaos profile, part of `npm test`: a real broker process under load, killed twice,
 * once with an emulated power loss, and once driven into a full disk (when the harness may mount a
 * tmpfs, i.e. as root; otherwise that part is skipped and says why). The full scenarios run with
 * `npm run chaos` (docs/RELIABILITY.md). Replay with FERRY_CHAOS_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runScenario } from './harness.js';

/** Fixed by default so that CI runs are comparable; any seed must pass. */
const SEED = Number(process.env.FERRY_CHAOS_SEED ?? 1);
/** The run takes about 25 s alone; twice that on a loaded 2-core machine, with margin. */
const TEST_TIMEOUT_MS = 120_000;

test('chaos - short profile: no acknowledged message lost through kills, a power loss and a full disk', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const lines: string[] = [];
  const result = await runScenario({ scenario: 'short', seed: SEED, profile: 'short', resultsDir: null, log: (line) => lines.push(line) });
  for (const reason of result.skipped) t.diagnostic(reason);
  const c = result.check!;
  t.diagnostic(
    `seed ${SEED}: confirmed ${c.confirmed}, lost ${c.lost}, unexpected ${c.unexpected}, duplicates ${c.duplicates.total} ` +
      `(all redeliveries of unsettled messages), ${result.recovery.restarts} restarts in ${(result.durationMs / 1000).toFixed(0)} s`,
  );
  assert.deepEqual(result.failures, [], `${result.command}\n${lines.join('\n')}\n${JSON.stringify(c.samples, null, 2)}`);
  assert.ok(c.confirmed > 0, 'the workload confirmed nothing');
  assert.equal(c.lost, 0);
  assert.equal(c.unexpected, 0);
});
