/**
 * `npm run chaos -- --scenario <name> --seed <n> [--profile short] [--duration <s>] [--keep-history]`
 *
 * Runs one scenario (or, with `--profile short` and no scenario, the short profile `npm test`
 * runs), prints the schedule and the checker's figures, and writes
 * chaos-results/<scenario>-<seed>.json. `--scenario all` runs every scenario but the soak.
 * Exits 1 when a promise was broken.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { runScenario, type RunResult } from './harness.js';
import { SCENARIOS, type Profile } from './scenarios.js';

const RESULTS_DIR = fileURLToPath(new URL('../../chaos-results/', import.meta.url));

const { values } = parseArgs({
  options: {
    scenario: { type: 'string' },
    seed: { type: 'string' },
    profile: { type: 'string', default: 'full' },
    duration: { type: 'string' },
    'keep-history': { type: 'boolean', default: false },
  },
});
const profile = values.profile as Profile;
if (profile !== 'full' && profile !== 'short') throw new Error('--profile must be full or short');
const seed = values.seed === undefined ? Math.floor(Math.random() * 1_000_000) : Number(values.seed);
const scenario = values.scenario ?? (profile === 'short' ? 'short' : undefined);
if (scenario === undefined || !Number.isInteger(seed)) {
  console.error(`usage: npm run chaos -- --scenario <${Object.keys(SCENARIOS).join('|')}|all> [--seed n] [--profile full|short] [--duration seconds] [--keep-history]`);
  process.exit(2);
}
const names = scenario === 'all' ? Object.keys(SCENARIOS).filter((name) => name !== 'soak' && name !== 'short') : [scenario];
let failed = false;
for (const name of names) {
  const result = await runScenario({
    scenario: name,
    seed,
    profile,
    resultsDir: RESULTS_DIR,
    keepHistory: values['keep-history'],
    ...(values.duration === undefined ? {} : { durationMs: Number(values.duration) * 1000 }),
  });
  print(result);
  failed ||= !result.passed;
}
process.exit(failed ? 1 : 0);

function print(result: RunResult): void {
  const c = result.check;
  console.log(`\n== ${result.scenario} seed ${result.seed}: ${result.passed ? 'PASSED' : 'FAILED'} in ${(result.durationMs / 1000).toFixed(0)} s`);
  if (c !== null) {
    console.log(
      `   attempted ${c.attempted}, confirmed ${c.confirmed}, delivered ${c.delivered}, acked ${c.acked}, dead-lettered ${c.deadLettered}, ` +
        `lost ${c.lost}, missing from log ${c.missingFromLog}, unexpected ${c.unexpected}, phantom ${c.phantom}`,
    );
    const d = c.duplicates;
    console.log(
      `   duplicates ${d.total}: redelivered unacked ${d.redeliveryUnacked}, after unconfirmed ack ${d.redeliveryAfterUnconfirmedAck}, races ${d.racesAllowed}; ` +
        `after confirmed ack ${d.afterConfirmedAck}, ack ignored ${d.ackIgnored}, stored twice ${d.storedTwice}, copy vanished ${d.copyVanished}`,
    );
    console.log(`   order violations ${c.orderViolations}, early deliveries ${c.earlyDeliveries}, allowed losses ${c.lostAllowed} (oldest ${c.lossAgeMsMax} ms before its kill)`);
  }
  console.log(`   recovery: ${result.recovery.restarts} restarts, ready p50 ${result.recovery.readyMsP50} ms / max ${result.recovery.readyMsMax} ms, open max ${result.recovery.openMsMax} ms`);
  for (const note of [...result.skipped, ...result.notes]) console.log(`   note: ${note}`);
  for (const failure of result.failures) console.log(`   FAILURE: ${failure}`);
  if (c !== null) for (const [kind, examples] of Object.entries(c.samples)) console.log(`   e.g. ${kind}: ${JSON.stringify(examples.slice(0, 2))}`);
  console.log(`   reproduce: ${result.command}`);
}
