/**
 * `npm run bench`: Ferry side by side with NATS JetStream and Redis Streams on the four broker
 * workloads (bench/workloads.ts). Each run starts a fresh server per system, runs the selected
 * workloads, reads the server's peak RSS and stops exactly that server; systems are interleaved
 * run by run so that a noisy neighbour on the shared machine hits every system alike.
 *
 *   npm run bench -- [--only ferry,nats,redis] [--workloads W1,W3] [--runs 3] [--quick] [--write-docs]
 *                    [--no-build]   (measure dist/ as it is; by default it is rebuilt when older than src/)
 *   npm run bench -- --cluster [--only ferry-cluster,nats-r3,rabbitmq-qq] ...
 *   npm run bench -- --udp [--rates 10000,50000,100000,200000] ...   (bench/udp.ts: UDP ingest)
 *   npm run bench -- --catch-up [--mib 1024] [--rate 5000] ...      (bench/catch-up.ts: a new replica catching up)
 *   npm run bench -- --tracing [--runs 3] [--quick] ...               (bench/tracing.ts: W1/W2 with and without spans)
 *   npm run bench -- --mqtt [--seconds 10] [--only ferry,mosquitto,aedes]   (bench/mqtt.ts: MQTT beside mosquitto and aedes)
 *   npm run bench -- --http [--seconds 30] [--quick] [--load wrk|node] ... (bench/http.ts: REST, Connect, gRPC, SSE)
 *
 * --cluster runs the same workloads against replicated systems instead, three nodes each on this
 * machine (bench/cluster.ts): Ferry's cluster (three brokers and etcd, 3 replicas, 2 in sync,
 * durability always), NATS JetStream R3 and a RabbitMQ quorum queue on three nodes. A cluster's
 * peak RSS is its largest node's. A system that cannot start here (Ferry's cluster before it
 * exists) is reported as skipped with its reason, and the others run.
 *
 * Prints markdown to stdout (progress to stderr), writes bench/results/<date>-<commit>.json, and
 * with --write-docs rewrites the "## Broker workloads" section of docs/BENCHMARKS.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { createFerrySystem, FerryUnavailableError } from './peers/ferry.js';
import { createFerryClusterSystem } from './peers/ferry-cluster.js';
import { natsSystem } from './peers/nats.js';
import { natsR3System } from './peers/nats-cluster.js';
import { rabbitQqSystem } from './peers/rabbitmq.js';
import { redisSystem } from './peers/redis.js';
import { ProcessRegistry } from './processes.js';
import { runUdpBench } from './udp.js';
import { currentCommit, REPO_ROOT } from './checkout.js';
import {
  clusterDocsSection,
  CLUSTER_DOCS_SECTION_HEADING,
  DOCS_SECTION_HEADING,
  docsSection,
  markdownReport,
  medianFigures,
  writeDocsSection,
  type BenchReport,
  type Machine,
  type RunRecord,
  type SystemReport,
} from './report.js';
import {
  FULL_SCALE,
  QUICK_SCALE,
  WORKLOAD_IDS,
  runWorkload,
  type BrokerSystem,
  type RunState,
  type WorkloadId,
  type WorkloadResult,
} from './workloads.js';

const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const DOCS_FILE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
/** More repetitions than this is a mistake on a shared two-core machine, not a wish. */
const RUNS_MAX = 10;
const EXIT_INTERRUPTED = 130;

const USAGE = `usage: npm run bench -- [--udp ... (bench/udp.ts) | --tracing ... (bench/tracing.ts) | --http ... (bench/http.ts) | --catch-up ... (bench/catch-up.ts)] [--cluster] [--only ferry,nats,redis | ferry-cluster,nats-r3,rabbitmq-qq] [--workloads W1,W2,W3,W4] [--runs N] [--quick] [--write-docs] [--no-build]`;

