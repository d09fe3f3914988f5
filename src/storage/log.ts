/**
 * A segmented commit log: one per topic partition (and per group-state journal).
 *
 * Write path (one writer loop, so offsets are assigned in one place and a failed write rolls back
 * without gaps): append() validates and queues; the loop takes everything queued (up to
 * BATCH_BYTES_MAX), assigns offsets, encodes ONE batch into one buffer and writes it with ONE
 * call. Appends that arrive during a write or a sync are the next batch: group commit.
 *
 * Three offsets make durability visible (docs/STORAGE.md):
 *   appended — offsets assigned, batch being written
 *   written  — write() returned (in the page cache)
 *   synced   — an fdatasync that started after the write returned has completed
 * `always` resolves an append once synced; `interval` and `never` once written. Syncs run in their
 * own loop so that the next batch is written while the previous one is being synced.
 *
 * An fdatasync failure is not retried (fsyncgate: the kernel may have dropped the dirty pages and
 * a retry would report success over lost data): the log fails with STORAGE_FAILED until reopened.
 */
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { FerryError, isFerryError } from '../protocol/errors.js';
import type { TimerHandle } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import { measureAppend } from './append-input.js';
import { AppendQueue, encodeBatch, PendingAppend, type SyncWaiter, type TakenBatch } from './append-queue.js';
import type { Checkpoint } from './checkpoint.js';
import { Checkpointer } from './checkpointer.js';
import { APPEND_QUEUE_BYTES_MAX, FSYNC_SLOW_MS, READ_BYTES_MAX, SEGMENT_RECORDS_MAX } from './limits.js';
import { resolveLogConfig, type LogConfig } from './log-config.js';
import { BATCH_HEADER_BYTES, type BatchHeader } from './record-batch.js';
import { readLog } from './log-reader.js';
import { recoverLog } from './recovery.js';
import { AgeClock, selectRetentionVictims, type RetentionCandidate } from './retention.js';
import { Segment } from './segment.js';
import { segmentOffsetForTimestamp, type ReadRequest } from './segment-reader.js';
import { TailCache } from './tail-cache.js';
import { WriteBufferPool } from './write-buffers.js';
import type {
  AppendResult,
  Durability,
  LogOptions,
  LogRecord,
  LogStats,
  ReadOptions,
  RecordInput,
  RecoveryReport,
  RetentionReport,
} from './types.js';

/**
 * Writes in flight at once. More than one lets the next batch be encoded (CPU) while the previous
 * one is copied into the page cache (a thread-pool thread); they are committed in offset order.
 * Two measured best on the 2-core target: more threads copying only preempt the main thread.
 */
const WRITES_IN_FLIGHT_MAX = 2;
/**
 * Batch size bounds for `interval` and `never` when many appends are queued: the queue is split over
 * the writes in flight so that encoding overlaps writing. Below the minimum one write call costs
 * more than the overlap gains; above the maximum a batch would sit in the page cache copy too long.
 */
const PIPELINED_BATCH_BYTES_MIN = 64 * 1024;
const PIPELINED_BATCH_BYTES_MAX = 256 * 1024;
/**
 * An `always` queue this large is split in WRITES_IN_FLIGHT_MAX batches. Producers that wait for
 * their confirms before sending more (a window of unconfirmed publishes) otherwise run in lock step
 * with the log: all of a window arrives, is written and synced as one batch, and is confirmed at
 * once, so the producer, the broker and the disk take turns. Confirming the first half one sync
 * earlier lets the producer refill it while the second half is synced. Below this size the extra
 * sync costs more than the overlap gains (measured: 256 KiB did worse than 512 KiB).
 */
const ALWAYS_SPLIT_QUEUE_BYTES_MIN = 512 * 1024;

interface InFlightWrite {
  segment: Segment;
  position: number;
  header: BatchHeader;
  buf: Buffer;
  /** The pooled buffer `buf` is a view of, given back once the write has settled. */
  pooled: Buffer;
  appends: PendingAppend[];
  state: 'writing' | 'done' | 'failed';
  error: unknown;
}

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

