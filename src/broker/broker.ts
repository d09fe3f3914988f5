/**
 * The broker: the one core behind both ways in. Embedded users call it directly
 * (`await Broker.open({ dir })`); `broker.listen()` puts the TCP server on the same object.
 *
 * Layout of the data directory: <dir>/topics/<name>/ per topic (see topic.ts), and
 * <dir>/trash/ where deleted topics are moved (atomically) before their files are removed.
 */
import { join } from 'node:path';
import { SystemClock, type Clock } from '../platform/clock.js';
import { NodeFileSystem, type FileSystem } from '../platform/fs.js';
import { silentLogger, type Logger } from '../platform/logger.js';
import { removeTree } from '../platform/atomic-write.js';
import { FerryError } from '../protocol/errors.js';
import { DEFAULT_SEGMENT_BYTES, DEFAULT_SYNC_INTERVAL_MS, DEFAULT_TAIL_CACHE_BYTES, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN } from '../storage/limits.js';
import { DURABILITY_MODES, type RecoveryReport } from '../storage/types.js';
import { CREDIT_MAX, PARTITIONS_MAX, PUBLISH_MESSAGES_MAX } from './limits.js';
import { MessageStream } from './message-stream.js';
import { checkName } from './names.js';
import { TOPIC_FILE, Topic, type TopicContext } from './topic.js';
import type {
  BrokerApi,
  DeliverySink,
  PublishMessage,
  PublishResult,
  StartPosition,
  SubscribeOptions,
  Subscription,
  TopicConfig,
  TopicInfo,
} from './types.js';

const TOPICS_DIR = 'topics';
const TRASH_DIR = 'trash';
/** Credit a subscription starts with when the caller names none. */
export const DEFAULT_CREDIT = 256;

export const DEFAULT_TOPIC_CONFIG: TopicConfig = {
  partitions: 1,
  durability: 'always',
  syncIntervalMs: DEFAULT_SYNC_INTERVAL_MS,
  retention: {},
  segmentBytes: DEFAULT_SEGMENT_BYTES,
};

export interface BrokerOptions {
  dir: string;
  fs?: FileSystem;
  clock?: Clock;
  logger?: Logger;
  /** Defaults for topics created without explicit settings. */
  topicDefaults?: Partial<TopicConfig>;
  /** Memory for the hot tail of all partitions together. */
  tailCacheBytes?: number;
}

/** Publish options of the embedded one-message form (same as the client's). */
export interface PublishOptions {
  key?: string | Buffer | null;
  headers?: Record<string, string>;
  partition?: number;
}

/** Subscribe options of the embedded iterator form (same as the client's). */
export interface ConsumeOptions {
  group?: string;
  from?: 'earliest' | 'latest' | number | Date;
  prefetch?: number;
}

export interface ListenOptions {
  port?: number;
  host?: string;
}

export interface Listener {
  port: number;
  host: string;
  close(): Promise<void>;
}

export class Broker implements BrokerApi {
  private readonly topics = new Map<string, Topic>();
  private readonly creating = new Map<string, Promise<Topic>>();
  private nextSubscriptionId = 1;
  private closing = false;
  private readonly listeners: Listener[] = [];

  private constructor(
    readonly dir: string,
    private readonly context: TopicContext,
    private readonly topicDefaults: TopicConfig,
    readonly recovery: Map<string, RecoveryReport[]>,
  ) {}

  static async open(options: BrokerOptions): Promise<Broker> {
    const fs = options.fs ?? new NodeFileSystem();
    const clock = options.clock ?? new SystemClock();
    const logger = options.logger ?? silentLogger;
    const topicDefaults = validateTopicConfig({ ...DEFAULT_TOPIC_CONFIG, ...options.topicDefaults });
    const context: TopicContext = {
      fs,
      clock,
      logger,
      tailCacheBytes: options.tailCacheBytes ?? DEFAULT_TAIL_CACHE_BYTES,
      allocateSubscriptionId: () => 0,
    };
    await fs.mkdir(join(options.dir, TOPICS_DIR));
    await removeTree(fs, join(options.dir, TRASH_DIR));
    const recovery = new Map<string, RecoveryReport[]>();
    const broker = new Broker(options.dir, context, topicDefaults, recovery);
    context.allocateSubscriptionId = () => broker.nextSubscriptionId++;
    for (const name of (await fs.readdir(join(options.dir, TOPICS_DIR))).sort()) {
      const dir = join(options.dir, TOPICS_DIR, name);
      if ((await fs.stat(join(dir, TOPIC_FILE))) === null) {
        // A creation that crashed before its topic.json was renamed into place.
        logger.warn('broker.topic.incomplete_removed', { dir });
        await removeTree(fs, dir);
        continue;
      }
      const { topic, recovery: reports } = await Topic.open(dir, context);
      broker.topics.set(topic.name, topic);
      recovery.set(topic.name, reports);
    }
    return broker;
  }

