/**
 * A segmented commit log, one per partition, group journal and delay log: the log's contract
 * (`ReplicaLog`) over its writer, syncer, recovery and replica parts.
 * The rest: docs/INTERNALS.md.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { FerryError, isFerryError } from '../errors.js';
import type { TimerHandle } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import { measureAppend } from './append-input.js';
import { PendingAppend } from './append-queue.js';
import { lastEpoch, readSegmentBatches, scanEpochs } from './batch-reader.js';
import { EpochCache, type EpochEnd, type EpochEntry } from './epoch-cache.js';
import { APPEND_QUEUE_BYTES_MAX, READ_BYTES_MAX } from './limits.js';
import { resolveLogConfig } from './log-config.js';
import { DigestCache, digestRanges, heldBatchesSource, type RangeDigest } from './log-digest.js';
import { findSegment, readLog } from './log-reader.js';
import { parseBatches, resetLog, truncateLog } from './log-replica.js';
import { LogState, toFerryError } from './log-state.js';
import { LogSyncer } from './log-syncer.js';
import { LogWriter } from './log-writer.js';
import { BATCH_HEADER_BYTES } from './record-batch.js';
import { recoverLog } from './recovery.js';
import { selectRetentionVictims, type RetentionCandidate } from './retention.js';
import { Segment } from './segment.js';
import { segmentOffsetForTimestamp, type ReadRequest } from './segment-reader.js';
import type {
  AppendResult,
  Durability,
  LogOptions,
  LogRecord,
  LogStats,
  ReadOptions,
  RecordInput,
  RecoveryReport,
  HeldBatches,
  ReplicaAppendOptions,
  ReplicaLog,
  RetentionReport,
} from './types.js';

/**
 * Creates `dir` and any missing parents so that they survive a power cut: a new directory's entry
 * is durable only once its parent directory is synced.
 */
async function makeDirDurable(fs: FileSystem, dir: string): Promise<void> {
  const created: string[] = [];
  for (let path = dir; dirname(path) !== path && (await fs.stat(path)) === null; path = dirname(path)) created.push(path);
  await fs.mkdir(dir);
  for (const path of created) await fs.syncDir(dirname(path));
}

export class Log implements ReplicaLog {
  private readonly state: LogState;
  private readonly syncer: LogSyncer;
  private readonly writer: LogWriter;
  private maintenanceChain: Promise<unknown> = Promise.resolve();
  /** Replicated appends and truncations, one at a time and in call order. */
  private replicaChain: Promise<unknown> = Promise.resolve();
  private syncTimer: TimerHandle | null = null;
  private retentionTimer: TimerHandle | null = null;
  private closePromise: Promise<void> | null = null;
  /** Digests of whole leaves in sealed segments (log-digest.ts). */
  private readonly digestCache = new DigestCache();
  /** Twice the cuts (truncations, resets) begun so far, less one while one runs: see `cutGeneration`. */
  private cuts = 0;

  private constructor(
    state: LogState,
    readonly recovery: RecoveryReport,
  ) {
    this.state = state;
    this.syncer = new LogSyncer(state);
    this.writer = new LogWriter(state, this.syncer);
  }

  /** Opens (creating if missing) the log in `options.dir` and recovers it; see recovery.ts. */
  static async open(options: LogOptions): Promise<Log> {
    const config = resolveLogConfig(options);
    const { fs, dir, clock, logger } = config;
    let segments: Segment[] = [];
    try {
      await makeDirDurable(fs, dir);
      const recovered = await recoverLog({ fs, dir, clock, logger, indexIntervalBytes: config.indexIntervalBytes });
      segments = recovered.segments;
      // Recovered bytes no checkpoint covered may sit only in the page cache: sync them before
      // the log calls them synced.
      for (const segment of recovered.unsynced) await segment.handle.datasync();
      if (segments.length === 0) {
        segments.push(await Segment.create(fs, dir, 0, clock.nowMs()));
        await fs.syncDir(dir);
      }
      const epochs = await openEpochs(fs, dir, segments, logger);
      // Every epoch the log will stamp is on record before its first batch is written.
      if (epochs.latest < config.leaderEpoch) await epochs.begin(config.leaderEpoch, segments[segments.length - 1]!.nextOffset);
      const log = new Log(new LogState(config, segments, epochs), recovered.report);
      await log.syncer.checkpointer.writeNow();
      log.startTimers();
      logger.info('storage.log.opened', { dir, durability: config.durability, ...recovered.report });
      return log;
    } catch (error) {
      await Promise.allSettled(segments.map((segment) => segment.retire()));
      throw toFerryError(error, `open ${dir}`);
    }
  }

