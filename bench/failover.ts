/**
 * `npm run bench:failover`: how long a replicated system stops confirming publishes when the
 * leader of the stream / queue / partition dies, and how many publishes the application sees fail.
 *
 *   npm run bench:failover -- [--only nats-r3,rabbitmq-qq,ferry-cluster] [--kills 10] [--freezes 3] [--handovers 3]
 *                             [--rate 2000] [--no-build]
 *
 * Per system: a three-node cluster (bench/cluster.ts), one topic of three replicas, and a steady
 * open-loop load of `rate` 1 KiB publishes a second (pacer-style ticks), each awaited for its
 * confirm. The client library keeps its default timeouts and retries; on top of them the
 * application queues a failed publish for a retry (oldest first, at most 100 retries in flight,
 * each 100 ms after its failure) until it is confirmed, so no message is dropped silently, and
 * counts the failure it saw. Then, `kills` times: wait until every
 * replica is current, find the leader through the system's own API, move the client to another
 * node if it is on the leader, SIGKILL the leader, wait until publishes sent after the kill are
 * confirmed and the backlog has cleared, restart the node on its old ports and data dir. A
 * consumer on the client's node acks everything, so the topic stays short (a steady state). The
 * figure per kill is the longest gap between consecutive confirmations around it, and the
 * messages whose publish failed at least once. `freezes` times the same with SIGSTOP (a leader that
 * hangs without closing its connections), SIGCONT once the others have recovered; then
 * `handovers` times with SIGTERM (a controlled shutdown: Ferry hands leadership to an in-sync
 * follower before it exits), restarted once it has exited.
 *
 * Prints markdown to stdout (progress to stderr) and writes bench/results/<date>-failover-<commit>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { currentCommit, REPO_ROOT } from './checkout.js';
import { waitFor, type ClusterSystem, type StartedCluster } from './cluster.js';
import { countBetween, longestGapMs, TimeSeries } from './failover-stats.js';
import { createFerryClusterSystem } from './peers/ferry-cluster.js';
import { FerryUnavailableError } from './peers/ferry.js';
import { natsR3System } from './peers/nats-cluster.js';
import { rabbitQqSystem } from './peers/rabbitmq.js';
import { ProcessRegistry } from './processes.js';
import { machineLine, type Machine } from './report.js';
import { median } from './stats.js';
import { makePayload, type BrokerConnection, type BrokerSubscription } from './workloads.js';

const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const TOPIC = 'bench-failover';
const GROUP = 'bench-failover-drain';
const RATE_DEFAULT = 2_000;
const KILLS_DEFAULT = 10;
const FREEZES_DEFAULT = 3;
const HANDOVERS_DEFAULT = 3;
/** More faults than this per kind is a mistake on a shared two-core machine, not a wish. */
const FAULTS_MAX = 30;
const RATE_MAX = 20_000;
/** Node's timers fire at most once a millisecond (as in pacer.ts). */
const PACING_TICK_MS = 1;
/** Load with every replica current before each fault, so that the fault meets a steady state. */
const STEADY_BEFORE_FAULT_MS = 2_000;
/** Confirmations are still watched this long after recovery: a second stall right after counts. */
const WATCH_AFTER_RECOVERY_MS = 1_000;
/** Recovered: a publish sent after the fault is confirmed and at most this much load is unconfirmed. */
const BACKLOG_RECOVERED_MS = 50;
/** A fault not recovered from within this long is reported as such; the node is then restarted. */
const RECOVERY_TIMEOUT_MS = 60_000;
const RECOVERY_POLL_MS = 10;
/** A restarted node back with every replica current (an Erlang VM boots in ~10 s on a busy machine). */
const REJOIN_TIMEOUT_MS = 120_000;
/** rabbitmqctl is an Erlang VM per call: ask about replicas once a second, not ten times. */
const REJOIN_POLL_MS = 1_000;
/** The application's own retry: a failed publish is queued again this long after it failed. */
const RETRY_DELAY_MS = 100;
/**
 * Retries in flight at once, oldest first. Unbounded, every message of a long outage would be
 * retried at once, thousands of attempts a second on a system trying to elect a leader: a retry
 * storm that measures the application, not the failover.
 */
