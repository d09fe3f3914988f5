/**
 * The brokers of a cluster chaos run (cluster-broker-process.ts), across their incarnations, and the
 * faults done to their processes and files: SIGKILL, SIGSTOP, an emulated power loss (power-loss.ts),
 * a bit flipped in a segment while the broker is down, a wall-clock step. Every fault is recorded in
 * the harness history as it is injected, with the broker's node id (`n`).
 */
import { existsSync, openSync, readdirSync, readSync, writeSync, closeSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SYNC_LOG_ENV } from '../../src/platform/fault-fs.js';
import { LOG_SUFFIX } from '../../src/storage/segment.js';
import { randomInt } from '../sim/random.js';
import type { ClusterBrokerArgs } from './cluster-broker-process.js';
import type { FaultNetwork } from './fault-proxy.js';
import { nowT, type HistoryWriter } from './history.js';
import { CLOCK_FILE_ENV } from './jump-clock.js';
import { cutPower, type PowerLossReport } from './power-loss.js';
import { start, tail, waitExit, type Started } from './processes.js';

const FIXTURE = fileURLToPath(new URL('./cluster-broker-process.ts', import.meta.url));

export interface ChaosBrokerOptions extends ClusterBrokerArgs {
  workDir: string;
  history: HistoryWriter;
  network: FaultNetwork;
  /** Record what is durable, so that a kill can be followed by a power loss. */
  recordSyncs: boolean;
}

export interface BitFlip {
  file: string;
  position: number;
  bit: number;
}

export class ChaosBroker {
  private current: Started | null = null;
  private incarnation = 0;
  private syncLogPath = '';
  private paused = false;
  readonly recoveries: Array<{ readyMs: number; openMs: number; truncatedBytes: number }> = [];
  readonly powerLosses: PowerLossReport[] = [];
  readonly logPath: string;
  private readonly clockFile: string;

  constructor(private readonly options: ChaosBrokerOptions) {
    this.logPath = join(options.workDir, `broker-${options.nodeId}.log`);
    this.clockFile = join(options.workDir, `clock-${options.nodeId}`);
    writeFileSync(this.clockFile, '0');
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  /** The address the others and the clients dial: the broker's proxy. */
  get advertise(): string {
    return this.options.advertise;
  }

  get dataDir(): string {
    return this.options.dir;
  }

  get running(): boolean {
    return this.current !== null;
  }

  /** Starts an incarnation and resolves once it listens and has joined the cluster. */
  async start(): Promise<void> {
    if (this.current !== null) throw new Error(`${this.nodeId} is running`);
    this.incarnation++;
    const env: NodeJS.ProcessEnv = { ...process.env, [CLOCK_FILE_ENV]: this.clockFile };
    delete env[SYNC_LOG_ENV];
    if (this.options.recordSyncs) {
      this.syncLogPath = join(this.options.workDir, `sync-${this.nodeId}-${this.incarnation}.log`);
      env[SYNC_LOG_ENV] = this.syncLogPath;
    }
    const { workDir: _w, history: _h, network: _n, recordSyncs: _r, ...args } = this.options;
    await this.options.network.destinationDown(this.nodeId, false);
    const startedMs = performance.now();
    const started = start([FIXTURE, JSON.stringify(args)], env, this.logPath);
    this.current = started;
    void started.exited.then(() => {
      if (this.current === started) this.current = null;
    });
    const ready = await started.ready;
    const readyMs = Math.round(performance.now() - startedMs);
    const openMs = Number(ready.openMs);
    this.recoveries.push({ readyMs, openMs, truncatedBytes: Number(ready.truncatedBytes) });
    this.options.history.record({ k: 'bs', t: Number(ready.listenT ?? nowT()), recoveryMs: readyMs, openMs, n: this.nodeId });
  }

  /** SIGKILL; with `powerLoss`, then cuts the data directory back to what was durable. */
  async kill(powerLoss: boolean, random: () => number): Promise<PowerLossReport | null> {
    const started = this.current;
    if (started === null) throw new Error(`${this.nodeId} is not running`);
    const at = nowT();
    this.options.history.record({ k: 'bk', t: at, n: this.nodeId });
    this.options.history.flush();
    started.child.kill('SIGKILL');
    if (this.paused) started.child.kill('SIGCONT');
    this.paused = false;
    await waitExit(started, `${this.nodeId} (SIGKILL)`);
    this.current = null;
    await this.options.network.destinationDown(this.nodeId, true);
    if (!powerLoss) return null;
    if (!this.options.recordSyncs) throw new Error('a power loss needs recordSyncs');
    const report = cutPower(this.dataDir, this.syncLogPath, random);
    this.powerLosses.push(report);
    this.options.history.record({
      k: 'pl',
      t: nowT(),
      at,
      bytesCut: report.bytesCut,
      filesTorn: report.filesTorn,
      datasyncMsMax: Math.round(report.datasyncMsMax * 10) / 10,
      n: this.nodeId,
    });
    return report;
  }

  /** SIGSTOP for `ms`, then SIGCONT. */
  async pause(ms: number): Promise<void> {
    const child = this.current?.child;
    if (child === undefined) throw new Error(`${this.nodeId} is not running`);
    this.options.history.record({ k: 'pz', t: nowT(), ms, n: this.nodeId });
    child.kill('SIGSTOP');
    this.paused = true;
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
    } finally {
      if (this.paused) child.kill('SIGCONT');
      this.paused = false;
    }
  }

