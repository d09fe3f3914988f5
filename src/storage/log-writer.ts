/**
 * The single writer of one log: it takes everything queued (up to a batch cap), assigns offsets,
 * encodes ONE batch into one pooled buffer and writes it with ONE call; appends that arrive during
 * a write or a sync are the next batch (group commit). Offsets come from here only, so a failed
 * write rolls back without leaving a gap. Batches replicated from a leader arrive encoded and are
 * written as they are, at the offsets they carry.
 */
import assert from 'node:assert/strict';
import { FerryError } from '../errors.js';
import { AppendQueue, encodeBatch, type PendingAppend, type TakenBatch } from './append-queue.js';
import { SEGMENT_RECORDS_MAX } from './limits.js';
import { isDiskFull, toFerryError, type LogState } from './log-state.js';
import type { LogSyncer } from './log-syncer.js';
import { BATCH_HEADER_BYTES, type BatchHeader } from './record-batch.js';
import { Segment } from './segment.js';

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
  /** The pooled buffer `buf` is a view of, given back once the write has settled; null for a replicated batch. */
  pooled: Buffer | null;
  appends: PendingAppend[];
  state: 'writing' | 'done' | 'failed';
  error: unknown;
}

export class LogWriter {
  readonly queue = new AppendQueue();
  private writeScheduled = false;
  private writeLoop: Promise<void> | null = null;
  /** Batches whose write was started and not yet committed, in offset order. */
  private inFlight: InFlightWrite[] = [];
  /** Where the next batch goes in the active segment: its size plus the bytes in flight. */
  private writePosition: number;
  private rollingBack = false;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly state: LogState,
    private readonly syncer: LogSyncer,
  ) {
    this.writePosition = state.active.sizeBytes;
    state.onFailure((failure) => this.queue.rejectAll(failure));
  }

  push(pending: PendingAppend): void {
    this.queue.push(pending);
    this.scheduleWrite();
  }

  /** After a truncation made `segment` the active one, ending at `position`. */
  resetTo(position: number): void {
    assert.ok(this.inFlight.length === 0 && this.queue.isEmpty, 'nothing is being written across a truncation');
    this.writePosition = position;
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
      .catch((error: unknown) => this.state.failStorage(error, 'write loop'))
      .finally(() => {
        this.writeLoop = null;
        if (!this.queue.isEmpty) this.scheduleWrite();
      });
  };

  private async runWriteLoop(): Promise<void> {
    const state = this.state;
    while (!this.queue.isEmpty) {
      if (state.failure !== null) {
        this.queue.rejectAll(state.failure);
        break;
      }
      if (this.inFlight.length >= WRITES_IN_FLIGHT_MAX || this.rollingBack) {
        await this.settled();
        continue;
      }
      const batch = this.queue.take(this.batchCapBytes());
      if (this.needsRoll(batch.bytes, batch.records)) {
        // A roll needs every write committed and the writer to itself.
        await this.drainWrites();
        if (state.failure !== null) {
          for (const pending of batch.appends) pending.failed(state.failure);
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
        const failure = toFerryError(error, `append to ${state.config.dir}`);
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
    const { config } = this.state;
    if (config.durability === 'always') {
      if (this.queue.bytes < ALWAYS_SPLIT_QUEUE_BYTES_MIN) return config.batchBytesMax;
      return Math.min(config.batchBytesMax, Math.ceil(this.queue.bytes / WRITES_IN_FLIGHT_MAX) + BATCH_HEADER_BYTES);
    }
    const share = Math.ceil(this.queue.bytes / WRITES_IN_FLIGHT_MAX);
    return Math.min(config.batchBytesMax, PIPELINED_BATCH_BYTES_MAX, Math.max(PIPELINED_BATCH_BYTES_MIN, share + BATCH_HEADER_BYTES));
  }

  /** Assigns offsets, encodes the batch into one buffer (or takes a replicated one as it is) and starts its one write call. */
  private startWrite(batch: TakenBatch): void {
    const state = this.state;
    const segment = state.active;
    const position = this.writePosition;
    const raw = batch.appends[0]!.raw;
    let buf: Buffer;
    let header: BatchHeader;
    let pooled: Buffer | null = null;
    if (raw !== null) {
      assert.equal(batch.appends.length, 1, 'a replicated batch is written alone');
      if (raw.header.baseOffset !== state.nextOffset) {
        throw new FerryError('INVALID_ARGUMENT', `a replicated batch starts at ${raw.header.baseOffset}, the log ends at ${state.nextOffset}`);
      }
      ({ buf, header } = raw);
      const pending = batch.appends[0]!;
      pending.baseOffset = header.baseOffset;
      pending.lastOffset = header.baseOffset + header.recordCount - 1;
    } else {
      pooled = state.writeBuffers.take(batch.bytes);
      ({ buf, header } = encodeBatch(batch, state.nextOffset, state.leaderEpoch, pooled));
    }
    const appends = batch.appends;
    state.nextOffset = header.baseOffset + header.recordCount;
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
      if (this.state.config.durability === 'always') this.syncer.request();
      this.state.notifyAdvance();
    }
    this.wake();
  }

  private commitWrite(write: InFlightWrite): void {
    const state = this.state;
    const { config } = state;
    const { segment, position, header, appends } = write;
    if (position === 0) segment.createdAtMs = state.ageClock.nowMs();
    segment.noteBatch(position, header, config.indexIntervalBytes);
    state.ageStamps.set(segment, Math.max(state.ageStamps.get(segment) ?? -1, state.ageClock.fromWall(header.maxTimestampMs)));
    state.totalBytes += header.batchBytes;
    this.syncer.markDirty(segment);
    if (appends[0]?.raw?.uncached === true) state.tailCache.clear();
    else state.tailCache.add(write.buf, header.baseOffset, header.recordCount, header.leaderEpoch);
    if (write.pooled !== null) state.writeBuffers.give(write.pooled);
    config.observer?.batchWritten(header.recordCount, header.batchBytes);
    state.writtenOffset = header.baseOffset + header.recordCount - 1;
    assert.equal(segment.nextOffset, state.writtenOffset + 1, 'the segment ends at the written offset');
    if (write.pooled === null) {
      for (const pending of appends) pending.written();
    } else if (config.durability !== 'always') {
      for (const pending of appends) pending.written();
    } else if (state.failure !== null) {
      for (const pending of appends) pending.failed(state.failure);
    } else {
      for (const pending of appends) this.syncer.wait(pending);
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
    for (const write of writes) if (write.pooled !== null) this.state.writeBuffers.give(write.pooled);
    this.state.nextOffset = first.header.baseOffset;
    this.writePosition = first.position;
    try {
      await first.segment.handle.truncate(first.position);
    } catch (truncateError) {
      this.state.failStorage(truncateError, 'truncate after a failed write');
    }
    for (const write of writes) this.batchFailed(write.appends, error, 'write');
    this.rollingBack = false;
    this.wake();
  }

  /** Resolves when a write settles or a rollback ends (the writer waits for a free slot). */
  private settled(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.waiters.push(resolve);
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    if (waiters.length === 0) return;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once no write is in flight and no rollback is running. */
  async drainWrites(): Promise<void> {
    while (this.inFlight.length > 0 || this.rollingBack) await this.settled();
  }

  /** Resolves once nothing is queued, scheduled or in flight. */
  async idle(): Promise<void> {
    while (this.writeScheduled || this.writeLoop !== null || !this.queue.isEmpty) {
      if (this.writeLoop !== null) await this.writeLoop;
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await this.drainWrites();
  }

  private batchFailed(appends: PendingAppend[], error: unknown, operation: string): void {
    const state = this.state;
    let failure: FerryError;
    if (state.failure !== null) {
      failure = state.failure;
    } else if (isDiskFull(error)) {
      failure = new FerryError('DISK_FULL', `log ${state.config.dir}: disk full during ${operation}`, { cause: error });
      state.config.logger.warn('storage.disk_full', { dir: state.config.dir, operation, appends: appends.length });
    } else {
      state.failStorage(error, operation);
      failure = state.failure!;
    }
    for (const pending of appends) pending.failed(failure);
  }

  private needsRoll(bytes: number, records: number): boolean {
    const state = this.state;
    const segment = state.active;
    if (this.writePosition === 0) return false;
    if (this.writePosition + bytes > state.config.segmentBytes) return true;
    if (state.nextOffset - segment.baseOffset + records > SEGMENT_RECORDS_MAX) return true;
    return state.ageClock.nowMs() - segment.createdAtMs >= state.config.segmentAgeMs;
  }

  /**
   * Seals the active segment and starts a new one. Order: (not `never`) sync everything written,
   * so the old segment is complete on disk; write its index files atomically; create the new file
   * and syncDir, so it exists durably before anything in it can be reported synced; then move the
   * checkpoint to the start of the new segment.
   */
  private async roll(): Promise<void> {
    const state = this.state;
    const { config } = state;
    const old = state.active;
    if (config.durability !== 'never') await this.syncer.syncAllWritten();
    await old.writeIndexFiles();
    const next = await Segment.create(config.fs, config.dir, old.nextOffset, state.ageClock.nowMs());
    try {
      await config.fs.syncDir(config.dir);
    } catch (error) {
      await next.delete().catch(() => undefined);
      throw error;
    }
    state.segments.push(next);
    state.active = next;
    this.writePosition = 0;
    config.logger.debug('storage.segment.rolled', { dir: config.dir, sealedBaseOffset: old.baseOffset, baseOffset: next.baseOffset });
    if (this.syncer.allSynced) await this.syncer.moveToSegmentStart(next);
  }
}
