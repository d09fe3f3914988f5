/**
 * The processes of a chaos run, as the harness drives them: the broker (test/chaos/broker-process.ts)
 * and the client processes (test/chaos/client-process.ts). Each is started with tsx, reports
 * readiness with one JSON line on stdout, and is stopped by a signal. Every fault injected here is
 * recorded in the harness history at the moment it is injected.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, lstatSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { SYNC_LOG_ENV } from '../../src/platform/fault-fs.js';
import { lockDir } from '../../src/platform/dir-lock.js';
import { isFerryError } from '../../src/errors.js';
import { CLOCK_FILE_ENV } from './jump-clock.js';
import type { ClientProcessConfig } from './workload.js';
import { nowT, type HistoryWriter } from './history.js';
import { cutPower, type PowerLossReport } from './power-loss.js';

const BROKER_FIXTURE = fileURLToPath(new URL('./broker-process.ts', import.meta.url));
const CLIENT_FIXTURE = fileURLToPath(new URL('./client-process.ts', import.meta.url));
/** Node + tsx start-up plus recovery of a few hundred MB on a loaded 2-core machine. */
const READY_TIMEOUT_MS = 60_000;
/** A clean shutdown (broker close, or clients finishing their retries) must not take longer. */
const EXIT_TIMEOUT_MS = 60_000;

/**
 * Every incarnation must hold its data directory, even right after its predecessor was SIGKILLed:
 * a second opener (here, the harness) is refused and told the broker's pid.
 */
async function assertHoldsDataDir(dataDir: string, pid: number | undefined): Promise<void> {
  try {
    const lock = await lockDir(dataDir);
    await lock.release();
  } catch (error) {
    if (isFerryError(error, 'DATA_DIR_LOCKED') && error.detail?.pid === pid) return;
    throw new Error(`the broker (pid ${pid}) does not hold ${dataDir} as expected`, { cause: error });
  }
  throw new Error(`the broker (pid ${pid}) listens without holding the lock on ${dataDir}`);
}

/** A port that was free a moment ago: the broker must come back on the same one after each kill. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface Started {
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  ready: Promise<Record<string, unknown>>;
}

export function start(args: string[], env: NodeJS.ProcessEnv, logPath: string): Started {
  const logFd = openSync(logPath, 'a');
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', logFd], env });
  closeSync(logFd);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`${args[0]} not ready after ${READY_TIMEOUT_MS} ms (log: ${logPath})`)), READY_TIMEOUT_MS);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line) as Record<string, unknown>);
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited (code ${code}, signal ${signal}) before ready; log: ${logPath}\n${tail(logPath)}`));
    });
  });
  ready.catch(() => undefined);
  return { child, exited, ready };
}

export async function waitExit(started: Started, what: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not exit within ${EXIT_TIMEOUT_MS} ms`)), EXIT_TIMEOUT_MS);
  });
  try {
    return await Promise.race([started.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function tail(path: string, lines = 15): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
}

export interface BrokerOptions {
  dataDir: string;
  workDir: string;
  port: number;
  history: HistoryWriter;
  /** Record what is durable, so that a kill can be followed by a power loss. */
  recordSyncs: boolean;
  /** File holding the broker's wall-clock offset (scenario 7). */
  clockFile?: string;
}

/** The broker process across its incarnations. */
export class BrokerProcess {
  private current: Started | null = null;
  private incarnation = 0;
  private syncLogPath = '';
  readonly recoveries: Array<{ readyMs: number; openMs: number; truncatedBytes: number }> = [];
  readonly powerLosses: PowerLossReport[] = [];
  readonly logPath: string;

  constructor(private readonly options: BrokerOptions) {
    this.logPath = join(options.workDir, 'broker.log');
  }

  get pid(): number | undefined {
    return this.current?.child.pid;
  }

  get running(): boolean {
    return this.current !== null;
  }

  /** Starts an incarnation and resolves once it listens (recovery done). */
  async start(): Promise<void> {
    this.incarnation++;
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env[SYNC_LOG_ENV];
    if (this.options.recordSyncs) {
      this.syncLogPath = join(this.options.workDir, `sync-${this.incarnation}.log`);
      env[SYNC_LOG_ENV] = this.syncLogPath;
    }
    if (this.options.clockFile !== undefined) env[CLOCK_FILE_ENV] = this.options.clockFile;
    const startedMs = performance.now();
    const started = start([BROKER_FIXTURE, this.options.dataDir, String(this.options.port)], env, this.logPath);
    this.current = started;
    const ready = await started.ready;
    const readyMs = Math.round(performance.now() - startedMs);
    const openMs = Number(ready.openMs);
    this.recoveries.push({ readyMs, openMs, truncatedBytes: Number(ready.truncatedBytes) });
    this.options.history.record({ k: 'bs', t: Number(ready.listenT ?? nowT()), recoveryMs: readyMs, openMs });
    await assertHoldsDataDir(this.options.dataDir, started.child.pid);
  }