  /** Topic config with defaults applied and every field checked. */
  resolveTopicConfig(config: Partial<TopicConfig> = {}): TopicConfig {
    return validateTopicConfig({ ...this.topicDefaults, ...stripUndefined(config) });
  }

  async createTopic(name: string, config: Partial<TopicConfig> = {}): Promise<TopicInfo> {
    this.checkOpen();
    checkName('topic', name);
    if (this.topics.has(name) || this.creating.has(name)) throw new FerryError('TOPIC_EXISTS', `topic ${name} already exists`);
    const resolved = this.resolveTopicConfig(config);
    const creation = Topic.create(name, resolved, join(this.dir, TOPICS_DIR, name), this.context);
    this.creating.set(name, creation);
    try {
      const topic = await creation;
      this.topics.set(name, topic);
      this.context.logger.info('broker.topic.created', { topic: name, config: resolved });
      return topic.info();
    } finally {
      this.creating.delete(name);
    }
  }

  async deleteTopic(name: string): Promise<void> {
    this.checkOpen();
    const topic = this.topic(name);
    this.topics.delete(name);
    await topic.close();
    const trash = join(this.dir, TRASH_DIR);
    await this.context.fs.mkdir(trash);
    const trashed = join(trash, `${name}.${this.context.clock.nowMs()}`);
    await this.context.fs.rename(join(this.dir, TOPICS_DIR, name), trashed);
    await this.context.fs.syncDir(join(this.dir, TOPICS_DIR));
    await removeTree(this.context.fs, trashed);
    this.context.logger.info('broker.topic.deleted', { topic: name });
  }

  listTopics(): TopicInfo[] {
    return [...this.topics.keys()].sort().map((name) => this.topics.get(name)!.info());
  }

  describeTopic(name: string): TopicInfo {
    return this.topic(name).info();
  }

  describeGroup(topicName: string, groupName: string): ReturnType<import('./group.js').Group['describe']> {
    const group = this.topic(topicName).group(groupName);
    if (group === undefined) throw new FerryError('UNKNOWN_GROUP', `topic ${topicName} has no group ${groupName}`);
    return group.describe();
  }

