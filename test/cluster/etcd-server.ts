/**
 * Real etcd for tests: one member or a cluster of several on 127.0.0.1, each with free client and
 * peer ports and a data dir in a fresh temp dir, raft timings short enough that elections take a
 * fraction of a second. A member can be stopped (SIGTERM, then SIGKILL after a bound), killed
 * (SIGKILL), paused and resumed (SIGSTOP / SIGCONT) and restarted on the same data dir and ports.
 * Every signal goes to the PID this harness started; whatever still runs when the test process
 * exits (or is interrupted) is killed, and the temp dirs are removed.
 *
 * etcd comes from Debian's `etcd-server` package (`apt-get install etcd-server`; .ci/run installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get, request, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const HOST = '127.0.0.1';
/** A member not healthy this long after its start has failed (it is usually under a second). */
const START_TIMEOUT_MS = 15_000;
const HEALTH_POLL_MS = 50;
/** Bound of one /health request: a healthy member answers in milliseconds. */
const HEALTH_REQUEST_TIMEOUT_MS = 1_000;
/** Time for a clean exit after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 5_000;
/** Raft timings: a heartbeat every 25 ms, an election after 250 ms of silence (etcd's defaults: 100 / 1000). */
const HEARTBEAT_MS = 25;
const ELECTION_TIMEOUT_MS = 250;
/** Output kept to explain a failed start. */
const OUTPUT_TAIL_CHARS = 4_000;
/** tmpfs when the machine has one: etcd fsyncs its WAL on every write, and the tests are about etcd's answers, not the disk. */
const FAST_TMP = '/dev/shm';

export interface EtcdOptions {
  /** Members of the cluster (default 1). */
  members?: number;
  /** etcd's --experimental-watch-progress-notify-interval, in ms (etcd's default: 10 minutes). */
  watchProgressNotifyMs?: number;
  /** Serve clients over TLS (`https://` endpoints); the peers still talk plaintext. */
  tls?: EtcdServerTls;
}

/** PEM files for etcd's client port. */
export interface EtcdServerTls {
  /** The server's certificate (for 127.0.0.1) and key. */
  certFile: string;
  keyFile: string;
  /** etcd's --trusted-ca-file: the CA client certificates must be signed by. */
  caFile: string;
  /** etcd's --client-cert-auth: refuse clients without such a certificate. */
  clientCertAuth: boolean;
  /** The certificate the harness's own health checks present (needed with clientCertAuth). */
  healthClient?: { certFile: string; keyFile: string };
}

export class EtcdMember {
  private child: ChildProcess | undefined = undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private paused = false;

  constructor(
    readonly name: string,
    readonly clientPort: number,
    readonly peerPort: number,
    private readonly dataDir: string,
    private readonly clusterArgs: readonly string[],
    private readonly tls?: EtcdServerTls,
  ) {}

  /** The client URL, for EtcdClient's endpoints. */
  get endpoint(): string {
    return `${this.tls === undefined ? 'http' : 'https'}://${HOST}:${this.clientPort}`;
  }

  get peerUrl(): string {
    return `http://${HOST}:${this.peerPort}`;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined;
  }

  get outputTail(): string {
    return this.output.slice(-OUTPUT_TAIL_CHARS);
  }

  /** Starts the process (on the existing data dir, if any); `waitHealthy()` waits for it to serve. */
  launch(): void {
    if (this.running) throw new Error(`etcd ${this.name} is already running (pid ${this.pid})`);
    const args = [
      '--name', this.name,
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.endpoint,
      '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', this.peerUrl,
      '--initial-advertise-peer-urls', this.peerUrl,
      '--heartbeat-interval', String(HEARTBEAT_MS),
      '--election-timeout', String(ELECTION_TIMEOUT_MS),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--log-level', 'warn',
      ...(this.tls === undefined ? [] : tlsArgs(this.tls)),
      ...this.clusterArgs,
    ];
    const child = spawn('etcd', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    if (child.pid === undefined) {
      child.once('error', () => {}); // reported here, synchronously
      throw new Error('could not start etcd: it is not on the PATH (Debian: apt-get install etcd-server)');
    }
    this.child = child;
    this.paused = false;
    this.output = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.output = (this.output + chunk).slice(-OUTPUT_TAIL_CHARS);
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
    });
    live.add(this);
  }

  /** Resolves once /health says true; fails with etcd's output if it exits or takes too long. */
  async waitHealthy(timeoutMs = START_TIMEOUT_MS): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      if (!this.running) throw new Error(`etcd ${this.name} exited before it was healthy; its output:\n${this.outputTail}`);
      if (await isHealthy(this.endpoint, this.tls)) return;
      await sleep(HEALTH_POLL_MS);
    }
    throw new Error(`etcd ${this.name} (pid ${this.pid}) not healthy within ${timeoutMs} ms; its output:\n${this.outputTail}`);
  }

  /** SIGTERM (after SIGCONT if paused), then SIGKILL after STOP_GRACE_MS; keeps the data dir. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.resume();
    this.child!.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), STOP_GRACE_MS);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL: no clean shutdown; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  /** SIGSTOP: the process keeps its sockets but answers nothing until resumed. */
  pause(): void {
    if (!this.running || this.paused) return;
    this.child!.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (!this.running || !this.paused) return;
    this.child!.kill('SIGCONT');
    this.paused = false;
  }

  /** Stops the member if it runs, starts it again on the same data dir and ports, waits until healthy. */
  async restart(): Promise<void> {
    await this.stop();
    this.launch();
    await this.waitHealthy();
  }

  /** Last resort at exit: synchronous, so it works in process.on('exit'). */
  killNow(): void {
    if (this.running) this.child!.kill('SIGKILL');
  }
}

