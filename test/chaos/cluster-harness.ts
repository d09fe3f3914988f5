/**
 * Runs one cluster chaos scenario end to end: etcd, the fault network and three brokers start
 * (chaos-cluster.ts), the topic is created with 3 replicas and minInSync 2, producers and consumers
 * record their history (the single-node suite's clients, given the cluster's addresses), the fault
 * schedule plays (cluster-faults.ts), every broker, link and etcd member comes back, the clients
 * stop, the final drain reads everything back, the brokers stop cleanly, each replica's log is read
 * from its data directory and compared (replica-compare.ts), and the checker judges the merged
 * history (checker.ts, with the queue anomalies of queue-anomalies.ts).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FerryClient } from '../../src/client/index.js';
import { isFerryError } from '../../src/errors.js';
import { seededRandom } from '../sim/random.js';
import { percentile } from './analysis.js';
import { ChaosCluster } from './chaos-cluster.js';
import { check, type CheckResult } from './checker.js';
import { inject, type Injected } from './cluster-faults.js';
import { clusterIncarnations } from './cluster-durability.js';
import { CHAOS_LEASE_TTL_MS, CLUSTER_SCENARIOS, clusterTopic, type ClusterDurability, type ClusterStep, type ClusterTopic } from './cluster-scenarios.js';
import { drain, outstandingMessages, type DrainReport } from './drain.js';
import { differences, verifyReplicas } from './final-verify.js';
import { HistoryWriter, nowT, readHistories, type HistoryEvent } from './history.js';
import { ClientProcess } from './processes.js';
import { anomalyFailures, queueAnomalies, type QueueAnomalies } from './queue-anomalies.js';
import { compareReplicas, type ReplicaComparison } from './replica-compare.js';
import type { Profile } from './scenarios.js';
import { chaosConnect, DEFAULT_CONSUMER, DEFAULT_PRODUCER, type ClientProcessConfig } from './workload.js';

const TOPIC = 'chaos';
/** Producers keep retrying this long after being told to stop, so that few outcomes stay unknown. */
const STOP_GRACE_MS = 15_000;
/** After the last fault, every replica must be back in sync within this long. */
const IN_SYNC_TIMEOUT_MS = 60_000;
/** Per producer: enough to keep replication busy on a loaded 2-core machine running three brokers. */
const RATE_PER_PRODUCER = 150;
const PRODUCERS = 2;
const CONSUMERS = 2;
/** A publish may wait out a failover (lease 2 s, election, catch-up) before the client gives up. */
const REQUEST_TIMEOUT_MS = 8_000;
/** The harness looks at etcd's leader and epoch this often, to date leadership changes. */
const LEADER_POLL_MS = 250;
/**
 * How long an ack sent around a fault may still be swallowed: a leadership change is recorded up
 * to a poll (and an etcd read) late, and a partition's effects (a leader stepping down, a consumer
 * moving) go on for a moment after it heals.
 */
const LEADER_CHANGE_SLACK_MS = 1_000;
const FAULT_AFTERMATH_MS = 3_000;

export interface ClusterRunOptions {
  scenario: string;
  seed: number;
  profile: Profile;
  /** Faults in a full run instead of the scenario's own number. */
  faults?: number;
  /** The topic's durability mode (default `always`); the checker holds the run to that mode's promise. */
  durability?: ClusterDurability;
  /** Where cluster-<scenario>-<seed>.json goes; null: not written. */
  resultsDir: string | null;
  /** Keep the work directory (data, logs, histories) of a failed run for inspection; default true. */
  keepFailedWorkDir?: boolean;
  log?: (line: string) => void;
}

export interface ClusterRunResult {
  scenario: string;
  summary: string;
  seed: number;
  profile: Profile;
  command: string;
  passed: boolean;
  failures: string[];
  notes: string[];
  schedule: ClusterStep[];
  /** Fault steps injected, by kind; `processKills` counts broker processes killed. */
  faults: { total: number; byKind: Record<string, number>; processKills: number; injected: string[] };
  topic: ClusterTopic;
  machine: { cpus: number; cpu: string; node: string; commit: string; loadAverage1m: { start: number; end: number } };
  durationMs: number;
  check: CheckResult | null;
  anomalies: QueueAnomalies | null;
  replicas: Omit<ReplicaComparison, 'agreed'> | null;
  drain: DrainReport | null;
  recovery: { restarts: number; readyMsP50: number; readyMsMax: number };
  brokerWarnings: Record<string, Record<string, number>>;
}