const RETRIES_IN_FLIGHT_MAX = 100;
/** Drop the consumed head of the retry queue once it is this long. */
const RETRY_QUEUE_COMPACT_AT = 10_000;
/** At the end every publish must be confirmed within this long, or it is reported unconfirmed. */
const DRAIN_TIMEOUT_MS = 60_000;
const EXIT_INTERRUPTED = 130;
/** Per system: no new fault starts after this long (a machine too busy to recover makes each fault slow). */
const BUDGET_MINUTES_DEFAULT = 15;
const BUDGET_MINUTES_MAX = 120;
const USAGE = 'usage: npm run bench:failover -- [--only nats-r3,rabbitmq-qq,ferry-cluster] [--kills N] [--freezes N] [--handovers N] [--rate N] [--budget-minutes N] [--no-build]';

/** SIGKILL, SIGSTOP (SIGCONT once the others recovered), or SIGTERM: a controlled shutdown, restarted after it. */
type FaultKind = 'kill' | 'freeze' | 'handover';

interface FaultRecord {
  kind: FaultKind;
  index: number;
  victim: string;
  victimPid: number;
  /** The node the client published through (never the victim). */
  clientNode: string;
  /** Publishes not yet confirmed when the fault came (about rate × 50 ms in a steady state). */
  outstandingAtFault: number;
  newLeader?: string;
  /** Longest gap between consecutive confirmations from the last one before the fault on. */
  gapMs: number;
  /** Messages whose publish failed (at least once) in the fault's window, and the failed attempts. */
  failedMessages: number;
  failedAttempts: number;
  /** From the fault until recovered; undefined if not within RECOVERY_TIMEOUT_MS. */
  recoveryMs?: number;
}

interface SystemFailoverReport {
  id: string;
  label: string;
  description: string;
  faults: FaultRecord[];
  published: number;
  confirmed: number;
  /** Messages never confirmed by the end, despite the retries. */
  unconfirmed: number;
  /** Deliveries to the draining consumer, and the times it broke (and was opened again). */
  consumed: number;
  consumerErrors: number;
  failedMessagesTotal: number;
  failedAttemptsTotal: number;
  /** The distinct reasons publishes failed, with how often. */
  failureReasons: Record<string, number>;
  /** Why fewer faults than asked for were injected. */
  stoppedEarly?: string;
  error?: string;
}

// ---- The load ----------------------------------------------------------------------------------

/** Open-loop publisher: message i is due at start + i / rate, whatever happened to earlier ones. */
class SteadyPublisher {
  readonly confirmedAt = new TimeSeries();
  readonly failedAt = new TimeSeries();
  /** When a message failed for the first time: counts messages, not attempts. */
  readonly firstFailedAt = new TimeSeries();
  private readonly sentAt = new TimeSeries();
  private readonly failedOnce = new Set<number>();
  private retryQueue: number[] = [];
  private retryHead = 0;
  private retriesInFlight = 0;
  readonly failureReasons = new Map<string, number>();
  readonly connections: BrokerConnection[] = [];
  private latestConfirmedSentAtMs = -Infinity;
  private sending = false;
  private stopped = false;
  outstanding = 0;

  constructor(
    private connection: BrokerConnection,
    public node: string,
    private readonly ratePerSec: number,
  ) {
    this.connections.push(connection);
  }

  get sent(): number {
    return this.sentAt.length;
  }

  get current(): BrokerConnection {
    return this.connection;
  }

  /** New publishes and retries go through `connection` from now on; the old one is closed at the end. */
  use(connection: BrokerConnection, node: string): void {
    this.connection = connection;
    this.node = node;
    this.connections.push(connection);
  }

  start(): void {
    const intervalMs = 1000 / this.ratePerSec;
    const start = performance.now();
    this.sending = true;
    const tick = (): void => {
      if (!this.sending) return;
      const due = Math.floor((performance.now() - start) / intervalMs) + 1;
      while (this.sentAt.length < due) this.send(this.sentAt.length);
      setTimeout(tick, PACING_TICK_MS);
    };
    tick();
  }

  private send(sequence: number): void {
    const now = performance.now();
    this.sentAt.push(now);
    this.outstanding++;
    this.attempt(sequence, false);
  }

