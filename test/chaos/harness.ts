/**
 * Runs one chaos scenario end to end: broker and clients start, the fault schedule plays, the
 * clients stop, the final drain reads everything back, the broker shuts down cleanly, and the
 * checker judges the merged history. Returns (and optionally writes) the results.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FerryClient } from '../../src/client/index.js';
import { seededRandom } from '../sim/random.js';
import { consumerKills, deliveryCounts, diskFull, latencySeries, percentile, redeliveryStorms, resourceSeries, type Findings } from './analysis.js';
import { check, type CheckResult } from './checker.js';
import { SmallDisk } from './disk.js';
import { drain, outstandingMessages, type DrainReport } from './drain.js';
import { HistoryWriter, nowT, readHistories, type HistoryEvent } from './history.js';
import { BrokerProcess, ClientProcess, freePort } from './processes.js';
import { SCENARIOS, type FaultStep, type Profile, type Scenario } from './scenarios.js';
import { chaosConnect, DEFAULT_CONSUMER, DEFAULT_PRODUCER, type ClientProcessConfig } from './workload.js';
import type { ProducerSettings } from './producer.js';

const TOPIC = 'chaos';
/** Producers keep retrying this long after being told to stop, so that few outcomes stay unknown. */
const STOP_GRACE_MS = 10_000;
/** Broker health is sampled this often (the soak every 10 s). */
const SAMPLE_MS = 5_000;
const SOAK_SAMPLE_MS = 10_000;
/** Calibration of the soak: the first seconds of it warm up and are not counted. */
const CALIBRATION_MS = { full: 20_000, short: 10_000 } as const;
const CALIBRATION_WARMUP_MS = 3_000;
/** Redeliveries are counted this long after a pause ends or the clock jumps. */
const STORM_WINDOW_MS = 5_000;
/** Publishing must resume this soon after disk space returns. */
const RESUME_MS_MAX = 5_000;
/** An ack recorded this long before its consumer was killed has surely left the process. */
const ACK_FLUSH_GRACE_MS = 500;
const DISK_STEPS = new Set<FaultStep['fault']>(['disk-full', 'space-back', 'kill-while-full']);

export interface RunOptions {
  scenario: string;
  seed: number;
  profile: Profile;
  /** Soak only: total length of the faulted phase. */
  durationMs?: number;
  /** Where <scenario>-<seed>.json goes; null: not written. */
  resultsDir: string | null;
  /** Copy the merged history next to the results (large: *.jsonl is gitignored). */
  keepHistory?: boolean;
  /** Keep the work directory (data, logs, histories) of a failed run for inspection; default true. */
  keepFailedWorkDir?: boolean;
  log?: (line: string) => void;
}

export interface RunResult {
  scenario: string;
  summary: string;
  seed: number;
  profile: Profile;
  command: string;
  passed: boolean;
  failures: string[];
  notes: string[];
  skipped: string[];
  schedule: FaultStep[];
  machine: { cpus: number; cpu: string; node: string; commit: string };
  durationMs: number;
  topic: Scenario['topic'];
  check: CheckResult | null;
  recovery: { restarts: number; readyMsP50: number; readyMsMax: number; openMsP50: number; openMsMax: number; truncatedBytes: number };
  powerLoss: { cuts: number; bytesCut: number; filesTorn: number; filesLost: number; renamesUndone: number; datasyncMsMax: number } | null;
  drain: DrainReport | null;
  findings: Record<string, unknown>;
  brokerWarnings: Record<string, number>;
}

