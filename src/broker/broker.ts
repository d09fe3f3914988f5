/**
 * The broker: the one core behind every way in (embedded calls, and the transports over it).
 * Data directory: <dir>/topics/<name>/ per topic (topic.ts), <dir>/trash/ for deleted ones.
 */
import { join } from 'node:path';
import { SystemClock, type Clock } from '../platform/clock.js';
import { NodeFileSystem, type FileSystem } from '../platform/fs.js';
import { silentLogger, type Logger } from '../platform/logger.js';
import { mkdirDurable, removeTree } from '../platform/atomic-write.js';
import type { DirLock } from '../platform/dir-lock.js';
import { BrokerTracing } from './tracing.js';
import { FerryError } from '../errors.js';
import { DEFAULT_TAIL_CACHE_BYTES } from '../storage/limits.js';
import type { LogFactory, RecoveryReport, StorageObserver } from '../storage/types.js';
import { Log } from '../storage/log.js';
import { TailCacheBudget } from '../storage/tail-cache.js';
import { WriteBufferPool } from '../storage/write-buffers.js';
import { PUBLISH_MESSAGES_MAX } from '../protocol/limits.js';
import { priorityHeader } from '../protocol/priority.js';
import { reservedHeaderRefusal } from '../protocol/reserved-headers.js';
import { CREDIT_MAX } from './limits.js';
import { MessageStream } from './message-stream.js';
import { Admission, type AdmissionOptions } from './admission.js';
import { isCopyOf, type DeadLetterSource, type DeadLetterTarget } from './delivery/dead-letter.js';
import { DEFAULT_GROUP_CONFIG, DEFAULT_TOPIC_CONFIG, resolveGroupConfig, stripUndefined, validateTopicConfig } from './config.js';
import { redrive } from './redrive.js';
import { WallHistory } from './wall-clock/wall-history.js';
import { checkClientGroup, checkName } from './names.js';
import { quarantiner } from './recovery.js';
import { Topic, type TopicContext, type TopicServices } from './topic.js';
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
import type { ConsumeOptions, PublishOptions } from './types.js';

export type { ConsumeOptions, PublishOptions } from './types.js';

const TOPICS_DIR = 'topics';
const TRASH_DIR = 'trash';
/** Credit a subscription starts with when the caller names none. */
export const DEFAULT_CREDIT = 256;

/** How often a draining topic looks whether its deliveries in flight were settled. */
const DRAIN_POLL_MS = 5;
/** Dead letters read per log read while searching for a copy. */
const DEAD_LETTER_READ_RECORDS = 512;

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
  /**
   * `all` (default): every topic on disk opens with the broker. `none`: topics open one by one with
   * `openTopic` (cluster mode: a broker serves only the topics it leads).
   */
  topicsAtOpen?: 'all' | 'none';
  /** Topics that live on other brokers (cluster mode): where dead letters and redrives go when a topic is not open here. */
  remote?: RemoteTopics;
  /** Cluster mode: `openLog` gives replicas replication holds open; their files are never removed or moved (TopicServices.replicated). */
  replicated?: boolean;
  /** Cluster mode: a group's journal as replayed while this broker followed it (TopicServices.warmGroupReplay). */
  warmGroupReplay?: TopicServices['warmGroupReplay'];
  /** Spans for dead letters and redrives when `@opentelemetry/api` and an SDK are there (default true; broker/tracing.ts). */
  tracing?: boolean;
}

/** Topics served by other brokers, as dead-lettering and redrive reach them (cluster mode). */
export interface RemoteTopics {
  /** Whether the topic exists somewhere in the cluster. */
  exists(topic: string): boolean;
  /** Creates a dead-letter topic in the cluster, replicated as `like` (its source topic) is (TOPIC_EXISTS when it exists). */
  createDeadLetterTopic(topic: string, like: TopicConfig): Promise<void>;
  /** Publishes through the topic's leader; resolves once committed. */
  publishStored(topic: string, messages: PublishMessage[]): Promise<void>;
  /** A lower bound for the offsets the next message there can get (its committed end). */
  offsetHint(topic: string): Promise<number>;
  /** Whether the topic holds a copy of `source` at or after `fromOffset`. */
  contains(topic: string, fromOffset: number, source: DeadLetterSource): Promise<boolean>;
}