export async function runClusterScenario(options: ClusterRunOptions): Promise<ClusterRunResult> {
  const scenario = CLUSTER_SCENARIOS[options.scenario];
  if (scenario === undefined) throw new Error(`unknown cluster scenario ${options.scenario}; known: ${Object.keys(CLUSTER_SCENARIOS).join(', ')}`);
  const log = options.log ?? ((line: string) => console.log(line));
  const startedMs = performance.now();
  const loadStart = loadavg()[0]!;
  const schedule = scenario.plan(seededRandom(options.seed), options.profile, options.faults);
  const faultRandom = seededRandom((options.seed ^ 0x5bd1e995) >>> 0);
  const durability = options.durability ?? 'always';
  const topic = clusterTopic(durability);
  const command =
    `npm run chaos -- --cluster --scenario ${scenario.name} --seed ${options.seed}${options.profile === 'short' ? ' --profile short' : ''}` +
    `${options.faults === undefined ? '' : ` --faults ${options.faults}`}${durability === 'always' ? '' : ` --durability ${durability}`}`;
  log(`cluster chaos ${scenario.name} seed ${options.seed} (${options.profile}, ${durability} topic): ${scenario.summary}`);

  const failures: string[] = [];
  const notes: string[] = [];
  const faults = { total: 0, byKind: {} as Record<string, number>, processKills: 0, injected: [] as string[] };
  const workDir = await mkdtemp(join(tmpdir(), `ferry-chaos-cluster-${scenario.name}-`));
  const history = new HistoryWriter(join(workDir, 'harness.jsonl'));
  const clients: ClientProcess[] = [];
  let cluster: ChaosCluster | null = null;
  let admin: FerryClient | null = null;
  let drainReport: DrainReport | null = null;
  let replicas: ReplicaComparison | null = null;
  let stopWatching = (): void => {};

  try {
    cluster = await ChaosCluster.start({ workDir, history, etcdMembers: scenario.etcdMembers, leaseTtlMs: CHAOS_LEASE_TTL_MS, recordSyncs: scenario.recordSyncs });
    const servers = cluster.servers;
    admin = await chaosConnect(servers, 'harness', REQUEST_TIMEOUT_MS);
    await createTopic(admin, topic);
    if ((await cluster.waitInSync(TOPIC, IN_SYNC_TIMEOUT_MS)) === null) throw new Error('the topic never had all three replicas in sync');
    stopWatching = watchLeader(cluster, history);
    clients.push(await startClients(servers, workDir, options.seed, topic));
    for (const [index, step] of schedule.entries()) {
      await new Promise((resolve) => setTimeout(resolve, step.waitMs));
      const injected = await inject(step, { cluster, topic: TOPIC, random: faultRandom, history });
      if (injected !== null) count(faults, injected, log, index, schedule.length);
    }
    await cluster.allBack();
    history.record({ k: 'fh', t: nowT() });
    const inSync = await cluster.waitInSync(TOPIC, IN_SYNC_TIMEOUT_MS);
    if (inSync === null) failures.push(`the replicas were not all in sync ${IN_SYNC_TIMEOUT_MS / 1000} s after the last fault: ${JSON.stringify(await cluster.state(TOPIC))}`);
    await Promise.all(clients.map((client) => client.stop().catch((error: unknown) => failures.push(`a client process failed: ${(error as Error).message}`))));
    stopWatching();
    const ended = await finish(cluster, admin, history, workDir, options.profile, { failures, notes, damagesReplicas: scenario.damagesReplicas === true });
    drainReport = ended.drain;
    replicas = ended.replicas;
    admin = null;
  } catch (error) {
    failures.push(`run aborted: ${(error as Error).message}`);
    log(`  aborted: ${(error as Error).stack ?? (error as Error).message}`);
  } finally {
    stopWatching();
    await admin?.close().catch(() => undefined);
    await Promise.all(clients.map((client) => client.kill().catch(() => undefined)));
    await cluster?.close().catch(() => undefined);
    history.close();
  }

  const events = readHistories(historyFiles(workDir));
  // The checkers see the power losses and incarnations of the cluster, not of each broker.
  const checkResult = check(clusterIncarnations(events, cluster?.brokers.length ?? 3), {
    durability,
    ...(topic.syncIntervalMs === undefined ? {} : { lossWindowMs: topic.syncIntervalMs }),
    ackTimeoutMs: DEFAULT_CONSUMER.ackTimeoutMs,
    scanned: drainReport?.scanComplete ?? false,
    startsEndDeliveries: false,
    disturbances: disturbances(events),
  });
  const anomalies = queueAnomalies(clusterIncarnations(events, cluster?.brokers.length ?? 3), checkResult, replicas, durability);
  if (drainReport === null) failures.push('no final drain (the run was aborted): the loss figures are not meaningful');
  else if (!drainReport.scanComplete) failures.push('the final scan did not reach the end of the topic');
  if (replicas === null && drainReport !== null) failures.push('the replicas were not compared');
  failures.push(...checkResult.failures, ...anomalyFailures(anomalies).filter((failure) => !checkResult.failures.includes(failure)));
  const result: ClusterRunResult = {
    scenario: scenario.name,
    summary: scenario.summary,
    seed: options.seed,
    profile: options.profile,
    command,
    passed: failures.length === 0,
    failures: [...new Set(failures)],
    notes,
    schedule,
    faults,
    topic,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, commit: gitCommit(), loadAverage1m: { start: round(loadStart), end: round(loadavg()[0]!) } },
    durationMs: Math.round(performance.now() - startedMs),
    // The messages a power loss took back: their count stays, a few of them as examples.
    check: { ...checkResult, lostAllowedMessages: checkResult.lostAllowedMessages.slice(0, 20) },
    anomalies,
    replicas: replicas === null ? null : withoutAgreed(replicas),
    drain: drainReport,
    recovery: recoveryFigures(cluster),
    brokerWarnings: Object.fromEntries((cluster?.brokers ?? []).map((broker) => [broker.nodeId, broker.logCounts()])),
  };
  if (options.resultsDir !== null) {
    mkdirSync(options.resultsDir, { recursive: true });
    const name = `cluster-${scenario.name}${durability === 'always' ? '' : `-${durability}`}-${options.seed}${options.profile === 'short' && scenario.name !== 'short' ? '-short' : ''}.json`;
    writeFileSync(join(options.resultsDir, name), JSON.stringify(result, null, 2) + '\n');
  }
  if (result.passed || options.keepFailedWorkDir === false) await rm(workDir, { recursive: true, force: true });
  else log(`  work directory kept for inspection: ${workDir}`);
  return result;
}

