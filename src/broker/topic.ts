/**
 * A topic: a named set of partitions, each its own storage Log, plus the groups and stream
 * subscriptions reading it. Publishing routes each message to a partition and appends every
 * partition's share with one append call (one batch, one group commit).
 *
 * Layout: <dir>/topic.json (config, written atomically), <dir>/partitions/<n>/ (a Log),
 * <dir>/groups/<name>/ (a GroupStore).
 */
import { join } from 'node:path';
import type { Clock } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import type { Logger } from '../platform/logger.js';
import { writeFileAtomic } from '../platform/atomic-write.js';
import { FerryError } from '../protocol/errors.js';
import { Log } from '../storage/log.js';
import type { RecordInput, RecoveryReport } from '../storage/types.js';
import { Group } from './group.js';
import { GroupStore } from './group-store.js';
import { checkName } from './names.js';
import { Partitioner } from './partitioner.js';
import { StreamSubscription } from './stream-subscription.js';
import type { PublishMessage, PublishResult, StartPosition, TopicConfig, TopicInfo } from './types.js';

export const TOPIC_FILE = 'topic.json';
const TOPIC_FILE_VERSION = 1;
const PARTITIONS_DIR = 'partitions';
const GROUPS_DIR = 'groups';

export interface TopicContext {
  fs: FileSystem;
  clock: Clock;
  logger: Logger;
  tailCacheBytes: number;
  allocateSubscriptionId: () => number;
}

export class Topic {
  private readonly partitioner: Partitioner;
  private readonly groups = new Map<string, Group>();
  private readonly groupsOpening = new Map<string, Promise<Group>>();
  private readonly streams = new Set<StreamSubscription>();
  private readonly unsubscribeAdvance: Array<() => void> = [];

  private constructor(
    readonly name: string,
    readonly config: TopicConfig,
    private readonly dir: string,
    readonly logs: Log[],
    private readonly context: TopicContext,
  ) {
    this.partitioner = new Partitioner(config.partitions);
    for (const log of logs) {
      this.unsubscribeAdvance.push(log.onAdvance(() => this.onLogAdvance()));
    }
  }

  /** Creates the topic's files; the caller has checked that it does not exist. */
  static async create(name: string, config: TopicConfig, dir: string, context: TopicContext): Promise<Topic> {
    await context.fs.mkdir(dir);
    const file = { version: TOPIC_FILE_VERSION, name, config, createdAtMs: context.clock.nowMs() };
    await writeFileAtomic(context.fs, join(dir, TOPIC_FILE), Buffer.from(JSON.stringify(file, null, 2)));
    return (await Topic.open(dir, context)).topic;
  }

  static async open(dir: string, context: TopicContext): Promise<{ topic: Topic; recovery: RecoveryReport[] }> {
    const file = JSON.parse((await context.fs.readFile(join(dir, TOPIC_FILE))).toString('utf8')) as {
      version: number;
      name: string;
      config: TopicConfig;
    };
    if (file.version !== TOPIC_FILE_VERSION) {
      throw new FerryError('STORAGE_FAILED', `${join(dir, TOPIC_FILE)} has unknown version ${file.version}`);
    }
    const { config } = file;
    const logs = await Promise.all(
      Array.from({ length: config.partitions }, (_, partition) =>
        Log.open({
          dir: join(dir, PARTITIONS_DIR, String(partition)),
          fs: context.fs,
          clock: context.clock,
          logger: context.logger,
          durability: config.durability,
          syncIntervalMs: config.syncIntervalMs,
          segmentBytes: config.segmentBytes,
          retention: config.retention,
          tailCacheBytes: Math.floor(context.tailCacheBytes / config.partitions),
        }),
      ),
    );
    const topic = new Topic(file.name, config, dir, logs, context);
    const groupsDir = join(dir, GROUPS_DIR);
    if ((await context.fs.stat(groupsDir)) !== null) {
      for (const group of (await context.fs.readdir(groupsDir)).sort()) await topic.openGroup(group, { kind: 'earliest' });
    }
    return { topic, recovery: logs.map((log) => log.recovery) };
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
    const partitionCount = this.logs.length;
    if (partitionCount === 1) {
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

  /** Returns the group, creating it (with `from` as its start) when it does not exist yet. */
  async openGroup(name: string, from: StartPosition): Promise<Group> {
    checkName('group', name);
    const existing = this.groups.get(name);
    if (existing !== undefined) return existing;
    const opening = this.groupsOpening.get(name);
    if (opening !== undefined) return opening;
    const promise = (async () => {
      const store = await GroupStore.open({
        dir: join(this.dir, GROUPS_DIR, name),
        group: name,
        fs: this.context.fs,
        clock: this.context.clock,
        logger: this.context.logger,
        durability: this.config.durability,
        partitions: this.logs.length,
        initialFloors: () => this.startOffsets(from),
      });
      const group = new Group(this.name, name, this.logs, store, this.context.clock, this.context.logger, this.context.allocateSubscriptionId);
      this.groups.set(name, group);
      return group;
    })();
    this.groupsOpening.set(name, promise);
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

  openStream(id: number, startOffsets: number[], sink: ConstructorParameters<typeof StreamSubscription>[4], credit: number): StreamSubscription {
    const stream = new StreamSubscription(id, this.name, this.logs, startOffsets, sink, credit, this.context.logger, (closed) =>
      this.streams.delete(closed),
    );
    this.streams.add(stream);
    return stream;
  }

  private onLogAdvance(): void {
    for (const group of this.groups.values()) group.onLogAdvance();
    for (const stream of this.streams) stream.onLogAdvance();
  }

  async close(): Promise<void> {
    for (const unsubscribe of this.unsubscribeAdvance) unsubscribe();
    for (const stream of [...this.streams]) await stream.close();
    await Promise.all([...this.groups.values()].map((group) => group.close()));
    this.groups.clear();
    await Promise.all(this.logs.map((log) => log.close()));
  }
}
