/**
 * A topic: a named set of partitions, each its own storage Log, plus the groups and stream
 * subscriptions reading it. Publishing routes each message to a partition and appends every
 * partition's share with one append call (one batch, one group commit).
 *
 * Layout: <dir>/topic.json (config, written atomically), <dir>/partitions/<n>/ (a Log),
 * <dir>/groups/<name>/ (a GroupStore).
 */
import { basename, join } from 'node:path';
import type { Clock } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import type { Logger } from '../platform/logger.js';
import { mkdirDurable, removeTree, writeFileAtomic } from '../platform/atomic-write.js';
import { FerryError, type ErrorCode } from '../errors.js';
import type { Header, LogFactory, PartitionLog, RecordInput, RecoveryReport, StorageObserver } from '../storage/types.js';
import type { TailCacheBudget } from '../storage/tail-cache.js';
import type { WriteBufferPool } from '../storage/write-buffers.js';
import type { DeadLetterTarget } from './delivery/dead-letter.js';
import { DEFAULT_DEDUP_WINDOW_MS, DedupIndex, ID_HEADER, type DedupEntry } from './dedup.js';
import { PARTITION_HEADER as DELAY_PARTITION_HEADER } from './delay/headers.js';
import { DelayStore } from './delay/store.js';
import { Group } from './delivery/group.js';
import { GroupStore } from './delivery/group-store.js';
import type { GroupReplay } from './delivery/group-snapshots.js';
import { DELAY_MS_MAX, MESSAGE_ID_BYTES_MAX } from './limits.js';
import { checkName } from './names.js';
import { Partitioner } from './partitioner.js';
import { removedIfIncomplete, type Quarantine } from './recovery.js';
import type { WallHistory } from './wall-clock/wall-history.js';
import { StreamSubscription } from './delivery/stream-subscription.js';
import type { DeliverySink, GroupConfig, PublishMessage, PublishResult, StartPosition, TopicConfig, TopicInfo } from './types.js';
import { DELAYED_DIR, GROUPS_DIR, partitionLogOptions, TOPIC_FILE, TOPIC_FILE_VERSION, topicFile } from './topic-layout.js';

export { TOPIC_FILE } from './topic-layout.js';

/** What the broker gives every topic: services shared by all of them, and the broker's own callbacks. */
export interface TopicContext extends TopicServices {
  allocateSubscriptionId: () => number;
  deadLetters: DeadLetterTarget;
}

/** The broker's services, built before the broker itself (broker.ts `open`). */
export interface TopicServices {
  fs: FileSystem;
  clock: Clock;
  logger: Logger;
  random: () => number;
  /** The broker's one tail-cache budget, shared by every partition of every topic. */
  tailCacheBudget: TailCacheBudget;
  /** The broker's one pool of batch encode buffers, shared by every log it opens. */
  writeBuffers: WriteBufferPool;
  storageObserver: StorageObserver | null;
  /** Fills in and checks a group's configuration for a new group of `topic`. */
  resolveGroupConfig: (topic: string, options: Partial<GroupConfig>) => GroupConfig;
  /** The wall clock's steps on this boot: how old stored timestamps are (retention, dedup). */
  wallHistory: WallHistory;
  /** Opens every log of the topic: partitions, group journals, the delay log. */
  openLog: LogFactory;
  /** Moves a topic or group directory that does not open aside (recovery.ts). */
  quarantine: Quarantine;
  /**
   * Cluster mode: every log is a replica that replication holds open and followers copy, so the
   * broker never removes a log's files (a group whose creation failed leaves its journal to
   * replication; a creation later takes it up). Single node: a failed creation leaves nothing.
   */
  replicated: boolean;
  /** Cluster mode: a group's journal as replayed while this broker followed it (GroupStoreOptions.warmReplay). */
  warmGroupReplay?: (topic: string, group: string) => Promise<GroupReplay | null>;
}

export class Topic {
  private readonly partitioner: Partitioner;
  private readonly groups = new Map<string, Group>();
  private readonly groupsOpening = new Map<string, Promise<Group>>();
  private readonly streams = new Set<StreamSubscription>();
  private readonly unsubscribeAdvance: Array<() => void> = [];
  private readonly dedup: DedupIndex;
  private delayStore: Promise<DelayStore> | null = null;
  private closing = false;