interface Options {
  cluster: boolean;
  systems: BrokerSystem[];
  workloads: WorkloadId[];
  runs: number;
  quick: boolean;
  writeDocs: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      workloads: { type: 'string' },
      runs: { type: 'string', default: '1' },
      quick: { type: 'boolean', default: false },
      'write-docs': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      cluster: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const build = !values['no-build'];
  const all: BrokerSystem[] = values.cluster
    ? [createFerryClusterSystem({ build }), natsR3System, rabbitQqSystem]
    : [createFerrySystem({ build }), natsSystem, redisSystem];
  const onlyIds = values.only === undefined ? all.map((system) => system.id) : values.only.split(',').map((id) => id.trim());
  for (const id of onlyIds) {
    if (!all.some((system) => system.id === id)) {
      throw new Error(`--only: unknown system '${id}' (${all.map((system) => system.id).join(', ')}${values.cluster ? ', with --cluster' : ''})\n${USAGE}`);
    }
  }
  const workloadIds = values.workloads === undefined ? [...WORKLOAD_IDS] : values.workloads.split(',').map((id) => id.trim().toUpperCase());
  for (const id of workloadIds) {
    if (!(WORKLOAD_IDS as readonly string[]).includes(id)) throw new Error(`--workloads: unknown workload '${id}' (W1..W4)\n${USAGE}`);
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > RUNS_MAX) throw new Error(`--runs must be an integer from 1 to ${RUNS_MAX}`);
  return {
    cluster: values.cluster,
    systems: all.filter((system) => onlyIds.includes(system.id)),
    // Canonical order whatever the flag's order: W2 drains what W1 published.
    workloads: WORKLOAD_IDS.filter((id) => workloadIds.includes(id)),
    runs,
    quick: values.quick,
    writeDocs: values['write-docs'],
  };
}

function machine(): Machine {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
  };
}

function describeResult(result: WorkloadResult): string {
  if (result.kind === 'throughput') {
    return `${Math.round(result.msgsPerSec).toLocaleString('en-US')} msgs/s (${result.mbPerSec.toFixed(1)} MB/s, ${(result.elapsedMs / 1000).toFixed(2)} s` +
      `${result.duplicates > 0 ? `, ${result.duplicates} redelivered` : ''})`;
  }
  return `p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms, p99.9 ${result.p999Ms.toFixed(2)} ms, max ${result.maxMs.toFixed(2)} ms` +
    ` (after the first second p99 ${result.p99AfterFirstSecondMs.toFixed(2)} ms; send lag max ${result.sendLagMaxMs.toFixed(1)} ms${result.duplicates > 0 ? `, ${result.duplicates} redelivered` : ''})`;
}

/** Warning events every benchmarked Ferry logs by design (no users configured, on loopback). */
const EXPECTED_SERVER_WARNINGS = new Set(['security.auth.off']);

/**
 * The warnings and errors among a server's JSON log lines (Ferry's format; other servers' lines do
 * not parse and are skipped), minus the expected ones: a disk stall (`storage.fsync_slow`) or a
 * dropped client shows next to the figures it explains.
 */