export class EtcdCluster {
  private removed = false;

  private constructor(
    readonly members: readonly EtcdMember[],
    private readonly rootDir: string,
  ) {}

  /** Starts `members` (default 1) members and resolves once every one is healthy. */
  static async start(options: EtcdOptions = {}): Promise<EtcdCluster> {
    const size = options.members ?? 1;
    const ports = await freePorts(2 * size);
    const rootDir = mkdtempSync(join(existsSync(FAST_TMP) ? FAST_TMP : tmpdir(), 'ferry-etcd-'));
    liveDirs.add(rootDir);
    const names = Array.from({ length: size }, (_, i) => `m${i + 1}`);
    const initialCluster = names.map((name, i) => `${name}=http://${HOST}:${ports[2 * i + 1]}`).join(',');
    const clusterArgs = [
      '--initial-cluster', initialCluster,
      '--initial-cluster-token', `ferry-test-${process.pid}-${ports[0]}`,
      '--initial-cluster-state', 'new',
      ...(options.watchProgressNotifyMs === undefined ? [] : ['--experimental-watch-progress-notify-interval', `${options.watchProgressNotifyMs}ms`]),
    ];
    const members = names.map((name, i) => new EtcdMember(name, ports[2 * i]!, ports[2 * i + 1]!, join(rootDir, name), clusterArgs, options.tls));
    const cluster = new EtcdCluster(members, rootDir);
    try {
      for (const member of members) member.launch();
      await Promise.all(members.map((member) => member.waitHealthy()));
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  get endpoints(): string[] {
    return this.members.map((member) => member.endpoint);
  }

  /** The first member's endpoint (the only one of a one-member cluster). */
  get endpoint(): string {
    return this.members[0]!.endpoint;
  }

  get member(): EtcdMember {
    return this.members[0]!;
  }

  /** The member raft has elected leader, as the running members report it; undefined while there is none. */
  async leader(): Promise<EtcdMember | undefined> {
    const statuses = await Promise.all(this.members.map((member) => (member.running ? memberStatus(member.endpoint) : undefined)));
    const leaderId = statuses.find((status) => status !== undefined && status.leader !== undefined)?.leader;
    const index = statuses.findIndex((status) => status?.memberId === leaderId);
    return index < 0 ? undefined : this.members[index];
  }

  /** Stops every member and removes the data; safe to call twice. */
  async close(): Promise<void> {
    await Promise.all(this.members.map((member) => member.stop()));
    for (const member of this.members) live.delete(member);
    if (!this.removed) {
      this.removed = true;
      rmSync(this.rootDir, { recursive: true, force: true });
      liveDirs.delete(this.rootDir);
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Starts one etcd member; `cluster.endpoint`, `cluster.member.kill()`, `cluster.close()`. */
export function startEtcd(options: EtcdOptions = {}): Promise<EtcdCluster> {
  return EtcdCluster.start(options);
}

/** `count` distinct ports free a moment ago: all are held open together so none repeats. */
async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, HOST, resolve);
      });
    }
    return servers.map((server) => (server.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

/** A member's own id and the leader it knows, from /v3/maintenance/status; undefined if it does not answer. */
function memberStatus(endpoint: string): Promise<{ memberId: string; leader: string | undefined } | undefined> {
  return new Promise((resolve) => {
    const req = request(`${endpoint}/v3/maintenance/status`, { method: 'POST', agent: false, timeout: HEALTH_REQUEST_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        try {
          const status = JSON.parse(body) as { header?: { member_id?: string }; leader?: string };
          resolve(status.header?.member_id === undefined ? undefined : { memberId: status.header.member_id, leader: status.leader });
        } catch {
          resolve(undefined);
        }
      });
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end('{}');
  });
}

function tlsArgs(tls: EtcdServerTls): string[] {
  return ['--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.caFile, ...(tls.clientCertAuth ? ['--client-cert-auth'] : [])];
}

function isHealthy(endpoint: string, tls: EtcdServerTls | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const options = { agent: false as const, timeout: HEALTH_REQUEST_TIMEOUT_MS };
    const onResponse = (res: IncomingMessage): void => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"health":"true"')));
      res.on('error', () => resolve(false));
    };
    const client = tls?.healthClient;
    const req =
      tls === undefined
        ? get(`${endpoint}/health`, options, onResponse)
        : httpsGet(`${endpoint}/health`, { ...options, ca: readFileSync(tls.caFile), ...(client === undefined ? {} : { cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) }) }, onResponse);
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Members started by this process and temp dirs not yet removed: cleaned up at exit whatever happens. */
const live = new Set<EtcdMember>();
const liveDirs = new Set<string>();

function cleanUpNow(): void {
  for (const member of live) member.killNow();
  live.clear();
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  liveDirs.clear();
}

process.on('exit', cleanUpNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, function onSignal() {
    cleanUpNow();
    // Die of the same signal, as the process would have without this handler.
    process.kill(process.pid, signal);
  });
}