  private attempt(sequence: number, retry: boolean): void {
    if (this.stopped) return;
    const sentAtMs = this.sentAt.times[sequence]!;
    if (retry) this.retriesInFlight++;
    this.connection.publish(TOPIC, makePayload(sequence, sentAtMs)).then(
      () => {
        if (retry) this.retryDone();
        this.outstanding--;
        this.confirmedAt.push(performance.now());
        this.latestConfirmedSentAtMs = Math.max(this.latestConfirmedSentAtMs, sentAtMs);
      },
      (error: unknown) => {
        const now = performance.now();
        this.failedAt.push(now);
        if (!this.failedOnce.has(sequence)) {
          this.failedOnce.add(sequence);
          this.firstFailedAt.push(now);
        }
        const reason = (error instanceof Error ? error.message : String(error)).split('\n')[0]!.slice(0, 120);
        this.failureReasons.set(reason, (this.failureReasons.get(reason) ?? 0) + 1);
        if (retry) this.retryDone();
        setTimeout(() => {
          this.retryQueue.push(sequence);
          this.pumpRetries();
        }, RETRY_DELAY_MS);
      },
    );
  }

  private retryDone(): void {
    this.retriesInFlight--;
    this.pumpRetries();
  }

  private pumpRetries(): void {
    while (!this.stopped && this.retriesInFlight < RETRIES_IN_FLIGHT_MAX && this.retryHead < this.retryQueue.length) {
      this.attempt(this.retryQueue[this.retryHead++]!, true);
    }
    if (this.retryHead >= RETRY_QUEUE_COMPACT_AT) {
      this.retryQueue = this.retryQueue.slice(this.retryHead);
      this.retryHead = 0;
    }
  }

  /** Whether publishes sent after `faultAtMs` are confirmed again and the backlog has cleared. */
  recoveredSince(faultAtMs: number): boolean {
    return this.latestConfirmedSentAtMs > faultAtMs && this.outstanding <= (this.ratePerSec * BACKLOG_RECOVERED_MS) / 1000;
  }

  stopSending(): void {
    this.sending = false;
  }

  /** Waits for every publish to be confirmed (retrying), at most `timeoutMs`; then stops retrying. */
  async drain(timeoutMs: number): Promise<number> {
    this.stopSending();
    const deadline = performance.now() + timeoutMs;
    while (this.outstanding > 0 && performance.now() < deadline) await sleep(RECOVERY_POLL_MS * 10);
    this.stopped = true;
    return this.outstanding;
  }
}

/**
 * One consumer on the client's node, acking everything: the topic stays short, as in a system
 * that keeps up, instead of growing by `rate` messages a second (a quorum queue holds its backlog
 * in memory, and a restarted replica must copy all of it). Moves with the client; a consumer the
 * fault broke is opened again before the next fault.
 */
class Drainer {
  private subscription: BrokerSubscription | undefined;
  received = 0;
  errors = 0;
  private broken = false;

  get needsReattach(): boolean {
    return this.broken || this.subscription === undefined;
  }

  async attach(connection: BrokerConnection): Promise<void> {
    await this.close();
    this.broken = false;
    this.subscription = await connection.subscribe(TOPIC, GROUP, {
      onMessage: () => {
        this.received++;
      },
      onError: () => {
        this.errors++;
        this.broken = true;
      },
    });
  }

  async close(): Promise<void> {
    const previous = this.subscription;
    this.subscription = undefined;
    await previous?.close().catch(() => {});
  }
}

// ---- One fault -----------------------------------------------------------------------------------

async function waitUntilRecovered(publisher: SteadyPublisher, faultAtMs: number): Promise<number | undefined> {
  const deadline = faultAtMs + RECOVERY_TIMEOUT_MS;
  while (performance.now() < deadline) {
    if (publisher.recoveredSince(faultAtMs)) return performance.now();
    await sleep(RECOVERY_POLL_MS);
  }
  return undefined;
}

