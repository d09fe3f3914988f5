/**
 * A topic's directory: its settings file, and where and how each of its logs is stored. One module,
 * so the topic, its groups and delay store, and a replica of the topic on another broker all name
 * the same files with the same options.
 *
 *   <topic>/topic.json                    settings (written atomically)
 *   <topic>/partitions/<n>/               partition n's log
 *   <topic>/groups/<group>/journal/       a queue group's journal (group-store.ts)
 *   <topic>/delayed/log/                  the delay log; the rest of delayed/ is derived from it
 */
import { join } from 'node:path';
import { mkdirDurable, removeTree, writeFileAtomic } from '../platform/atomic-write.js';
import type { FileSystem } from '../platform/fs.js';
import { FerryError } from '../errors.js';
import type { LogOptions } from '../storage/types.js';
import { delayLogOptions, dropDerivedDelayState } from './delay/store.js';
import { GROUP_JOURNAL_DIR, groupJournalOptions } from './delivery/group-store.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { StorageObserver } from '../storage/types.js';
import type { TailCacheBudget } from '../storage/tail-cache.js';
import type { WriteBufferPool } from '../storage/write-buffers.js';
import type { WallHistory } from './wall-clock/wall-history.js';
import type { TopicConfig } from './types.js';

export const TOPIC_FILE = 'topic.json';
export const TOPIC_FILE_VERSION = 1;
export const PARTITIONS_DIR = 'partitions';
export const GROUPS_DIR = 'groups';
export const DELAYED_DIR = 'delayed';

/** The contents of topic.json. */
export interface TopicFile {
  version: number;
  name: string;
  config: TopicConfig;
  createdAtMs: number;
}

export function topicFile(name: string, config: TopicConfig, createdAtMs: number): Buffer {
  const file: TopicFile = { version: TOPIC_FILE_VERSION, name, config, createdAtMs };
  return Buffer.from(JSON.stringify(file, null, 2));
}

/** The broker's services a topic's logs are opened with (a part of the topic context). */
export interface LogServices {
  fs: FileSystem;
  clock: Clock;
  logger: Logger;
  tailCacheBudget: TailCacheBudget;
  writeBuffers: WriteBufferPool;
  storageObserver: StorageObserver | null;
  wallHistory: WallHistory;
}

/** A partition log's options. Every log may use the whole tail-cache budget; together they stay within it. */
export function partitionLogOptions(topicDir: string, partition: number, config: TopicConfig, services: LogServices): LogOptions {
  return {
    dir: join(topicDir, PARTITIONS_DIR, String(partition)),
    fs: services.fs,
    clock: services.clock,
    logger: services.logger,
    durability: config.durability,
    syncIntervalMs: config.syncIntervalMs,
    segmentBytes: config.segmentBytes,
    retention: config.retention,
    tailCacheBytes: services.tailCacheBudget.bytesMax,
    tailCacheBudget: services.tailCacheBudget,
    writeBuffers: services.writeBuffers,
    stampAgeMs: (stampMs) => services.wallHistory.ageMs(stampMs),
    ...(services.storageObserver === null ? {} : { observer: services.storageObserver }),
  };
}

function storeOptions(config: TopicConfig, services: LogServices) {
  return {
    fs: services.fs,
    clock: services.clock,
    logger: services.logger,
    durability: config.durability,
    syncIntervalMs: config.syncIntervalMs,
    observer: services.storageObserver,
    writeBuffers: services.writeBuffers,
  };
}

/** The options of the log a replication log id names (`p<N>`, `d`, `g/<group>`). */
export function logOptionsFor(topicDir: string, logId: string, config: TopicConfig, services: LogServices): LogOptions {
  const partition = /^p(\d+)$/.exec(logId);
  if (partition !== null) return partitionLogOptions(topicDir, Number(partition[1]), config, services);
  if (logId === 'd') return delayLogOptions(join(topicDir, DELAYED_DIR), storeOptions(config, services));
  if (logId.startsWith('g/') && logId.length > 2) return groupJournalOptions(join(topicDir, GROUPS_DIR, logId.slice(2)), storeOptions(config, services));
  throw new FerryError('INVALID_ARGUMENT', `no log of a topic is named ${logId}`);
}

/** The log ids of what is on disk for a topic: its partitions, its delay log, its group journals. */
export async function localLogIds(fs: FileSystem, topicDir: string, config: TopicConfig): Promise<string[]> {
  const ids = Array.from({ length: config.partitions }, (_, partition) => `p${partition}`);
  if ((await fs.stat(join(topicDir, DELAYED_DIR, 'log'))) !== null) ids.push('d');
  const groupsDir = join(topicDir, GROUPS_DIR);
  if ((await fs.stat(groupsDir)) !== null) {
    for (const group of (await fs.readdir(groupsDir)).sort()) {
      if ((await fs.stat(join(groupsDir, group, GROUP_JOURNAL_DIR))) !== null) ids.push(`g/${group}`);
    }
  }
  return ids;
}

/** Writes a replica's directory and topic.json, unless they exist. */
export async function prepareTopicDir(fs: FileSystem, topicDir: string, name: string, config: TopicConfig, createdAtMs: number): Promise<void> {
  if ((await fs.stat(join(topicDir, TOPIC_FILE))) !== null) return;
  await mkdirDurable(fs, topicDir);
  await writeFileAtomic(fs, join(topicDir, TOPIC_FILE), topicFile(name, config, createdAtMs));
}

/**
 * Drops what the topic's service derives from its logs (the delay store's index), keeping the
 * logs: a broker that stops leading must not trust it when it leads again. (A group's snapshots are
 * in its journal, which replication keeps right.)
 */
export async function dropDerivedState(fs: FileSystem, topicDir: string): Promise<void> {
  await dropDerivedDelayState(fs, join(topicDir, DELAYED_DIR));
}

/** Removes a topic's directory, durably. */
export async function removeTopicDir(fs: FileSystem, topicDir: string): Promise<void> {
  await removeTree(fs, topicDir);
}