  private constructor(
    readonly name: string,
    readonly config: TopicConfig,
    private readonly dir: string,
    readonly logs: PartitionLog[],
    private readonly context: TopicContext,
  ) {
    this.partitioner = new Partitioner(config.partitions);
    this.dedup = new DedupIndex(config.dedupWindowMs ?? DEFAULT_DEDUP_WINDOW_MS, context.clock, context.wallHistory);
    for (const log of logs) {
      this.unsubscribeAdvance.push(log.onAdvance(() => this.onLogAdvance()));
    }
  }

  /** Creates the topic's files; the caller has checked the name and that it does not exist. A failed creation leaves nothing. */
  static async create(name: string, config: TopicConfig, dir: string, context: TopicContext): Promise<Topic> {
    await mkdirDurable(context.fs, dir);
    try {
      await writeFileAtomic(context.fs, join(dir, TOPIC_FILE), topicFile(name, config, context.clock.nowMs()));
      return (await Topic.open(dir, context)).topic;
    } catch (error) {
      await removeTree(context.fs, dir).catch(() => undefined);
      throw error;
    }
  }

  /**
   * A topic directory at the broker's open: the topic, or null when it was an incomplete creation
   * (removed) or does not open (moved to quarantine; recovery.ts). One bad directory never stops the broker.
   */
  static async openEntry(dir: string, name: string, context: TopicContext): Promise<{ topic: Topic; recovery: RecoveryReport[] } | null> {
    try {
      // A creation that crashed before its topic.json was renamed into place.
      if (await removedIfIncomplete(context.fs, dir, TOPIC_FILE, context.logger, 'broker.topic.incomplete_removed', {})) return null;
      return await Topic.open(dir, context);
    } catch (error) {
      await context.quarantine({ kind: 'topic', path: dir, topic: name }, error);
      return null;
    }
  }

  /** Opens a topic's directory; throws (having closed what it opened) when it does not open. */
  static async open(dir: string, context: TopicContext): Promise<{ topic: Topic; recovery: RecoveryReport[] }> {
    const path = join(dir, TOPIC_FILE);
    const file = JSON.parse((await context.fs.readFile(path)).toString('utf8')) as {
      version: number;
      name: string;
      config: TopicConfig;
    };
    if (file.version !== TOPIC_FILE_VERSION) {
      throw new FerryError('STORAGE_FAILED', `${path} has unknown version ${file.version}`);
    }
    checkName('topic', file.name);
    if (file.name !== basename(dir)) throw new FerryError('STORAGE_FAILED', `${path} names topic ${file.name}, not ${basename(dir)}`);
    const { config } = file;
    const opening = await Promise.allSettled(
      Array.from({ length: config.partitions }, (_, partition) =>
        context.openLog(partitionLogOptions(dir, partition, config, context), { kind: 'partition', topic: file.name, partition }),
      ),
    );
    const logs = opening.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failed = opening.find((result) => result.status === 'rejected');
    if (failed !== undefined) {
      await Promise.all(logs.map((log) => log.close().catch(() => undefined)));
      throw failed.reason;
    }
    const topic = new Topic(file.name, config, dir, logs, context);
    try {
      if ((await context.fs.stat(join(dir, DELAYED_DIR))) !== null) {
        const delays = await topic.delayed();
        await topic.dedup.rebuild(logs, { log: delays.delayLog, partitionHeader: DELAY_PARTITION_HEADER });
      } else {
        await topic.dedup.rebuild(logs);
      }
    } catch (error) {
      await topic.close().catch(() => undefined);
      throw error;
    }
    return { topic, recovery: logs.map((log) => log.recovery) };
  }

  /**
   * Opens the groups found on disk (after every topic is open: recovery may write dead letters). A
   * group whose creation crashed before its first snapshot is removed; one that does not open is
   * moved to quarantine (recovery.ts) and the topic serves without it.
   */
  async openExistingGroups(): Promise<void> {
    const { fs } = this.context;
    const groupsDir = join(this.dir, GROUPS_DIR);
    if ((await fs.stat(groupsDir)) === null) return;
    for (const name of (await fs.readdir(groupsDir)).sort()) {
      const dir = join(groupsDir, name);
      try {
        await this.openExistingGroup(name);
      } catch (error) {
        await this.context.quarantine({ kind: 'group', path: dir, topic: this.name, group: name }, error);
      }
    }
  }

  get groupNames(): string[] {
    return [...this.groups.keys()].sort();
  }

  group(name: string): Group | undefined {
    return this.groups.get(name);
  }

  info(): TopicInfo {
    return {
      name: this.name,
      config: this.config,
      partitions: this.logs.map((log, partition) => {
        const stats = log.stats();
        return {
          partition,
          startOffset: stats.startOffset,
          nextOffset: stats.nextOffset,
          syncedOffset: stats.syncedOffset,
          segments: stats.segments,
          bytes: stats.bytes,
        };
      }),
      groups: this.groupNames,
    };
  }