  /** SIGKILL; with `powerLoss`, then cuts the data directory back to what was durable. */
  async kill(powerLoss: boolean, random: () => number): Promise<PowerLossReport | null> {
    const started = this.current;
    if (started === null) throw new Error('the broker is not running');
    const at = nowT();
    this.options.history.record({ k: 'bk', t: at });
    this.options.history.flush();
    started.child.kill('SIGKILL');
    await waitExit(started, 'the killed broker');
    this.current = null;
    if (!powerLoss) return null;
    if (!this.options.recordSyncs) throw new Error('a power loss needs recordSyncs');
    const report = cutPower(this.options.dataDir, this.syncLogPath, random);
    this.powerLosses.push(report);
    this.options.history.record({
      k: 'pl',
      t: nowT(),
      at,
      bytesCut: report.bytesCut,
      filesTorn: report.filesTorn,
      datasyncMsMax: Math.round(report.datasyncMsMax * 10) / 10,
    });
    return report;
  }

  /** SIGSTOP for `ms`, then SIGCONT. */
  async pause(ms: number): Promise<void> {
    const child = this.current?.child;
    if (child === undefined) throw new Error('the broker is not running');
    this.options.history.record({ k: 'pz', t: nowT(), ms });
    child.kill('SIGSTOP');
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
    } finally {
      child.kill('SIGCONT');
    }
  }

  /** Tells the broker to re-read its clock file (the harness has just changed it). */
  signalClock(): void {
    this.current?.child.kill('SIGUSR2');
  }

  /** SIGTERM and wait: a clean shutdown must succeed and exit 0. */
  async stop(): Promise<number | null> {
    const started = this.current;
    if (started === null) return 0;
    started.child.kill('SIGTERM');
    const { code } = await waitExit(started, 'the broker (SIGTERM)');
    this.current = null;
    return code;
  }

  /** Resident memory, open descriptors and bytes on disk: the soak's health figures. */
  sample(): { rssBytes: number; openFiles: number; diskBytes: number } | null {
    const pid = this.pid;
    if (pid === undefined) return null;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return { rssBytes: rssKb * 1024, openFiles: readdirSync(`/proc/${pid}/fd`).length, diskBytes: treeBytes(this.options.dataDir) };
    } catch {
      return null;
    }
  }

  /** Warnings and errors the broker logged, counted by event. */
  logCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    if (!existsSync(this.logPath)) return counts;
    for (const line of readFileSync(this.logPath, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { level?: string; event?: string };
        if (entry.level === 'warn' || entry.level === 'error') counts[`${entry.level}:${entry.event}`] = (counts[`${entry.level}:${entry.event}`] ?? 0) + 1;
      } catch {
        // A line cut by a kill.
      }
    }
    return counts;
  }

  /** Last lines of the broker log, for reports of a failed recovery. */
  tail(lines = 15): string {
    return tail(this.logPath, lines);
  }
}

export function treeBytes(path: string): number {
  if (!existsSync(path)) return 0;
  const stats = lstatSync(path);
  if (!stats.isDirectory()) return stats.size;
  let total = 0;
  for (const name of readdirSync(path)) total += treeBytes(join(path, name));
  return total;
}

/** One client process (producers and/or consumers). */
export class ClientProcess {
  private readonly started: Started;

  constructor(
    readonly config: ClientProcessConfig,
    logPath: string,
  ) {
    this.started = start([CLIENT_FIXTURE, JSON.stringify(config)], { ...process.env }, logPath);
  }

  ready(): Promise<unknown> {
    return this.started.ready;
  }

  /** SIGTERM: finish, flush, exit. */
  async stop(): Promise<void> {
    this.started.child.kill('SIGTERM');
    const { code, signal } = await waitExit(this.started, `client process ${this.config.historyPath}`);
    if (code !== 0 && signal !== 'SIGKILL') throw new Error(`client process exited with code ${code} signal ${signal}`);
  }

  async kill(): Promise<void> {
    this.started.child.kill('SIGKILL');
    await waitExit(this.started, 'a killed client process');
  }
}