  /** Publishes a batch (the transport form), or one message (the embedded form, like the client's). */
  publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]>;
  publish(topic: string, value: Buffer | string, options?: PublishOptions): Promise<PublishResult & { topic: string }>;
  async publish(
    topicName: string,
    messagesOrValue: readonly PublishMessage[] | Buffer | string,
    options: PublishOptions = {},
  ): Promise<PublishResult[] | (PublishResult & { topic: string })> {
    this.checkOpen();
    const topic = this.topic(topicName);
    if (Array.isArray(messagesOrValue)) {
      const messages = messagesOrValue as readonly PublishMessage[];
      if (messages.length === 0) return [];
      if (messages.length > PUBLISH_MESSAGES_MAX) {
        throw new FerryError('BATCH_TOO_LARGE', `a publish carries at most ${PUBLISH_MESSAGES_MAX} messages`);
      }
      return topic.publish(messages);
    }
    const value = typeof messagesOrValue === 'string' ? Buffer.from(messagesOrValue) : (messagesOrValue as Buffer);
    const key = options.key === undefined || options.key === null ? null : typeof options.key === 'string' ? Buffer.from(options.key) : options.key;
    const message: PublishMessage = {
      value,
      key,
      headers: options.headers === undefined ? [] : Object.entries(options.headers),
      ...(options.partition === undefined ? {} : { partition: options.partition }),
    };
    const [result] = await topic.publish([message]);
    return { topic: topicName, ...result! };
  }

  /** Subscribes with a sink (the transport form), or returns an async iterator (the embedded form). */
  subscribe(topic: string, options: SubscribeOptions, sink: DeliverySink): Promise<Subscription>;
  subscribe(topic: string, options?: ConsumeOptions): Promise<MessageStream>;
  async subscribe(
    topicName: string,
    options: SubscribeOptions | ConsumeOptions = {},
    sink?: DeliverySink,
  ): Promise<Subscription | MessageStream> {
    this.checkOpen();
    if (sink !== undefined) return this.subscribeSink(topicName, options as SubscribeOptions, sink);
    const consume = options as ConsumeOptions;
    const stream = new MessageStream(consume.group !== undefined);
    const subscription = await this.subscribeSink(
      topicName,
      { group: consume.group, from: toStartPosition(consume.from), credit: consume.prefetch ?? DEFAULT_CREDIT },
      stream,
    );
    stream.attach(subscription);
    return stream;
  }

  private async subscribeSink(topicName: string, options: SubscribeOptions, sink: DeliverySink): Promise<Subscription> {
    const topic = this.topic(topicName);
    const credit = options.credit ?? DEFAULT_CREDIT;
    if (!Number.isInteger(credit) || credit < 0 || credit > CREDIT_MAX) {
      throw new FerryError('INVALID_ARGUMENT', `credit must be an integer from 0 to ${CREDIT_MAX}`);
    }
    const from = options.from ?? { kind: options.group === undefined ? 'latest' : 'earliest' };
    if (options.group !== undefined) {
      const group = await topic.openGroup(options.group, from);
      return group.subscribe(sink, credit);
    }
    const startOffsets = await topic.startOffsets(from);
    return topic.openStream(this.nextSubscriptionId++, startOffsets, sink, credit);
  }

  /** Puts the TCP server on this broker. */
  async listen(options: ListenOptions = {}): Promise<Listener> {
    this.checkOpen();
    const { TcpServer } = await import('../transport/tcp/server.js');
    const server = new TcpServer(this, { logger: this.context.logger, clock: this.context.clock });
    const address = await server.listen(options.port ?? 7700, options.host ?? '127.0.0.1');
    const listener: Listener = {
      port: address.port,
      host: address.host,
      close: async () => {
        const index = this.listeners.indexOf(listener);
        if (index >= 0) this.listeners.splice(index, 1);
        await server.close();
      },
    };
    this.listeners.push(listener);
    return listener;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const listener of [...this.listeners]) await listener.close();
    await Promise.all([...this.creating.values()].map((creation) => creation.catch(() => undefined)));
    await Promise.all([...this.topics.values()].map((topic) => topic.close()));
    this.topics.clear();
  }

  private topic(name: string): Topic {
    const topic = this.topics.get(name);
    if (topic === undefined) throw new FerryError('UNKNOWN_TOPIC', `unknown topic ${name}`);
    return topic;
  }

  private checkOpen(): void {
    if (this.closing) throw new FerryError('BROKER_CLOSING', 'broker is closing');
  }
}

export function toStartPosition(from: ConsumeOptions['from']): StartPosition | undefined {
  if (from === undefined) return undefined;
  if (from === 'earliest' || from === 'latest') return { kind: from };
  if (typeof from === 'number') return { kind: 'offset', offset: from };
  if (from instanceof Date) return { kind: 'timestamp', timestampMs: from.getTime() };
  throw new FerryError('INVALID_ARGUMENT', `unknown start position ${String(from)}`);
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, field]) => field !== undefined)) as Partial<T>;
}

export function validateTopicConfig(config: TopicConfig): TopicConfig {
  const { partitions, durability, syncIntervalMs, segmentBytes, retention } = config;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > PARTITIONS_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `partitions must be an integer from 1 to ${PARTITIONS_MAX}`);
  }
  if (!(DURABILITY_MODES as readonly string[]).includes(durability)) {
    throw new FerryError('INVALID_ARGUMENT', `durability must be one of ${DURABILITY_MODES.join(', ')}`);
  }
  if (!Number.isInteger(syncIntervalMs) || syncIntervalMs < 1) {
    throw new FerryError('INVALID_ARGUMENT', 'syncIntervalMs must be a positive integer');
  }
  if (!Number.isInteger(segmentBytes) || segmentBytes < SEGMENT_BYTES_MIN || segmentBytes > SEGMENT_BYTES_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `segmentBytes must be from ${SEGMENT_BYTES_MIN} to ${SEGMENT_BYTES_MAX}`);
  }
  for (const field of ['ageMs', 'bytesMax', 'recordsMax'] as const) {
    const limit = retention?.[field];
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
      throw new FerryError('INVALID_ARGUMENT', `retention.${field} must be a non-negative integer`);
    }
  }
  return { partitions, durability, syncIntervalMs, segmentBytes, retention: { ...retention } };
}
