/**
 * The storage engine's public contract: what the broker (src/broker) and the tests rely on.
 * `PartitionLog` is what the broker uses of a log; `ReplicaLog` adds what replication needs. The
 * implementation is src/storage/log.ts (class `Log`); the broker opens every log through one
 * `LogFactory`, so a replicated log can wrap or replace them all.
 */
import type { Clock } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import type { Logger } from '../platform/logger.js';
import type { EpochEnd, EpochEntry } from './epoch-cache.js';
import type { RangeDigest } from './log-digest.js';
import type { Header, LogRecord, RecordInput } from './record.js';
import type { TailCacheBudget } from './tail-cache.js';
import type { WriteBufferPool } from './write-buffers.js';

/** Per-log durability; the three names are a user-facing contract. */
export const DURABILITY_MODES = ['always', 'interval', 'never'] as const;
export type Durability = (typeof DURABILITY_MODES)[number];

export type { Header, LogRecord, RecordInput };

export interface RetentionPolicy {
  /** Delete a sealed segment once its newest record is older than this. */
  ageMs?: number;
  /** Delete the oldest sealed segments while the log is larger than this. */
  bytesMax?: number;
  /** Delete the oldest sealed segments while the log holds more records than this. */
  recordsMax?: number;
}

/** Told about the storage engine's I/O, for metrics; both calls must be cheap. */
export interface StorageObserver {
  /** One fdatasync of a segment took this long. */
  fsyncCompleted(seconds: number): void;
  /** The writer issued one write holding this many records and bytes. */
  batchWritten(records: number, bytes: number): void;
}

export interface LogOptions {
  dir: string;
  fs: FileSystem;
  clock: Clock;
  logger?: Logger;
  durability: Durability;
  /** `interval` mode: a sync runs at least this often. */
  syncIntervalMs?: number;
  segmentBytes?: number;
  segmentAgeMs?: number;
  indexIntervalBytes?: number;
  tailCacheBytes?: number;
  retention?: RetentionPolicy;
  /**
   * The epoch stamped on new batches when the log holds none newer (a replica's leader raises it
   * with `beginEpoch`).
   */
  leaderEpoch?: number;
  checkpointIntervalMs?: number;
  observer?: StorageObserver;
  /** A memory budget shared with other logs' tail caches (the broker's `tailCacheBytes`). */
  tailCacheBudget?: TailCacheBudget;
  /** Encode buffers shared with other logs (the broker's); by default the log keeps its own. */
  writeBuffers?: WriteBufferPool;
  /**
   * Largest batch one write carries (an append larger than this is still one batch). Reading one
   * record reads its whole batch, so a log read at random offsets wants small batches.
   */
  batchBytesMax?: number;
  /** How often retention runs on its own timer (only when `retention` is set). */
  retentionCheckIntervalMs?: number;
  /**
   * How long ago a record stamped `stampMs` was written, read at open for the segments found (their
   * ages for retention). Default: its age by the wall clock. The broker passes its record of the
   * wall clock's steps on this boot (broker/wall-clock/wall-history.ts), so a step before a restart ages nothing.
   */
  stampAgeMs?: (stampMs: number) => number;
}

export interface AppendResult {
  baseOffset: number;
  lastOffset: number;
  /** What the log guarantees for these records when the promise resolves. */
  durability: 'synced' | 'written';
}

export interface RecoveryReport {
  segments: number;
  records: number;
  startOffset: number;
  nextOffset: number;
  /** Bytes cut from a torn or corrupt tail. */
  truncatedBytes: number;
  /** Records (whole or partial) cut with them. */
  truncatedRecords: number;
  /** Index files rebuilt from their segment (missing or damaged). */
  indexesRebuilt: number;
  /** Segments removed because they followed a torn point (not a prefix any more). */
  segmentsDropped: number;
  /**
   * The first damaged range (offsets, both inclusive) found inside the synced prefix, which
   * recovery keeps (reads of it fail with CORRUPT_RANGE); absent when none was seen. A replica
   * holding such damage may not become leader until it is repaired (docs/CLUSTERING.md).
   */
  damaged?: { fromOffset: number; toOffset: number };
}

export interface RetentionReport {
  segmentsDeleted: number;
  bytesDeleted: number;
  recordsDeleted: number;
  startOffset: number;
}

export interface ReadOptions {
  /** Stop after this many records (default: no count limit). */
  recordsMax?: number;
  /** Stop after about this many bytes of records (at least one record is returned). */
  bytesMax?: number;
  /** Do not return records at or past this offset (e.g. a high watermark). */
  endOffset?: number;
  /**
   * Read past the visible end, up to the written end: for rebuilding what the log's owner derives
   * from the whole log (a group's state, the dedup window, the delay index) when a replica becomes
   * leader, never for consumers.
   */
  uncommitted?: boolean;
  /**
   * Check `bytesMax` only where a batch starts: a batch whose records are being returned is
   * returned to its end (within `endOffset` and `recordsMax`). For a reader that keeps a whole
   * batch's bytes anyway (the records are views of them): the next read then starts at a batch
   * boundary instead of reading, and skipping, the same batch again.
   */
  wholeBatches?: boolean;
}

export interface LogStats {
  startOffset: number;
  nextOffset: number;
  appendedOffset: number;
  writtenOffset: number;
  syncedOffset: number;
  segments: number;
  bytes: number;
  records: number;
  tailCacheBytes: number;
}