async function injectFault(
  cluster: StartedCluster,
  publisher: SteadyPublisher,
  drainer: Drainer,
  kind: FaultKind,
  index: number,
): Promise<FaultRecord> {
  // Right after a fault a system may still answer "unavailable" (NATS: 503) for a while: asked again.
  await waitFor('every replica current', REJOIN_TIMEOUT_MS, () => cluster.replicasCurrent(TOPIC), REJOIN_POLL_MS);
  let leader = '';
  await waitFor('the leader', REJOIN_TIMEOUT_MS, async () => (leader = await cluster.leaderOf(TOPIC)) !== '', REJOIN_POLL_MS);
  if (publisher.node === leader) {
    // The client must be on a survivor: move it (and the consumer) first.
    const other = cluster.nodeIds.find((id) => id !== leader)!;
    const connection = await cluster.connectTo(other);
    publisher.use(connection, other);
    await drainer.close();
  }
  if (drainer.needsReattach) {
    await waitFor('the draining consumer', REJOIN_TIMEOUT_MS, async () => (await drainer.attach(publisher.current), true), REJOIN_POLL_MS);
  }
  await sleep(STEADY_BEFORE_FAULT_MS);
  // A system still working off the last fault's backlog would meet this one weakened: wait for it
  // (bounded; a system that never catches up at this rate shows as `outstandingAtFault`).
  await waitFor('the backlog cleared', REJOIN_TIMEOUT_MS, async () => publisher.recoveredSince(-Infinity), REJOIN_POLL_MS).catch(() => {});
  const outstandingAtFault = publisher.outstanding;
  for (const id of cluster.nodeIds) {
    if (!cluster.server(id).running) throw new Error(`node ${id} exited before fault ${index} (${cluster.server(id).exitReason})`);
  }
  const victim = cluster.server(leader);
  const faultAtMs = performance.now();
  victim.signal(kind === 'kill' ? 'SIGKILL' : kind === 'freeze' ? 'SIGSTOP' : 'SIGTERM');
  const recoveredAtMs = await waitUntilRecovered(publisher, faultAtMs);
  await sleep(WATCH_AFTER_RECOVERY_MS);
  const windowEndMs = recoveredAtMs === undefined ? performance.now() : recoveredAtMs + WATCH_AFTER_RECOVERY_MS;
  const { confirmedAt, failedAt, firstFailedAt } = publisher;
  const record: FaultRecord = {
    kind,
    index,
    victim: leader,
    victimPid: victim.pid,
    clientNode: publisher.node,
    outstandingAtFault,
    gapMs: longestGapMs(confirmedAt.times, faultAtMs, windowEndMs, confirmedAt.length),
    failedMessages: countBetween(firstFailedAt.times, faultAtMs, windowEndMs, firstFailedAt.length),
    failedAttempts: countBetween(failedAt.times, faultAtMs, windowEndMs, failedAt.length),
    ...(recoveredAtMs === undefined ? {} : { recoveryMs: recoveredAtMs - faultAtMs }),
  };
  if (kind !== 'freeze') {
    await victim.waitForExit();
    await cluster.restart(leader);
  } else {
    victim.signal('SIGCONT');
  }
  record.newLeader = await cluster.leaderOf(TOPIC).catch(() => undefined);
  return record;
}

// ---- One system ----------------------------------------------------------------------------------

interface Options {
  systems: ClusterSystem[];
  kills: number;
  freezes: number;
  handovers: number;
  ratePerSec: number;
  budgetMs: number;
}

function describeFault(record: FaultRecord): string {
  const recovery = record.recoveryMs === undefined ? `not recovered within ${RECOVERY_TIMEOUT_MS} ms` : `recovered in ${record.recoveryMs.toFixed(0)} ms`;
  return `${record.kind} ${record.index}: leader ${record.victim} (pid ${record.victimPid}), client on ${record.clientNode}: ` +
    `${record.outstandingAtFault} unconfirmed at the fault, longest gap ${record.gapMs.toFixed(0)} ms, ${record.failedMessages} failed (${record.failedAttempts} attempts), ${recovery}, new leader ${record.newLeader ?? '?'}`;
}

