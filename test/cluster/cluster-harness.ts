/**
 * A real cluster for tests: one etcd (test/cluster/etcd-server.ts) and N `ferry serve` processes
 * (bin/ferry.js over the compiled dist/, which `npm test` builds first) on 127.0.0.1, each with its
 * own data dir and fixed free ports, so a broker killed with SIGKILL, stopped with SIGSTOP or shut
 * down with SIGTERM comes back on the same address. Every signal goes to a PID this harness started;
 * whatever still runs when the test process exits is killed, and the temp dirs are removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { LAUNCHER } from '../../bench/checkout.js';
import { connect, type FerryClient } from '../../src/client/index.js';
import { warnIfStale } from '../e2e/broker-process.js';
import { EtcdCluster, type EtcdOptions } from './etcd-server.js';

const HOST = '127.0.0.1';
/** A broker that does not say `broker.listening` within this long (recovery included) has failed to start. */
const START_TIMEOUT_MS = 30_000;
/** A clean shutdown (handover included) must end within this long. */
const STOP_TIMEOUT_MS = 20_000;
/** Output kept per broker to explain a failure. */
const OUTPUT_TAIL_CHARS = 16_000;
/** The lease TTL brokers use in tests: how long a frozen broker holds its topics. */
export const TEST_LEASE_TTL_MS = 2_000;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface ClusterOptions {
  brokers?: number;
  /** Extra `--set key=value` settings for every broker. */
  settings?: Record<string, string | number>;
  /** Settings for one broker (by node id), over `settings`. */
  brokerSettings?: Record<string, Record<string, string | number>>;
  /** How etcd is started (TLS on its client port, say). */
  etcd?: EtcdOptions;
  /** Extra command-line flags for every broker (`--etcd-ca FILE`, …). */
  flags?: readonly string[];
}

export class ClusterBroker {
  private child: ChildProcess | null = null;
  private exited: Promise<number | null> = Promise.resolve(null);
  private outputTail = '';
  /** Characters of output seen since the first start (the tail keeps the last of them). */
  private outputChars = 0;
  private paused = false;

  constructor(
    readonly nodeId: string,
    readonly port: number,
    readonly httpPort: number,
    readonly dataDir: string,
    private readonly args: readonly string[],
  ) {}

  get address(): string {
    return `${HOST}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== null;
  }

  get output(): string {
    return this.outputTail;
  }

  /** A mark in the output, for `outputSince`. */
  get outputMark(): number {
    return this.outputChars;
  }

  /** What the broker wrote after `mark` (as far as the kept tail reaches). */
  outputSince(mark: number): string {
    const since = this.outputChars - mark;
    return since <= 0 ? '' : this.outputTail.slice(-since);
  }

  /** Starts `ferry serve` and resolves once it listens. */
  async start(): Promise<void> {
    if (this.child !== null) throw new Error(`${this.nodeId} is running`);
    const child = spawn(process.execPath, [LAUNCHER, ...this.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    running.add(child);
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        running.delete(child);
        if (this.child === child) this.child = null;
        resolve(code);
      }),
    );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.nodeId} did not listen within ${START_TIMEOUT_MS} ms:\n${this.outputTail}`)), START_TIMEOUT_MS);
      const onExit = (code: number | null): void => {
        clearTimeout(timer);
        reject(new Error(`${this.nodeId} exited (${code}) before listening:\n${this.outputTail}`));
      };
      child.once('exit', onExit);
      child.stderr!.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        this.outputChars += text.length;
        this.outputTail = (this.outputTail + text).slice(-OUTPUT_TAIL_CHARS);
        if (text.includes('"broker.listening"')) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve();
        }
      });
    });
  }

  /** SIGKILL; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.paused) this.resume();
    this.child?.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM (controlled shutdown); resolves with the exit code. */
  async stop(): Promise<number | null> {
    if (this.child === null) return null;
    if (this.paused) this.resume();
    const child = this.child;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** SIGHUP: the broker reads its users file and certificates again. */
  reload(): void {
    this.child?.kill('SIGHUP');
  }

  /** SIGSTOP: the process freezes with its sockets open. */
  pause(): void {
    this.child?.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    this.child?.kill('SIGCONT');
    this.paused = false;
  }
}

export class TestCluster {
  private constructor(
    readonly etcd: EtcdCluster,
    readonly brokers: ClusterBroker[],
    private readonly root: string,
  ) {}