  async publish(messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    let hasId = false;
    let hasDelay = false;
    for (const message of messages) {
      if (message.id !== undefined) {
        hasId = true;
        checkMessageId(message.id);
      }
      if (message.delayMs !== undefined || message.deliverAtMs !== undefined) {
        hasDelay = true;
        checkDelay(message);
      }
    }
    if (hasId) return this.publishWithIds(messages);
    return hasDelay ? this.store(messages) : this.append(messages);
  }

  /** The topic's delayed-message store, opened on first use (never once the topic is closing). */
  private delayed(): Promise<DelayStore> {
    if (this.closing && this.delayStore === null) return Promise.reject(new FerryError('LOG_CLOSED', 'topic is closing'));
    this.delayStore ??= DelayStore.open({
      dir: join(this.dir, DELAYED_DIR),
      fs: this.context.fs,
      clock: this.context.clock,
      logger: this.context.logger,
      durability: this.config.durability,
      syncIntervalMs: this.config.syncIntervalMs,
      topic: this.name,
      observer: this.context.storageObserver,
      writeBuffers: this.context.writeBuffers,
      mainLogs: this.logs,
      deliver: (messages) => this.append(messages),
      openLog: (options) => this.context.openLog(options, { kind: 'delay', topic: this.name }),
    });
    return this.delayStore;
  }

  /** Stores messages: due ones in the partition logs, later ones in the delay store. */
  private async store(messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    const nowMs = this.context.clock.nowMs();
    const immediate: PublishMessage[] = [];
    const immediateIndexes: number[] = [];
    const later: Array<{ message: PublishMessage; deliverAtMs: number }> = [];
    const laterIndexes: number[] = [];
    messages.forEach((message, index) => {
      const deliverAtMs = message.deliverAtMs ?? (message.delayMs === undefined ? undefined : nowMs + message.delayMs);
      if (deliverAtMs !== undefined && deliverAtMs - nowMs > DELAY_MS_MAX) {
        throw new FerryError('INVALID_ARGUMENT', `a message can be delayed by at most ${DELAY_MS_MAX} ms`);
      }
      if (deliverAtMs === undefined || deliverAtMs <= nowMs) {
        immediate.push(message);
        immediateIndexes.push(index);
        return;
      }
      // The partition is chosen now, so the publish reply can name it.
      const partition = message.partition ?? this.partitioner.partitionFor(message.key);
      later.push({ message: { ...message, partition }, deliverAtMs });
      laterIndexes.push(index);
    });
    if (later.length === 0) return this.append(messages);
    const stepping = this.context.wallHistory.observe();
    if (stepping !== undefined) await stepping;
    const [stored, scheduled] = await Promise.all([
      immediate.length === 0 ? Promise.resolve([]) : this.append(immediate),
      this.delayed().then((delays) => delays.add(later)),
    ]);
    const results = new Array<PublishResult>(messages.length);
    immediateIndexes.forEach((index, position) => (results[index] = stored[position]!));
    laterIndexes.forEach((index, position) => {
      const { offset, deliverAtMs, durability } = scheduled[position]!;
      results[index] = { partition: later[position]!.message.partition!, offset, durability, deliverAtMs };
    });
    return results;
  }

