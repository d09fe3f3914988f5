/**
 * LogOptions with every default filled in and every value checked: a bad option is an
 * INVALID_ARGUMENT from `Log.open`, never a surprise later.
 */
import type { Clock } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import { silentLogger, type Logger } from '../platform/logger.js';
import { FerryError } from '../errors.js';
import {
  BATCH_BYTES_MAX,
  DEFAULT_CHECKPOINT_INTERVAL_MS,
  DEFAULT_INDEX_INTERVAL_BYTES,
  DEFAULT_RETENTION_CHECK_INTERVAL_MS,
  DEFAULT_SEGMENT_AGE_MS,
  DEFAULT_SEGMENT_BYTES,
  DEFAULT_SYNC_INTERVAL_MS,
  DEFAULT_TAIL_CACHE_BYTES,
  INDEX_INTERVAL_BYTES_MIN,
  SEGMENT_BYTES_MAX,
  SEGMENT_BYTES_MIN,
} from './limits.js';
import { DURABILITY_MODES, type Durability, type LogOptions, type RetentionPolicy, type StorageObserver } from './types.js';
import type { TailCacheBudget } from './tail-cache.js';
import type { WriteBufferPool } from './write-buffers.js';

/** Leader epochs are stored as u32. */
const LEADER_EPOCH_MAX = 0xffff_ffff;

export interface LogConfig {
  dir: string;
  fs: FileSystem;
  clock: Clock;
  logger: Logger;
  durability: Durability;
  syncIntervalMs: number;
  segmentBytes: number;
  segmentAgeMs: number;
  indexIntervalBytes: number;
  tailCacheBytes: number;
  retention: RetentionPolicy | null;
  leaderEpoch: number;
  checkpointIntervalMs: number;
  retentionCheckIntervalMs: number;
  observer: StorageObserver | null;
  tailCacheBudget: TailCacheBudget | null;
  writeBuffers: WriteBufferPool | null;
  batchBytesMax: number;
  stampAgeMs: ((stampMs: number) => number) | null;
}

function invalid(message: string): never {
  throw new FerryError('INVALID_ARGUMENT', message);
}

function integerIn(name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const resolved = value ?? fallback;
  if (!Number.isSafeInteger(resolved) || resolved < min || resolved > max) invalid(`${name} must be an integer in ${min}..${max}, got ${resolved}`);
  return resolved;
}

export function resolveLogConfig(options: LogOptions): LogConfig {
  if (typeof options.dir !== 'string' || options.dir.length === 0) invalid('dir is required');
  if (!DURABILITY_MODES.includes(options.durability)) invalid(`durability must be one of ${DURABILITY_MODES.join(', ')}`);
  const retention = options.retention ?? null;
  if (retention !== null) {
    integerIn('retention.ageMs', retention.ageMs, 0, 0, Number.MAX_SAFE_INTEGER);
    integerIn('retention.bytesMax', retention.bytesMax, 0, 0, Number.MAX_SAFE_INTEGER);
    integerIn('retention.recordsMax', retention.recordsMax, 0, 0, Number.MAX_SAFE_INTEGER);
  }
  const hasRetention = retention !== null && (retention.ageMs !== undefined || retention.bytesMax !== undefined || retention.recordsMax !== undefined);
  return {
    dir: options.dir,
    fs: options.fs,
    clock: options.clock,
    logger: options.logger ?? silentLogger,
    durability: options.durability,
    syncIntervalMs: integerIn('syncIntervalMs', options.syncIntervalMs, DEFAULT_SYNC_INTERVAL_MS, 1, 3_600_000),
    segmentBytes: integerIn('segmentBytes', options.segmentBytes, DEFAULT_SEGMENT_BYTES, SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX),
    segmentAgeMs: integerIn('segmentAgeMs', options.segmentAgeMs, DEFAULT_SEGMENT_AGE_MS, 1, Number.MAX_SAFE_INTEGER),
    indexIntervalBytes: integerIn('indexIntervalBytes', options.indexIntervalBytes, DEFAULT_INDEX_INTERVAL_BYTES, INDEX_INTERVAL_BYTES_MIN, SEGMENT_BYTES_MAX),
    tailCacheBytes: integerIn('tailCacheBytes', options.tailCacheBytes, DEFAULT_TAIL_CACHE_BYTES, 0, Number.MAX_SAFE_INTEGER),
    retention: hasRetention ? retention : null,
    leaderEpoch: integerIn('leaderEpoch', options.leaderEpoch, 0, 0, LEADER_EPOCH_MAX),
    checkpointIntervalMs: integerIn('checkpointIntervalMs', options.checkpointIntervalMs, DEFAULT_CHECKPOINT_INTERVAL_MS, 0, 3_600_000),
    retentionCheckIntervalMs: integerIn('retentionCheckIntervalMs', options.retentionCheckIntervalMs, DEFAULT_RETENTION_CHECK_INTERVAL_MS, 1, 86_400_000),
    observer: options.observer ?? null,
    tailCacheBudget: options.tailCacheBudget ?? null,
    writeBuffers: options.writeBuffers ?? null,
    batchBytesMax: integerIn('batchBytesMax', options.batchBytesMax, BATCH_BYTES_MAX, 1024, BATCH_BYTES_MAX),
    stampAgeMs: options.stampAgeMs ?? null,
  };
}
