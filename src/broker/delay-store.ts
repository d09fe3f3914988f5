/**
 * Delayed messages of one topic. A delayed message is stored at once (durably, per the topic's
 * mode) in the topic's delay log, and moved into the topic when its time comes; until then no
 * group or stream sees it, and it is never moved early.
 *
 * Memory follows what is due soon, not what is pending: the schedule lives on disk in bucket files
 * (one per DELAY_BUCKET_MS of due time, entries of 16 bytes: due time and delay-log offset), and
 * only the buckets within the horizon are loaded. Messages are moved in (due, offset) order, so
 * progress is one cursor. Bucket files are derived data: the delay log is rescanned from the last
 * checkpoint after a crash, and moves done after the checkpoint are found again by the
 * `ferry-delay-offset` header each moved record carries, so a message is moved exactly once.
 *
 * Layout: <dir>/log/ (a Log), <dir>/buckets/<due bucket start>.bin, <dir>/state.json.
 */
import { join } from 'node:path';
import type { Clock, TimerHandle } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import type { Logger } from '../platform/logger.js';
import { mkdirDurable, writeFileAtomic } from '../platform/atomic-write.js';
import { FerryError } from '../protocol/errors.js';
import { Log } from '../storage/log.js';
import type { Durability, Header, LogRecord, RecordInput, StorageObserver } from '../storage/types.js';
import { insertSorted } from './sorted-array.js';
import type { PublishMessage } from './types.js';

export const DELIVER_AT_HEADER = 'ferry-deliver-at';
export const DELAY_OFFSET_HEADER = 'ferry-delay-offset';
export const PARTITION_HEADER = 'ferry-delay-partition';
/** Width of one bucket of due times: a bucket is loaded one width before it starts. */
export const DELAY_BUCKET_MS = 60_000;
/** Messages moved per batch (read in runs, one append for the batch). */
const MOVE_BATCH_MAX = 1000;
/** A read run may span this many records plus RUN_SPAN_PER_ENTRY per wanted entry: dense enough to beat single reads. */
const RUN_SPAN_SLACK = 32;
const RUN_SPAN_PER_ENTRY = 4;
/** Delay-log reads of one move batch in flight together. */
const READS_IN_FLIGHT_MAX = 8;
/** Delayed messages per append, and bytes per stored batch: reading one back reads its batch. */
const DELAY_APPEND_RECORDS_MAX = 16;
const DELAY_BATCH_BYTES_MAX = 32 * 1024;
/** How often the schedule's progress is checkpointed, at most. */
const CHECKPOINT_INTERVAL_MS = 1000;
/** A failed move (e.g. disk full) is tried again after this long. */
const MOVE_RETRY_MS = 1000;
const ENTRY_BYTES = 16;
const STATE_FILE = 'state.json';
const STATE_VERSION = 1;
const U32 = 0x1_0000_0000;

interface Entry {
  dueMs: number;
  offset: number;
}

interface DelayState {
  version: number;
  /** Entries at or before this (due, offset) key have been moved. */
  cursorDueMs: number;
  cursorOffset: number;
  /** Every delay-log record below this has its entry in a synced bucket file. */
  indexedEnd: number;
  /** Main-log offsets from which moves after this checkpoint can be found again. */
  movedScanFrom: number[];
  /** Lowest delay-log offset in each bucket not yet moved (for deleting delay-log segments). */
  bucketMinOffsets: Record<string, number>;
}

export interface DelayStoreOptions {
  dir: string;
  fs: FileSystem;
  clock: Clock;
  logger: Logger;
  durability: Durability;
  syncIntervalMs: number;
  topic: string;
  observer?: StorageObserver | null;
  /** The topic's partition logs (searched for moves after a crash). */
  mainLogs: readonly Log[];
  /** Appends due messages to the topic. */
  deliver: (messages: PublishMessage[]) => Promise<unknown>;
}