async function runSystem(system: ClusterSystem, options: Options, processes: ProcessRegistry, report: SystemFailoverReport): Promise<void> {
  const progress = (text: string): boolean => process.stderr.write(`bench: ${system.id}: ${text}\n`);
  await system.prepare?.();
  const cluster = await system.start(processes);
  progress(`nodes ${cluster.nodeIds.map((id) => `${id} pid ${cluster.server(id).pid}`).join(', ')}`);
  let publisher: SteadyPublisher | undefined;
  const drainer = new Drainer();
  try {
    const first = cluster.nodeIds[0]!;
    const connection = await cluster.connectTo(first);
    await connection.createTopic(TOPIC);
    publisher = new SteadyPublisher(connection, first, options.ratePerSec);
    publisher.start();
    await drainer.attach(connection);
    const plan: FaultKind[] = [
      ...Array<FaultKind>(options.kills).fill('kill'),
      ...Array<FaultKind>(options.freezes).fill('freeze'),
      ...Array<FaultKind>(options.handovers).fill('handover'),
    ];
    const budgetEndMs = performance.now() + options.budgetMs;
    for (const [position, kind] of plan.entries()) {
      if (performance.now() > budgetEndMs) {
        report.stoppedEarly = `time budget of ${options.budgetMs / 60_000} min spent after ${position} of ${plan.length} faults`;
        progress(report.stoppedEarly);
        break;
      }
      const index = plan.slice(0, position + 1).filter((planned) => planned === kind).length;
      const record = await injectFault(cluster, publisher, drainer, kind, index);
      report.faults.push(record);
      progress(describeFault(record));
    }
    report.unconfirmed = await publisher.drain(DRAIN_TIMEOUT_MS);
  } finally {
    await drainer.close();
    report.consumed = drainer.received;
    report.consumerErrors = drainer.errors;
    if (publisher !== undefined) {
      publisher.stopSending();
      report.published = publisher.sent;
      report.confirmed = publisher.confirmedAt.length;
      report.failedMessagesTotal = publisher.firstFailedAt.length;
      report.failedAttemptsTotal = publisher.failedAt.length;
      report.failureReasons = Object.fromEntries(publisher.failureReasons);
      await Promise.allSettled(publisher.connections.map((connection) => connection.close()));
    }
    await cluster.stop();
  }
}

// ---- Report --------------------------------------------------------------------------------------

const SIGNAL_OF: Record<FaultKind, string> = { kill: 'SIGKILL', freeze: 'SIGSTOP', handover: 'SIGTERM' };

function summary(records: readonly FaultRecord[]): { median: number; max: number; failed: number; attempts: number; unrecovered: number } | undefined {
  if (records.length === 0) return undefined;
  const gaps = records.map((record) => record.gapMs);
  return {
    median: median(gaps),
    max: Math.max(...gaps),
    failed: records.reduce((sum, record) => sum + record.failedMessages, 0),
    attempts: records.reduce((sum, record) => sum + record.failedAttempts, 0),
    unrecovered: records.filter((record) => record.recoveryMs === undefined).length,
  };
}

