/**
 * The broker: the one core behind both ways in. Embedded users call it directly
 * (`await Broker.open({ dir })`); `broker.listen()` puts the TCP server on the same object.
 *
 * Layout of the data directory: <dir>/topics/<name>/ per topic (see topic.ts), and
 * <dir>/trash/ where deleted topics are moved (atomically) before their files are removed.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SystemClock, type Clock } from '../platform/clock.js';
import { NodeFileSystem, type FileSystem } from '../platform/fs.js';
import { silentLogger, type Logger } from '../platform/logger.js';
import { mkdirDurable, removeTree } from '../platform/atomic-write.js';
import type { DirLock } from '../platform/dir-lock.js';
import { FerryError } from '../errors.js';
import { DEFAULT_SEGMENT_BYTES, DEFAULT_SYNC_INTERVAL_MS, DEFAULT_TAIL_CACHE_BYTES, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN } from '../storage/limits.js';
import { DURABILITY_MODES, type LogFactory, type LogRecord, type RecoveryReport, type StorageObserver } from '../storage/types.js';
import { Log } from '../storage/log.js';
import { TailCacheBudget } from '../storage/tail-cache.js';
import { WriteBufferPool } from '../storage/write-buffers.js';
import {
  ACK_TIMEOUT_MS_MAX,
  ACK_TIMEOUT_MS_MIN,
  CREDIT_MAX,
  DELIVERIES_MAX_LIMIT,
  NAME_BYTES_MAX,
  PARTITIONS_MAX,
  PUBLISH_MESSAGES_MAX,
} from './limits.js';
import { MessageStream } from './message-stream.js';
import { PRIORITY_HEADER, PRIORITY_MAX } from './delivery/priority.js';
import { Admission, type AdmissionOptions } from './admission.js';
import { BACKOFF_DELAY_MS_MAX, BACKOFF_STEPS_MAX } from './delivery/backoff.js';
import { DLQ_HEADER_PREFIX, DLQ_HEADERS, isCopyOf, type DeadLetterSource, type DeadLetterTarget } from './delivery/dead-letter.js';
import { DEFAULT_DEDUP_WINDOW_MS } from './dedup.js';
import { WallHistory } from './wall-clock/wall-history.js';
import { checkName } from './names.js';
import { quarantiner } from './recovery.js';
import { Topic, type TopicContext } from './topic.js';
import type { TcpServerOptions } from '../transport/tcp/options.js';
import type {
  BrokerApi,
  DeliverySink,
  GroupConfig,
  GroupInfo,
  Header,
  RedriveOptions,
  RedriveResult,
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
  dedupWindowMs: DEFAULT_DEDUP_WINDOW_MS,
};

/** Group defaults; the dead-letter topic defaults to `<topic>.dlq`. */
export const DEFAULT_GROUP_CONFIG: Omit<GroupConfig, 'deadLetterTopic'> = {
  ackTimeoutMs: 30_000,
  backoffMs: [],
  deliveriesMax: 16,
};
export const DEAD_LETTER_SUFFIX = '.dlq';
/** The internal group through which a dead-letter topic remembers what was redriven. */
export const REDRIVE_GROUP = 'ferry-redrive';
/** Dead letters read per log read while redriving or searching. */
const DEAD_LETTER_READ_RECORDS = 512;
/** Hex digits of the digest in a redrive id: 64 bits, so two dead letters at one place never share one. */
const REDRIVE_DIGEST_HEX_CHARS = 16;