export class DelayStore {
  private readonly bucketsDir: string;
  /** Loaded entries not yet moved, sorted by (dueMs, offset). */
  private due: Entry[] = [];
  /** Buckets whose start is below this are loaded into `due`. */
  private loadedEnd: number;
  private bucketStarts: number[];
  private readonly alreadyMoved = new Set<number>();
  private pendingWrites = new Map<number, Entry[]>();
  private writing: Promise<void> | null = null;
  private flushing: Promise<void> | null = null;
  private readonly dirtyBuckets = new Set<number>();
  private indexedWrittenEnd: number;
  private moving: Promise<void> | null = null;
  private moveTimer: TimerHandle | null = null;
  /** Wall time the armed move timer fires at. */
  private moveTimerAtMs = Infinity;
  private loadTimer: TimerHandle | null = null;
  private checkpointTimer: TimerHandle | null = null;
  private checkpointing: Promise<void> | null = null;
  private closed = false;

  private constructor(
    private readonly options: DelayStoreOptions,
    private readonly log: Log,
    private readonly state: DelayState,
    bucketStarts: number[],
  ) {
    this.bucketsDir = join(options.dir, 'buckets');
    this.bucketStarts = bucketStarts;
    this.indexedWrittenEnd = state.indexedEnd;
    this.loadedEnd = -Infinity;
  }

  static async open(options: DelayStoreOptions): Promise<DelayStore> {
    const { fs, dir } = options;
    await mkdirDurable(fs, join(dir, 'buckets'));
    const statePath = join(dir, STATE_FILE);
    const state: DelayState =
      (await fs.stat(statePath)) === null
        ? { version: STATE_VERSION, cursorDueMs: -1, cursorOffset: -1, indexedEnd: 0, movedScanFrom: options.mainLogs.map((log) => log.nextOffset), bucketMinOffsets: {} }
        : (JSON.parse((await fs.readFile(statePath)).toString('utf8')) as DelayState);
    if (state.version !== STATE_VERSION) throw new FerryError('STORAGE_FAILED', `${statePath} has unknown version ${state.version}`);
    const log = await Log.open({
      dir: join(dir, 'log'),
      fs,
      clock: options.clock,
      logger: options.logger,
      durability: options.durability,
      syncIntervalMs: options.syncIntervalMs,
      segmentBytes: 16 * 1024 * 1024,
      tailCacheBytes: 0,
      batchBytesMax: DELAY_BATCH_BYTES_MAX,
      ...(options.observer ? { observer: options.observer } : {}),
    });
    const bucketStarts = (await fs.readdir(join(dir, 'buckets')))
      .filter((name) => name.endsWith('.bin'))
      .map((name) => Number(name.slice(0, -4)))
      .sort((a, b) => a - b);
    const store = new DelayStore(options, log, state, bucketStarts);
    await store.recover();
    return store;
  }

  /** The delay log itself (read-only use: rebuilding the dedup window). */
  get delayLog(): Log {
    return this.log;
  }

  /** Delayed messages stored and not yet moved. */
  get pendingBytes(): number {
    return this.log.stats().bytes;
  }

  /** Stores delayed messages; resolves per the topic's durability with their delay-log offsets. */
  async add(messages: ReadonlyArray<{ message: PublishMessage; deliverAtMs: number }>): Promise<Array<{ offset: number; deliverAtMs: number; durability: 'synced' | 'written' }>> {
    if (this.closed) throw new FerryError('LOG_CLOSED', 'topic is closing');
    const floorMs = this.state.cursorDueMs + 1;
    const dues = messages.map(({ deliverAtMs }) => Math.max(deliverAtMs, floorMs));
    const records: RecordInput[] = messages.map(({ message }, index) => {
      const headers: Header[] = [...(message.headers ?? []), [DELIVER_AT_HEADER, String(dues[index])]];
      if (message.partition !== undefined) headers.push([PARTITION_HEADER, String(message.partition)]);
      return { key: message.key ?? null, headers, value: message.value };
    });
    // Small appends make small batches, so that moving one message later reads little.
    const chunks: RecordInput[][] = [];
    for (let index = 0; index < records.length; index += DELAY_APPEND_RECORDS_MAX) chunks.push(records.slice(index, index + DELAY_APPEND_RECORDS_MAX));
    const results = await Promise.all(chunks.map((chunk) => this.log.append(chunk)));
    const entries: Entry[] = [];
    results.forEach((result, chunk) => {
      for (let offset = result.baseOffset; offset <= result.lastOffset; offset++) {
        entries.push({ dueMs: dues[chunk * DELAY_APPEND_RECORDS_MAX + (offset - result.baseOffset)]!, offset });
      }
    });
    this.schedule(entries);
    return entries.map((entry) => ({ offset: entry.offset, deliverAtMs: entry.dueMs, durability: results[0]!.durability }));
  }