export async function runScenario(options: RunOptions): Promise<RunResult> {
  const scenario = SCENARIOS[options.scenario];
  if (scenario === undefined) throw new Error(`unknown scenario ${options.scenario}; known: ${Object.keys(SCENARIOS).join(', ')}`);
  const log = options.log ?? ((line: string) => console.log(line));
  const startedMs = performance.now();
  const schedule = scenario.plan(seededRandom(options.seed), options.profile, options.durationMs);
  const faultRandom = seededRandom((options.seed ^ 0x5bd1e995) >>> 0);
  const command = `npm run chaos -- --scenario ${scenario.name} --seed ${options.seed}${options.profile === 'short' ? ' --profile short' : ''}${options.durationMs === undefined ? '' : ` --duration ${options.durationMs / 1000}`}`;
  log(`chaos ${scenario.name} seed ${options.seed} (${options.profile}): ${scenario.summary}`);
  log(`schedule: ${schedule.map(describeStep).join(', ')}`);

  const failures: string[] = [];
  const notes: string[] = [];
  const skipped: string[] = [];
  const workDir = await mkdtemp(join(tmpdir(), `ferry-chaos-${scenario.name}-`));
  let dataDir = join(workDir, 'data');
  let disk: SmallDisk | null = null;
  if (scenario.tmpfsBytes !== undefined) {
    const mounted = SmallDisk.mount(join(workDir, 'disk'), scenario.tmpfsBytes);
    if (typeof mounted === 'string') skipped.push(`disk-full steps skipped: ${mounted}`);
    else {
      disk = mounted;
      dataDir = join(disk.mountPoint, 'data');
    }
  }
  const plan = disk === null ? schedule.filter((step) => !DISK_STEPS.has(step.fault)) : schedule;
  for (const reason of skipped) log(reason);

  const history = new HistoryWriter(join(workDir, 'harness.jsonl'));
  const clockFile = scenario.jumpClock ? join(workDir, 'clock-offset') : undefined;
  if (clockFile !== undefined) writeFileSync(clockFile, '0');
  const port = await freePort();
  const broker = new BrokerProcess({ dataDir, workDir, port, history, recordSyncs: scenario.recordSyncs, ...(clockFile ? { clockFile } : {}) });
  const producer = { ...DEFAULT_PRODUCER, ...scenario.workload.producer };
  const consumer = { ...DEFAULT_CONSUMER, ...scenario.workload.consumer };
  const clients: ClientProcess[] = [];
  const consumerProcesses: ClientProcess[] = [];
  let processCount = 0;
  /** `ratePerSec`: the scenario's rate when absent, flat out when null. */
  const startClients = async (producers: string[], consumers: string[], ratePerSec?: number | null): Promise<ClientProcess> => {
    const index = processCount++;
    const config: ClientProcessConfig = {
      port,
      topic: TOPIC,
      partitions: scenario.topic.partitions ?? 1,
      historyPath: join(workDir, `clients-${index}.jsonl`),
      seed: (options.seed * 31 + index) >>> 0,
      producers,
      consumers,
      producer: ratePerSec === undefined ? producer : ratePerSec === null ? withoutRate(producer) : { ...producer, ratePerSec },
      consumer,
      stopGraceMs: STOP_GRACE_MS,
    };
    const child = new ClientProcess(config, join(workDir, `clients-${index}.log`));
    clients.push(child);
    await child.ready();
    return child;
  };
  const producerIds = Array.from({ length: scenario.workload.producers }, (_, i) => `p${i}`);
  const consumerIds = Array.from({ length: scenario.workload.consumers }, (_, i) => `c${i}`);
  const consumerRestarts = consumerIds.map(() => 0);
  let admin: FerryClient | null = null;
  let sampler: NodeJS.Timeout | null = null;
  let drainReport: DrainReport | null = null;
  let clockOffsetMaxMs = 0;

  const sample = (): void => {
    const figures = broker.sample();
    if (figures !== null) history.record({ k: 'm', t: nowT(), ...figures });
  };

  const inject = async (step: FaultStep): Promise<void> => {
    switch (step.fault) {
      case 'kill':
      case 'power-loss':
        await broker.kill(step.fault === 'power-loss', faultRandom);
        await broker.start();
        return;
      case 'pause':
        await broker.pause(step.ms);
        return;
      case 'consumer-kill': {
        const index = step.consumer % consumerProcesses.length;
        const id = consumerIds[index]!;
        const name = consumerRestarts[index] === 0 ? id : `${id}.${consumerRestarts[index]}`;
        history.record({ k: 'ck', t: nowT(), c: name });
        await consumerProcesses[index]!.kill();
        consumerRestarts[index]!++;
        consumerProcesses[index] = await startClients([], [`${id}.${consumerRestarts[index]}`]);
        return;
      }
      case 'disk-full': {
        const bytes = disk!.fill();
        history.record({ k: 'ph', t: nowT(), name: 'disk-full' });
        log(`  disk full (ballast ${Math.round(bytes / 1024)} KiB)`);
        return;
      }
      case 'space-back':
        disk!.free();
        history.record({ k: 'ph', t: nowT(), name: 'space-back' });
        return;
      case 'kill-while-full':
        await broker.kill(false, faultRandom);
        try {
          await broker.start();
          notes.push('the broker recovered on a full disk');
        } catch (error) {
          notes.push(`the broker could not start on a full disk (started once space returned): ${(error as Error).message.split('\n')[0]}`);
          disk!.free();
          history.record({ k: 'ph', t: nowT(), name: 'space-back' });
          await broker.start();
        }
        return;
      case 'clock-jump':
        writeFileSync(clockFile!, String(step.offsetMs));
        broker.signalClock();
        clockOffsetMaxMs = Math.max(clockOffsetMaxMs, step.offsetMs);
        history.record({ k: 'cj', t: nowT(), offsetMs: step.offsetMs });
        return;
      case 'none':
        return;
    }
  };

  try {
    await broker.start();
    admin = await chaosConnect(port, 'harness', DEFAULT_CONSUMER.requestTimeoutMs);
    await admin.createTopic(TOPIC, scenario.topic);
    await admin.close();
    sampler = setInterval(sample, scenario.calibrate ? SOAK_SAMPLE_MS : SAMPLE_MS);
    let ratePerSec: number | undefined;
    if (scenario.calibrate) {
      ratePerSec = await calibrate(startClients, producerIds, consumerIds, CALIBRATION_MS[options.profile], workDir);
      notes.push(`calibration: at most ${Math.round(ratePerSec * 2 * producerIds.length)} msg/s confirmed; the soak runs at ${Math.round(ratePerSec * producerIds.length)} msg/s`);
      log(`  ${notes[notes.length - 1]}`);
    }
    if (scenario.workload.consumerProcesses === 'each') {
      for (const id of consumerIds) consumerProcesses.push(await startClients([], [id]));
      await startClients(producerIds, [], ratePerSec);
    } else {
      await startClients(producerIds, consumerIds, ratePerSec);
    }
    for (const [index, step] of plan.entries()) {
      await new Promise((resolve) => setTimeout(resolve, step.waitMs));
      await inject(step);
      if (step.fault !== 'none') log(`  ${index + 1}/${plan.length} ${describeStep(step)}`);
    }
    if (!broker.running) await broker.start();
    await Promise.all(clients.map((client) => client.stop().catch((error: unknown) => failures.push(`a client process failed: ${(error as Error).message}`))));
    clearInterval(sampler);
    sampler = null;
    if (clockFile !== undefined) {
      // Every schedule made under any offset must come due: step past the largest, restart to re-arm.
      writeFileSync(clockFile, String(clockOffsetMaxMs + producer.delayMsMax + 1_000));
      history.record({ k: 'ph', t: nowT(), name: 'release' });
      await broker.stop();
      await broker.start();
    }
    history.record({ k: 'ph', t: nowT(), name: 'drain' });
    history.flush();
    // Reading a large history blocks this process for seconds: no connection may wait on it meanwhile.
    const outstanding = outstandingMessages(historyFiles(workDir));
    admin = await chaosConnect(port, 'drain', DEFAULT_CONSUMER.requestTimeoutMs);
    drainReport = await drain({
      client: admin,
      topic: TOPIC,
      history,
      consumer,
      outstanding,
      idleMs: Math.max(5_000, producer.delayMsMax + 2_000),
      maxMs: options.profile === 'full' ? 180_000 : 30_000,
    });
    await admin.close();
    admin = null;
    const exitCode = await broker.stop();
    if (exitCode !== 0) failures.push(`the broker's clean shutdown exited with ${exitCode}`);
  } catch (error) {
    failures.push(`run aborted: ${(error as Error).message}`);
    log(`  aborted: ${(error as Error).message}\n${broker.tail()}`);
  } finally {
    if (sampler !== null) clearInterval(sampler);
    await admin?.close().catch(() => undefined);
    await Promise.all(clients.map((client) => client.kill().catch(() => undefined)));
    if (broker.running) await broker.kill(false, faultRandom).catch(() => undefined);
    history.close();
  }

  const events = readHistories(historyFiles(workDir));
  const result = judge(scenario, options, events, drainReport, broker, failures);
  result.command = command;
  result.schedule = schedule;
  result.notes = notes;
  result.skipped = skipped;
  result.durationMs = Math.round(performance.now() - startedMs);
  if (options.resultsDir !== null) {
    mkdirSync(options.resultsDir, { recursive: true });
    const base = join(options.resultsDir, `${scenario.name}-${options.seed}${options.profile === 'short' && scenario.name !== 'short' ? '-short' : ''}`);
    writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
    if (options.keepHistory) writeHistory(`${base}.jsonl`, events);
  }
  disk?.unmount();
  if (result.passed || options.keepFailedWorkDir === false) await rm(workDir, { recursive: true, force: true });
  else {
    copyFileSync(broker.logPath, join(workDir, 'broker.log.kept'));
    log(`  work directory kept for inspection: ${workDir}`);
  }
  return result;
}