export interface BrokerOptions {
  dir: string;
  fs?: FileSystem;
  clock?: Clock;
  logger?: Logger;
  /** Defaults for topics created without explicit settings. */
  topicDefaults?: Partial<TopicConfig>;
  /** Memory for the hot tail of all partitions together. */
  tailCacheBytes?: number;
  /** Defaults for new queue groups. */
  groupDefaults?: Partial<Omit<GroupConfig, 'deadLetterTopic'>>;
  /** Randomness for backoff jitter (tests pass a seeded one). */
  random?: () => number;
  /** Memory and disk watermarks at which publishes are refused. */
  admission?: AdmissionOptions;
  /** Told about every log's fsyncs and writes (metrics). */
  storageObserver?: StorageObserver;
  /**
   * The data directory's lock, when the caller took it already (`ferry serve` takes it before its
   * HTTP port comes up); otherwise `open` takes it from `fs`. The broker releases it on close.
   */
  dirLock?: DirLock;
  /**
   * Opens every log the broker holds (topic partitions, group journals, delay logs). Default: a
   * local `Log`; a cluster passes replicated logs.
   */
  openLog?: LogFactory;
}

/** Publish options of the embedded one-message form (same as the client's). */
export interface PublishOptions {
  key?: string | Buffer | null;
  headers?: Record<string, string>;
  partition?: number;
  /** Exactly-once publish id (see PublishMessage.id). */
  id?: string;
  delayMs?: number;
  deliverAt?: Date;
  /** 0 (default) to 9: groups deliver higher priorities first (header `ferry-priority`). */
  priority?: number;
}

/** Subscribe options of the embedded iterator form (same as the client's). */
export interface ConsumeOptions extends Partial<GroupConfig> {
  group?: string;
  from?: 'earliest' | 'latest' | number | Date;
  prefetch?: number;
}

/** Where to listen, plus any TCP server setting (heartbeats, limits, slow consumers). */
export interface ListenOptions extends TcpServerOptions {
  port?: number;
  host?: string;
}

export interface Listener {
  port: number;
  host: string;
  close(): Promise<void>;
}

