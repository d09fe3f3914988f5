/**
 * Ferry as measured by the benchmark: the real broker process (`node bin/ferry.js serve`) from the
 * compiled dist/, driven by Ferry's own client over TCP. Topics use `durability: 'always'`, so a
 * publish is confirmed only after the fdatasync that covers it, as Redis is run with
 * `appendfsync always`.
 *
 * The client is loaded at run time, not imported statically, so that the peers can be measured and
 * the harness type-checked while Ferry's client is still being written; the shape used here is the
 * client's documented contract, checked when the module is loaded.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BUILT_CLI, LAUNCHER, launcherNodeFlags, newestSourceMs, REPO_ROOT } from '../checkout.js';
import { LOOPBACK_HOST, type ProcessRegistry } from '../processes.js';
import {
  PREFETCH_MESSAGES,
  type BrokerConnection,
  type BrokerSubscription,
  type BrokerSystem,
  type MessageHandler,
  type StartedBroker,
} from '../workloads.js';

const SOURCE_DIR = join(REPO_ROOT, 'src');
const CLIENT_SOURCE = join(SOURCE_DIR, 'client', 'index.ts');
/** The compiled files the benchmark runs; `npm run build` writes them. */
const BUILT_CLIENT = join(REPO_ROOT, 'dist', 'src', 'client', 'index.js');
/** Lines of failed build output worth quoting. */
const BUILD_OUTPUT_LINES_MAX = 30;
/** A subscription's message iterator must end this soon after close(), or the run fails. */
const ITERATOR_END_WAIT_MS = 5_000;

// ---- The client contract this adapter relies on ------------------------------------------------

export interface FerryTopicOptions {
  durability: 'always';
  /** Cluster topics (ferry-cluster): copies of each partition, and how many must hold a record before it commits. */
  replicas?: number;
  minInSync?: number;
}

interface FerryMessage {
  value: Buffer;
  ack(): Promise<void>;
}

interface FerrySubscription extends AsyncIterable<FerryMessage> {
  close(): Promise<void>;
}

export interface FerryClient {
  createTopic(name: string, options: FerryTopicOptions): Promise<unknown>;
  publish(topic: string, value: Buffer): Promise<{ offset: number }>;
  subscribe(topic: string, options: { group: string; from: 'earliest'; prefetch: number }): Promise<FerrySubscription>;
  close(): Promise<void>;
}

export type FerryConnectOptions = { host: string; port: number; reconnect?: boolean } | { servers: string[]; reconnect?: boolean };

export interface FerryClientModule {
  connect(options: FerryConnectOptions): Promise<FerryClient>;
}

/** Ferry is not runnable yet (no build, no client, no server): the message says what is missing. */
export class FerryUnavailableError extends Error {
  override readonly name = 'FerryUnavailableError';
}

// ---- Build check -----------------------------------------------------------------------------

function builtIsFresh(): boolean {
  if (!existsSync(BUILT_CLIENT) || !existsSync(BUILT_CLI)) return false;
  const builtMs = Math.min(statSync(BUILT_CLIENT).mtimeMs, statSync(BUILT_CLI).mtimeMs);
  return builtMs >= newestSourceMs(SOURCE_DIR);
}

/** Runs `npm run build` unless dist/ is newer than every file in src/ (or `build` is false). */
export function ensureBuilt(buildIfStale: boolean): void {
  if (!existsSync(CLIENT_SOURCE)) {
    throw new FerryUnavailableError(`Ferry's client is not written yet: ${CLIENT_SOURCE} does not exist`);
  }
  if (!buildIfStale) {
    if (!existsSync(BUILT_CLIENT) || !existsSync(BUILT_CLI)) {
      throw new FerryUnavailableError(`--no-build, but ${BUILT_CLIENT} or ${BUILT_CLI} is missing: run npm run build`);
    }
    return;
  }
  if (builtIsFresh()) return;
  process.stderr.write('bench: dist/ is older than src/, running npm run build\n');
  const build = spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (build.status !== 0) {
    const output = `${build.stdout ?? ''}${build.stderr ?? ''}`.trim().split('\n').slice(-BUILD_OUTPUT_LINES_MAX).join('\n');
    throw new FerryUnavailableError(`npm run build failed (${build.error?.message ?? `exit ${build.status}`}):\n${output}`);
  }
  if (!existsSync(BUILT_CLIENT) || !existsSync(BUILT_CLI)) {
    throw new FerryUnavailableError(`npm run build did not produce ${BUILT_CLIENT} and ${BUILT_CLI}`);
  }
}