function withoutRate(settings: ProducerSettings): ProducerSettings {
  const { ratePerSec: _unlimited, ...rest } = settings;
  return rest;
}

/** Runs producers flat out (with consumers) for a while; returns half the confirmed rate per producer. */
async function calibrate(
  startClients: (producers: string[], consumers: string[], ratePerSec?: number | null) => Promise<ClientProcess>,
  producerIds: string[],
  consumerIds: string[],
  calibrationMs: number,
  workDir: string,
): Promise<number> {
  const startT = nowT();
  const child = await startClients(producerIds, consumerIds, null);
  await new Promise((resolve) => setTimeout(resolve, calibrationMs));
  await child.stop();
  const fromT = startT + CALIBRATION_WARMUP_MS;
  const toT = startT + calibrationMs;
  const confirmed = readHistories(historyFiles(workDir)).filter((event) => event.k === 'po' && event.t >= fromT && event.t < toT).length;
  const ratePerSec = confirmed / ((toT - fromT) / 1000);
  return ratePerSec / 2 / producerIds.length;
}

/** Writes the merged history as JSONL, a chunk at a time (it may exceed the longest string V8 allows). */
function writeHistory(path: string, events: readonly HistoryEvent[]): void {
  const CHUNK_EVENTS = 10_000;
  writeFileSync(path, '');
  for (let start = 0; start < events.length; start += CHUNK_EVENTS) {
    const lines = events.slice(start, start + CHUNK_EVENTS).map((event) => JSON.stringify(event) + '\n');
    appendFileSync(path, lines.join(''));
  }
}

