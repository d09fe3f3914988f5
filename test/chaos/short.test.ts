/**
 * The short chaos profile, part of `npm test`: a real broker process under load, killed twice,
 * once with an emulated power loss, and once driven into a full disk (when the harness may mount a
 * tmpfs, i.e. as root; otherwise that part is skipped and says why). The full scenarios run with
 * `npm run chaos` (docs/RELIABILITY.md). Replay with FERRY_CHAOS_SEED=<seed>.
 *
 * One run, two verdicts: nothing acknowledged may be lost (must pass); and duplicates only as
 * redeliveries of unacknowledged deliveries — a `todo` while the known bug below is open, so that
 * its failure is reported without failing CI.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { runScenario, type RunResult } from './harness.js';

/** Fixed by default so that CI runs are comparable; any seed must pass. */
const SEED = Number(process.env.FERRY_CHAOS_SEED ?? 1);
/** The run takes about 25 s alone; twice that on a loaded 2-core machine, with margin. */
const RUN_TIMEOUT_MS = 120_000;

let result: RunResult;
const lines: string[] = [];

before(
  async () => {
    result = await runScenario({
      scenario: 'short',
      seed: SEED,
      profile: 'short',
      resultsDir: null,
      keepFailedWorkDir: false,
      log: (line) => lines.push(line),
    });
  },
  { timeout: RUN_TIMEOUT_MS },
);

function explain(): string {
  return `${result.command}\n${lines.join('\n')}\n${JSON.stringify(result.check?.samples ?? {}, null, 2)}`;
}

test('chaos - short profile: no acknowledged message lost through kills, a power loss and a full disk', (t) => {
  for (const reason of result.skipped) t.diagnostic(reason);
  const c = result.check!;
  t.diagnostic(`seed ${SEED}: confirmed ${c.confirmed}, lost ${c.lost}, unexpected ${c.unexpected}, ${result.recovery.restarts} restarts in ${(result.durationMs / 1000).toFixed(0)} s`);
  const d = c.duplicates;
  const safety = result.failures.filter((failure) => !/ack ignored/.test(failure));
  assert.deepEqual(safety, [], explain());
  assert.ok(c.confirmed > 0, 'the workload confirmed nothing');
  assert.equal(c.lost + c.missingFromLog + c.unexpected + c.phantom, 0);
  assert.equal(d.afterConfirmedAck + d.storedTwice + d.copyVanished, 0);
});

test('chaos - short profile: duplicates only as redeliveries of unacknowledged deliveries', (t) => {
  const d = result.check!.duplicates;
  t.diagnostic(`duplicates ${d.total}: unacked ${d.redeliveryUnacked}, after an unconfirmed ack ${d.redeliveryAfterUnconfirmedAck}, ack ignored ${d.ackIgnored}`);
  assert.equal(d.ackIgnored, 0, explain());
});