/** What a broker is built from: everything `open` prepares before the broker exists. */
export interface BrokerParts {
  dir: string;
  remote: RemoteTopics | null;
  services: TopicServices;
  topicDefaults: TopicConfig;
  admission: Admission;
  dirLock: DirLock;
  tracing: BrokerTracing | null;
}

export class Broker implements BrokerApi, DeadLetterTarget {
  private readonly topics = new Map<string, Topic>();
  private readonly creating = new Map<string, Promise<Topic>>();
  private nextSubscriptionId = 1;
  private closing = false;
  /** What serves this broker from outside (the TCP server `listen` puts on it, src/index.ts): closed first. */
  private readonly transports = new Set<{ close(): Promise<void> }>();
  /** The embedded subscriptions still open: closing the broker ends their iteration. */
  private readonly streams = new Set<MessageStream>();

  private readonly context: TopicContext;
  /** Recovery reports of the partitions found at open, by topic. */
  readonly recovery = new Map<string, RecoveryReport[]>();
  readonly dir: string;
  private readonly topicDefaults: TopicConfig;
  private readonly admission: Admission;
  private readonly dirLock: DirLock;
  private readonly remote: RemoteTopics | null;
  private readonly tracing: BrokerTracing | null;

  protected constructor(parts: BrokerParts) {
    this.dir = parts.dir;
    this.remote = parts.remote;
    this.tracing = parts.tracing;
    this.topicDefaults = parts.topicDefaults;
    this.admission = parts.admission;
    this.dirLock = parts.dirLock;
    this.context = { ...parts.services, allocateSubscriptionId: () => this.nextSubscriptionId++, deadLetters: this };
  }

  static open(options: BrokerOptions): Promise<Broker> {
    return Broker.build(options, (parts) => new Broker(parts));
  }

  /** Opens a broker built by `construct` (a subclass's constructor) from the parts prepared here. */
  protected static async build<B extends Broker>(options: BrokerOptions, construct: (parts: BrokerParts) => B): Promise<B> {
    const fs = options.fs ?? new NodeFileSystem();
    const clock = options.clock ?? new SystemClock();
    const logger = options.logger ?? silentLogger;
    const topicDefaults = validateTopicConfig({ ...DEFAULT_TOPIC_CONFIG, ...options.topicDefaults });
    const groupDefaults = { ...DEFAULT_GROUP_CONFIG, ...stripUndefined(options.groupDefaults ?? {}) };
    const dirLock = options.dirLock ?? (await lockDataDir(fs, options.dir));
    try {
      await mkdirDurable(fs, join(options.dir, TOPICS_DIR));
      await removeTree(fs, join(options.dir, TRASH_DIR));
      const services: TopicServices = {
        fs,
        clock,
        logger,
        wallHistory: await WallHistory.open({ fs, dir: options.dir, clock, logger }),
        random: options.random ?? Math.random,
        tailCacheBudget: new TailCacheBudget(options.tailCacheBytes ?? DEFAULT_TAIL_CACHE_BYTES),
        writeBuffers: new WriteBufferPool(),
        storageObserver: options.storageObserver ?? null,
        openLog: options.openLog ?? openLocalLog,
        resolveGroupConfig: (topic, groupOptions) => resolveGroupConfig(groupDefaults, topic, groupOptions),
        quarantine: quarantiner(fs, options.dir, clock, logger, options.replicated === true),
        replicated: options.replicated === true,
        ...(options.warmGroupReplay === undefined ? {} : { warmGroupReplay: options.warmGroupReplay }),
      };
      const admission = new Admission(fs, options.dir, clock, logger, options.admission);
      const tracing = options.tracing === false ? null : await BrokerTracing.load();
      const broker = construct({ dir: options.dir, remote: options.remote ?? null, services, topicDefaults, admission, dirLock, tracing });
      if (options.topicsAtOpen !== 'none') await broker.openTopics();
      admission.start();
      return broker;
    } catch (error) {
      await dirLock.release();
      throw error;
    }
  }