  /** Steps the broker's wall clock to `offsetMs` ahead of real time (negative: behind). */
  stepClock(offsetMs: number): void {
    writeFileSync(this.clockFile, String(offsetMs));
    this.current?.child.kill('SIGUSR2');
    this.options.history.record({ k: 'cj', t: nowT(), offsetMs, n: this.nodeId });
  }

  /**
   * Flips one bit of one segment file of the topic's partitions (the broker must be down): a byte
   * of a record batch, anywhere in the file, as a disk that returns a wrong sector would.
   */
  flipBit(topic: string, random: () => number): BitFlip | null {
    if (this.current !== null) throw new Error(`${this.nodeId} is running: flip bits only while it is down`);
    const files = segmentFiles(join(this.dataDir, 'topics', topic, 'partitions')).filter((path) => statSync(path).size > 0);
    if (files.length === 0) return null;
    const file = files[randomInt(random, 0, files.length - 1)]!;
    const position = randomInt(random, 0, statSync(file).size - 1);
    const bit = randomInt(random, 0, 7);
    const fd = openSync(file, 'r+');
    try {
      const byte = Buffer.alloc(1);
      readSync(fd, byte, 0, 1, position);
      byte[0] = byte[0]! ^ (1 << bit);
      writeSync(fd, byte, 0, 1, position);
    } finally {
      closeSync(fd);
    }
    const flip = { file: relative(this.dataDir, file), position, bit };
    this.options.history.record({ k: 'bf', t: nowT(), n: this.nodeId, ...flip });
    return flip;
  }

  /** SIGTERM (SIGCONT first if paused) and wait: a clean shutdown hands the topics over. */
  async stop(): Promise<number | null> {
    const started = this.current;
    if (started === null) return 0;
    if (this.paused) started.child.kill('SIGCONT');
    started.child.kill('SIGTERM');
    const { code } = await waitExit(started, `${this.nodeId} (SIGTERM)`);
    this.current = null;
    await this.options.network.destinationDown(this.nodeId, true);
    return code;
  }

  /** Last resort when a run fails: no process is left behind. */
  killNow(): void {
    this.current?.child.kill('SIGKILL');
  }

  /** Warnings and errors the broker logged, counted by event. */
  logCounts(): Record<string, number> {
    const counts: Record<string, number> = {};
    if (!existsSync(this.logPath)) return counts;
    for (const line of tail(this.logPath, Number.MAX_SAFE_INTEGER).split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const entry = JSON.parse(line) as { level?: string | number; event?: string; msg?: string };
        const level = entry.level === 'warn' || entry.level === 40 ? 'warn' : entry.level === 'error' || entry.level === 50 ? 'error' : null;
        const event = entry.event ?? entry.msg;
        if (level !== null) counts[`${level}:${event}`] = (counts[`${level}:${event}`] ?? 0) + 1;
      } catch {
        // A line cut by a kill.
      }
    }
    return counts;
  }
}

function segmentFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...segmentFiles(path));
    else if (name.endsWith(LOG_SUFFIX)) found.push(path);
  }
  return found;
}