  /** Exactly-once publish: duplicates within the window are answered from the index. */
  private async publishWithIds(messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    const results = new Array<PublishResult | Promise<PublishResult>>(messages.length);
    const fresh: PublishMessage[] = [];
    const freshIndexes: number[] = [];
    const seenInBatch = new Map<string, number>();
    /** The ids stored by this publish, and where each is among `fresh`. */
    const freshIds: string[] = [];
    const freshIdPositions: number[] = [];
    for (let index = 0; index < messages.length; index++) {
      const message = messages[index]!;
      const id = message.id;
      if (id === undefined) {
        freshIndexes.push(index);
        fresh.push(message);
        continue;
      }
      const known = this.dedup.lookup(id);
      if (known !== undefined) {
        results[index] = Promise.resolve(known).then(async (entry) => {
          if (entry === undefined) throw new FerryError('BROKER_BUSY', `the first publish of id ${id} failed; publish it again`);
          // Answered only once the first copy is as durable as a first publish would be (committed, in a cluster).
          await (entry.delayed === true ? (await this.delayed()).delayLog : this.logs[entry.partition]!).whenVisible(entry.offset);
          return duplicateResult(entry);
        });
        continue;
      }
      const earlier = seenInBatch.get(id);
      if (earlier !== undefined) {
        results[index] = -earlier - 1 as unknown as PublishResult; // resolved below from the first one
        continue;
      }
      seenInBatch.set(id, index);
      freshIds.push(id);
      freshIdPositions.push(fresh.length);
      freshIndexes.push(index);
      fresh.push({ ...message, headers: [...(message.headers ?? []), [ID_HEADER, id] as Header] });
    }
    const appended = fresh.length === 0 ? Promise.resolve([]) : this.store(fresh);
    if (freshIds.length > 0) {
      // One reaction for the whole publish, not one per id.
      this.dedup.beginAll(
        freshIds,
        appended.then(
          (stored): DedupEntry[] => {
            const storedAtMs = this.context.clock.nowMs();
            return freshIdPositions.map((position) => ({ partition: stored[position]!.partition, offset: stored[position]!.offset, storedAtMs }));
          },
          () => undefined,
        ),
      );
    }
    const stored = await appended;
    freshIndexes.forEach((index, position) => (results[index] = stored[position]!));
    const resolved = await Promise.all(results.map((result) => (typeof result === 'number' ? result : result)));
    return resolved.map((result) => {
      if (typeof result !== 'number') return result;
      const first = resolved[-(result as number) - 1] as PublishResult;
      return { ...first, duplicate: true };
    });
  }

  private async append(messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    // A wall-clock step is on record before anything is stamped in its epoch (wall-history.ts).
    const stepping = this.context.wallHistory.observe();
    if (stepping !== undefined) await stepping;
    const partitionCount = this.logs.length;
    if (partitionCount === 1 && messages.every((message) => message.partition === undefined || message.partition === 0)) {
      const result = await this.logs[0]!.append(messages as readonly RecordInput[]);
      return messages.map((_, index) => ({ partition: 0, offset: result.baseOffset + index, durability: result.durability }));
    }
    const byPartition: RecordInput[][] = Array.from({ length: partitionCount }, () => []);
    const route = new Array<number>(messages.length);
    for (let index = 0; index < messages.length; index++) {
      const message = messages[index]!;
      const partition = message.partition ?? this.partitioner.partitionFor(message.key);
      if (!Number.isInteger(partition) || partition < 0 || partition >= partitionCount) {
        throw new FerryError('INVALID_ARGUMENT', `topic ${this.name} has no partition ${partition}`);
      }
      route[index] = partition;
      byPartition[partition]!.push(message);
    }
    const appended = await Promise.all(
      byPartition.map((records, partition) => (records.length === 0 ? null : this.logs[partition]!.append(records))),
    );
    const positionInPartition = new Array<number>(partitionCount).fill(0);
    return route.map((partition) => {
      const result = appended[partition]!;
      const offset = result.baseOffset + positionInPartition[partition]!;
      positionInPartition[partition]! += 1;
      return { partition, offset, durability: result.durability };
    });
  }

  /**
   * Waits until what a publish stored is synced, whatever the topic's durability: for a settle in
   * another log that must not reach the disk first. A duplicate answer syncs its partition too: its
   * first copy may only be written (`interval`/`never`).
   */
  async syncStored(results: readonly PublishResult[]): Promise<void> {
    const partitions = new Set<number>();
    for (const result of results) if (result.durability !== 'synced' || result.duplicate === true) partitions.add(result.partition);
    await Promise.all([...partitions].map((partition) => this.logs[partition]!.sync()));
  }

  /** Returns the group, creating it (with `from` and `options` as its start and configuration) when new. */
  async openGroup(name: string, from: StartPosition, options: Partial<GroupConfig> = {}): Promise<Group> {
    return (await this.openGroupOnce(name, from, options, false))!;
  }

  /** Opens a group found on disk; null when its directory was an unfinished creation (then removed). */
  private openExistingGroup(name: string): Promise<Group | null> {
    return this.openGroupOnce(name, { kind: 'earliest' }, {}, true);
  }