  private schedule(entries: Entry[]): void {
    for (const entry of entries) {
      const bucket = bucketOf(entry.dueMs);
      const queued = this.pendingWrites.get(bucket);
      if (queued === undefined) this.pendingWrites.set(bucket, [entry]);
      else queued.push(entry);
      const key = String(bucket);
      this.state.bucketMinOffsets[key] = Math.min(this.state.bucketMinOffsets[key] ?? Infinity, entry.offset);
      insertSorted(this.bucketStarts, bucket);
      if (bucket < this.loadedEnd) insertEntry(this.due, entry);
    }
    void this.writeBuckets();
    this.armMoveTimer();
    this.armLoadTimer();
  }

  /** Appends queued entries to their bucket files: one write per bucket. */
  private async writeBuckets(): Promise<void> {
    if (this.closed) return;
    await this.flushBuckets();
    this.scheduleCheckpoint();
  }

  /**
   * One flush at a time, batches in order: indexedWrittenEnd may only move past entries whose
   * bucket writes completed, or a checkpoint could skip the rescan of an entry never written.
   */
  private flushBuckets(): Promise<void> {
    this.flushing ??= this.flushQueued().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async flushQueued(): Promise<void> {
    while (this.pendingWrites.size > 0) {
      const batch = this.pendingWrites;
      this.pendingWrites = new Map();
      let highest = -1;
      const writes = [...batch].map(async ([bucket, entries]) => {
        const handle = await this.options.fs.open(this.bucketPath(bucket), 'create');
        try {
          await handle.write(encodeEntries(entries), await handle.size());
        } finally {
          await handle.close();
        }
        this.dirtyBuckets.add(bucket);
        for (const entry of entries) highest = Math.max(highest, entry.offset);
      });
      this.writing = Promise.all(writes).then(() => undefined);
      try {
        await this.writing;
        this.indexedWrittenEnd = Math.max(this.indexedWrittenEnd, highest + 1);
      } catch (error) {
        this.options.logger.error('broker.delay.bucket_write_failed', { topic: this.options.topic, error });
      } finally {
        this.writing = null;
      }
    }
  }

  private bucketPath(bucket: number): string {
    return join(this.bucketsDir, `${String(bucket).padStart(15, '0')}.bin`);
  }

  // --- Loading buckets as they come within the horizon ---

  private async loadDueBuckets(): Promise<void> {
    const horizonEnd = bucketOf(this.options.clock.nowMs()) + 2 * DELAY_BUCKET_MS;
    if (horizonEnd <= this.loadedEnd) return;
    const loaded: Entry[] = [];
    for (const bucket of this.bucketStarts) {
      if (bucket < this.loadedEnd || bucket >= horizonEnd) continue;
      for (const entry of await this.readBucket(bucket)) loaded.push(entry);
      for (const entry of this.pendingWrites.get(bucket) ?? []) loaded.push(entry);
    }
    this.loadedEnd = horizonEnd;
    const seen = new Set(this.due.map((entry) => entry.offset));
    for (const entry of loaded) {
      if (seen.has(entry.offset) || !this.isAfterCursor(entry)) continue;
      seen.add(entry.offset);
      this.due.push(entry);
    }
    this.due.sort(compareEntries);
    this.armMoveTimer();
    this.armLoadTimer();
  }

  private async readBucket(bucket: number): Promise<Entry[]> {
    const path = this.bucketPath(bucket);
    if ((await this.options.fs.stat(path)) === null) return [];
    const bytes = await this.options.fs.readFile(path);
    const entries: Entry[] = [];
    // A torn last entry (crash mid-write) is ignored: the delay-log rescan wrote it again.
    for (let position = 0; position + ENTRY_BYTES <= bytes.length; position += ENTRY_BYTES) {
      entries.push({
        dueMs: bytes.readUInt32BE(position) * U32 + bytes.readUInt32BE(position + 4),
        offset: bytes.readUInt32BE(position + 8) * U32 + bytes.readUInt32BE(position + 12),
      });
    }
    return entries;
  }

  private armLoadTimer(): void {
    if (this.loadTimer !== null || this.closed) return;
    const next = this.bucketStarts.find((bucket) => bucket >= this.loadedEnd);
    if (next === undefined) return;
    const loadAtMs = next - DELAY_BUCKET_MS;
    this.loadTimer = this.options.clock.schedule(loadAtMs - this.options.clock.nowMs(), () => {
      this.loadTimer = null;
      void this.loadDueBuckets().catch((error: unknown) => this.options.logger.error('broker.delay.load_failed', { topic: this.options.topic, error }));
    });
  }

  // --- Moving due messages into the topic ---

  private armMoveTimer(delayMs?: number): void {
    if (this.moving !== null || this.closed) return;
    const next = this.due[0];
    if (next === undefined) return;
    const fireAtMs = delayMs === undefined ? next.dueMs : this.options.clock.nowMs() + delayMs;
    if (this.moveTimer !== null) {
      // A message due sooner than the armed timer must not wait for it.
      if (delayMs !== undefined || fireAtMs >= this.moveTimerAtMs) return;
      this.moveTimer.cancel();
    }
    this.moveTimerAtMs = fireAtMs;
    this.moveTimer = this.options.clock.schedule(fireAtMs - this.options.clock.nowMs(), () => {
      this.moveTimer = null;
      let retry = false;
      this.moving = this.moveDue()
        .then((failed) => {
          retry = failed;
        })
        .finally(() => {
          this.moving = null;
          this.armMoveTimer(retry ? MOVE_RETRY_MS : undefined);
        });
    });
  }

  /** Moves every due entry; returns true when a move failed and should be tried again later. */
  private async moveDue(): Promise<boolean> {
    while (!this.closed) {
      const nowMs = this.options.clock.nowMs();
      const batch: Entry[] = [];
      while (batch.length < MOVE_BATCH_MAX && this.due.length > 0 && this.due[0]!.dueMs <= nowMs) batch.push(this.due.shift()!);
      if (batch.length === 0) return false;
      const skipped: number[] = [];
      try {
        const records = await this.readEntries(batch.filter((entry) => !this.alreadyMoved.has(entry.offset)));
        const messages: PublishMessage[] = [];
        for (const entry of batch) {
          if (this.alreadyMoved.has(entry.offset)) {
            skipped.push(entry.offset);
            continue;
          }
          const record = records.get(entry.offset);
          if (record === undefined) continue;
          const partitionHeader = record.headers.find(([name]) => name === PARTITION_HEADER);
          const headers: Header[] = record.headers.filter(([name]) => name !== PARTITION_HEADER);
          headers.push([DELAY_OFFSET_HEADER, String(entry.offset)]);
          messages.push({
            key: record.key,
            headers,
            value: record.value,
            ...(partitionHeader === undefined ? {} : { partition: Number(partitionHeader[1]) }),
          });
        }
        if (messages.length > 0) await this.options.deliver(messages);
      } catch (error) {
        this.options.logger.error('broker.delay.move_failed', { topic: this.options.topic, error });
        this.due = batch.concat(this.due);
        return true;
      }
      for (const offset of skipped) this.alreadyMoved.delete(offset);
      const last = batch[batch.length - 1]!;
      this.state.cursorDueMs = last.dueMs;
      this.state.cursorOffset = last.offset;
      this.scheduleCheckpoint();
    }
    return false;
  }

  /**
   * Reads the records of `entries` from the delay log: one read per dense run of offsets (a run
   * spans at most a few records per entry it holds), several runs at a time.
   */
  private async readEntries(entries: readonly Entry[]): Promise<Map<number, LogRecord>> {
    const offsets = entries.map((entry) => entry.offset).sort((a, b) => a - b);
    const wanted = new Set(offsets);
    const found = new Map<number, LogRecord>();
    const runs: Array<[first: number, last: number]> = [];
    let start = 0;
    while (start < offsets.length) {
      let end = start;
      while (end + 1 < offsets.length && offsets[end + 1]! - offsets[start]! <= RUN_SPAN_SLACK + RUN_SPAN_PER_ENTRY * (end + 2 - start)) end++;
      runs.push([offsets[start]!, offsets[end]!]);
      start = end + 1;
    }
    const readRun = async ([first, last]: [number, number]): Promise<void> => {
      for (let from = first; from <= last; ) {
        const records = await this.log.read(from, { recordsMax: last - from + 1 });
        if (records.length === 0) break;
        // Copies: the read buffer holds whole stored batches, which must not stay alive.
        for (const record of records) {
          if (wanted.has(record.offset)) found.set(record.offset, { ...record, value: Buffer.from(record.value), key: record.key === null ? null : Buffer.from(record.key) });
        }
        from = records[records.length - 1]!.offset + 1;
      }
    };
    for (let index = 0; index < runs.length; index += READS_IN_FLIGHT_MAX) {
      await Promise.all(runs.slice(index, index + READS_IN_FLIGHT_MAX).map(readRun));
    }
    return found;
  }

  private isAfterCursor(entry: Entry): boolean {
    return entry.dueMs > this.state.cursorDueMs || (entry.dueMs === this.state.cursorDueMs && entry.offset > this.state.cursorOffset);
  }

  // --- Checkpoint and recovery ---

  private scheduleCheckpoint(): void {
    if (this.checkpointTimer !== null || this.closed) return;
    this.checkpointTimer = this.options.clock.schedule(CHECKPOINT_INTERVAL_MS, () => {
      this.checkpointTimer = null;
      void this.checkpoint().catch((error: unknown) => this.options.logger.error('broker.delay.checkpoint_failed', { topic: this.options.topic, error }));
    });
  }

  /** Makes bucket files and progress durable, then deletes what is fully moved. */
  async checkpoint(): Promise<void> {
    if (this.checkpointing !== null) return this.checkpointing;
    this.checkpointing = (async () => {
      if (this.moving !== null) await this.moving;
      if (this.writing !== null) await this.writing;
      const indexedEnd = this.indexedWrittenEnd;
      const movedScanFrom = this.options.mainLogs.map((log) => log.nextOffset);
      for (const bucket of [...this.dirtyBuckets]) {
        this.dirtyBuckets.delete(bucket);
        const handle = await this.options.fs.open(this.bucketPath(bucket), 'create');
        try {
          await handle.datasync();
        } finally {
          await handle.close();
        }
      }
      await this.options.fs.syncDir(this.bucketsDir);
      // Buckets entirely behind the cursor and the clock are done.
      const doneBefore = Math.min(bucketOf(this.options.clock.nowMs()), this.due[0] === undefined ? Infinity : bucketOf(this.due[0].dueMs));
      const remaining: number[] = [];
      for (const bucket of this.bucketStarts) {
        if (bucket < doneBefore && bucket < this.loadedEnd && !this.pendingWrites.has(bucket)) {
          delete this.state.bucketMinOffsets[String(bucket)];
        } else {
          remaining.push(bucket);
        }
      }
      const finished = this.bucketStarts.filter((bucket) => !remaining.includes(bucket));
      const state: DelayState = { ...this.state, indexedEnd, movedScanFrom };
      await writeFileAtomic(this.options.fs, join(this.options.dir, STATE_FILE), Buffer.from(JSON.stringify(state)));
      this.state.indexedEnd = indexedEnd;
      this.state.movedScanFrom = movedScanFrom;
      this.bucketStarts = remaining;
      for (const bucket of finished) await this.options.fs.unlink(this.bucketPath(bucket)).catch(() => undefined);
      // Loops, not spreads: these can hold hundreds of thousands of values.
      let minPending = indexedEnd;
      for (const offset of Object.values(this.state.bucketMinOffsets)) if (offset < minPending) minPending = offset;
      for (const entry of this.due) if (entry.offset < minPending) minPending = entry.offset;
      await this.log.deleteSegmentsBefore(minPending);
    })().finally(() => {
      this.checkpointing = null;
    });
    return this.checkpointing;
  }

  private async recover(): Promise<void> {
    // 1. Records the bucket files may not hold: scan the delay log from the checkpoint.
    const rescanned: Entry[] = [];
    for (let offset = Math.max(this.state.indexedEnd, this.log.startOffset); offset < this.log.nextOffset; ) {
      const records = await this.log.read(offset, { recordsMax: 1024 });
      if (records.length === 0) break;
      for (const record of records) {
        const dueHeader = record.headers.find(([name]) => name === DELIVER_AT_HEADER);
        if (dueHeader !== undefined) rescanned.push({ dueMs: Number(dueHeader[1]), offset: record.offset });
      }
      offset = records[records.length - 1]!.offset + 1;
    }
    // 2. Moves after the checkpoint: their records in the topic carry the delay offset.
    for (const [partition, log] of this.options.mainLogs.entries()) {
      for (let offset = Math.max(this.state.movedScanFrom[partition] ?? 0, log.startOffset); offset < log.nextOffset; ) {
        const records = await log.read(offset, { recordsMax: 1024 });
        if (records.length === 0) break;
        for (const record of records) {
          const marker = record.headers.find(([name]) => name === DELAY_OFFSET_HEADER);
          if (marker !== undefined) this.alreadyMoved.add(Number(marker[1]));
        }
        offset = records[records.length - 1]!.offset + 1;
      }
    }
    const fresh = rescanned.filter((entry) => this.isAfterCursor(entry));
    if (fresh.length > 0) this.schedule(fresh);
    await this.loadDueBuckets();
    this.options.logger.info('broker.delay.recovered', {
      topic: this.options.topic,
      rescanned: rescanned.length,
      alreadyMoved: this.alreadyMoved.size,
      buckets: this.bucketStarts.length,
      dueSoon: this.due.length,
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.moveTimer?.cancel();
    this.moveTimer = null;
    this.loadTimer?.cancel();
    this.loadTimer = null;
    this.checkpointTimer?.cancel();
    this.checkpointTimer = null;
    if (this.moving !== null) await this.moving;
    if (this.writing !== null) await this.writing;
    await this.flushBuckets();
    await this.checkpoint();
    await this.log.close();
  }
}

function bucketOf(dueMs: number): number {
  return Math.floor(dueMs / DELAY_BUCKET_MS) * DELAY_BUCKET_MS;
}

function compareEntries(a: Entry, b: Entry): number {
  return a.dueMs - b.dueMs || a.offset - b.offset;
}

function insertEntry(entries: Entry[], entry: Entry): void {
  let low = 0;
  let high = entries.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (compareEntries(entries[mid]!, entry) < 0) low = mid + 1;
    else high = mid;
  }
  entries.splice(low, 0, entry);
}

function encodeEntries(entries: readonly Entry[]): Buffer {
  const buffer = Buffer.allocUnsafe(entries.length * ENTRY_BYTES);
  entries.forEach((entry, index) => {
    const position = index * ENTRY_BYTES;
    buffer.writeUInt32BE(Math.floor(entry.dueMs / U32), position);
    buffer.writeUInt32BE(entry.dueMs % U32, position + 4);
    buffer.writeUInt32BE(Math.floor(entry.offset / U32), position + 8);
    buffer.writeUInt32BE(entry.offset % U32, position + 12);
  });
  return buffer;
}
