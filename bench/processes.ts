/**
 * Broker servers as child processes of the benchmark: a free loopback port, a temp data dir, a wait
 * until the port accepts connections, the peak RSS read from /proc, and a stop that signals exactly
 * the PIDs this harness started (never a process found by name). The registry also kills whatever
 * is still running when the harness exits, so an error or Ctrl-C leaves no server behind.
 *
 * Clusters need a little more: a node restarted after a kill keeps its port and its data dir (the
 * spec names them, and the dir then belongs to a registry temp dir, removed with it), extra
 * environment, a longer start for slow starters (an Erlang VM), and signals other than a stop
 * (SIGKILL, SIGSTOP, SIGCONT) sent to exactly one server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LOOPBACK_HOST = '127.0.0.1';
/** A broker that does not listen within this long is reported as failed to start (unless its spec says). */
const READY_TIMEOUT_MS = 15_000;
const READY_POLL_MS = 50;
/** Time for a graceful stop (Redis rewrites nothing on SIGTERM with AOF, NATS flushes its store). */
const STOP_GRACE_MS = 10_000;
/**
 * Tail of the server's output kept to explain a failed start and to report a run's warnings: a
 * whole benchmark run of Ferry logs about 11 KiB (a line per connection opened and closed).
 */
const OUTPUT_TAIL_BYTES = 64 * 1024;

export interface ServerSpec {
  /** Short name used for the temp dir prefix and in messages. */
  name: string;
  command: string;
  /** Builds the argument list once the port and data dir are known. */
  args: (port: number, dataDir: string) => string[];
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** A port chosen by the caller (a node restarted on its address); a free one otherwise. */
  port?: number;
  /**
   * A data dir the caller made (inside a registry temp dir) and keeps across restarts; stopping
   * the server leaves it. Otherwise a fresh temp dir, removed when the server stops.
   */
  dataDir?: string;
  /** How long the server may take to listen; READY_TIMEOUT_MS otherwise. */
  readyTimeoutMs?: number;
}

export class ServerProcess {
  private outputTail = '';
  private exited = false;
  private exitDescription = '';
  private frozen = false;
  private readonly exitPromise: Promise<void>;

  constructor(
    readonly name: string,
    readonly port: number,
    readonly dataDir: string,
    private readonly child: ChildProcess,
    /** false: the dir belongs to the caller (a cluster node's, kept across restarts). */
    private readonly ownsDataDir = true,
  ) {
    const keep = (chunk: Buffer): void => {
      this.outputTail = (this.outputTail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exited = true;
        this.exitDescription = signal === null ? `exit code ${code}` : `signal ${signal}`;
        resolve();
      });
    });
  }

  get pid(): number {
    // spawn() failing synchronously leaves no pid; startServer() rejects before building one then.
    return this.child.pid!;
  }

  get running(): boolean {
    return !this.exited;
  }

  /** Stopped by SIGSTOP and not yet continued: it answers nothing. */
  get isFrozen(): boolean {
    return this.frozen && !this.exited;
  }

  /** What the server printed last, for error messages. */
  get output(): string {
    return this.outputTail.trim();
  }

  get exitReason(): string {
    return this.exitDescription;
  }

  /** VmHWM: the largest resident set the process has had since it started, in bytes. */
  peakRssBytes(): number {
    const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
    if (match === null) throw new Error(`no VmHWM in /proc/${this.pid}/status`);
    return Number(match[1]) * 1024;
  }

  /**
   * Sends `signal` to this server's PID (a failover benchmark's SIGKILL, SIGSTOP or SIGCONT);
   * nothing once it has exited.
   */
  signal(signal: NodeJS.Signals): void {
    if (this.exited) return;
    this.child.kill(signal);
    if (signal === 'SIGSTOP') this.frozen = true;
    if (signal === 'SIGCONT') this.frozen = false;
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves once the process has exited. */
  async stop(): Promise<void> {
    if (!this.exited) {
      this.child.kill('SIGTERM');
      // A frozen process acts on nothing but SIGKILL and SIGCONT: let it see the SIGTERM.
      if (this.frozen) this.signal('SIGCONT');
      const timer = setTimeout(() => {
        if (!this.exited) this.child.kill('SIGKILL');
      }, STOP_GRACE_MS);
      await this.exitPromise;
      clearTimeout(timer);
    }
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  /** Last resort at harness exit: synchronous, so it works inside process.on('exit'). */
  killNow(): void {
    if (!this.exited) this.child.kill('SIGKILL');
    if (this.ownsDataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  waitForExit(): Promise<void> {
    return this.exitPromise;
  }
}

/** A port the kernel just handed out on the loopback address; free unless someone races us to it. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, LOOPBACK_HOST, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('listen on port 0 returned no port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Whether something accepts a TCP connection on the loopback `port` now. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: LOOPBACK_HOST, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Every server this harness started, so that all of them (and only them) are stopped. */
export class ProcessRegistry {
  private readonly servers = new Set<ServerProcess>();
  private readonly tempDirs = new Set<string>();
  private readonly onExit = (): void => this.killAllNow();

  constructor() {
    process.on('exit', this.onExit);
  }

  /** A temp dir for a cluster's node dirs and config files: removed by removeTempDir, stopAll or exit. */
  makeTempDir(name: string): string {
    const dir = mkdtempSync(join(tmpdir(), `ferry-bench-${name}-`));
    this.tempDirs.add(dir);
    return dir;
  }

  removeTempDir(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
    this.tempDirs.delete(dir);
  }

  async start(spec: ServerSpec): Promise<ServerProcess> {
    const port = spec.port ?? (await freePort());
    const dataDir = spec.dataDir ?? mkdtempSync(join(tmpdir(), `ferry-bench-${spec.name}-`));
    const ownsDataDir = spec.dataDir === undefined;
    const child = spawn(spec.command, spec.args(port, dataDir), {
      cwd: spec.cwd,
      env: spec.env === undefined ? process.env : { ...process.env, ...spec.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    if (child.pid === undefined) {
      if (ownsDataDir) rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`${spec.name}: could not start ${spec.command}: ${(await spawnError).message}`);
    }
    const server = new ServerProcess(spec.name, port, dataDir, child, ownsDataDir);
    this.servers.add(server);
    try {
      await this.waitUntilListening(server, spec.readyTimeoutMs ?? READY_TIMEOUT_MS);
    } catch (error) {
      await this.stop(server);
      throw error;
    }
    return server;
  }

  private async waitUntilListening(server: ServerProcess, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!server.running) {
        throw new Error(
          `${server.name} exited before listening (${server.exitReason})` +
            (server.output === '' ? '' : `; its output:\n${server.output}`),
        );
      }
      if (await canConnect(server.port)) return;
      await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
    }
    throw new Error(`${server.name} (pid ${server.pid}) did not listen on port ${server.port} within ${timeoutMs} ms`);
  }

  async stop(server: ServerProcess): Promise<void> {
    await server.stop();
    this.servers.delete(server);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.servers].map((server) => this.stop(server)));
    for (const dir of [...this.tempDirs]) this.removeTempDir(dir);
  }

  killAllNow(): void {
    for (const server of this.servers) server.killNow();
    this.servers.clear();
    for (const dir of [...this.tempDirs]) this.removeTempDir(dir);
  }

  /** Stop listening for process exit (the registry is done). */
  dispose(): void {
    process.off('exit', this.onExit);
  }
}