  private async openGroupOnce(name: string, from: StartPosition, options: Partial<GroupConfig>, existingOnly: boolean): Promise<Group | null> {
    checkName('group', name);
    const existing = this.groups.get(name);
    if (existing !== undefined) return existing;
    const opening = this.groupsOpening.get(name);
    if (opening !== undefined) return opening;
    const promise = (async (): Promise<Group | null> => {
      const store = await GroupStore.open({
        dir: join(this.dir, GROUPS_DIR, name),
        group: name,
        fs: this.context.fs,
        clock: this.context.clock,
        logger: this.context.logger,
        durability: this.config.durability,
        partitions: this.logs.length,
        observer: this.context.storageObserver,
        writeBuffers: this.context.writeBuffers,
        openLog: (options) => this.context.openLog(options, { kind: 'group-journal', topic: this.name, group: name }),
        initial: async () => ({ config: this.context.resolveGroupConfig(this.name, options), floors: await this.startOffsets(from) }),
        existingOnly,
        keepFiles: this.context.replicated,
        warmReplay: async () => (await this.context.warmGroupReplay?.(this.name, name)) ?? null,
      });
      if (store === null) return null;
      let group: Group;
      try {
        group = await Group.open({
          topic: this.name,
          name,
          logs: this.logs,
          store,
          clock: this.context.clock,
          logger: this.context.logger,
          random: this.context.random,
          allocateSubscriptionId: this.context.allocateSubscriptionId,
          deadLetters: this.context.deadLetters,
        });
      } catch (error) {
        // Nothing stays open, and a group this call created leaves no directory behind (but a
        // replicated journal stays with replication: see TopicServices.replicated).
        await store.close().catch(() => undefined);
        if (store.createdNow && !this.context.replicated) await removeTree(this.context.fs, join(this.dir, GROUPS_DIR, name)).catch(() => undefined);
        throw error;
      }
      this.groups.set(name, group);
      return group;
    })();
    this.groupsOpening.set(name, promise as Promise<Group>);
    try {
      return await promise;
    } finally {
      this.groupsOpening.delete(name);
    }
  }

  /** Where each partition starts for a start position. */
  async startOffsets(from: StartPosition): Promise<number[]> {
    return Promise.all(
      this.logs.map(async (log) => {
        switch (from.kind) {
          case 'earliest':
            return log.startOffset;
          case 'latest':
            return log.nextOffset;
          case 'offset':
            return Math.min(Math.max(from.offset, log.startOffset), log.nextOffset);
          case 'timestamp':
            return log.offsetForTimestamp(from.timestampMs);
        }
      }),
    );
  }

  openStream(id: number, startOffsets: number[], sink: DeliverySink, credit: number): StreamSubscription {
    const stream = new StreamSubscription(id, this.name, this.logs, startOffsets, sink, credit, this.context.logger, (closed) =>
      this.streams.delete(closed),
    );
    this.streams.add(stream);
    return stream;
  }

  /** Stops new deliveries to the topic's groups (see Group.quiesce); returns how many are in flight. */
  quiesceDeliveries(): number {
    let inFlight = 0;
    for (const group of this.groups.values()) {
      group.quiesce();
      inFlight += group.inFlightCount;
    }
    return inFlight;
  }

  private onLogAdvance(): void {
    for (const group of this.groups.values()) group.onLogAdvance();
    for (const stream of this.streams) stream.onLogAdvance();
  }

  /** Closes everything; with a reason (the topic was deleted), subscribers are told why. */
  async close(reason?: string, code?: ErrorCode): Promise<void> {
    this.closing = true;
    for (const unsubscribe of this.unsubscribeAdvance) unsubscribe();
    for (const stream of [...this.streams]) await stream.close({ reason, code });
    await Promise.all([...this.groupsOpening.values()].map((opening) => opening.catch(() => undefined)));
    if (this.delayStore !== null) await (await this.delayStore).close();
    await Promise.all([...this.groups.values()].map((group) => group.close(reason, code)));
    this.groups.clear();
    await Promise.all(this.logs.map((log) => log.close()));
  }
}

function checkMessageId(id: unknown): void {
  if (typeof id !== 'string' || id.length === 0 || Buffer.byteLength(id) > MESSAGE_ID_BYTES_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `a message id must be a non-empty string of at most ${MESSAGE_ID_BYTES_MAX} bytes`);
  }
}

function checkDelay(message: PublishMessage): void {
  const { delayMs, deliverAtMs } = message;
  if (delayMs !== undefined && (!Number.isSafeInteger(delayMs) || delayMs < 0 || delayMs > DELAY_MS_MAX)) {
    throw new FerryError('INVALID_ARGUMENT', `delayMs must be an integer from 0 to ${DELAY_MS_MAX}`);
  }
  if (deliverAtMs !== undefined && (!Number.isSafeInteger(deliverAtMs) || deliverAtMs < 0)) {
    throw new FerryError('INVALID_ARGUMENT', 'deliverAtMs must be a time in ms since the epoch');
  }
}

function duplicateResult(entry: DedupEntry): PublishResult {
  return { partition: entry.partition, offset: entry.offset, durability: 'synced', duplicate: true };
}