/** Creates the topic; a broker whose registration etcd has not shown the others yet (a loaded machine) is asked again. */
async function createTopic(admin: FerryClient, topic: ClusterTopic): Promise<void> {
  const deadline = performance.now() + IN_SYNC_TIMEOUT_MS;
  for (;;) {
    try {
      await admin.createTopic(TOPIC, topic);
      return;
    } catch (error) {
      if (!isFerryError(error, 'NOT_ENOUGH_REPLICAS') || performance.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** One client process: the producers (one per partition) and the consumers of the queue group. */
async function startClients(servers: string[], workDir: string, seed: number, topic: ClusterTopic): Promise<ClientProcess> {
  const config: ClientProcessConfig = {
    port: 0,
    servers,
    topic: TOPIC,
    partitions: topic.partitions!,
    historyPath: join(workDir, 'clients-0.jsonl'),
    seed: (seed * 31) >>> 0,
    producers: Array.from({ length: PRODUCERS }, (_, i) => `p${i}`),
    consumers: Array.from({ length: CONSUMERS }, (_, i) => `c${i}`),
    producer: { ...DEFAULT_PRODUCER, ratePerSec: RATE_PER_PRODUCER },
    consumer: { ...DEFAULT_CONSUMER, requestTimeoutMs: REQUEST_TIMEOUT_MS },
    stopGraceMs: STOP_GRACE_MS,
  };
  const child = new ClientProcess(config, join(workDir, 'clients-0.log'));
  await child.ready();
  return child;
}

/** Records every change of the topic's leader or epoch etcd shows (`le`); returns what stops it. */
function watchLeader(cluster: ChaosCluster, history: HistoryWriter): () => void {
  let last = '';
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    void cluster.state(TOPIC).then((state) => {
      busy = false;
      if (state === null) return;
      const now = `${state.leader}@${state.epoch}`;
      if (now !== last) history.record({ k: 'le', t: nowT(), leader: state.leader, epoch: state.epoch });
      last = now;
    });
  }, LEADER_POLL_MS);
  return () => clearInterval(timer);
}

/** Spans in which a fault besides a kill or pause may have swallowed an ack: network and etcd faults, leadership changes. */
function disturbances(events: readonly HistoryEvent[]): Array<{ from: number; to: number }> {
  const spans: Array<{ from: number; to: number }> = [];
  let open: number | null = null;
  for (const event of events) {
    if (event.k === 'fx') open ??= event.t;
    else if (event.k === 'fh' && open !== null) {
      spans.push({ from: open, to: event.t + FAULT_AFTERMATH_MS });
      open = null;
    } else if (event.k === 'le') spans.push({ from: event.t - LEADER_CHANGE_SLACK_MS, to: event.t + LEADER_CHANGE_SLACK_MS });
  }
  if (open !== null) spans.push({ from: open, to: Infinity });
  return spans;
}

function count(faults: ClusterRunResult['faults'], injected: Injected, log: (line: string) => void, index: number, steps: number): void {
  faults.total++;
  faults.byKind[injected.kind] = (faults.byKind[injected.kind] ?? 0) + 1;
  faults.processKills += injected.processKills;
  faults.injected.push(`${injected.kind} ${injected.detail}`);
  log(`  ${index + 1}/${steps} ${injected.kind} ${injected.detail}`);
}

/**
 * The end of a run: the final drain, the replicas verified by digests (and repaired where they
 * differ), the high watermarks, every broker stopped cleanly, and the replicas compared on disk.
 */
async function finish(
  cluster: ChaosCluster,
  admin: FerryClient,
  history: HistoryWriter,
  workDir: string,
  profile: Profile,
  found: { failures: string[]; notes: string[]; damagesReplicas: boolean },
): Promise<{ drain: DrainReport; replicas: ReplicaComparison }> {
  const { failures, notes } = found;
  history.record({ k: 'ph', t: nowT(), name: 'drain' });
  history.flush();
  const outstanding = outstandingMessages(historyFiles(workDir));
  const report = await drain({
    client: admin,
    topic: TOPIC,
    history,
    consumer: { ...DEFAULT_CONSUMER, requestTimeoutMs: REQUEST_TIMEOUT_MS },
    outstanding,
    idleMs: 8_000,
    maxMs: profile === 'full' ? 180_000 : 45_000,
  });
  // Everything is written; the replicas catch up with the last of it before they are stopped.
  if ((await cluster.waitInSync(TOPIC, IN_SYNC_TIMEOUT_MS)) === null) failures.push('the replicas were not all in sync before the stop');
  const verified = await verifyReplicas(admin, cluster, TOPIC, IN_SYNC_TIMEOUT_MS);
  const firstFound = verified.first?.ok === false ? differences(verified.first) : 'OK';
  notes.push(`final verification: first ${firstFound}; ${verified.last?.ok === true ? 'OK' : 'not OK'} after ${verified.rounds} round(s)${verified.errors.length > 0 ? `; refused: ${verified.errors.join(' | ')}` : ''}`);
  if (verified.last?.ok !== true) failures.push(`ferry topics verify did not report OK after ${verified.rounds} round(s): ${differences(verified.last)}`);
  else if (verified.first?.ok === false && !found.damagesReplicas) failures.push(`ferry topics verify found replicas that differ: ${firstFound}`);
  const described = await admin.describeTopic(TOPIC);
  const highWatermarks = described.partitions.map((partition) => partition.highWatermark ?? partition.nextOffset);
  await admin.close();
  for (const broker of cluster.brokers) {
    const code = await broker.stop();
    if (code !== 0) failures.push(`${broker.nodeId}'s clean shutdown exited with ${code}`);
  }
  const dataDirs = Object.fromEntries(cluster.brokers.map((broker) => [broker.nodeId, broker.dataDir]));
  return { drain: report, replicas: await compareReplicas(dataDirs, TOPIC, highWatermarks) };
}

function recoveryFigures(cluster: ChaosCluster | null): ClusterRunResult['recovery'] {
  const recoveries = (cluster?.brokers ?? []).flatMap((broker) => broker.recoveries);
  const ready = recoveries.map((recovery) => recovery.readyMs).sort((a, b) => a - b);
  return { restarts: Math.max(0, recoveries.length - 3), readyMsP50: percentile(ready, 0.5), readyMsMax: ready[ready.length - 1] ?? 0 };
}

function withoutAgreed(comparison: ReplicaComparison): Omit<ReplicaComparison, 'agreed'> {
  const { agreed: _agreed, ...rest } = comparison;
  return rest;
}

function historyFiles(workDir: string): string[] {
  return readdirSync(workDir)
    .filter((name) => name.endsWith('.jsonl'))
    .map((name) => join(workDir, name));
}

const round = (value: number): number => Math.round(value * 100) / 100;

/** The commit the brokers ran from; `+dirty` when src/ had uncommitted changes (read-only git calls). */
function gitCommit(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  const status = spawnSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' });
  return head.stdout.trim() + (status.stdout.trim().length > 0 ? '+dirty' : '');
}