  /** Opens every topic found on disk, then their groups. */
  private async openTopics(): Promise<void> {
    const topicsDir = join(this.dir, TOPICS_DIR);
    for (const name of (await this.context.fs.readdir(topicsDir)).sort()) {
      const opened = await Topic.openEntry(join(topicsDir, name), name, this.context);
      if (opened === null) continue;
      this.topics.set(opened.topic.name, opened.topic);
      this.recovery.set(opened.topic.name, opened.recovery);
    }
    // Groups open once every topic is open: finishing an interrupted dead-lettering writes to another topic.
    for (const topic of this.topics.values()) await topic.openExistingGroups();
  }

  /**
   * Opens one topic found on disk and its groups (cluster mode: this broker became its leader).
   * False when it did not open (it was quarantined, or was an unfinished creation).
   */
  async openTopic(name: string): Promise<boolean> {
    this.checkOpen();
    if (this.topics.has(name)) return true;
    const opened = await Topic.openEntry(join(this.dir, TOPICS_DIR, name), name, this.context);
    if (opened === null) return false;
    this.topics.set(name, opened.topic);
    this.recovery.set(name, opened.recovery);
    try {
      await opened.topic.openExistingGroups();
    } catch (error) {
      // A group that cannot open now (the cluster takes no write yet): the topic is not served
      // without it; the next try opens the whole topic again.
      this.topics.delete(name);
      this.recovery.delete(name);
      await opened.topic.close(`topic ${name} did not open: ${(error as Error).message}`, 'NOT_LEADER').catch(() => undefined);
      throw error;
    }
    return true;
  }

  /** Closes one topic's service, keeping its files (cluster mode: leadership moved); subscribers are told `reason`. */
  async closeTopic(name: string, reason: string): Promise<void> {
    const topic = this.topics.get(name);
    if (topic === undefined) return;
    this.topics.delete(name);
    await topic.close(reason, 'NOT_LEADER');
  }

  /**
   * Before a topic's service closes for a controlled handover: no new deliveries to its groups,
   * and up to `timeoutMs` for consumers to settle those in flight (what is left is redelivered by
   * the next leader). Publishes go on meanwhile.
   */
  async drainTopic(name: string, timeoutMs: number): Promise<void> {
    const topic = this.topics.get(name);
    if (topic === undefined) return;
    const deadline = this.context.clock.monotonicMs() + timeoutMs;
    while (topic.quiesceDeliveries() > 0 && this.context.clock.monotonicMs() < deadline && this.topics.get(name) === topic) {
      await new Promise<void>((resolve) => this.context.clock.schedule(DRAIN_POLL_MS, resolve));
    }
  }

  /** Whether the topic is open here. */
  hasTopic(name: string): boolean {
    return this.topics.has(name);
  }

