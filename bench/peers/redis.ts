/**
 * Redis Streams as a benchmark peer: Debian's redis-server with the append-only file fsynced on
 * every write (`--appendonly yes --appendfsync always`: Redis replies only after the fsync that
 * covers the command), driven by `ioredis`. Publishes are XADDs, pipelined by ioredis's automatic
 * pipelining; subscribers are consumers of one consumer group, reading with XREADGROUP and sending
 * one XACK per message.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { LOOPBACK_HOST, type ProcessRegistry } from '../processes.js';
import {
  PREFETCH_MESSAGES,
  type BrokerConnection,
  type BrokerSubscription,
  type BrokerSystem,
  type MessageHandler,
  type StartedBroker,
} from '../workloads.js';
import { commandVersion, installedPackageVersion } from './versions.js';

const SERVER_COMMAND = 'redis-server';
/** Stream field holding the payload. */
const PAYLOAD_FIELD = 'v';
/**
 * XREADGROUP BLOCK: a read returns as soon as anything arrives, so this only bounds how long
 * closing an idle subscriber waits for its last read.
 */
const READ_BLOCK_MS = 200;

/** XREADGROUP reply, read as buffers: [[stream, [[id, [field, value, ...]], ...]], ...] or null. */
type StreamEntries = Array<[Buffer, Array<[Buffer, Buffer[]]>]>;

/**
 * ioredis has `xreadgroupBuffer` at run time but not in its typings; `callBuffer` would do, but it
 * loses the command name under automatic pipelining (it sends `GROUP ...` as the command).
 */
interface BufferReads {
  xreadgroupBuffer(...args: Array<string | number>): Promise<unknown>;
}

class RedisSubscription implements BrokerSubscription {
  private stopped = false;
  private readonly pendingAcks = new Set<Promise<unknown>>();
  private readonly loop: Promise<void>;

  constructor(
    private readonly redis: Redis,
    private readonly topic: string,
    private readonly group: string,
    private readonly consumerName: string,
    private readonly handler: MessageHandler,
  ) {
    this.loop = this.readLoop().catch((error: unknown) => {
      if (!this.stopped) handler.onError(error);
    });
  }

  private async readLoop(): Promise<void> {
    while (!this.stopped) {
      const reply = (await (this.redis as unknown as BufferReads).xreadgroupBuffer(
        'GROUP', this.group, this.consumerName,
        'COUNT', PREFETCH_MESSAGES, 'BLOCK', READ_BLOCK_MS,
        'STREAMS', this.topic, '>',
      )) as StreamEntries | null;
      if (reply === null) continue;
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) {
          // Entries are written with exactly one field, PAYLOAD_FIELD.
          const payload = fields[1];
          if (payload === undefined) throw new Error(`stream entry ${id.toString()} has no payload`);
          this.handler.onMessage(payload);
          // Not awaited one by one: the acks travel pipelined ahead of the next XREADGROUP.
          const ack = this.redis.xack(this.topic, this.group, id);
          this.pendingAcks.add(ack);
          ack.then(
            () => this.pendingAcks.delete(ack),
            (error: unknown) => this.handler.onError(error),
          );
        }
      }
    }
  }

  async flushAcks(): Promise<void> {
    await Promise.all([...this.pendingAcks]);
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.loop;
    await this.flushAcks();
  }
}

class RedisConnectionAdapter implements BrokerConnection {
  private constructor(private readonly redis: Redis) {}

  static async open(port: number): Promise<RedisConnectionAdapter> {
    const redis = new Redis({
      host: LOOPBACK_HOST,
      port,
      lazyConnect: true,
      enableAutoPipelining: true,
      // No reconnects or retries: a server that goes away mid-run must fail the run.
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
    });
    await redis.connect();
    return new RedisConnectionAdapter(redis);
  }

  /** A stream exists once written to or once a group is created on it; nothing to do here. */
  async createTopic(): Promise<void> {}

  async publish(topic: string, payload: Uint8Array): Promise<void> {
    await this.redis.xadd(topic, '*', PAYLOAD_FIELD, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  }

  async subscribe(topic: string, group: string, handler: MessageHandler): Promise<BrokerSubscription> {
    try {
      // Id 0: the group starts at the earliest entry, like the other systems' groups.
      await this.redis.xgroup('CREATE', topic, group, '0', 'MKSTREAM');
    } catch (error) {
      // Every subscriber of a group makes this call; only the first creates it.
      if (!(error instanceof Error && error.message.startsWith('BUSYGROUP'))) throw error;
    }
    // Consumers of a group are told apart by name; one per subscriber, like a JetStream pull client.
    const consumerName = `bench-${randomUUID()}`;
    return new RedisSubscription(this.redis, topic, group, consumerName, handler);
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}

export const redisSystem: BrokerSystem = {
  id: 'redis',
  label: 'Redis Streams',
  shortLabel: 'Redis',

  async describe() {
    const server = await commandVersion(SERVER_COMMAND, ['--version']);
    const client = await installedPackageVersion('ioredis');
    return `${server.replace(/ sha=.*$/, '')}, ioredis ${client}; appendonly yes, appendfsync always`;
  },

  async start(processes: ProcessRegistry): Promise<StartedBroker> {
    const server = await processes.start({
      name: 'redis',
      command: SERVER_COMMAND,
      args: (port, dataDir) => [
        '--port', String(port),
        '--bind', LOOPBACK_HOST,
        '--dir', dataDir,
        '--appendonly', 'yes',
        '--appendfsync', 'always',
        // No RDB snapshots: the AOF is the durability under test, and a fork would disturb timing.
        '--save', '',
        '--daemonize', 'no',
        '--protected-mode', 'yes',
      ],
    });
    return { servers: [server], stop: () => processes.stop(server), connect: () => RedisConnectionAdapter.open(server.port) };
  },
};