  // ---- offsets ------------------------------------------------------------------------------

  get startOffset(): number {
    return this.state.startOffset;
  }

  get nextOffset(): number {
    return this.state.nextOffset;
  }

  get appendedOffset(): number {
    return this.state.nextOffset - 1;
  }

  get writtenOffset(): number {
    return this.state.writtenOffset;
  }

  get syncedOffset(): number {
    return this.state.syncedOffset;
  }

  get visibleEndOffset(): number {
    return this.state.visibleEnd;
  }

  get durability(): Durability {
    return this.state.config.durability;
  }

  /**
   * Holds what consumers see at `endOffset` (exclusive), never past the local rule; null gives
   * the local rule back. Listeners are told when it moves forward.
   */
  setVisibleEndOffset(endOffset: number | null): void {
    assert.ok(endOffset === null || (Number.isSafeInteger(endOffset) && endOffset >= 0), 'a visible end is an offset');
    const before = this.state.visibleEnd;
    this.state.ownerVisibleEnd = endOffset;
    if (this.state.visibleEnd > before) this.state.notifyAdvance();
  }

  onAdvance(listener: () => void): () => void {
    return this.state.addListener(listener);
  }

  whenVisible(offset: number): Promise<void> {
    if (offset < this.state.visibleEnd) return Promise.resolve();
    if (this.state.closing) return Promise.reject(this.state.closedError());
    return new Promise<void>((resolve, reject) => {
      const unsubscribe = this.state.addListener(() => {
        if (offset < this.state.visibleEnd) {
          unsubscribe();
          resolve();
        } else if (this.state.failure !== null) {
          unsubscribe();
          reject(this.state.failure);
        }
      });
    });
  }

  // ---- append -------------------------------------------------------------------------------

  append(records: readonly RecordInput[]): Promise<AppendResult> {
    const state = this.state;
    if (state.closing) return Promise.reject(state.closedError());
    if (state.failure !== null) return Promise.reject(state.failure);
    let bytes: number;
    try {
      bytes = measureAppend(records);
    } catch (error) {
      return Promise.reject(error);
    }
    const queued = this.writer.queue.bytes;
    if (queued > 0 && queued + bytes > APPEND_QUEUE_BYTES_MAX) {
      return Promise.reject(
        new FerryError('BROKER_BUSY', `log ${state.config.dir}: ${queued} bytes already waiting to be written`, {
          detail: { pendingBytes: queued, max: APPEND_QUEUE_BYTES_MAX },
        }),
      );
    }
    const pending = new PendingAppend(records, bytes, state.config.clock.nowMs());
    const promise = new Promise<AppendResult>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    this.writer.push(pending);
    return promise;
  }

  /** Syncs everything written so far. */
  async sync(): Promise<void> {
    if (this.state.closing) throw this.state.closedError();
    try {
      await this.syncer.syncAllWritten();
    } catch (error) {
      throw toFerryError(error, `sync ${this.state.config.dir}`);
    }
  }

  // ---- leader epochs and replication --------------------------------------------------------

  get leaderEpoch(): number {
    return this.state.leaderEpoch;
  }

  get sealedEndOffset(): number {
    return this.state.active.baseOffset;
  }