  /** Where a topic's files are, and the services its logs are opened with (cluster mode). */
  topicFiles(name: string): { dir: string; services: TopicServices } {
    checkName('topic', name);
    return { dir: join(this.dir, TOPICS_DIR, name), services: this.context };
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
    if ((resolved.replicas ?? 1) > 1) {
      throw new FerryError('NOT_ENOUGH_REPLICAS', `topic ${name} wants ${resolved.replicas} replicas, but this broker runs alone: start brokers as a cluster (--node-id, --etcd) for replicas`, {
        detail: { replicas: resolved.replicas, alive: 1 },
      });
    }
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

  /** Moves dead letters back to the topics they came from (redrive.ts). */
  redrive(deadLetterTopic: string, options: RedriveOptions = {}): Promise<RedriveResult> {
    this.checkOpen();
    const remote = this.remote;
    return redrive(
      {
        topic: (name) => this.topic(name),
        has: (name) => this.topics.has(name) || remote?.exists(name) === true,
        // A topic led elsewhere: its dead letters' headers can only be a broker's (reserved-headers.ts).
        cameFrom: (source, group, dlq) => (this.topics.has(source) ? this.topics.get(source)!.group(group)?.config.deadLetterTopic === dlq : remote?.exists(source) === true),
        publishStored: (name, messages) => (this.tracing === null ? this.republish(name, messages) : this.tracing.redrive(name, messages, () => this.republish(name, messages))),
      },
      deadLetterTopic,
      options,
      this.context.logger,
    );
  }

  /** A redrive's republish: to the topic here, or through its leader elsewhere (cluster mode); resolves once synced. */
  private async republish(name: string, messages: PublishMessage[]): Promise<void> {
    const remote = this.remote;
    const local = this.topics.get(name);
    if (local !== undefined) await local.syncStored(await local.publish(messages));
    else if (remote !== null) await remote.publishStored(name, messages);
    else throw new FerryError('UNKNOWN_TOPIC', `unknown topic ${name}`);
  }

  // --- DeadLetterTarget: what groups use to dead-letter ---

  async offsetHint(topicName: string): Promise<number> {
    const topic = this.topics.get(topicName);
    if (topic === undefined) return this.remote?.exists(topicName) === true ? this.remote.offsetHint(topicName) : 0;
    // The synced end, not the next offset: a power loss can cut unsynced records, and their offsets
    // go to later appends, so a hint taken at the next offset could end up past the copy.
    // In a cluster, also no further than the high watermark (the visible end): a failover can take back the rest.
    return Math.min(...topic.logs.map((log) => Math.min(log.syncedOffset + 1, log.visibleEndOffset)));
  }

  async contains(topicName: string, fromOffset: number, source: DeadLetterSource): Promise<boolean> {
    const topic = this.topics.get(topicName);
    if (topic === undefined) return this.remote?.exists(topicName) === true ? this.remote.contains(topicName, fromOffset, source) : false;
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

  publishDeadLetter(topicName: string, message: PublishMessage, sourceTopic: string): Promise<void> {
    const store = (): Promise<void> => this.storeDeadLetter(topicName, message, sourceTopic);
    return this.tracing === null ? store() : this.tracing.deadLetter(topicName, message, store);
  }

  private async storeDeadLetter(topicName: string, message: PublishMessage, sourceTopic: string): Promise<void> {
    let topic = this.topics.get(topicName);
    if (topic === undefined && this.remote !== null) {
      // Cluster mode: the dead-letter topic lives wherever the cluster placed it.
      if (!this.remote.exists(topicName)) {
        await this.remote.createDeadLetterTopic(topicName, this.topic(sourceTopic).config).catch((error: unknown) => {
          if (!(error instanceof FerryError && error.code === 'TOPIC_EXISTS')) throw error;
        });
      }
      await this.remote.publishStored(topicName, [message]);
      return;
    }
    if (topic === undefined) {
      try {
        await this.createTopic(topicName, { partitions: 1 });
      } catch (error) {
        if (!(error instanceof FerryError && error.code === 'TOPIC_EXISTS')) throw error;
        await this.creating.get(topicName);
      }
      topic = this.topic(topicName);
    }
    await topic.syncStored(await topic.publish([message]));
  }

  /**
   * Publishes a batch (the transport form), or one message (the embedded form, like the client's).
   * A client's `ferry-*` header other than `ferry-priority` is refused (protocol/reserved-headers.ts).
   */
  publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]>;
  publish(topic: string, value: Buffer | string, options?: PublishOptions): Promise<PublishResult & { topic: string }>;
  async publish(
    topicName: string,
    messagesOrValue: readonly PublishMessage[] | Buffer | string,
    options: PublishOptions = {},
  ): Promise<PublishResult[] | (PublishResult & { topic: string })> {
    if (Array.isArray(messagesOrValue)) {
      const messages = messagesOrValue as readonly PublishMessage[];
      for (const message of messages) {
        const refusal = reservedHeaderRefusal(message.headers);
        if (refusal !== null) throw refusal;
      }
      return this.publishAsBroker(topicName, messages);
    }
    this.checkOpen();
    const topic = this.topic(topicName);
    this.admission.check();
    const value = typeof messagesOrValue === 'string' ? Buffer.from(messagesOrValue) : (messagesOrValue as Buffer);
    const key = options.key === undefined || options.key === null ? null : typeof options.key === 'string' ? Buffer.from(options.key) : options.key;
    const headers: Header[] = options.headers === undefined ? [] : Object.entries(options.headers);
    if (options.priority !== undefined) headers.push(priorityHeader(options.priority));
    const message: PublishMessage = {
      value,
      key,
      headers,
      ...(options.partition === undefined ? {} : { partition: options.partition }),
      ...(options.id === undefined ? {} : { id: options.id }),
      ...(options.delayMs === undefined ? {} : { delayMs: options.delayMs }),
      ...(options.deliverAt === undefined ? {} : { deliverAtMs: options.deliverAt.getTime() }),
    };
    const refusal = reservedHeaderRefusal(headers);
    if (refusal !== null) throw refusal;
    const [result] = await topic.publish([message]);
    return { topic: topicName, ...result! };
  }

  /** A publish that may carry the broker's own `ferry-*` headers (types.ts BrokerApi.publishAsBroker). */
  async publishAsBroker(topicName: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    this.checkOpen();
    const topic = this.topic(topicName);
    this.admission.check();
    if (messages.length === 0) return [];
    if (messages.length > PUBLISH_MESSAGES_MAX) {
      throw new FerryError('BATCH_TOO_LARGE', `a publish carries at most ${PUBLISH_MESSAGES_MAX} messages`);
    }
    return topic.publish(messages);
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
    const stream = new MessageStream(consume.group !== undefined, () => this.streams.delete(stream));
    const { from, prefetch, ...rest } = consume;
    const subscription = await this.subscribeSink(
      topicName,
      { ...rest, from: toStartPosition(from), credit: prefetch ?? DEFAULT_CREDIT },
      stream,
    );
    stream.attach(subscription);
    this.streams.add(stream);
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
      // The broker's own groups (redrive's) are not for subscribers, existing or not.
      checkClientGroup(options.group);
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

  /**
   * Ties a transport's life to this broker's: the broker closes it first when it closes. Returns
   * the function that unties it (the transport closed on its own).
   */
  protected attachTransport(transport: { close(): Promise<void> }): () => void {
    this.transports.add(transport);
    return () => this.transports.delete(transport);
  }

  protected get clock(): Clock {
    return this.context.clock;
  }

  protected get logger(): Logger {
    return this.context.logger;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.admission.stop();
    for (const transport of [...this.transports]) await transport.close();
    // An embedded `for await` ends when its broker closes, as a TCP client's ends when the client closes.
    await Promise.all([...this.streams].map((stream) => stream.close()));
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

  protected checkOpen(): void {
    if (this.closing) throw new FerryError('BROKER_CLOSING', 'broker is closing');
  }
}

/** The single-node log factory: every log is a local `Log`. The one place in the broker that names it. */
const openLocalLog: LogFactory = (options) => Log.open(options);

/** Creates the data directory if needed and takes its lock: one broker per data directory. */
export async function lockDataDir(fs: FileSystem, dir: string): Promise<DirLock> {
  await mkdirDurable(fs, dir);
  return fs.lockDir(dir);
}

export function toStartPosition(from: ConsumeOptions['from']): StartPosition | undefined {
  if (from === undefined) return undefined;
  if (from === 'earliest' || from === 'latest') return { kind: from };
  if (typeof from === 'number') return { kind: 'offset', offset: from };
  if (from instanceof Date) return { kind: 'timestamp', timestampMs: from.getTime() };
  throw new FerryError('INVALID_ARGUMENT', `unknown start position ${String(from)}`);
}
