/**
 * `npm run chaos -- --scenario <name> --seed <n> [--profile short] [--duration <s>] [--keep-history]`
 * `npm run chaos -- --cluster [--scenario <name>] [--seed <n>] [--profile short] [--faults <n>] [--durability always|interval|never]`
 *
 * With `--cluster`, the cluster scenarios (cluster-scenarios.ts: three brokers and etcd; every one
 * but the CI profile when no scenario is named) run through cluster-harness.ts instead, and write
 * chaos-results/cluster-<scenario>-<seed>.json.
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
import { runClusterScenario, type ClusterRunResult } from './cluster-harness.js';
import { CLUSTER_DURABILITIES, CLUSTER_SCENARIOS, FULL_CLUSTER_SCENARIOS, type ClusterDurability } from './cluster-scenarios.js';

const RESULTS_DIR = fileURLToPath(new URL('../../chaos-results/', import.meta.url));

const { values } = parseArgs({
  options: {
    scenario: { type: 'string' },
    seed: { type: 'string' },
    profile: { type: 'string', default: 'full' },
    duration: { type: 'string' },
    'keep-history': { type: 'boolean', default: false },
    cluster: { type: 'boolean', default: false },
    faults: { type: 'string' },
    durability: { type: 'string', default: 'always' },
  },
});
const profile = values.profile as Profile;
if (profile !== 'full' && profile !== 'short') throw new Error('--profile must be full or short');
const seed = values.seed === undefined ? Math.floor(Math.random() * 1_000_000) : Number(values.seed);
if (values.cluster) await runCluster();
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

async function runCluster(): Promise<never> {
  const named = values.scenario ?? (profile === 'short' ? 'short' : 'all');
  const durability = values.durability as ClusterDurability;
  if ((named !== 'all' && CLUSTER_SCENARIOS[named] === undefined) || !Number.isInteger(seed) || !CLUSTER_DURABILITIES.includes(durability)) {
    console.error(`usage: npm run chaos -- --cluster [--scenario <${Object.keys(CLUSTER_SCENARIOS).join('|')}|all>] [--seed n] [--profile full|short] [--faults n] [--durability ${CLUSTER_DURABILITIES.join('|')}]`);
    process.exit(2);
  }
  let clusterFailed = false;
  for (const name of named === 'all' ? FULL_CLUSTER_SCENARIOS : [named]) {
    const faults = values.faults === undefined ? {} : { faults: Number(values.faults) };
    const result = await runClusterScenario({ scenario: name, seed, profile, durability, resultsDir: RESULTS_DIR, ...faults });
    printCluster(result);
    clusterFailed ||= !result.passed;
  }
  process.exit(clusterFailed ? 1 : 0);
}

function printCluster(result: ClusterRunResult): void {
  console.log(`\n== cluster ${result.scenario} (${result.topic.durability}) seed ${result.seed}: ${result.passed ? 'PASSED' : 'FAILED'} in ${(result.durationMs / 1000).toFixed(0)} s (load average ${result.machine.loadAverage1m.start} → ${result.machine.loadAverage1m.end})`);
  const c = result.check;
  const a = result.anomalies;
  if (c !== null && a !== null) {
    console.log(`   attempted ${c.attempted}, confirmed ${c.confirmed}, delivered ${c.delivered}, acked ${c.acked}, dead-lettered ${c.deadLettered}, refused ${JSON.stringify(c.rejectedByCode)}, unknown ${JSON.stringify(c.unknownByCode)}`);
    console.log(
      `   lost ${a.lost}, stored twice ${a.storedTwice}, inconsistent offsets ${a.inconsistentOffsets}, aborted reads ${a.abortedReads}, ` +
        `redelivered after a confirmed ack ${a.redeliveredAfterConfirmedAck}, ack ignored ${a.ackIgnored}, order violations ${a.orderViolations}, replicas differ ${a.replicasDiffer}, unexpected ${a.unexpected}`,
    );
    console.log(`   duplicates ${c.duplicates.total} (allowed: unacked ${c.duplicates.redeliveryUnacked}, after an unconfirmed ack ${c.duplicates.redeliveryAfterUnconfirmedAck}, races ${c.duplicates.racesAllowed})`);
    if (result.topic.durability !== 'always') {
      console.log(`   at a majority's power loss: lost within the window ${c.lostAllowed} (oldest ${c.lossAgeMsMax} ms before the cut), outside it ${c.lossOutsideWindow}, not a suffix ${c.lossNotSuffix}`);
    }
  }
  if (result.replicas !== null) console.log(`   replicas ${result.replicas.replicas.join(', ')}: ${result.replicas.recordsCompared} positions compared below the high watermark`);
  console.log(`   faults ${result.faults.total} (${result.faults.processKills} broker processes killed): ${JSON.stringify(result.faults.byKind)}`);
  console.log(`   recovery: ${result.recovery.restarts} restarts, ready p50 ${result.recovery.readyMsP50} ms / max ${result.recovery.readyMsMax} ms`);
  for (const failure of result.failures) console.log(`   FAILURE: ${failure}`);
  if (a !== null) for (const [kind, examples] of Object.entries(a.samples)) console.log(`   e.g. ${kind}: ${JSON.stringify(examples.slice(0, 2))}`);
  console.log(`   reproduce: ${result.command}`);
}