  epochs(): readonly EpochEntry[] {
    return this.state.epochs.all;
  }

  epochEnd(epoch: number): EpochEnd {
    return this.state.epochs.endOf(epoch, this.state.nextOffset);
  }

  beginEpoch(epoch: number): Promise<void> {
    return this.serializeReplica(async () => {
      if (epoch < this.state.leaderEpoch) throw new FerryError('INVALID_ARGUMENT', `epoch ${epoch} is older than the log's ${this.state.leaderEpoch}`);
      await this.writer.idle();
      await this.state.epochs.begin(epoch, this.state.nextOffset);
      this.state.leaderEpoch = epoch;
    });
  }

  appendBatches(bytes: Buffer, options: ReplicaAppendOptions = {}): Promise<AppendResult> {
    return this.serializeReplica(async () => {
      const state = this.state;
      await this.writer.idle();
      if (state.failure !== null) throw state.failure;
      const batches = parseBatches(bytes, state.nextOffset, state.epochs.latest, options);
      if (batches.length === 0) return { baseOffset: state.nextOffset, lastOffset: state.nextOffset - 1, durability: 'written' };
      const settled: Promise<AppendResult>[] = [];
      for (const batch of batches) {
        if (batch.header.leaderEpoch > state.epochs.latest) await state.epochs.begin(batch.header.leaderEpoch, batch.header.baseOffset);
        state.leaderEpoch = Math.max(state.leaderEpoch, batch.header.leaderEpoch);
        const pending = new PendingAppend([], batch.buf.length - BATCH_HEADER_BYTES, state.config.clock.nowMs(), batch);
        settled.push(
          new Promise<AppendResult>((resolve, reject) => {
            pending.resolve = resolve;
            pending.reject = reject;
          }),
        );
        this.writer.push(pending);
      }
      const results = await Promise.all(settled);
      return { baseOffset: results[0]!.baseOffset, lastOffset: results[results.length - 1]!.lastOffset, durability: 'written' };
    });
  }

  async readBatches(offset: number, options: { bytesMax: number; endOffset?: number }): Promise<Buffer[]> {
    const state = this.state;
    if (state.closing) throw state.closedError();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new FerryError('INVALID_ARGUMENT', `offset must be a non-negative integer, got ${offset}`);
    if (offset < state.startOffset) throw this.outOfRange(offset);
    const endOffset = Math.min(state.writtenOffset + 1, options.endOffset ?? Number.POSITIVE_INFINITY);
    if (offset >= endOffset) return [];
    try {
      if (offset >= state.tailCache.startOffset) return state.tailCache.readBatches(offset, endOffset, options.bytesMax);
      const segment = findSegment(state.segments, offset);
      if (segment === null || !segment.acquire()) throw this.outOfRange(offset);
      try {
        return await readSegmentBatches(segment, offset, Math.min(endOffset, segment.nextOffset), options.bytesMax);
      } finally {
        segment.release();
      }
    } catch (error) {
      throw toFerryError(error, `read batches of ${state.config.dir} at ${offset}`);
    }
  }

  truncateTo(offset: number): Promise<number> {
    return this.serializeReplica(() => this.cut(() => truncateLog(this.state, this.writer, this.syncer, offset)));
  }

  resetTo(offset: number): Promise<number> {
    return this.serializeReplica(() => this.cut(() => resetLog(this.state, this.writer, this.syncer, offset)));
  }

  get cutGeneration(): number {
    return this.cuts;
  }