export async function loadClient(): Promise<FerryClientModule> {
  let loaded: Record<string, unknown>;
  try {
    loaded = (await import(pathToFileURL(BUILT_CLIENT).href)) as Record<string, unknown>;
  } catch (error) {
    throw new FerryUnavailableError(`cannot load Ferry's client from ${BUILT_CLIENT}: ${String(error)}`);
  }
  if (typeof loaded.connect !== 'function') {
    throw new FerryUnavailableError(`Ferry's client (${BUILT_CLIENT}) exports no connect() function`);
  }
  return loaded as unknown as FerryClientModule;
}

// ---- The adapter -----------------------------------------------------------------------------

class FerrySubscriptionAdapter implements BrokerSubscription {
  private closing = false;
  private readonly pendingAcks = new Set<Promise<void>>();
  private readonly loop: Promise<void>;

  constructor(
    private readonly subscription: FerrySubscription,
    private readonly handler: MessageHandler,
  ) {
    this.loop = this.consume().catch((error: unknown) => {
      if (!this.closing) handler.onError(error);
    });
  }

  private async consume(): Promise<void> {
    for await (const message of this.subscription) {
      if (!Buffer.isBuffer(message.value)) throw new FerryUnavailableError('a Ferry message has no Buffer `value`');
      this.handler.onMessage(message.value);
      // One ack per message, not awaited one by one: acks are pipelined while the next
      // deliveries are handled, as the peers' acks are (NATS acks are fire-and-forget publishes,
      // Redis XACKs are pipelined). flushAcks() waits for all of them.
      const ack = Promise.resolve(message.ack());
      this.pendingAcks.add(ack);
      ack.then(
        () => this.pendingAcks.delete(ack),
        (error: unknown) => this.handler.onError(error),
      );
    }
  }

  /**
   * Ferry's ack() resolves once the ACK frame is queued on the socket (it leaves in the same
   * event-loop turn), so this is "every ack sent", one loopback hop short of NATS's PING/PONG.
   */
  async flushAcks(): Promise<void> {
    await Promise.all([...this.pendingAcks]);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.flushAcks();
    await this.subscription.close();
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`Ferry subscription: the message iterator did not end within ${ITERATOR_END_WAIT_MS} ms of close()`)),
        ITERATOR_END_WAIT_MS,
      );
    });
    try {
      await Promise.race([this.loop, stuck]);
    } finally {
      clearTimeout(timer);
    }
  }
}

export class FerryConnectionAdapter implements BrokerConnection {
  constructor(
    readonly client: FerryClient,
    private readonly topicOptions: FerryTopicOptions = { durability: 'always' },
  ) {}

  async createTopic(topic: string): Promise<void> {
    await this.client.createTopic(topic, this.topicOptions);
  }

  async publish(topic: string, payload: Uint8Array): Promise<void> {
    const value = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    await this.client.publish(topic, value);
  }

  async subscribe(topic: string, group: string, handler: MessageHandler): Promise<BrokerSubscription> {
    const subscription = await this.client.subscribe(topic, { group, from: 'earliest', prefetch: PREFETCH_MESSAGES });
    return new FerrySubscriptionAdapter(subscription, handler);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

function ferryVersion(): string {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version?: string };
  return manifest.version ?? 'unknown';
}

export interface FerrySystemOptions {
  /** false: measure dist/ as it is, without checking it against src/ (`--no-build`). */
  build: boolean;
}

export function createFerrySystem(options: FerrySystemOptions): BrokerSystem {
  let client: FerryClientModule | undefined;
  return {
    id: 'ferry',
    label: 'Ferry',
    shortLabel: 'Ferry',

    async describe() {
      return `ferry ${ferryVersion()} (this checkout, dist/), Node ${process.version} ${launcherNodeFlags().join(' ') || '(no flags)'}; durability always (fdatasync before confirm)`;
    },

    async prepare() {
      ensureBuilt(options.build);
      client = await loadClient();
    },

    async start(processes: ProcessRegistry): Promise<StartedBroker> {
      if (client === undefined) throw new FerryUnavailableError('Ferry was not prepared (build and client check)');
      const loadedClient = client;
      let server;
      try {
        server = await processes.start({
          name: 'ferry',
          command: process.execPath,
          args: (port, dataDir) => [...launcherNodeFlags(), LAUNCHER, 'serve', '--dir', dataDir, '--port', String(port), '--host', LOOPBACK_HOST, '--http-port', '0'],
          cwd: REPO_ROOT,
        });
      } catch (error) {
        throw new FerryUnavailableError(`the Ferry broker did not start: ${error instanceof Error ? error.message : String(error)}`);
      }
      const started = server;
      return {
        servers: [started],
        stop: () => processes.stop(started),
        connect: async () =>
          new FerryConnectionAdapter(await loadedClient.connect({ host: LOOPBACK_HOST, port: started.port, reconnect: false })),
      };
    },
  };
}