  static async start(options: ClusterOptions = {}): Promise<TestCluster> {
    const etcd = await EtcdCluster.start(options.etcd);
    const root = mkdtempSync(join(tmpdir(), 'ferry-cluster-'));
    const brokers: ClusterBroker[] = [];
    const settings = { 'cluster.leaseTtlMs': TEST_LEASE_TTL_MS, ...options.settings };
    try {
      for (let i = 1; i <= (options.brokers ?? 3); i++) {
        const nodeId = `n${i}`;
        const port = await freePort();
        const httpPort = await freePort();
        const dataDir = join(root, nodeId);
        const args = [
          'serve',
          '--node-id',
          nodeId,
          '--etcd',
          etcd.endpoints.join(','),
          '--dir',
          dataDir,
          '--host',
          HOST,
          '--port',
          String(port),
          '--http-port',
          String(httpPort),
          '--log-format',
          'json',
          ...Object.entries({ ...settings, ...options.brokerSettings?.[nodeId] }).flatMap(([key, value]) => ['--set', `${key}=${value}`]),
          ...(options.flags ?? []),
        ];
        brokers.push(new ClusterBroker(nodeId, port, httpPort, dataDir, args));
      }
      await Promise.all(brokers.map((broker) => broker.start()));
    } catch (error) {
      await Promise.all(brokers.map((broker) => broker.kill()));
      await etcd.close();
      rmSync(root, { recursive: true, force: true });
      throw error;
    }
    return new TestCluster(etcd, brokers, root);
  }

  get servers(): string[] {
    return this.brokers.map((broker) => broker.address);
  }

  broker(nodeId: string): ClusterBroker {
    const found = this.brokers.find((broker) => broker.nodeId === nodeId);
    if (found === undefined) throw new Error(`no broker ${nodeId}`);
    return found;
  }

  /** Every broker's output tail, to explain a failure. */
  describe(): string {
    return this.brokers.map((broker) => `--- ${broker.nodeId} (${broker.address}) ---\n${broker.output}`).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all(this.brokers.map((broker) => broker.kill()));
    await this.etcd.close();
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** How long the shared client of `useTestCluster` waits for an answer: a failover fits in it. */
export const SUITE_REQUEST_TIMEOUT_MS = 15_000;

export interface SuiteOptions extends ClusterOptions {
  /** The `before` hook's limit: starting etcd and every broker. */
  startTimeoutMs: number;
  requestTimeoutMs?: number;
}

/** A test file's cluster and a client connected to every broker, started once for the file. */
export interface ClusterSuite {
  readonly cluster: TestCluster;
  readonly client: FerryClient;
  /** Partition 0 of `topic` as its leader describes it. */
  partition0(topic: string): Promise<Awaited<ReturnType<FerryClient['describeTopic']>>['partitions'][number]>;
  /** The leader of `topic`'s partition 0; fails the test when it has none. */
  leaderOf(topic: string): Promise<string>;
}

/**
 * Starts a TestCluster and a client of all its brokers before the file's tests (checking that
 * dist/ is built) and stops both after them: the setup every multi-broker test file shares.
 */
export function useTestCluster(options: SuiteOptions): ClusterSuite {
  let cluster: TestCluster | undefined;
  let client: FerryClient | undefined;
  const { startTimeoutMs, requestTimeoutMs = SUITE_REQUEST_TIMEOUT_MS, ...clusterOptions } = options;
  before(
    async () => {
      warnIfStale();
      cluster = await TestCluster.start(clusterOptions);
      client = await connect({ servers: cluster.servers, requestTimeoutMs });
    },
    { timeout: startTimeoutMs },
  );
  after(async () => {
    await client?.close().catch(() => undefined);
    await cluster?.stop();
  });
  const suite: ClusterSuite = {
    get cluster(): TestCluster {
      assert.ok(cluster !== undefined, 'the cluster starts in the before hook');
      return cluster;
    },
    get client(): FerryClient {
      assert.ok(client !== undefined, 'the client connects in the before hook');
      return client;
    },
    partition0: async (topic) => (await suite.client.describeTopic(topic)).partitions[0]!,
    leaderOf: async (topic) => {
      const leader = (await suite.partition0(topic)).leader;
      assert.ok(leader !== undefined && leader !== '', `${topic} has a leader`);
      return leader;
    },
  };
  return suite;
}