  /** Run with maintenance, so that no truncation or retention changes the segments while they are hashed. */
  digests(request: { fromOffset: number; toOffset: number; spanRecords: number }, held?: HeldBatches): Promise<RangeDigest[]> {
    return this.serializeMaintenance(async () => {
      const state = this.state;
      if (request.fromOffset < state.startOffset && request.fromOffset < request.toOffset) throw this.outOfRange(request.fromOffset);
      if (request.toOffset > state.writtenOffset + 1) {
        throw new FerryError('INVALID_ARGUMENT', `digests up to ${request.toOffset} asked of a log written up to ${state.writtenOffset + 1}`);
      }
      // Batches read before a cut may be gone from the log: those are read again.
      const source = held !== undefined && held.cutGeneration === this.cuts ? heldBatchesSource(this, held.batches) : this;
      return digestRanges(source, this.digestCache, state.active.baseOffset, request);
    });
  }

  /** A truncation or reset with nothing else moving: writes drained and synced, maintenance done. */
  private async cut(operation: () => Promise<number>): Promise<number> {
    if (!Number.isSafeInteger(this.state.nextOffset)) throw new FerryError('INTERNAL', 'log offsets are broken');
    await this.writer.idle();
    await this.syncer.syncAllWritten();
    await this.syncer.idle();
    return this.serializeMaintenance(async () => {
      // Odd while a cut runs: batches read then are never taken for the log's (digests' `held`).
      this.cuts++;
      const end = await operation().finally(() => this.cuts++);
      this.digestCache.cutFrom(this.state.startOffset === end ? 0 : end);
      return end;
    });
  }

  private serializeReplica<T>(task: () => Promise<T>): Promise<T> {
    if (this.state.closing) return Promise.reject(this.state.closedError());
    const run = this.replicaChain.then(async () => {
      if (this.state.closing) throw this.state.closedError();
      if (this.state.failure !== null) throw this.state.failure;
      try {
        return await task();
      } catch (error) {
        if (!isFerryError(error)) this.state.failStorage(error, 'replica operation');
        throw toFerryError(error, `replica operation on ${this.state.config.dir}`);
      }
    });
    this.replicaChain = run.catch(() => undefined);
    return run;
  }

  // ---- read ---------------------------------------------------------------------------------

  async read(offset: number, options: ReadOptions = {}): Promise<LogRecord[]> {
    const state = this.state;
    if (state.closing) throw state.closedError();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new FerryError('INVALID_ARGUMENT', `offset must be a non-negative integer, got ${offset}`);
    const recordsMax = options.recordsMax ?? Number.POSITIVE_INFINITY;
    const bytesMax = options.bytesMax ?? READ_BYTES_MAX;
    if (!(recordsMax >= 1) || !(bytesMax >= 1)) throw new FerryError('INVALID_ARGUMENT', 'recordsMax and bytesMax must be at least 1');
    if (offset < state.startOffset) throw this.outOfRange(offset);
    const readableEnd = options.uncommitted === true ? state.writtenOffset + 1 : state.visibleEnd;
    const endOffset = Math.min(readableEnd, options.endOffset ?? Number.POSITIVE_INFINITY);
    if (offset >= endOffset) return [];
    const request: ReadRequest = { offset, endOffset, recordsMax, bytesMax, wholeBatches: options.wholeBatches === true };
    const out: LogRecord[] = [];
    try {
      await readLog(() => state.segments, state.tailCache, request, out, (at) => this.outOfRange(at));
    } catch (error) {
      throw toFerryError(error, `read ${state.config.dir} at ${offset}`);
    }
    assert.ok(out.length === 0 || out[0]!.offset === offset, 'a read starts at the offset asked for');
    assert.ok(out.length === 0 || out[out.length - 1]!.offset < endOffset, 'a read stops before its end offset');
    return out;
  }

  async offsetForTimestamp(timestampMs: number): Promise<number> {
    const state = this.state;
    if (state.closing) throw state.closedError();
    if (!Number.isFinite(timestampMs)) throw new FerryError('INVALID_ARGUMENT', 'timestampMs must be a number');
    try {
      for (const segment of state.segments.slice()) {
        if (segment.maxTimestampMs < timestampMs || !segment.acquire()) continue;
        try {
          const found = await segmentOffsetForTimestamp(segment, timestampMs);
          if (found !== null) return Math.max(found, state.startOffset);
        } finally {
          segment.release();
        }
      }
    } catch (error) {
      throw toFerryError(error, `offsetForTimestamp ${state.config.dir}`);
    }
    return state.nextOffset;
  }