function markdown(systems: readonly SystemFailoverReport[], header: string): string {
  const rows: string[] = [];
  for (const system of systems) {
    for (const kind of ['kill', 'freeze', 'handover'] as const) {
      const records = system.faults.filter((record) => record.kind === kind);
      const figures = summary(records);
      if (figures === undefined) continue;
      rows.push(
        `| ${system.label} | ${SIGNAL_OF[kind]} ×${records.length} | ${figures.median.toFixed(0)} | ${figures.max.toFixed(0)} | ` +
          `${figures.failed.toLocaleString('en-US')} (${figures.attempts.toLocaleString('en-US')} attempts) | ${figures.unrecovered} | ${records.map((record) => record.gapMs.toFixed(0)).join(', ')} |`,
      );
    }
  }
  const parts = [
    header,
    '| System | Fault | Gap median (ms) | Gap max (ms) | Failed publishes seen | Not recovered | Gaps per fault (ms) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ];
  for (const system of systems) {
    parts.push(`- ${system.label}: ${system.description}. Published ${system.published.toLocaleString('en-US')}, confirmed ${system.confirmed.toLocaleString('en-US')}, ` +
      `unconfirmed at the end ${system.unconfirmed}${system.stoppedEarly === undefined ? '' : ` (${system.stoppedEarly})`}, consumed ${system.consumed.toLocaleString('en-US')} (consumer broke ${system.consumerErrors}×)${system.error === undefined ? '' : `; **${system.error.split('\n')[0]}**`}`);
    const reasons = Object.entries(system.failureReasons);
    if (reasons.length > 0) parts.push(`  failures: ${reasons.map(([reason, count]) => `${count}× "${reason}"`).join('; ')}`);
  }
  return `${parts.join('\n')}\n`;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      kills: { type: 'string', default: String(KILLS_DEFAULT) },
      freezes: { type: 'string', default: String(FREEZES_DEFAULT) },
      handovers: { type: 'string', default: String(HANDOVERS_DEFAULT) },
      rate: { type: 'string', default: String(RATE_DEFAULT) },
      'budget-minutes': { type: 'string', default: String(BUDGET_MINUTES_DEFAULT) },
      'no-build': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const all: ClusterSystem[] = [createFerryClusterSystem({ build: !values['no-build'] }), natsR3System, rabbitQqSystem];
  const onlyIds = values.only === undefined ? all.map((system) => system.id) : values.only.split(',').map((id) => id.trim());
  for (const id of onlyIds) {
    if (!all.some((system) => system.id === id)) throw new Error(`--only: unknown system '${id}' (${all.map((system) => system.id).join(', ')})\n${USAGE}`);
  }
  const count = (name: string, text: string, max: number, min = 0): number => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${name} must be an integer from ${min} to ${max}\n${USAGE}`);
    return value;
  };
  return {
    systems: all.filter((system) => onlyIds.includes(system.id)),
    kills: count('kills', values.kills, FAULTS_MAX),
    freezes: count('freezes', values.freezes, FAULTS_MAX),
    handovers: count('handovers', values.handovers, FAULTS_MAX),
    ratePerSec: count('rate', values.rate, RATE_MAX, 1),
    budgetMs: count('budget-minutes', values['budget-minutes'], BUDGET_MINUTES_MAX, 1) * 60_000,
  };
}

function machine(): Machine {
  return { cpus: availableParallelism(), cpuModel: cpus()[0]?.model.trim() ?? 'unknown', memoryBytes: totalmem(), kernel: release(), node: process.version };
}

interface RunContext {
  command: string;
  startedAt: string;
  loadBefore: number[];
  options: Options;
  systems: SystemFailoverReport[];
}

/** Prints the markdown and writes the results file; also after an interruption, with the faults so far. */
function writeResults(run: RunContext): void {
  const commit = currentCommit();
  const header = [
    `# Failover benchmark ${run.startedAt}`,
    '',
    `Command: \`${run.command}\`  \nCommit: ${commit}  \nMachine: ${machineLine(machine())}  `,
    `Load average before: ${run.loadBefore.map((value) => value.toFixed(2)).join(', ')}; after: ${loadavg().map((value) => value.toFixed(2)).join(', ')}  `,
    `Steady load: ${run.options.ratePerSec.toLocaleString('en-US')} msgs/s of 1 KiB, each publish awaited; the client on a surviving node.`,
    '',
  ].join('\n');
  process.stdout.write(markdown(run.systems, header));
  const stamp = run.startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsFile = join(RESULTS_DIR, `${stamp}-failover-${commit}.json`);
  const options = { ...run.options, systems: run.options.systems.map((system) => system.id) };
  const contents = { command: run.command, startedAt: run.startedAt, commit, machine: machine(), loadBefore: run.loadBefore, loadAfter: loadavg(), options, systems: run.systems };
  writeFileSync(resultsFile, `${JSON.stringify(contents, null, 2)}\n`);
  process.stderr.write(`bench: results written to ${relative(REPO_ROOT, resultsFile)}\n`);
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const processes = new ProcessRegistry();
  const run: RunContext = {
    command: `npm run bench:failover${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    startedAt: new Date().toISOString(),
    loadBefore: loadavg(),
    options,
    systems: [],
  };
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) {
      processes.killAllNow();
      process.exit(EXIT_INTERRUPTED);
    }
    interrupted = true;
    process.stderr.write(`bench: ${signal}, stopping the servers this run started\n`);
    const current = run.systems.at(-1);
    if (current !== undefined && current.error === undefined) current.error = `interrupted by ${signal}`;
    processes.stopAll().finally(() => {
      writeResults(run);
      process.exit(EXIT_INTERRUPTED);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    for (const system of options.systems) {
      const report: SystemFailoverReport = {
        id: system.id, label: system.label, description: await system.describe(), faults: [],
        published: 0, confirmed: 0, unconfirmed: 0, consumed: 0, consumerErrors: 0, failedMessagesTotal: 0, failedAttemptsTotal: 0, failureReasons: {},
      };
      run.systems.push(report);
      try {
        await runSystem(system, options, processes, report);
      } catch (error) {
        const skipped = error instanceof FerryUnavailableError;
        report.error = `${skipped ? 'skipped' : 'failed'}: ${error instanceof Error ? error.message : String(error)}`;
        process.stderr.write(`bench: ${system.id} ${report.error}\n`);
      }
    }
  } finally {
    await processes.stopAll();
    processes.dispose();
  }
  writeResults(run);
  return run.systems.some((system) => system.error !== undefined && !system.error.startsWith('skipped')) ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