/** What the broker uses of a log: one partition, group journal or delay log. */
export interface PartitionLog {
  /** First offset still held (older ones were deleted by retention). */
  readonly startOffset: number;
  /** One past the last offset assigned. */
  readonly nextOffset: number;
  /** Last offset assigned (appended): its batch may still be being written. */
  readonly appendedOffset: number;
  /** Last offset whose write returned (in the page cache). */
  readonly writtenOffset: number;
  /** Last offset an fdatasync covered. */
  readonly syncedOffset: number;
  /**
   * One past the highest offset consumers may see. By default synced for `always` and written
   * otherwise; a replicated log's owner holds it at the high watermark (`setVisibleEndOffset`).
   */
  readonly visibleEndOffset: number;
  readonly durability: Durability;
  readonly recovery: RecoveryReport;
  append(records: readonly RecordInput[]): Promise<AppendResult>;
  /** Records from `offset` on, below `visibleEndOffset`. */
  read(offset: number, options?: ReadOptions): Promise<LogRecord[]>;
  offsetForTimestamp(timestampMs: number): Promise<number>;
  /** Called when the written, synced or visible end moves forward; returns the unsubscribe. */
  onAdvance(listener: () => void): () => void;
  /**
   * Resolves once `offset` is visible (below `visibleEndOffset`): an answer that names a stored
   * record (a duplicate publish) waits for it like the first publish did.
   */
  whenVisible(offset: number): Promise<void>;
  sync(): Promise<void>;
  stats(): LogStats;
  enforceRetention(): Promise<RetentionReport>;
  deleteSegmentsBefore(offset: number): Promise<number>;
  close(): Promise<void>;
  /**
   * The values of header `name` its owner noted as records were appended from some offset on (a
   * follower notes the ids of the batches it replicates), so whoever derives state from the log
   * at a promotion need not read those records back. Absent or null: nothing was noted.
   */
  notedHeaders?(name: string): NotedHeaders | null;
}

/** Header values noted as records were appended: see PartitionLog.notedHeaders. */
export interface NotedHeaders {
  /** Every record at this offset or later that carries the header is in `entries`; earlier ones are not. */
  readonly fromOffset: number;
  /** By header value, in offset order. */
  readonly entries: NotedHeaderLookup;
}

/** Noted header values, looked up by value. */
export interface NotedHeaderLookup {
  readonly size: number;
  get(value: string): NotedHeader | undefined;
}

export interface NotedHeader {
  readonly offset: number;
  readonly timestampMs: number;
}

/** A log as replication uses it: the leader ships batches as they are, a follower writes them and cuts a diverged tail. */
export interface ReplicaLog extends PartitionLog {
  /** The epoch new local batches carry. */
  readonly leaderEpoch: number;
  /** Where the active segment begins: every batch below it lies in a sealed segment. */
  readonly sealedEndOffset: number;
  /** Every epoch the log holds, with where it starts. */
  epochs(): readonly EpochEntry[];
  /** Where `epoch` ends in this log (KIP-101): see EpochCache.endOf. */
  epochEnd(epoch: number): EpochEnd;
  /**
   * Leader: later local batches carry `epoch` (recorded durably before the first of them). Follower:
   * its leader's `epoch` starts at this log's end (docs/CLUSTERING.md, invariant 14).
   */
  beginEpoch(epoch: number): Promise<void>;
  /** Follower: writes a leader's batches as they are (checked: CRCs, offsets from `nextOffset`, epochs); resolves once written. */
  appendBatches(bytes: Buffer, options?: ReplicaAppendOptions): Promise<AppendResult>;
  /** Leader: whole batches from the one holding `offset`, up to the written end (or `endOffset`), about `bytesMax` bytes. */
  readBatches(offset: number, options: { bytesMax: number; endOffset?: number }): Promise<Buffer[]>;
  /** Follower: cuts the log back to end at `offset` (or the start of the batch holding it), durably; returns the new end. */
  truncateTo(offset: number): Promise<number>;
  /** Follower: empties the log to start at `offset` (catching up from past a leader's log start). */
  resetTo(offset: number): Promise<number>;
  /** Holds `visibleEndOffset` at `endOffset` (never past the local rule); null gives the local rule back. */
  setVisibleEndOffset(endOffset: number | null): void;
  /**
   * Digests of `[fromOffset, toOffset)` (within the log's start and written end) in pieces of
   * `spanRecords` (log-digest.ts); damage met on the way rejects with CORRUPT_RANGE and its range.
   */
  digests(request: { fromOffset: number; toOffset: number; spanRecords: number }, held?: HeldBatches): Promise<RangeDigest[]>;
  /** Changes with every truncation or reset (and while one runs): batches read under one value are the log's while it holds. */
  readonly cutGeneration: number;
}

/** How a follower's `appendBatches` treats batches it was given. */
export interface ReplicaAppendOptions {
  /**
   * The caller compared these bytes with the leader's digests (SHA-256, log-digest.ts) and every
   * batch starts inside the ranges they cover: a catch-up chunk after `checkChunk`. The leader checks
   * every record's CRC of whatever it hashes, so the records are not checked again (batch headers,
   * offsets and epochs still are), and the batches are not kept in the tail cache (old batches no
   * reader waits for; the cache is emptied instead). docs/CLUSTERING.md, "Catch-up".
   */
  matchedLeaderDigests?: boolean;
}

/**
 * Batches a caller has just read from a log (whole, back to back, in offset order) and the log's
 * `cutGeneration` from before the read: `digests` hashes these instead of reading them again, unless
 * the log was cut since (docs/CLUSTERING.md, "Catch-up from the leader's segments").
 */
export interface HeldBatches {
  batches: readonly Buffer[];
  cutGeneration: number;
}

/** Which log of a topic a factory is asked for. */
export type LogRole =
  | { kind: 'partition'; topic: string; partition: number }
  | { kind: 'group-journal'; topic: string; group: string }
  | { kind: 'delay'; topic: string };

/** Opens (creating if missing) the log of `role` with `options`: the one way the broker opens logs. */
export type LogFactory = (options: LogOptions, role: LogRole) => Promise<PartitionLog>;