  // ---- retention ----------------------------------------------------------------------------

  enforceRetention(): Promise<RetentionReport> {
    return this.serializeMaintenance(async () => {
      const state = this.state;
      let victims = 0;
      if (state.config.retention !== null) {
        const candidates = state.segments.map(
          (segment): RetentionCandidate => ({ sizeBytes: segment.sizeBytes, recordCount: segment.recordCount, maxTimestampMs: state.ageStamps.get(segment) ?? segment.maxTimestampMs }),
        );
        victims = selectRetentionVictims(candidates, state.config.retention, state.ageClock.nowMs());
      }
      const deleted = await this.deleteOldestSegments(victims, 'retention');
      return { ...deleted, startOffset: state.startOffset };
    });
  }

  deleteSegmentsBefore(offset: number): Promise<number> {
    return this.serializeMaintenance(async () => {
      const segments = this.state.segments;
      let count = 0;
      while (count < segments.length - 1 && segments[count]!.nextOffset <= offset) count++;
      return (await this.deleteOldestSegments(count, 'deleteSegmentsBefore')).segmentsDeleted;
    });
  }

  private serializeMaintenance<T>(task: () => Promise<T>): Promise<T> {
    if (this.state.closing) return Promise.reject(this.state.closedError());
    const run = this.maintenanceChain.then(async () => {
      if (this.state.closing) throw this.state.closedError();
      try {
        return await task();
      } catch (error) {
        throw toFerryError(error, `maintenance ${this.state.config.dir}`);
      }
    });
    this.maintenanceChain = run.catch(() => undefined);
    return run;
  }