function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Every error leaving the public API is a FerryError; `fallback` names what an unexpected one means. */
function toFerryError(error: unknown, context: string): FerryError {
  if (isFerryError(error)) return error;
  if (isDiskFull(error)) return new FerryError('DISK_FULL', `${context}: disk full`, { cause: error });
  if (error instanceof assert.AssertionError) return new FerryError('INTERNAL', `${context}: invariant violated: ${error.message}`, { cause: error });
  return new FerryError('STORAGE_FAILED', `${context}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

export class Log {
  private readonly config: LogConfig;
  private segments: Segment[];
  private active: Segment;
  private readonly tailCache: TailCache;
  private readonly writeBuffers: WriteBufferPool;

  private nextOffsetValue: number;
  private writtenOffsetValue: number;
  private syncedOffsetValue: number;
  private totalBytes: number;

  private readonly queue = new AppendQueue();
  private writeScheduled = false;
  private writeLoop: Promise<void> | null = null;
  /** Batches whose write was started and not yet committed, in offset order. */
  private inFlight: InFlightWrite[] = [];
  /** Where the next batch goes in the active segment: its size plus the bytes in flight. */
  private writePosition: number;
  private rollingBack = false;
  private writerWaiters: (() => void)[] = [];

  private syncWaiters: SyncWaiter[] = [];
  private syncWaitersHead = 0;
  private syncRunning = false;
  private dirtySegments: Segment[] = [];
  /** The synced prefix: what the next checkpoint may claim. */
  private syncedPoint: Checkpoint;
  private readonly checkpointer: Checkpointer;
  /** Segment ages are measured on it, so that wall-clock steps move no age (retention.ts). */
  private readonly ageClock: AgeClock;
  /** Each segment's newest record timestamp on the AgeClock. */
  private readonly ageStamps = new WeakMap<Segment, number>();

  private maintenanceChain: Promise<unknown> = Promise.resolve();
  private syncTimer: TimerHandle | null = null;
  private retentionTimer: TimerHandle | null = null;
  private readonly listeners = new Set<() => void>();
  private failure: FerryError | null = null;
  private closing = false;
  private closePromise: Promise<void> | null = null;

  private constructor(
    config: LogConfig,
    segments: Segment[],
    readonly recovery: RecoveryReport,
  ) {
    assert.ok(segments.length > 0, 'a log always has an active segment');
    this.config = config;
    this.segments = segments;
    this.active = segments[segments.length - 1]!;
    this.tailCache = new TailCache(config.tailCacheBytes, config.tailCacheBudget ?? undefined);
    this.writeBuffers = config.writeBuffers ?? new WriteBufferPool();
    this.nextOffsetValue = this.active.nextOffset;
    this.writtenOffsetValue = this.nextOffsetValue - 1;
    this.syncedOffsetValue = this.writtenOffsetValue;
    this.writePosition = this.active.sizeBytes;
    this.totalBytes = segments.reduce((sum, segment) => sum + segment.sizeBytes, 0);
    this.syncedPoint = { segmentBaseOffset: this.active.baseOffset, position: this.active.sizeBytes, nextOffset: this.active.nextOffset };
    this.checkpointer = new Checkpointer(config.fs, config.dir, config.clock, config.logger, config.checkpointIntervalMs, () => this.syncedPoint);
    this.ageClock = new AgeClock(config.clock);
    for (const segment of segments) this.ageStamps.set(segment, this.ageClock.fromStored(segment.maxTimestampMs, config.stampAgeMs));
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
      const log = new Log(config, segments, recovered.report);
      await log.checkpointer.writeNow();
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
    return this.segments[0]!.baseOffset;
  }

  get nextOffset(): number {
    return this.nextOffsetValue;
  }

  get appendedOffset(): number {
    return this.nextOffsetValue - 1;
  }

  get writtenOffset(): number {
    return this.writtenOffsetValue;
  }

  get syncedOffset(): number {
    return this.syncedOffsetValue;
  }

  get visibleEndOffset(): number {
    return (this.config.durability === 'always' ? this.syncedOffsetValue : this.writtenOffsetValue) + 1;
  }

  get durability(): Durability {
    return this.config.durability;
  }

  onAdvance(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  // ---- append -------------------------------------------------------------------------------

  append(records: readonly RecordInput[]): Promise<AppendResult> {
    if (this.closing) return Promise.reject(this.closedError());
    if (this.failure !== null) return Promise.reject(this.failure);
    let bytes: number;
    try {
      bytes = measureAppend(records);
    } catch (error) {
      return Promise.reject(error);
    }
    const queued = this.queue.bytes;
    if (queued > 0 && queued + bytes > APPEND_QUEUE_BYTES_MAX) {
      return Promise.reject(
        new FerryError('BROKER_BUSY', `log ${this.config.dir}: ${queued} bytes already waiting to be written`, {
          detail: { pendingBytes: queued, max: APPEND_QUEUE_BYTES_MAX },
        }),
      );
    }
    const pending = new PendingAppend(records, bytes, this.config.clock.nowMs());
    const promise = new Promise<AppendResult>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    this.queue.push(pending);
    this.scheduleWrite();
    return promise;
  }

  /**
   * Starts the writer on the next turn of the event loop rather than now, so that appends made in
   * the same turn (many producers woken together) share one batch.
   */
  private scheduleWrite(): void {
    if (this.writeScheduled || this.writeLoop !== null) return;
    this.writeScheduled = true;
    setImmediate(this.startWriteLoop);
  }

  private readonly startWriteLoop = (): void => {
    this.writeScheduled = false;
    if (this.writeLoop !== null) return;
    this.writeLoop = this.runWriteLoop()
      .catch((error: unknown) => this.failStorage(error, 'write loop'))
      .finally(() => {
        this.writeLoop = null;
        if (!this.queue.isEmpty) this.scheduleWrite();
      });
  };

  private async runWriteLoop(): Promise<void> {
    while (!this.queue.isEmpty) {
      if (this.failure !== null) {
        this.queue.rejectAll(this.failure);
        break;
      }
      if (this.inFlight.length >= WRITES_IN_FLIGHT_MAX || this.rollingBack) {
        await this.writeSettled();
        continue;
      }
      const batch = this.queue.take(this.batchCapBytes());
      if (this.needsRoll(batch.bytes, batch.records)) {
        // A roll needs every write committed and the writer to itself.
        await this.drainWrites();
        if (this.failure !== null) {
          for (const pending of batch.appends) pending.failed(this.failure);
          continue;
        }
        try {
          await this.roll();
        } catch (error) {
          this.batchFailed(batch.appends, error, 'roll');
          continue;
        }
      }
      try {
        this.startWrite(batch);
      } catch (error) {
        // Encoding found the input changed since it was validated: only this batch fails.
        const failure = toFerryError(error, `append to ${this.config.dir}`);
        for (const pending of batch.appends) pending.failed(failure);
      }
    }
  }

  /**
   * `always`: everything queued, so one fdatasync covers every waiting producer; but a queue of at
   * least ALWAYS_SPLIT_QUEUE_BYTES_MIN is split over the writes in flight, so the first part is
   * synced and confirmed while the rest is still being written. Otherwise the queue is split evenly
   * over the writes that may be in flight (within PIPELINED_BATCH_BYTES_MIN..MAX), so that encoding
   * one batch overlaps writing the other.
   */
  private batchCapBytes(): number {
    if (this.config.durability === 'always') {
      if (this.queue.bytes < ALWAYS_SPLIT_QUEUE_BYTES_MIN) return this.config.batchBytesMax;
      return Math.min(this.config.batchBytesMax, Math.ceil(this.queue.bytes / WRITES_IN_FLIGHT_MAX) + BATCH_HEADER_BYTES);
    }
    const share = Math.ceil(this.queue.bytes / WRITES_IN_FLIGHT_MAX);
    return Math.min(this.config.batchBytesMax, PIPELINED_BATCH_BYTES_MAX, Math.max(PIPELINED_BATCH_BYTES_MIN, share + BATCH_HEADER_BYTES));
  }

  /** Assigns offsets, encodes the batch into one buffer and starts its one write call. */
  private startWrite(batch: TakenBatch): void {
    const segment = this.active;
    const position = this.writePosition;
    const pooled = this.writeBuffers.take(batch.bytes);
    const { buf, header } = encodeBatch(batch, this.nextOffsetValue, this.config.leaderEpoch, pooled);
    const appends = batch.appends;
    this.nextOffsetValue = header.baseOffset + header.recordCount;
    this.writePosition = position + header.batchBytes;
    const write: InFlightWrite = { segment, position, header, buf, pooled, appends, state: 'writing', error: null };
    this.inFlight.push(write);
    segment.handle.write(buf, position).then(
      () => {
        write.state = 'done';
        this.completeWrites();
      },
      (error: unknown) => {
        write.state = 'failed';
        write.error = error;
        this.completeWrites();
      },
    );
  }

  /**
   * Commits finished writes strictly in offset order (a later batch that finished first waits for
   * the earlier one). A failed write, once every write after it has settled too, rolls them all back.
   */
  private completeWrites(): void {
    let committed = false;
    while (this.inFlight.length > 0 && this.inFlight[0]!.state === 'done') {
      this.commitWrite(this.inFlight.shift()!);
      committed = true;
    }
    const head = this.inFlight[0];
    if (head !== undefined && head.state === 'failed' && !this.inFlight.some((write) => write.state === 'writing')) {
      this.rollingBack = true;
      void this.rollBackWrites(this.inFlight.splice(0));
    }
    if (committed) {
      if (this.config.durability === 'always') this.requestSync();
      this.notifyAdvance();
    }
    this.wakeWriter();
  }

  private commitWrite(write: InFlightWrite): void {
    const { segment, position, header, appends } = write;
    if (position === 0) segment.createdAtMs = this.ageClock.nowMs();
    segment.noteBatch(position, header, this.config.indexIntervalBytes);
    this.ageStamps.set(segment, Math.max(this.ageStamps.get(segment) ?? -1, this.ageClock.fromWall(header.maxTimestampMs)));
    this.totalBytes += header.batchBytes;
    this.markDirty(segment);
    this.tailCache.add(write.buf, header.baseOffset, header.recordCount, header.leaderEpoch);
    this.writeBuffers.give(write.pooled);
    this.config.observer?.batchWritten(header.recordCount, header.batchBytes);
    this.writtenOffsetValue = header.baseOffset + header.recordCount - 1;
    assert.equal(segment.nextOffset, this.writtenOffsetValue + 1, 'the segment ends at the written offset');
    if (this.config.durability !== 'always') {
      for (const pending of appends) pending.written();
    } else if (this.failure !== null) {
      for (const pending of appends) pending.failed(this.failure);
    } else {
      for (const pending of appends) this.syncWaiters.push(pending);
    }
  }

  /**
   * A write failed: cut the file back to where the first uncommitted batch started and give the
   * offsets back, so the next batch reuses them and the log has no gap. ENOSPC is an operating
   * condition (DISK_FULL, retryable: appends work again once space returns); anything else fails
   * the log. Batches written after the failed one are cut too, and fail with the same error.
   */
  private async rollBackWrites(writes: InFlightWrite[]): Promise<void> {
    const first = writes[0]!;
    const error = first.error;
    // Every one of them has settled: no write uses its buffer any more.
    for (const write of writes) this.writeBuffers.give(write.pooled);
    this.nextOffsetValue = first.header.baseOffset;
    this.writePosition = first.position;
    try {
      await first.segment.handle.truncate(first.position);
    } catch (truncateError) {
      this.failStorage(truncateError, 'truncate after a failed write');
    }
    for (const write of writes) this.batchFailed(write.appends, error, 'write');
    this.rollingBack = false;
    this.wakeWriter();
  }

  /** Resolves when a write settles or a rollback ends (the writer waits for a free slot). */
  private writeSettled(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.writerWaiters.push(resolve);
    });
  }

  private wakeWriter(): void {
    const waiters = this.writerWaiters;
    if (waiters.length === 0) return;
    this.writerWaiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once no write is in flight and no rollback is running. */
  private async drainWrites(): Promise<void> {
    while (this.inFlight.length > 0 || this.rollingBack) await this.writeSettled();
  }

  private batchFailed(appends: PendingAppend[], error: unknown, operation: string): void {
    let failure: FerryError;
    if (this.failure !== null) {
      failure = this.failure;
    } else if (isDiskFull(error)) {
      failure = new FerryError('DISK_FULL', `log ${this.config.dir}: disk full during ${operation}`, { cause: error });
      this.config.logger.warn('storage.disk_full', { dir: this.config.dir, operation, appends: appends.length });
    } else {
      this.failStorage(error, operation);
      failure = this.failure!;
    }
    for (const pending of appends) pending.failed(failure);
  }

  private needsRoll(bytes: number, records: number): boolean {
    const segment = this.active;
    if (this.writePosition === 0) return false;
    if (this.writePosition + bytes > this.config.segmentBytes) return true;
    if (this.nextOffsetValue - segment.baseOffset + records > SEGMENT_RECORDS_MAX) return true;
    return this.ageClock.nowMs() - segment.createdAtMs >= this.config.segmentAgeMs;
  }

  /**
   * Seals the active segment and starts a new one. Order: (not `never`) sync everything written,
   * so the old segment is complete on disk; write its index files atomically; create the new file
   * and syncDir, so it exists durably before anything in it can be reported synced; then move the
   * checkpoint to the start of the new segment.
   */
  private async roll(): Promise<void> {
    const old = this.active;
    if (this.config.durability !== 'never') await this.syncAllWritten();
    await old.writeIndexFiles();
    const next = await Segment.create(this.config.fs, this.config.dir, old.nextOffset, this.ageClock.nowMs());
    try {
      await this.config.fs.syncDir(this.config.dir);
    } catch (error) {
      await next.delete().catch(() => undefined);
      throw error;
    }
    this.segments.push(next);
    this.active = next;
    this.writePosition = 0;
    this.config.logger.debug('storage.segment.rolled', { dir: this.config.dir, sealedBaseOffset: old.baseOffset, baseOffset: next.baseOffset });
    if (this.syncedOffsetValue === this.writtenOffsetValue && this.dirtySegments.length === 0) {
      this.syncedPoint = { segmentBaseOffset: next.baseOffset, position: 0, nextOffset: next.baseOffset };
      await this.checkpointer.writeNow();
    }
  }

  // ---- sync ---------------------------------------------------------------------------------

  private markDirty(segment: Segment): void {
    if (segment.dirty) return;
    segment.dirty = true;
    this.dirtySegments.push(segment);
  }

  /** Resolves once everything written so far is synced. */
  private syncAllWritten(): Promise<void> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const target = this.writtenOffsetValue;
    if (target <= this.syncedOffsetValue) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.syncWaiters.push({ lastOffset: target, synced: resolve, failed: reject });
      this.requestSync();
    });
  }

  private requestSync(): void {
    if (this.syncRunning || this.failure !== null) return;
    this.syncRunning = true;
    void this.runSyncLoop();
  }

  /**
   * Group commit: each pass syncs every segment written since the previous pass started, then
   * settles everyone waiting for offsets up to what was written when the pass started. Writes go
   * on meanwhile and are picked up by the next pass.
   */
  private async runSyncLoop(): Promise<void> {
    try {
      while (this.failure === null && this.writtenOffsetValue > this.syncedOffsetValue) {
        const target = this.writtenOffsetValue;
        const active = this.active;
        const point: Checkpoint = { segmentBaseOffset: active.baseOffset, position: active.sizeBytes, nextOffset: active.nextOffset };
        assert.equal(point.nextOffset, target + 1, 'the active segment ends at the written offset');
        const dirty = this.dirtySegments;
        this.dirtySegments = [];
        for (const segment of dirty) segment.dirty = false;
        for (const segment of dirty) {
          if (!segment.acquire()) continue;
          const startedMs = this.config.clock.monotonicMs();
          try {
            await segment.handle.datasync();
          } finally {
            segment.release();
          }
          const tookMs = this.config.clock.monotonicMs() - startedMs;
          this.config.observer?.fsyncCompleted(tookMs / 1000);
          if (tookMs >= FSYNC_SLOW_MS) this.config.logger.warn('storage.fsync_slow', { dir: this.config.dir, segmentBaseOffset: segment.baseOffset, ms: Math.round(tookMs) });
        }
        this.syncedOffsetValue = target;
        this.syncedPoint = point;
        this.settleSyncWaiters(target);
        this.notifyAdvance();
        if (!this.closing) this.checkpointer.afterSync();
      }
    } catch (error) {
      this.failStorage(error, 'datasync');
    } finally {
      this.syncRunning = false;
    }
  }

  private settleSyncWaiters(syncedOffset: number): void {
    const waiters = this.syncWaiters;
    let head = this.syncWaitersHead;
    while (head < waiters.length && waiters[head]!.lastOffset <= syncedOffset) {
      waiters[head]!.synced();
      head++;
    }
    if (head === waiters.length) {
      this.syncWaiters = [];
      this.syncWaitersHead = 0;
    } else {
      this.syncWaitersHead = head;
    }
  }

  /** fsyncgate: after a failed sync nothing in this process can be trusted to reach the disk. */
  private failStorage(cause: unknown, operation: string): void {
    if (this.failure !== null) return;
    this.failure = new FerryError('STORAGE_FAILED', `log ${this.config.dir}: ${operation} failed; reopen the log to continue`, { cause });
    this.config.logger.error('storage.failed', { dir: this.config.dir, operation, error: cause });
    const waiters = this.syncWaiters.slice(this.syncWaitersHead);
    this.syncWaiters = [];
    this.syncWaitersHead = 0;
    for (const waiter of waiters) waiter.failed(this.failure);
    this.queue.rejectAll(this.failure);
  }

  /** Syncs everything written so far. */
  async sync(): Promise<void> {
    if (this.closing) throw this.closedError();
    try {
      await this.syncAllWritten();
    } catch (error) {
      throw toFerryError(error, `sync ${this.config.dir}`);
    }
  }

  // ---- read ---------------------------------------------------------------------------------

  async read(offset: number, options: ReadOptions = {}): Promise<LogRecord[]> {
    if (this.closing) throw this.closedError();
    if (!Number.isSafeInteger(offset) || offset < 0) throw new FerryError('INVALID_ARGUMENT', `offset must be a non-negative integer, got ${offset}`);
    const recordsMax = options.recordsMax ?? Number.POSITIVE_INFINITY;
    const bytesMax = options.bytesMax ?? READ_BYTES_MAX;
    if (!(recordsMax >= 1) || !(bytesMax >= 1)) throw new FerryError('INVALID_ARGUMENT', 'recordsMax and bytesMax must be at least 1');
    if (offset < this.startOffset) throw this.outOfRange(offset);
    const endOffset = Math.min(this.visibleEndOffset, options.endOffset ?? Number.POSITIVE_INFINITY);
    if (offset >= endOffset) return [];
    const request: ReadRequest = { offset, endOffset, recordsMax, bytesMax, wholeBatches: options.wholeBatches === true };
    const out: LogRecord[] = [];
    try {
      await readLog(() => this.segments, this.tailCache, request, out, (at) => this.outOfRange(at));
    } catch (error) {
      throw toFerryError(error, `read ${this.config.dir} at ${offset}`);
    }
    assert.ok(out.length === 0 || out[0]!.offset === offset, 'a read starts at the offset asked for');
    assert.ok(out.length === 0 || out[out.length - 1]!.offset < endOffset, 'a read stops before its end offset');
    return out;
  }

  async offsetForTimestamp(timestampMs: number): Promise<number> {
    if (this.closing) throw this.closedError();
    if (!Number.isFinite(timestampMs)) throw new FerryError('INVALID_ARGUMENT', 'timestampMs must be a number');
    try {
      for (const segment of this.segments.slice()) {
        if (segment.maxTimestampMs < timestampMs || !segment.acquire()) continue;
        try {
          const found = await segmentOffsetForTimestamp(segment, timestampMs);
          if (found !== null) return Math.max(found, this.startOffset);
        } finally {
          segment.release();
        }
      }
    } catch (error) {
      throw toFerryError(error, `offsetForTimestamp ${this.config.dir}`);
    }
    return this.nextOffsetValue;
  }

  // ---- retention ----------------------------------------------------------------------------

  enforceRetention(): Promise<RetentionReport> {
    return this.serializeMaintenance(async () => {
      let victims = 0;
      if (this.config.retention !== null) {
        const candidates = this.segments.map((segment): RetentionCandidate => ({ sizeBytes: segment.sizeBytes, recordCount: segment.recordCount, maxTimestampMs: this.ageStamps.get(segment) ?? segment.maxTimestampMs }));
        victims = selectRetentionVictims(candidates, this.config.retention, this.ageClock.nowMs());
      }
      const deleted = await this.deleteOldestSegments(victims, 'retention');
      return { ...deleted, startOffset: this.startOffset };
    });
  }

  deleteSegmentsBefore(offset: number): Promise<number> {
    return this.serializeMaintenance(async () => {
      let count = 0;
      while (count < this.segments.length - 1 && this.segments[count]!.nextOffset <= offset) count++;
      return (await this.deleteOldestSegments(count, 'deleteSegmentsBefore')).segmentsDeleted;
    });
  }

  private serializeMaintenance<T>(task: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(this.closedError());
    const run = this.maintenanceChain.then(async () => {
      if (this.closing) throw this.closedError();
      try {
        return await task();
      } catch (error) {
        throw toFerryError(error, `maintenance ${this.config.dir}`);
      }
    });
    this.maintenanceChain = run.catch(() => undefined);
    return run;
  }

  /** Removes the `count` oldest segments (never the active one): from the log at once, then from disk. */
  private async deleteOldestSegments(count: number, reason: string): Promise<Omit<RetentionReport, 'startOffset'>> {
    assert.ok(count < this.segments.length, 'the active segment is never deleted');
    const victims = this.segments.slice(0, count);
    this.segments = this.segments.slice(count);
    let bytesDeleted = 0;
    let recordsDeleted = 0;
    for (const segment of victims) {
      bytesDeleted += segment.sizeBytes;
      recordsDeleted += segment.recordCount;
    }
    this.totalBytes -= bytesDeleted;
    for (const segment of victims) await segment.delete();
    if (victims.length > 0) {
      await this.config.fs.syncDir(this.config.dir);
      this.config.logger.info('storage.segments.deleted', { dir: this.config.dir, reason, segments: victims.length, bytesDeleted, recordsDeleted, startOffset: this.startOffset });
    }
    return { segmentsDeleted: victims.length, bytesDeleted, recordsDeleted };
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  stats(): LogStats {
    return {
      startOffset: this.startOffset,
      nextOffset: this.nextOffsetValue,
      appendedOffset: this.appendedOffset,
      writtenOffset: this.writtenOffsetValue,
      syncedOffset: this.syncedOffsetValue,
      segments: this.segments.length,
      bytes: this.totalBytes,
      records: this.writtenOffsetValue + 1 - this.startOffset,
      tailCacheBytes: this.tailCache.bytes,
    };
  }

  private startTimers(): void {
    if (this.config.durability === 'interval') this.armSyncTimer();
    if (this.config.retention !== null) this.armRetentionTimer();
  }

  private armSyncTimer(): void {
    this.syncTimer = this.config.clock.schedule(this.config.syncIntervalMs, () => {
      this.syncTimer = null;
      if (this.closing) return;
      this.requestSync();
      this.armSyncTimer();
    });
  }

  private armRetentionTimer(): void {
    this.retentionTimer = this.config.clock.schedule(this.config.retentionCheckIntervalMs, () => {
      this.retentionTimer = null;
      if (this.closing) return;
      this.enforceRetention().catch((error: unknown) => {
        if (!isFerryError(error, 'LOG_CLOSED')) this.config.logger.error('storage.retention.failed', { dir: this.config.dir, error });
      });
      this.armRetentionTimer();
    });
  }

  private notifyAdvance(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.config.logger.error('storage.listener.failed', { dir: this.config.dir, error });
      }
    }
  }

  /** Writes what was accepted, syncs it, writes the indexes and the checkpoint, closes every file. */
  close(): Promise<void> {
    if (this.closePromise === null) {
      this.closing = true;
      this.closePromise = this.closeNow();
    }
    return this.closePromise;
  }

  private async closeNow(): Promise<void> {
    for (const timer of [this.syncTimer, this.retentionTimer]) timer?.cancel();
    this.syncTimer = this.retentionTimer = null;
    let error: unknown = null;
    try {
      while (this.writeScheduled || this.writeLoop !== null) {
        if (this.writeLoop !== null) await this.writeLoop;
        else await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await this.drainWrites();
      await this.maintenanceChain;
      if (this.failure === null) {
        await this.syncAllWritten();
        try {
          await this.active.writeIndexFiles();
        } catch (indexError) {
          // Derived data: the next open rebuilds it from the segment.
          this.config.logger.warn('storage.index.write_failed', { dir: this.config.dir, error: indexError });
        }
        await this.checkpointer.writeNow();
      }
    } catch (caught) {
      error = caught;
    }
    await this.checkpointer.stop();
    const closed = await Promise.allSettled(this.segments.map((segment) => segment.retire()));
    this.listeners.clear();
    // Give the memory back to the broker's shared budget (a deleted topic's tail must not hold it).
    this.tailCache.clear();
    const closeError = closed.find((result) => result.status === 'rejected');
    error ??= closeError?.status === 'rejected' ? closeError.reason : null;
    this.config.logger.info('storage.log.closed', { dir: this.config.dir, nextOffset: this.nextOffsetValue, failed: this.failure !== null });
    if (error !== null) throw toFerryError(error, `close ${this.config.dir}`);
  }

  private closedError(): FerryError {
    return new FerryError('LOG_CLOSED', `log ${this.config.dir} is closed`);
  }

  private outOfRange(offset: number): FerryError {
    return new FerryError('OFFSET_OUT_OF_RANGE', `offset ${offset} is below the log start ${this.startOffset}`, {
      detail: { offset, startOffset: this.startOffset, nextOffset: this.nextOffsetValue },
    });
  }
}