function serverWarnings(output: string): string[] {
  const found: string[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    let parsed: { level?: unknown; event?: unknown };
    try {
      parsed = JSON.parse(line) as { level?: unknown; event?: unknown };
    } catch {
      continue;
    }
    if ((parsed.level === 'warn' || parsed.level === 'error') && !EXPECTED_SERVER_WARNINGS.has(String(parsed.event))) found.push(line);
  }
  return found;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function runOnce(system: BrokerSystem, report: SystemReport, options: Options, run: number, processes: ProcessRegistry): Promise<void> {
  const scale = options.quick ? QUICK_SCALE : FULL_SCALE;
  const broker = await system.start(processes);
  const progress = (text: string): boolean => process.stderr.write(`bench: ${system.id} run ${run}: ${text}\n`);
  const servers = broker.servers;
  progress(`server ${servers.map((server) => `pid ${server.pid} on port ${server.port}`).join(', ')}`);
  try {
    const state: RunState = { w1TopicFilled: false };
    const results: RunRecord['results'] = {};
    for (const id of options.workloads) {
      results[id] = await runWorkload(id, broker, scale, state);
      progress(`${id} ${describeResult(results[id]!)}`);
    }
    for (const server of servers) {
      if (!server.running) throw new Error(`the ${system.label} server ${server.name} exited during the run (${server.exitReason})`);
    }
    // A cluster's figure is its largest node: the memory one broker of it needs.
    const perNode = servers.map((server) => server.peakRssBytes());
    const peakRssBytes = Math.max(...perNode);
    progress(`peak RSS ${perNode.map((bytes) => (bytes / 1024 ** 2).toFixed(0)).join(', ')} MiB`);
    const warnings = servers.flatMap((server) => serverWarnings(server.output));
    for (const warning of warnings) progress(`server logged: ${warning}`);
    report.runs.push({
      run,
      serverPid: servers[0]!.pid,
      results,
      peakRssBytes,
      ...(servers.length > 1 ? { serverPids: servers.map((server) => server.pid), peakRssBytesPerNode: perNode } : {}),
      ...(warnings.length > 0 ? { serverWarnings: warnings } : {}),
    });
  } catch (error) {
    const outputs = servers
      .filter((server) => server.output !== '')
      .map((server) => `\n  ${server.name} output (tail):\n${server.output.split('\n').slice(-10).join('\n')}`);
    throw new Error(`${errorText(error)}${outputs.join('')}`);
  } finally {
    await broker.stop();
  }
}

async function main(): Promise<number> {
  // UDP ingest is measured on its own terms (offered vs stored), and tracing's cost by mode, with flags of their own.
  if (process.argv.includes('--udp')) return runUdpBench(process.argv.slice(2).filter((arg) => arg !== '--udp'));
  if (process.argv.includes('--mqtt')) return (await import('./mqtt.js')).runMqttBench(process.argv.slice(2).filter((arg) => arg !== '--mqtt'));
  if (process.argv.includes('--http')) return (await import('./http.js')).runHttpBench(process.argv.slice(2).filter((arg) => arg !== '--http'));
  if (process.argv.includes('--tracing')) return (await import('./tracing.js')).runTracingBench(process.argv.slice(2).filter((arg) => arg !== '--tracing'));
  if (process.argv.includes('--catch-up')) return (await import('./catch-up.js')).runCatchUpBench(process.argv.slice(2).filter((arg) => arg !== '--catch-up'));
  const options = parseOptions(process.argv.slice(2));
  const processes = new ProcessRegistry();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      processes.killAllNow();
      process.exit(EXIT_INTERRUPTED);
    }
    interrupted = true;
    process.stderr.write(`bench: ${signal}, stopping the servers this run started\n`);
    processes.stopAll().finally(() => process.exit(EXIT_INTERRUPTED));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const report: BenchReport = {
    command,
    startedAt: new Date().toISOString(),
    commit: currentCommit(),
    machine: machine(),
    quick: options.quick,
    runsRequested: options.runs,
    workloads: options.workloads,
    systems: [],
  };
  const ready: Array<{ system: BrokerSystem; report: SystemReport }> = [];
  for (const system of options.systems) {
    const systemReport: SystemReport = { id: system.id, label: system.label, shortLabel: system.shortLabel, description: await system.describe(), runs: [] };
    report.systems.push(systemReport);
    try {
      await system.prepare?.();
      ready.push({ system, report: systemReport });
    } catch (error) {
      systemReport.error = errorText(error);
      process.stderr.write(`bench: ${system.id} skipped: ${systemReport.error}\n`);
    }
  }

  try {
    for (let run = 1; run <= options.runs; run++) {
      for (const { system, report: systemReport } of ready) {
        if (systemReport.error !== undefined) continue;
        try {
          await runOnce(system, systemReport, options, run, processes);
        } catch (error) {
          // Not there to measure (Ferry's cluster before it exists) is a skip, not a failure.
          const skipped = error instanceof FerryUnavailableError;
          systemReport.error = `${skipped ? 'skipped' : `run ${run}`}: ${errorText(error)}`;
          process.stderr.write(`bench: ${system.id} ${skipped ? '' : 'failed: '}${systemReport.error}\n`);
        }
      }
    }
  } finally {
    await processes.stopAll();
    processes.dispose();
  }

  const stamp = report.startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsFile = join(RESULTS_DIR, `${stamp}-${options.cluster ? 'cluster-' : ''}${report.commit}.json`);
  const medians = Object.fromEntries(report.systems.map((system) => [system.id, medianFigures(system, report.workloads)]));
  writeFileSync(resultsFile, `${JSON.stringify({ ...report, medians }, null, 2)}\n`);
  process.stdout.write(markdownReport(report));
  const resultsPath = relative(REPO_ROOT, resultsFile);
  process.stderr.write(`bench: results written to ${resultsPath}\n`);
  if (options.writeDocs) {
    const [heading, section] = options.cluster
      ? [CLUSTER_DOCS_SECTION_HEADING, clusterDocsSection(report, resultsPath)]
      : [DOCS_SECTION_HEADING, docsSection(report, resultsPath)];
    writeDocsSection(DOCS_FILE, section, heading);
    process.stderr.write(`bench: updated the "${heading.slice(3)}" section of ${relative(REPO_ROOT, DOCS_FILE)}\n`);
  }
  return report.systems.some((system) => system.error !== undefined) ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${errorText(error)}\n`);
    process.exitCode = 1;
  },
);