function historyFiles(workDir: string): string[] {
  return readdirSync(workDir)
    .filter((name) => name.endsWith('.jsonl'))
    .map((name) => join(workDir, name));
}

function judge(
  scenario: Scenario,
  options: RunOptions,
  events: HistoryEvent[],
  drainReport: DrainReport | null,
  broker: BrokerProcess,
  failures: string[],
): RunResult {
  const checkResult = check(events, {
    durability: scenario.topic.durability,
    lossWindowMs: scenario.topic.syncIntervalMs ?? 0,
    ackTimeoutMs: { ...DEFAULT_CONSUMER, ...scenario.workload.consumer }.ackTimeoutMs,
    scanned: drainReport?.scanComplete ?? false,
  });
  if (drainReport === null) failures.push('no final drain (the run was aborted): the loss figures below are not meaningful');
  failures.push(...checkResult.failures);
  if (drainReport !== null && !drainReport.scanComplete) failures.push('the final scan did not reach the end of the topic');
  const findings: Findings[] = [];
  const inFlightMax = scenario.workload.consumers * DEFAULT_CONSUMER.prefetch;
  if (scenario.name === 'pause') {
    const windows = events.flatMap((e) =>
      e.k === 'pz' ? [{ name: `pause ${e.ms} ms`, from: e.t + e.ms, to: e.t + e.ms + STORM_WINDOW_MS }] : [],
    );
    findings.push(redeliveryStorms(events, windows, inFlightMax));
  }
  if (scenario.name === 'clock') {
    // A window ends at the next kill: what a restart redelivers is not the clock's doing.
    const kills = events.filter((e) => e.k === 'bk').map((e) => e.t);
    const windows = events.flatMap((e) =>
      e.k === 'cj'
        ? [{ name: `jump to ${e.offsetMs} ms`, from: e.t, to: Math.min(e.t + STORM_WINDOW_MS, kills.find((t) => t > e.t) ?? Infinity) }]
        : [],
    );
    findings.push(redeliveryStorms(events, windows, inFlightMax));
  }
  if (scenario.name === 'consumer-kill') findings.push(consumerKills(events, ACK_FLUSH_GRACE_MS));
  findings.push(deliveryCounts(events, { ...DEFAULT_CONSUMER, ...scenario.workload.consumer }.deliveriesMax));
  if (events.some((e) => e.k === 'ph' && e.name === 'disk-full')) findings.push(diskFull(events, RESUME_MS_MAX));
  const figures: Record<string, unknown> = {};
  for (const finding of findings) {
    Object.assign(figures, finding.figures);
    failures.push(...finding.failures);
  }
  if (scenario.calibrate) {
    figures.latency = latencySeries(events, options.profile === 'full' ? 60_000 : 15_000);
    figures.resources = resourceSeries(events);
  }
  const ready = broker.recoveries.map((r) => r.readyMs).sort((a, b) => a - b);
  const open = broker.recoveries.map((r) => r.openMs).sort((a, b) => a - b);
  const losses = broker.powerLosses;
  return {
    scenario: scenario.name,
    summary: scenario.summary,
    seed: options.seed,
    profile: options.profile,
    command: '',
    passed: failures.length === 0,
    failures,
    notes: [],
    skipped: [],
    schedule: [],
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, commit: gitCommit() },
    durationMs: 0,
    topic: scenario.topic,
    check: checkResult,
    recovery: {
      restarts: Math.max(0, broker.recoveries.length - 1),
      readyMsP50: percentile(ready, 0.5),
      readyMsMax: ready[ready.length - 1] ?? 0,
      openMsP50: percentile(open, 0.5),
      openMsMax: open[open.length - 1] ?? 0,
      truncatedBytes: broker.recoveries.reduce((sum, r) => sum + r.truncatedBytes, 0),
    },
    powerLoss:
      losses.length === 0
        ? null
        : {
            cuts: losses.length,
            bytesCut: losses.reduce((sum, r) => sum + r.bytesCut, 0),
            filesTorn: losses.reduce((sum, r) => sum + r.filesTorn, 0),
            filesLost: losses.reduce((sum, r) => sum + r.filesLost.length, 0),
            renamesUndone: losses.reduce((sum, r) => sum + r.renamesUndone.length, 0),
            datasyncMsMax: Math.round(Math.max(...losses.map((r) => r.datasyncMsMax)) * 10) / 10,
          },
    drain: drainReport,
    findings: figures,
    brokerWarnings: broker.logCounts(),
  };
}

function describeStep(step: FaultStep): string {
  const wait = `+${(step.waitMs / 1000).toFixed(1)}s`;
  switch (step.fault) {
    case 'pause':
      return `${wait} pause ${(step.ms / 1000).toFixed(1)}s`;
    case 'consumer-kill':
      return `${wait} kill consumer ${step.consumer}`;
    case 'clock-jump':
      return `${wait} clock ${step.offsetMs >= 0 ? '+' : ''}${Math.round(step.offsetMs / 1000)}s`;
    default:
      return `${wait} ${step.fault}`;
  }
}

/** The commit the broker ran from; `+dirty` when src/ had uncommitted changes (read-only git calls). */
function gitCommit(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' });
  if (head.status !== 0) return 'unknown';
  const status = spawnSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' });
  return head.stdout.trim() + (status.stdout.trim().length > 0 ? '+dirty' : '');
}