  /** Removes the `count` oldest segments (never the active one): from the log at once, then from disk. */
  private async deleteOldestSegments(count: number, reason: string): Promise<Omit<RetentionReport, 'startOffset'>> {
    const state = this.state;
    assert.ok(count < state.segments.length, 'the active segment is never deleted');
    const victims = state.segments.slice(0, count);
    state.segments = state.segments.slice(count);
    let bytesDeleted = 0;
    let recordsDeleted = 0;
    for (const segment of victims) {
      bytesDeleted += segment.sizeBytes;
      recordsDeleted += segment.recordCount;
    }
    state.totalBytes -= bytesDeleted;
    this.digestCache.dropBelow(state.startOffset);
    for (const segment of victims) await segment.delete();
    if (victims.length > 0) {
      await state.config.fs.syncDir(state.config.dir);
      state.config.logger.info('storage.segments.deleted', { dir: state.config.dir, reason, segments: victims.length, bytesDeleted, recordsDeleted, startOffset: state.startOffset });
    }
    return { segmentsDeleted: victims.length, bytesDeleted, recordsDeleted };
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  stats(): LogStats {
    const state = this.state;
    return {
      startOffset: state.startOffset,
      nextOffset: state.nextOffset,
      appendedOffset: state.nextOffset - 1,
      writtenOffset: state.writtenOffset,
      syncedOffset: state.syncedOffset,
      segments: state.segments.length,
      bytes: state.totalBytes,
      records: state.writtenOffset + 1 - state.startOffset,
      tailCacheBytes: state.tailCache.bytes,
    };
  }

  private startTimers(): void {
    if (this.state.config.durability === 'interval') this.armSyncTimer();
    if (this.state.config.retention !== null) this.armRetentionTimer();
  }

  private armSyncTimer(): void {
    this.syncTimer = this.state.config.clock.schedule(this.state.config.syncIntervalMs, () => {
      this.syncTimer = null;
      if (this.state.closing) return;
      this.syncer.request();
      this.armSyncTimer();
    });
  }

  private armRetentionTimer(): void {
    const { config } = this.state;
    this.retentionTimer = config.clock.schedule(config.retentionCheckIntervalMs, () => {
      this.retentionTimer = null;
      if (this.state.closing) return;
      this.enforceRetention().catch((error: unknown) => {
        if (!isFerryError(error, 'LOG_CLOSED')) config.logger.error('storage.retention.failed', { dir: config.dir, error });
      });
      this.armRetentionTimer();
    });
  }

  /** Writes what was accepted, syncs it, writes the indexes and the checkpoint, closes every file. */
  close(): Promise<void> {
    if (this.closePromise === null) {
      this.state.closing = true;
      this.closePromise = this.closeNow();
    }
    return this.closePromise;
  }

  private async closeNow(): Promise<void> {
    const state = this.state;
    const { config } = state;
    for (const timer of [this.syncTimer, this.retentionTimer]) timer?.cancel();
    this.syncTimer = this.retentionTimer = null;
    let error: unknown = null;
    try {
      await this.replicaChain;
      await this.writer.idle();
      await this.maintenanceChain;
      if (state.failure === null) {
        await this.syncer.syncAllWritten();
        try {
          await state.active.writeIndexFiles();
        } catch (indexError) {
          // Derived data: the next open rebuilds it from the segment.
          config.logger.warn('storage.index.write_failed', { dir: config.dir, error: indexError });
        }
        await this.syncer.checkpointer.writeNow();
      }
    } catch (caught) {
      error = caught;
    }
    await this.syncer.checkpointer.stop();
    const closed = await Promise.allSettled(state.segments.map((segment) => segment.retire()));
    state.clearListeners();
    // Give the memory back to the broker's shared budget (a deleted topic's tail must not hold it).
    state.tailCache.clear();
    const closeError = closed.find((result) => result.status === 'rejected');
    error ??= closeError?.status === 'rejected' ? closeError.reason : null;
    config.logger.info('storage.log.closed', { dir: config.dir, nextOffset: state.nextOffset, failed: state.failure !== null });
    if (error !== null) throw toFerryError(error, `close ${config.dir}`);
  }

  private outOfRange(offset: number): FerryError {
    return new FerryError('OFFSET_OUT_OF_RANGE', `offset ${offset} is below the log start ${this.state.startOffset}`, {
      detail: { offset, startOffset: this.state.startOffset, nextOffset: this.state.nextOffset },
    });
  }
}

/**
 * The log's epoch list: the file, cut to what recovery kept and checked against the newest batch;
 * rebuilt from the batch headers when missing, damaged or behind.
 */
async function openEpochs(fs: FileSystem, dir: string, segments: readonly Segment[], logger: { warn(event: string, fields: Record<string, unknown>): void }): Promise<EpochCache> {
  const nextOffset = segments[segments.length - 1]!.nextOffset;
  const startOffset = segments[0]!.baseOffset;
  const stored = await EpochCache.read(fs, dir);
  if (startOffset === nextOffset) {
    // Nothing to derive epochs from: what the file says is all there is (an epoch with no batch yet).
    return new EpochCache(fs, dir, (stored ?? []).filter((entry) => entry.startOffset <= nextOffset).slice(-1));
  }
  const kept = stored?.filter((entry) => entry.startOffset < nextOffset) ?? null;
  const newest = await lastEpoch(segments[segments.length - 1]!);
  if (kept !== null && kept.length > 0 && kept[0]!.startOffset <= startOffset && (newest < 0 || kept[kept.length - 1]!.epoch === newest)) {
    const cache = new EpochCache(fs, dir, kept);
    if (kept.length !== stored!.length) await cache.replace(kept);
    return cache;
  }
  const rebuilt = await scanEpochs(segments);
  if (stored !== null) logger.warn('storage.epochs.rebuilt', { dir, stored: stored.length, rebuilt: rebuilt.length });
  const cache = new EpochCache(fs, dir, rebuilt);
  await cache.replace(rebuilt);
  return cache;
}