export class Broker implements BrokerApi, DeadLetterTarget {
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
    private readonly admission: Admission,
    private readonly dirLock: DirLock,
  ) {}

  static async open(options: BrokerOptions): Promise<Broker> {
    const fs = options.fs ?? new NodeFileSystem();
    const clock = options.clock ?? new SystemClock();
    const logger = options.logger ?? silentLogger;
    const topicDefaults = validateTopicConfig({ ...DEFAULT_TOPIC_CONFIG, ...options.topicDefaults });
    const groupDefaults = { ...DEFAULT_GROUP_CONFIG, ...stripUndefined(options.groupDefaults ?? {}) };
    const dirLock = options.dirLock ?? (await lockDataDir(fs, options.dir));
    try {
      return await Broker.openLocked(options, fs, clock, logger, topicDefaults, groupDefaults, dirLock);
    } catch (error) {
      await dirLock.release();
      throw error;
    }
  }

  private static async openLocked(
    options: BrokerOptions,
    fs: FileSystem,
    clock: Clock,
    logger: Logger,
    topicDefaults: TopicConfig,
    groupDefaults: Omit<GroupConfig, 'deadLetterTopic'>,
    dirLock: DirLock,
  ): Promise<Broker> {
    await mkdirDurable(fs, join(options.dir, TOPICS_DIR));
    await removeTree(fs, join(options.dir, TRASH_DIR));
    const wallHistory = await WallHistory.open({ fs, dir: options.dir, clock, logger });
    const context: TopicContext = {
      fs,
      clock,
      logger,
      wallHistory,
      random: options.random ?? Math.random,
      tailCacheBudget: new TailCacheBudget(options.tailCacheBytes ?? DEFAULT_TAIL_CACHE_BYTES),
      writeBuffers: new WriteBufferPool(),
      storageObserver: options.storageObserver ?? null,
      allocateSubscriptionId: () => 0,
      deadLetters: undefined as unknown as DeadLetterTarget,
      openLog: options.openLog ?? openLocalLog,
      resolveGroupConfig: (topic, groupOptions) => resolveGroupConfig(groupDefaults, topic, groupOptions),
      quarantine: quarantiner(fs, options.dir, clock, logger),
    };
    const recovery = new Map<string, RecoveryReport[]>();
    const admission = new Admission(fs, options.dir, clock, logger, options.admission);
    const broker = new Broker(options.dir, context, topicDefaults, recovery, admission, dirLock);
    context.allocateSubscriptionId = () => broker.nextSubscriptionId++;
    context.deadLetters = broker;
    for (const name of (await fs.readdir(join(options.dir, TOPICS_DIR))).sort()) {
      const opened = await Topic.openEntry(join(options.dir, TOPICS_DIR, name), name, context);
      if (opened === null) continue;
      broker.topics.set(opened.topic.name, opened.topic);
      recovery.set(opened.topic.name, opened.recovery);
    }
    // Groups open once every topic is open: finishing an interrupted dead-lettering writes to another topic.
    for (const topic of broker.topics.values()) await topic.openExistingGroups();
    admission.start();
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
    await topic.close(`topic ${name} was deleted`);
    const trash = join(this.dir, TRASH_DIR);
    await mkdirDurable(this.context.fs, trash);
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

  listGroups(topicName: string): GroupInfo[] {
    const topic = this.topic(topicName);
    return topic.groupNames.map((name) => topic.group(name)!.describe());
  }

  describeGroup(topicName: string, groupName: string): GroupInfo {
    return this.group(topicName, groupName).describe();
  }

  /** Moves a group: every message before the position is settled, every one from it on is pending. */
  async resetGroup(topicName: string, groupName: string, to: StartPosition): Promise<GroupInfo> {
    this.checkOpen();
    const topic = this.topic(topicName);
    const group = this.group(topicName, groupName);
    await group.reset(await topic.startOffsets(to));
    return group.describe();
  }

  private group(topicName: string, groupName: string) {
    const group = this.topic(topicName).group(groupName);
    if (group === undefined) throw new FerryError('UNKNOWN_GROUP', `topic ${topicName} has no group ${groupName}`);
    return group;
  }

  /**
   * Moves dead letters back to the topics they came from (all, an offset range, or those with a
   * header), oldest first. The dead-letter topic's internal group REDRIVE_GROUP remembers what was
   * moved; each republish carries a message id derived from the dead letter (redriveId), so a
   * redrive interrupted by a crash and repeated does not publish a message twice. A dead letter is
   * settled only once its republished copy is synced (syncStored).
   */
  async redrive(deadLetterTopic: string, options: RedriveOptions = {}): Promise<RedriveResult> {
    this.checkOpen();
    const topic = this.topic(deadLetterTopic);
    const limit = options.limit ?? Infinity;
    if (limit !== Infinity && (!Number.isInteger(limit) || limit < 0)) throw new FerryError('INVALID_ARGUMENT', 'limit must be a non-negative integer');
    // The internal group never dead-letters: naming its own topic spares it a derived `.dlq` that may be too long.
    const group = await topic.openGroup(REDRIVE_GROUP, { kind: 'earliest' }, { deadLetterTopic });
    let moved = 0;
    for (const [partition, log] of topic.logs.entries()) {
      let offset = Math.max(group.ackFloor(partition), options.fromOffset ?? 0, log.startOffset);
      const endOffset = Math.min(log.nextOffset, options.toOffset ?? Infinity);
      while (offset < endOffset && moved < limit) {
        const records = await log.read(offset, { recordsMax: DEAD_LETTER_READ_RECORDS, endOffset });
        if (records.length === 0) break;
        // Each read's matches go back as one publish per source topic, then are settled together.
        const bySource = new Map<string, { messages: PublishMessage[]; offsets: number[] }>();
        for (const record of records) {
          if (moved >= limit) break;
          if (group.isSettled(partition, record.offset)) continue;
          if (options.header !== undefined && !record.headers.some(([name, value]) => name === options.header![0] && value === options.header![1])) continue;
          const source = record.headers.find(([name]) => name === DLQ_HEADERS.topic)?.[1];
          if (source === undefined || !this.topics.has(source)) {
            this.context.logger.warn('broker.redrive.no_source', { deadLetterTopic, partition, offset: record.offset, source });
            continue;
          }
          const headers: Header[] = record.headers.filter(([name]) => !name.startsWith(DLQ_HEADER_PREFIX));
          let batch = bySource.get(source);
          if (batch === undefined) bySource.set(source, (batch = { messages: [], offsets: [] }));
          batch.messages.push({ key: record.key, headers, value: record.value, id: redriveId(deadLetterTopic, partition, record) });
          batch.offsets.push(record.offset);
          moved += 1;
        }
        for (const [source, batch] of bySource) {
          const sourceTopic = this.topic(source);
          // The settle goes to this topic's group journal, synced apart from the source topic: in
          // `interval`/`never` mode it could reach the disk first, and a power loss would lose the
          // message from both topics.
          await syncStored(sourceTopic, await sourceTopic.publish(batch.messages));
          await Promise.all(batch.offsets.map((offset) => group.settleDirect(partition, offset)));
        }
        offset = records[records.length - 1]!.offset + 1;
      }
    }
    this.context.logger.info('broker.redrive.finished', { deadLetterTopic, moved });
    return { moved };
  }

  // --- DeadLetterTarget: what groups use to dead-letter ---

  async offsetHint(topicName: string): Promise<number> {
    const topic = this.topics.get(topicName);
    if (topic === undefined) return 0;
    // The synced end, not the next offset: a power loss can cut unsynced records, and their offsets
    // go to later appends, so a hint taken at the next offset could end up past the copy.
    return Math.min(...topic.logs.map((log) => log.syncedOffset + 1));
  }

  async contains(topicName: string, fromOffset: number, source: DeadLetterSource): Promise<boolean> {
    const topic = this.topics.get(topicName);
    if (topic === undefined) return false;
    for (const log of topic.logs) {
      let offset = Math.max(fromOffset, log.startOffset);
      while (offset < log.nextOffset) {
        const records = await log.read(offset, { recordsMax: DEAD_LETTER_READ_RECORDS });
        if (records.length === 0) break;
        if (records.some((record) => isCopyOf(record.headers, source))) return true;
        offset = records[records.length - 1]!.offset + 1;
      }
    }
    return false;
  }

  async publishDeadLetter(topicName: string, message: PublishMessage): Promise<void> {
    let topic = this.topics.get(topicName);
    if (topic === undefined) {
      try {
        await this.createTopic(topicName, { partitions: 1 });
      } catch (error) {
        if (!(error instanceof FerryError && error.code === 'TOPIC_EXISTS')) throw error;
        await this.creating.get(topicName);
      }
      topic = this.topic(topicName);
    }
    await syncStored(topic, await topic.publish([message]));
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
    this.admission.check();
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
    const headers: Header[] = options.headers === undefined ? [] : Object.entries(options.headers);
    if (options.priority !== undefined) {
      if (!Number.isInteger(options.priority) || options.priority < 0 || options.priority > PRIORITY_MAX) {
        throw new FerryError('INVALID_ARGUMENT', `priority must be an integer from 0 to ${PRIORITY_MAX}`);
      }
      headers.push([PRIORITY_HEADER, String(options.priority)]);
    }
    const message: PublishMessage = {
      value,
      key,
      headers,
      ...(options.partition === undefined ? {} : { partition: options.partition }),
      ...(options.id === undefined ? {} : { id: options.id }),
      ...(options.delayMs === undefined ? {} : { delayMs: options.delayMs }),
      ...(options.deliverAt === undefined ? {} : { deliverAtMs: options.deliverAt.getTime() }),
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
    const { from, prefetch, ...rest } = consume;
    const subscription = await this.subscribeSink(
      topicName,
      { ...rest, from: toStartPosition(from), credit: prefetch ?? DEFAULT_CREDIT },
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
      const { ackTimeoutMs, backoffMs, deliveriesMax, deadLetterTopic } = options;
      const groupOptions = { ackTimeoutMs, backoffMs, deliveriesMax, deadLetterTopic };
      if (topic.group(options.group) === undefined) this.checkNewGroup(topicName, options.group, groupOptions, options.mayCreateTopic);
      const group = await topic.openGroup(options.group, from, groupOptions);
      return group.subscribe(sink, credit);
    }
    const startOffsets = await topic.startOffsets(from);
    // A resuming stream names its position per partition; those win over `from`.
    options.partitionOffsets?.forEach((offset, partition) => {
      if (partition < startOffsets.length && Number.isSafeInteger(offset) && offset >= 0) startOffsets[partition] = offset;
    });
    return topic.openStream(this.nextSubscriptionId++, startOffsets, sink, credit);
  }

  /**
   * Before a subscribe creates a group: its name and every name derived for it are valid, and its
   * dead-letter topic exists or is one the caller may create (`mayCreateTopic`, from the guard) —
   * the broker creates that topic at the group's first dead letter, on the caller's behalf.
   */
  private checkNewGroup(topicName: string, groupName: string, options: Partial<GroupConfig>, mayCreateTopic: ((topic: string) => boolean) | undefined): void {
    checkName('group', groupName);
    const { deadLetterTopic } = this.context.resolveGroupConfig(topicName, options);
    if (mayCreateTopic === undefined || this.topics.has(deadLetterTopic) || mayCreateTopic(deadLetterTopic)) return;
    throw new FerryError(
      'FORBIDDEN',
      `a new group ${groupName} on ${topicName} would have the broker create its dead-letter topic ${deadLetterTopic}, which this user may not create (it needs admin on ${deadLetterTopic}): have it created first, or name an existing deadLetterTopic`,
    );
  }

  /** Puts the TCP server on this broker. */
  async listen(options: ListenOptions = {}): Promise<Listener> {
    this.checkOpen();
    const { TcpServer } = await import('../transport/tcp/server.js');
    const { port, host, ...serverOptions } = options;
    const server = new TcpServer(this, { logger: this.context.logger, clock: this.context.clock, ...serverOptions });
    const address = await server.listen(port ?? 7700, host ?? '127.0.0.1');
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
    this.admission.stop();
    for (const listener of [...this.listeners]) await listener.close();
    await Promise.all([...this.creating.values()].map((creation) => creation.catch(() => undefined)));
    try {
      await Promise.all([...this.topics.values()].map((topic) => topic.close()));
    } finally {
      this.topics.clear();
      await this.dirLock.release();
    }
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

/**
 * Waits until what a publish stored is synced, whatever the topic's durability: for a settle in
 * another log that must not reach the disk first. A duplicate answer syncs its partition too: its
 * first copy may only be written (`interval`/`never`).
 */
/** The single-node log factory: every log is a local `Log`. The one place in the broker that names it. */
const openLocalLog: LogFactory = (options) => Log.open(options);

/** Creates the data directory if needed and takes its lock: one broker per data directory. */
export async function lockDataDir(fs: FileSystem, dir: string): Promise<DirLock> {
  await mkdirDurable(fs, dir);
  return fs.lockDir(dir);
}

async function syncStored(topic: Topic, results: readonly PublishResult[]): Promise<void> {
  const partitions = new Set<number>();
  for (const result of results) if (result.durability !== 'synced' || result.duplicate === true) partitions.add(result.partition);
  await Promise.all([...partitions].map((partition) => topic.logs[partition]!.sync()));
}

/**
 * The message id of a redriven dead letter: its place in the dead-letter topic plus a digest of
 * what makes it that dead letter (its record timestamp and the source its headers name). The place
 * alone can repeat: a power loss can take back a dead letter after it was redriven (an `interval`
 * topic, or one published by hand), its offset goes to a new dead letter, and that one would be
 * dropped as a repeat within the dedup window. At most 14 + 200 + 1 + 4 + 1 + 16 + 1 + 16 = 253
 * bytes (names ≤ NAME_BYTES_MAX, partitions < PARTITIONS_MAX, safe-integer offsets): within
 * MESSAGE_ID_BYTES_MAX.
 */
function redriveId(deadLetterTopic: string, partition: number, record: LogRecord): string {
  const digest = createHash('sha256').update(String(record.timestampMs));
  for (const name of [DLQ_HEADERS.topic, DLQ_HEADERS.group, DLQ_HEADERS.partition, DLQ_HEADERS.offset]) {
    digest.update(`\0${record.headers.find(([header]) => header === name)?.[1] ?? ''}`);
  }
  return `ferry-redrive:${deadLetterTopic}:${partition}:${record.offset}:${digest.digest('hex').slice(0, REDRIVE_DIGEST_HEX_CHARS)}`;
}

/**
 * A new group's configuration: the defaults, the dead-letter topic `<topic>.dlq` unless the caller
 * names one, then what the caller set; every field and name checked. A default dead-letter name
 * that is too long is refused with its own message: the caller can name another.
 */
function resolveGroupConfig(defaults: Omit<GroupConfig, 'deadLetterTopic'>, topic: string, options: Partial<GroupConfig>): GroupConfig {
  const set = stripUndefined(options);
  const derived = topic + DEAD_LETTER_SUFFIX;
  if (set.deadLetterTopic === undefined && Buffer.byteLength(derived) > NAME_BYTES_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `the default dead-letter topic ${derived} would be longer than ${NAME_BYTES_MAX} bytes: name a deadLetterTopic for this group`);
  }
  return validateGroupConfig({ ...defaults, deadLetterTopic: derived, ...set });
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

export function validateGroupConfig(config: GroupConfig): GroupConfig {
  const { ackTimeoutMs, backoffMs, deliveriesMax, deadLetterTopic } = config;
  if (!Number.isInteger(ackTimeoutMs) || ackTimeoutMs < ACK_TIMEOUT_MS_MIN || ackTimeoutMs > ACK_TIMEOUT_MS_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `ackTimeoutMs must be an integer from ${ACK_TIMEOUT_MS_MIN} to ${ACK_TIMEOUT_MS_MAX}`);
  }
  if (!Array.isArray(backoffMs) || backoffMs.length > BACKOFF_STEPS_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `backoffMs must be a list of at most ${BACKOFF_STEPS_MAX} delays`);
  }
  for (const delay of backoffMs) {
    if (!Number.isInteger(delay) || delay < 0 || delay > BACKOFF_DELAY_MS_MAX) {
      throw new FerryError('INVALID_ARGUMENT', `each backoffMs delay must be an integer from 0 to ${BACKOFF_DELAY_MS_MAX}`);
    }
  }
  if (!Number.isInteger(deliveriesMax) || deliveriesMax < 1 || deliveriesMax > DELIVERIES_MAX_LIMIT) {
    throw new FerryError('INVALID_ARGUMENT', `deliveriesMax must be an integer from 1 to ${DELIVERIES_MAX_LIMIT}`);
  }
  checkName('dead-letter topic', deadLetterTopic);
  return { ackTimeoutMs, backoffMs: [...backoffMs], deliveriesMax, deadLetterTopic };
}

export function validateTopicConfig(config: TopicConfig): TopicConfig {
  const { partitions, durability, syncIntervalMs, segmentBytes, retention } = config;
  const dedupWindowMs = config.dedupWindowMs ?? DEFAULT_DEDUP_WINDOW_MS;
  if (!Number.isInteger(dedupWindowMs) || dedupWindowMs < 0) {
    throw new FerryError('INVALID_ARGUMENT', 'dedupWindowMs must be a non-negative integer');
  }
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
  return { partitions, durability, syncIntervalMs, segmentBytes, retention: { ...retention }, dedupWindowMs };
}
