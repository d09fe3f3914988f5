/**
 * Delayed messages of one topic. A delayed message is stored at once (durably, per the topic's
 * mode) in the topic's delay log, and moved into the topic when its time comes; until then no
 * group or stream sees it.
 *
 * Time: a due time is a wall-clock time (it is what the publisher asked for, and it must survive a
 * restart), but while the broker runs the store does not trust a wall clock that can step. When a
 * message enters the process (published, or found at open) its remaining delay is computed once,
 * due time minus wall-clock now, and it is released when that much monotonic time has passed
 * (wall-shifts.ts keeps this right for messages that wait on disk meanwhile). Across a restart on
 * the same boot, wall-epochs.ts tells, from the machine's monotonic clock, how far the wall clock
 * stepped since each waiting message was published, and its release moves back by that step.
 * After a reboot (or where the platform gives no boot clock) the wall clock is the only reference:
 * a step made before the restart, while a message waited, shifts its release by the step
 * (docs/RELIABILITY.md, "Wall-clock steps").
 *
 * Memory follows what is due soon, not what is pending: the schedule lives on disk in bucket files
 * (buckets.ts: one per DELAY_BUCKET_MS of due time), and only the buckets within the horizon
 * are loaded. Whether a message was moved is recorded per message, never inferred from due-time
 * order: each move appends a "moved" item to the message's bucket, and the moved record carries the
 * `ferry-delay-offset` header, by which moves after the last checkpoint are found again after a
 * crash. So a message is moved at most once and never lost, whatever the clock does.
 *
 * Layout: <dir>/log/ (a Log), <dir>/buckets/<due bucket start>.bin, <dir>/state.json, <dir>/clock.json (wall-epochs.ts).
 */
import { join } from 'node:path';
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { FileSystem } from '../../platform/fs.js';
import type { Logger } from '../../platform/logger.js';
import { mkdirDurable, writeFileAtomic } from '../../platform/atomic-write.js';
import { FerryError } from '../../errors.js';
import type { AppendResult, Durability, Header, LogOptions, LogRecord, PartitionLog, RecordInput, StorageObserver } from '../../storage/types.js';
import type { WriteBufferPool } from '../../storage/write-buffers.js';
import {
  appendBucketItems,
  bucketFileName,
  bucketOf,
  DELAY_BUCKET_MS,
  itemKey,
  parseBucketFileName,
  pendingItems,
  readBucketItems,
  type BucketItem,
} from './buckets.js';
import { readRecordsAt, scanLog } from './log-reads.js';
import { insertSorted, lowerBound } from './sorted-array.js';
import type { PublishMessage } from '../types.js';
import { WallEpochs } from './wall-epochs.js';
import { SHIFT_TOLERANCE_MS, WallShifts } from './wall-shifts.js';

export { DELAY_BUCKET_MS } from './buckets.js';
export const DELIVER_AT_HEADER = 'ferry-deliver-at';
export const DELAY_OFFSET_HEADER = 'ferry-delay-offset';
export const PARTITION_HEADER = 'ferry-delay-partition';
/** Messages moved per batch (read in runs, one append per partition for the batch). */
const MOVE_BATCH_MAX = 1000;
/** Delayed messages per append, and bytes per stored batch: reading one back reads its batch. */
const DELAY_APPEND_RECORDS_MAX = 16;
const DELAY_BATCH_BYTES_MAX = 32 * 1024;
/** Entries inserted one by one into the sorted due list; more at once are sorted together. */
const INSERTS_BEFORE_SORT_MAX = 32;
/** How often the schedule's progress is checkpointed, at most. */
const CHECKPOINT_INTERVAL_MS = 1000;
/** A failed move (e.g. disk full) is tried again after this long. */
const MOVE_RETRY_MS = 1000;
/**
 * Times an add writes new clock epochs before it gives up: each retry means the wall clock stepped
 * again while the last was written, which a sane clock does not do many times in a row.
 */
const EPOCH_WRITES_MAX = 8;
/** A bucket file that could not be read is read again after this long. */
const LOAD_RETRY_MS = 1000;
const STATE_FILE = 'state.json';
const STATE_VERSION = 2;
/** Version 1 decided what was moved from a (due, offset) cursor; it is converted at open. */
const STATE_VERSION_CURSOR = 1;

/** A pending message held in memory, due soon. */
interface Entry {
  dueMs: number;
  offset: number;
  /** Monotonic time at which it is moved, computed once when it entered memory. */
  releaseMonoMs: number;
}

interface DelayState {
  version: number;
  /** Every delay-log record below this has its scheduled item in a synced bucket file. */
  indexedEnd: number;
  /** Main-log offsets from which moves newer than the synced "moved" items can be found. */
  movedScanFrom: number[];
  /** Lowest delay-log offset in each bucket not yet finished (for deleting delay-log segments). */
  bucketMinOffsets: Record<string, number>;
}

interface CursorStateV1 {
  version: 1;
  cursorDueMs: number;
  cursorOffset: number;
  indexedEnd: number;
  movedScanFrom: number[];
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
  /** The broker's encode buffers (storage/write-buffers.ts); by default the journal keeps its own. */
  writeBuffers?: WriteBufferPool;
  /** The topic's partition logs (searched for moves after a crash). */
  mainLogs: readonly PartitionLog[];
  /** Opens the delay log (the topic's log factory). */
  openLog: (options: LogOptions) => Promise<PartitionLog>;
  /** Appends due messages to the topic. */
  deliver: (messages: PublishMessage[]) => Promise<unknown>;
}

export class DelayStore {
  private readonly bucketsDir: string;
  /** Wall minus monotonic time at open: turns wall-clock due times into monotonic release times. */
  private readonly wallMinusMonoMs: number;
  private readonly shifts = new WallShifts();
  /** Loaded entries not yet moved, sorted by (releaseMonoMs, offset). */
  private due: Entry[] = [];
  /** Buckets whose start is below this are loaded: their new entries go straight into `due`. */
  private loadedEnd = -Infinity;
  /** Buckets with a file or queued items, ascending. */
  private bucketStarts: number[];
  /** Loaded buckets: entries in memory not yet moved (including those being moved). */
  private readonly unmoved = new Map<number, number>();
  /** Keys (itemKey) of the entries in memory, in `due` or being moved: each is held once. */
  private readonly held = new Set<string>();
  /** Buckets below `loadedEnd` whose file could not be read: read again, never deleted meanwhile. */
  private readonly unreadable = new Set<number>();
  /** Highest delay-log offset scheduled in each bucket seen in this process. */
  private readonly bucketMaxOffsets = new Map<number, number>();
  /** Items not yet appended to their bucket files. */
  private queued = new Map<number, BucketItem[]>();
  private readonly dirtyBuckets = new Set<number>();
  /** Bucket-file work (appends, loads, checkpoints) runs one task at a time, in order. */
  private ioTail: Promise<void> = Promise.resolve();
  private flushRequested = false;
  /** Delay-log offset at the start of each add in flight: its records are not indexed yet. */
  private readonly addsInFlight = new Set<{ from: number }>();
  /** The appends of the adds in flight, until they settle. */
  private readonly appendsPending = new Set<Promise<unknown>>();
  /** Set while an add makes new clock epochs durable: other adds wait, so that it appends first. */
  private epochGate: Promise<void> | null = null;
  /** Main-log offsets at the start of the move batch in flight: its records land at or after them. */
  private moveScanFloor: number[] | null = null;
  private moving: Promise<void> | null = null;
  private moveTimer: TimerHandle | null = null;
  /** Monotonic time the armed move timer fires at. */
  private moveTimerAtMs = Infinity;
  private loadTimer: TimerHandle | null = null;
  private loadTimerAtMs = Infinity;
  private checkpointTimer: TimerHandle | null = null;
  private checkpointing: Promise<void> | null = null;
  /** Version 1 state only: entries at or before this (due, offset) were moved. */
  private legacyCursor: { dueMs: number; offset: number } | null = null;
  private closed = false;

  private constructor(
    private readonly options: DelayStoreOptions,
    private readonly log: PartitionLog,
    private readonly state: DelayState,
    bucketStarts: number[],
    private readonly epochs: WallEpochs,
  ) {
    this.bucketsDir = join(options.dir, 'buckets');
    this.bucketStarts = bucketStarts;
    this.wallMinusMonoMs = options.clock.nowMs() - options.clock.monotonicMs();
  }

  static async open(options: DelayStoreOptions): Promise<DelayStore> {
    const { fs, dir } = options;
    await mkdirDurable(fs, join(dir, 'buckets'));
    const log = await options.openLog({
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
      ...(options.writeBuffers ? { writeBuffers: options.writeBuffers } : {}),
    });
    const statePath = join(dir, STATE_FILE);
    let saved: DelayState | CursorStateV1;
    if ((await fs.stat(statePath)) === null) {
      // A new store: written before the first delayed message is taken, so that moves are always
      // searched for from where they can begin. (A store without one that has records, from before
      // this rule, searches the whole topic.)
      const fresh = log.nextOffset === 0;
      saved = { version: STATE_VERSION, indexedEnd: 0, movedScanFrom: options.mainLogs.map((main) => (fresh ? main.nextOffset : 0)), bucketMinOffsets: {} };
      await writeFileAtomic(fs, statePath, Buffer.from(JSON.stringify(saved)));
    } else {
      saved = JSON.parse((await fs.readFile(statePath)).toString('utf8')) as DelayState | CursorStateV1;
    }
    if (saved.version !== STATE_VERSION && saved.version !== STATE_VERSION_CURSOR) {
      await log.close();
      throw new FerryError('STORAGE_FAILED', `${statePath} has unknown version ${saved.version}`);
    }
    const bucketStarts: number[] = [];
    for (const name of await fs.readdir(join(dir, 'buckets'))) {
      const bucket = parseBucketFileName(name);
      if (bucket !== null) bucketStarts.push(bucket);
    }
    bucketStarts.sort((a, b) => a - b);
    const state: DelayState = {
      version: STATE_VERSION,
      indexedEnd: saved.indexedEnd,
      movedScanFrom: saved.movedScanFrom,
      bucketMinOffsets: saved.bucketMinOffsets,
    };
    let epochs: WallEpochs;
    try {
      epochs = await WallEpochs.open({ fs, dir, clock: options.clock, logger: options.logger, topic: options.topic, startOffset: log.startOffset, nextOffset: log.nextOffset });
    } catch (error) {
      await log.close();
      throw error;
    }
    const store = new DelayStore(options, log, state, bucketStarts, epochs);
    if (saved.version === STATE_VERSION_CURSOR) await store.convertCursor(saved as CursorStateV1);
    await store.recover();
    return store;
  }

  /** The delay log itself (read-only use: rebuilding the dedup window). */
  get delayLog(): PartitionLog {
    return this.log;
  }

  /** Delayed messages stored and not yet moved. */
  get pendingBytes(): number {
    return this.log.stats().bytes;
  }

  /** Stores delayed messages; resolves per the topic's durability with their delay-log offsets. */
  async add(messages: ReadonlyArray<{ message: PublishMessage; deliverAtMs: number }>): Promise<Array<{ offset: number; deliverAtMs: number; durability: 'synced' | 'written' }>> {
    if (this.closed) throw new FerryError('LOG_CLOSED', 'topic is closing');
    // The remaining delays are measured now, once; see wall-shifts.ts. From the last reading to the
    // appends nothing awaits.
    const firstMonoMs = this.options.clock.monotonicMs();
    let { wallMs, monoMs, wallNowMs } = this.readClocks(messages, firstMonoMs);
    let epochWrites = 0;
    while (this.epochGate !== null || !this.epochs.inCurrent(wallNowMs)) {
      if (this.epochGate !== null) {
        // Another add is starting an epoch; it appends first.
        await this.epochGate.catch(() => undefined);
        if (this.closed) throw new FerryError('LOG_CLOSED', 'topic is closing');
        ({ wallMs, monoMs, wallNowMs } = this.readClocks(messages, firstMonoMs));
        continue;
      }
      // The wall clock stepped: these messages' epochs must be durable, at the very offsets they
      // will take, before they are appended. Other adds wait at the gate meanwhile.
      if (++epochWrites > EPOCH_WRITES_MAX) throw new FerryError('BROKER_BUSY', `topic ${this.options.topic}: the wall clock keeps stepping; publish again`);
      const startWallNowMs = wallNowMs;
      const gate = this.appendsSettled().then((nextOffset) => this.epochs.extend(nextOffset, startWallNowMs));
      this.epochGate = gate;
      try {
        await gate;
      } finally {
        // Cleared before the appends below: adds waiting at the gate resume only after them.
        this.epochGate = null;
      }
      if (this.closed) throw new FerryError('LOG_CLOSED', 'topic is closing');
      ({ wallMs, monoMs, wallNowMs } = this.readClocks(messages, firstMonoMs));
      if (this.epochs.covers(this.log.nextOffset, wallNowMs)) break;
    }
    const records: RecordInput[] = messages.map(({ message, deliverAtMs }) => {
      const headers: Header[] = [...(message.headers ?? []), [DELIVER_AT_HEADER, String(deliverAtMs)]];
      if (message.partition !== undefined) headers.push([PARTITION_HEADER, String(message.partition)]);
      return { key: message.key ?? null, headers, value: message.value };
    });
    // Small appends make small batches, so that moving one message later reads little.
    const chunks: RecordInput[][] = [];
    for (let index = 0; index < records.length; index += DELAY_APPEND_RECORDS_MAX) chunks.push(records.slice(index, index + DELAY_APPEND_RECORDS_MAX));
    if (chunks.length === 0) return [];
    const inFlight = { from: this.log.nextOffset };
    this.addsInFlight.add(inFlight);
    const appending = Promise.allSettled(chunks.map((chunk) => this.log.append(chunk)));
    this.appendsPending.add(appending);
    let settled: Array<PromiseSettledResult<AppendResult>>;
    try {
      settled = await appending;
    } finally {
      this.addsInFlight.delete(inFlight);
      this.appendsPending.delete(appending);
    }
    // Chunks that were stored are scheduled even if another failed: stored is stored.
    const entries: Entry[] = [];
    let failure: unknown = null;
    settled.forEach((outcome, chunk) => {
      if (outcome.status === 'rejected') {
        failure ??= outcome.reason;
        return;
      }
      const result = outcome.value;
      for (let offset = result.baseOffset; offset <= result.lastOffset; offset++) {
        const { message, deliverAtMs: dueMs } = messages[chunk * DELAY_APPEND_RECORDS_MAX + (offset - result.baseOffset)]!;
        entries.push({ dueMs, offset, releaseMonoMs: monoMs + remainingMs(message, dueMs, wallMs) });
      }
    });
    this.recordShifts(entries);
    if (entries.length > 0) this.schedule(entries);
    if (failure !== null) throw failure;
    const durability = (settled[0] as PromiseFulfilledResult<AppendResult>).value.durability;
    return entries.map((entry) => ({ offset: entry.offset, deliverAtMs: entry.dueMs, durability }));
  }

  /**
   * The clocks now, and for each message what the wall clock reads now in the terms of its due time.
   * For a `delayMs` publish that is the clock the broker computed it with, plus the monotonic time
   * since the add began: so that waiting at the epoch gate does not look like a step (it still
   * differs by the time from the publish to the add, which wall-epochs.ts tolerates).
   */
  private readClocks(messages: ReadonlyArray<{ message: PublishMessage; deliverAtMs: number }>, firstMonoMs: number): { wallMs: number; monoMs: number; wallNowMs: number[] } {
    const wallMs = this.options.clock.nowMs();
    const monoMs = this.options.clock.monotonicMs();
    const waitedMs = monoMs - firstMonoMs;
    return {
      wallMs,
      monoMs,
      wallNowMs: messages.map(({ message, deliverAtMs }) => (givenDelayMs(message) === undefined ? wallMs : deliverAtMs - givenDelayMs(message)! + waitedMs)),
    };
  }

  /** Resolves, once no delay-log append is pending, with the offset the next record takes. */
  private async appendsSettled(): Promise<number> {
    while (this.appendsPending.size > 0) await Promise.allSettled([...this.appendsPending]);
    return this.log.nextOffset;
  }

  /**
   * Remembers, for entries that may wait on disk, how their release differs from the one their due
   * time gives at open (a wall-clock step since): runs of consecutive offsets with one shift.
   */
  private recordShifts(entries: readonly Entry[]): void {
    let start = 0;
    while (start < entries.length) {
      const shiftMs = this.shiftOf(entries[start]!);
      let end = start;
      let dueMaxMs = entries[start]!.dueMs;
      while (end + 1 < entries.length && entries[end + 1]!.offset === entries[end]!.offset + 1 && Math.abs(this.shiftOf(entries[end + 1]!) - shiftMs) <= SHIFT_TOLERANCE_MS) {
        end++;
        dueMaxMs = Math.max(dueMaxMs, entries[end]!.dueMs);
      }
      let runShiftMs = shiftMs;
      for (let index = start + 1; index <= end; index++) runShiftMs = Math.min(runShiftMs, this.shiftOf(entries[index]!));
      if (!this.shifts.record(entries[start]!.offset, entries[end]!.offset, runShiftMs, dueMaxMs)) {
        this.options.logger.warn('broker.delay.wall_shifts_full', { topic: this.options.topic });
      }
      start = end + 1;
    }
  }

  private shiftOf(entry: Entry): number {
    return entry.dueMs - this.wallMinusMonoMs - entry.releaseMonoMs;
  }

  /** Queues entries' scheduled items; those of loaded buckets go into memory too. */
  private schedule(entries: readonly Entry[]): void {
    // Many entries at once are appended and sorted in one go rather than inserted one by one.
    const sortAfter = entries.length > INSERTS_BEFORE_SORT_MAX;
    let added = 0;
    for (const entry of entries) {
      const bucket = bucketOf(entry.dueMs);
      this.queue(bucket, { dueMs: entry.dueMs, offset: entry.offset, moved: false });
      const key = String(bucket);
      this.state.bucketMinOffsets[key] = Math.min(this.state.bucketMinOffsets[key] ?? Infinity, entry.offset);
      this.bucketMaxOffsets.set(bucket, Math.max(this.bucketMaxOffsets.get(bucket) ?? -1, entry.offset));
      insertSorted(this.bucketStarts, bucket);
      if (bucket < this.loadedEnd && !this.held.has(itemKey(entry))) {
        if (sortAfter) this.due.push(entry);
        else insertEntry(this.due, entry);
        this.held.add(itemKey(entry));
        added++;
        this.unmoved.set(bucket, (this.unmoved.get(bucket) ?? 0) + 1);
      }
    }
    if (sortAfter && added > 0) this.due.sort(compareEntries);
    this.requestFlush();
    this.armMoveTimer();
    this.armLoadTimer();
  }

  private queue(bucket: number, item: BucketItem): void {
    const items = this.queued.get(bucket);
    if (items === undefined) this.queued.set(bucket, [item]);
    else items.push(item);
  }

  // --- Bucket-file work, one task at a time ---

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.ioTail.then(task);
    this.ioTail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private requestFlush(): void {
    if (this.flushRequested) return;
    this.flushRequested = true;
    void this.exclusive(async () => {
      this.flushRequested = false;
      await this.appendQueued();
    }).then(
      () => this.scheduleCheckpoint(),
      (error: unknown) => {
        // The items stay queued; the next flush or checkpoint tries again.
        this.options.logger.error('broker.delay.bucket_write_failed', { topic: this.options.topic, error });
        this.scheduleCheckpoint();
      },
    );
  }

  /** Appends every queued item to its bucket file (one write per bucket); failed ones stay queued. */
  private async appendQueued(): Promise<void> {
    while (this.queued.size > 0) {
      const batch = this.queued;
      this.queued = new Map();
      const buckets = [...batch.keys()];
      const outcomes = await Promise.allSettled(buckets.map((bucket) => appendBucketItems(this.options.fs, this.bucketPath(bucket), batch.get(bucket)!)));
      let failure: unknown = null;
      outcomes.forEach((outcome, index) => {
        const bucket = buckets[index]!;
        if (outcome.status === 'fulfilled') {
          this.dirtyBuckets.add(bucket);
          return;
        }
        failure ??= outcome.reason;
        const later = this.queued.get(bucket);
        this.queued.set(bucket, later === undefined ? batch.get(bucket)! : batch.get(bucket)!.concat(later));
      });
      if (failure !== null) throw failure;
    }
  }

  private bucketPath(bucket: number): string {
    return join(this.bucketsDir, bucketFileName(bucket));
  }

  // --- Loading buckets as they come within the horizon ---

  /**
   * The end of the buckets to hold in memory: two widths past the monotonic clock expressed as a
   * wall-clock time of this process, plus the largest forward step messages waiting on disk were
   * published under (their release comes that much before their due time suggests).
   */
  private horizonEnd(): number {
    return bucketOf(this.options.clock.monotonicMs() + this.wallMinusMonoMs + this.shifts.aheadMs) + 2 * DELAY_BUCKET_MS;
  }

  private loadDueBuckets(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed) return;
      const horizonEnd = this.horizonEnd();
      if (horizonEnd > this.loadedEnd) {
        const buckets = this.bucketStarts.slice(lowerBound(this.bucketStarts, this.loadedEnd), lowerBound(this.bucketStarts, horizonEnd));
        // Items queued so far, copied: from now on these buckets' new entries go straight to
        // memory, and no append runs until this task ends, so each item is read once.
        const queuedNow = new Map<number, BucketItem[]>();
        for (const bucket of buckets) queuedNow.set(bucket, [...(this.queued.get(bucket) ?? [])]);
        this.loadedEnd = horizonEnd;
        await this.load(buckets, (bucket) => queuedNow.get(bucket)!);
        this.shifts.dropLoaded(this.loadedEnd, bucketOf);
      }
      if (this.unreadable.size > 0) {
        // Everything queued for them since counts: entries already in memory are skipped as held.
        const retry = [...this.unreadable];
        this.unreadable.clear();
        await this.load(retry, (bucket) => this.queued.get(bucket) ?? []);
      }
      this.armMoveTimer();
      this.armLoadTimer();
    });
  }

  /** Reads buckets into memory; those that cannot be read are tried again later. */
  private async load(buckets: readonly number[], queuedFor: (bucket: number) => readonly BucketItem[]): Promise<void> {
    // Joined to `due` only once all are read: `due` stays sorted for the mover meanwhile.
    const loaded: Entry[] = [];
    for (const bucket of buckets) {
      let items: BucketItem[];
      try {
        items = await readBucketItems(this.options.fs, this.bucketPath(bucket));
      } catch (error) {
        this.options.logger.error('broker.delay.load_failed', { topic: this.options.topic, bucket, error });
        this.unreadable.add(bucket);
        continue;
      }
      for (const item of queuedFor(bucket)) items.push(item);
      this.admit(bucket, items, loaded);
    }
    if (loaded.length === 0) return;
    for (const entry of loaded) this.due.push(entry);
    this.due.sort(compareEntries);
  }

  /** Adds a loaded bucket's pending entries to `into`, holding them and counting them as unmoved. */
  private admit(bucket: number, items: readonly BucketItem[], into: Entry[]): void {
    let count = 0;
    let maxOffset = this.bucketMaxOffsets.get(bucket) ?? -1;
    for (const item of items) if (item.offset > maxOffset) maxOffset = item.offset;
    this.bucketMaxOffsets.set(bucket, maxOffset);
    for (const item of pendingItems(items)) {
      if (this.held.has(itemKey(item))) continue;
      if (this.legacyCursor !== null && atOrBefore(item, this.legacyCursor)) continue;
      const releaseMonoMs = item.dueMs - this.wallMinusMonoMs - this.shifts.shiftOf(item.offset);
      into.push({ dueMs: item.dueMs, offset: item.offset, releaseMonoMs });
      this.held.add(itemKey(item));
      count++;
    }
    if (count > 0) this.unmoved.set(bucket, (this.unmoved.get(bucket) ?? 0) + count);
  }

  private armLoadTimer(): void {
    if (this.closed) return;
    const next = this.bucketStarts[lowerBound(this.bucketStarts, this.loadedEnd)];
    // Due when horizonEnd() passes `next`, i.e. when the clock reaches one width before it.
    let loadAtMs = next === undefined ? Infinity : next - DELAY_BUCKET_MS - this.wallMinusMonoMs - this.shifts.aheadMs;
    if (this.unreadable.size > 0) loadAtMs = Math.min(loadAtMs, this.options.clock.monotonicMs() + LOAD_RETRY_MS);
    if (loadAtMs === Infinity) return;
    if (this.loadTimer !== null) {
      if (loadAtMs >= this.loadTimerAtMs) return;
      this.loadTimer.cancel();
    }
    this.loadTimerAtMs = loadAtMs;
    this.loadTimer = this.options.clock.schedule(loadAtMs - this.options.clock.monotonicMs(), () => {
      this.loadTimer = null;
      this.loadTimerAtMs = Infinity;
      void this.loadDueBuckets().catch((error: unknown) => {
        this.options.logger.error('broker.delay.load_failed', { topic: this.options.topic, error });
        this.armLoadTimer();
      });
    });
  }

  // --- Moving due messages into the topic ---

  private armMoveTimer(delayMs?: number): void {
    if (this.moving !== null || this.closed) return;
    const next = this.due[0];
    if (next === undefined) return;
    const nowMs = this.options.clock.monotonicMs();
    const fireAtMs = delayMs === undefined ? next.releaseMonoMs : nowMs + delayMs;
    if (this.moveTimer !== null) {
      // A message due sooner than the armed timer must not wait for it.
      if (delayMs !== undefined || fireAtMs >= this.moveTimerAtMs) return;
      this.moveTimer.cancel();
    }
    this.moveTimerAtMs = fireAtMs;
    this.moveTimer = this.options.clock.schedule(fireAtMs - nowMs, () => {
      this.moveTimer = null;
      this.moveTimerAtMs = Infinity;
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
      const nowMs = this.options.clock.monotonicMs();
      let count = 0;
      while (count < MOVE_BATCH_MAX && count < this.due.length && this.due[count]!.releaseMonoMs <= nowMs) count++;
      if (count === 0) return false;
      if (!(await this.moveBatch(this.due.splice(0, count)))) return true;
    }
    return false;
  }

  /** Moves one batch, one append per partition; returns false when some of it must be tried again. */
  private async moveBatch(batch: Entry[]): Promise<boolean> {
    // Its records land at or after these offsets: a checkpoint taken meanwhile scans from there.
    this.moveScanFloor = this.options.mainLogs.map((log) => log.nextOffset);
    try {
      let records: Map<number, LogRecord>;
      try {
        records = await readRecordsAt(this.log, batch.map((entry) => entry.offset));
      } catch (error) {
        this.options.logger.error('broker.delay.move_failed', { topic: this.options.topic, error });
        for (const entry of batch) insertEntry(this.due, entry);
        return false;
      }
      const groups = new Map<number, { entries: Entry[]; messages: PublishMessage[] }>();
      const gone: Entry[] = [];
      for (const entry of batch) {
        const record = records.get(entry.offset);
        const dueHeader = record?.headers.find(([name]) => name === DELIVER_AT_HEADER);
        if (record === undefined || dueHeader === undefined || Number(dueHeader[1]) !== entry.dueMs) {
          // Its record is gone (cut by a power loss, its offset maybe reused): nothing to move.
          gone.push(entry);
          continue;
        }
        const partitionHeader = record.headers.find(([name]) => name === PARTITION_HEADER);
        const partition = partitionHeader === undefined ? -1 : Number(partitionHeader[1]);
        const headers: Header[] = record.headers.filter(([name]) => name !== PARTITION_HEADER);
        headers.push([DELAY_OFFSET_HEADER, String(entry.offset)]);
        let group = groups.get(partition);
        if (group === undefined) groups.set(partition, (group = { entries: [], messages: [] }));
        group.entries.push(entry);
        group.messages.push({ key: record.key, headers, value: record.value, ...(partition === -1 ? {} : { partition }) });
      }
      if (gone.length > 0) {
        this.options.logger.warn('broker.delay.record_missing', { topic: this.options.topic, count: gone.length, firstOffset: gone[0]!.offset });
        this.markMoved(gone);
      }
      // Per partition: an append is all or nothing, so a failure leaves no message half-moved.
      const parts = [...groups.values()];
      const outcomes = await Promise.allSettled(parts.map((part) => this.options.deliver(part.messages)));
      let failure: unknown = null;
      outcomes.forEach((outcome, index) => {
        const part = parts[index]!;
        if (outcome.status === 'fulfilled') {
          this.markMoved(part.entries);
          return;
        }
        failure ??= outcome.reason;
        for (const entry of part.entries) insertEntry(this.due, entry);
      });
      if (failure !== null) {
        this.options.logger.error('broker.delay.move_failed', { topic: this.options.topic, error: failure });
        return false;
      }
      return true;
    } finally {
      this.moveScanFloor = null;
    }
  }

  /** Records moves: a "moved" item per message in its bucket, made durable by the next checkpoint. */
  private markMoved(entries: readonly Entry[]): void {
    for (const entry of entries) {
      const bucket = bucketOf(entry.dueMs);
      this.queue(bucket, { dueMs: entry.dueMs, offset: entry.offset, moved: true });
      this.held.delete(itemKey(entry));
      const left = (this.unmoved.get(bucket) ?? 0) - 1;
      if (left > 0) this.unmoved.set(bucket, left);
      else this.unmoved.delete(bucket);
    }
    this.requestFlush();
  }

  // --- Checkpoint and recovery ---

  private scheduleCheckpoint(): void {
    if (this.checkpointTimer !== null || this.closed) return;
    this.checkpointTimer = this.options.clock.schedule(CHECKPOINT_INTERVAL_MS, () => {
      this.checkpointTimer = null;
      void this.checkpoint().catch((error: unknown) => this.options.logger.error('broker.delay.checkpoint_failed', { topic: this.options.topic, error }));
    });
  }

  /** Makes bucket files and progress durable, then deletes what is finished. */
  checkpoint(): Promise<void> {
    this.checkpointing ??= this.exclusive(() => this.checkpointNow()).finally(() => {
      this.checkpointing = null;
    });
    return this.checkpointing;
  }

  private async checkpointNow(): Promise<void> {
    // 1. What this checkpoint vouches for, taken before anything is written: every record below
    //    indexedEnd was scheduled (its item is queued or written), and every move whose record lies
    //    below movedScanFrom has its "moved" item queued or written.
    let indexedEnd = this.log.nextOffset;
    for (const add of this.addsInFlight) indexedEnd = Math.min(indexedEnd, add.from);
    const floor = this.moveScanFloor;
    const movedScanFrom = this.options.mainLogs.map((log, partition) => Math.min(log.nextOffset, floor?.[partition] ?? Infinity));
    // 2. Those items, written and synced.
    await this.appendQueued();
    for (const bucket of [...this.dirtyBuckets]) {
      const handle = await this.options.fs.open(this.bucketPath(bucket), 'create');
      try {
        await handle.datasync();
      } finally {
        await handle.close();
      }
      this.dirtyBuckets.delete(bucket);
    }
    await this.options.fs.syncDir(this.bucketsDir);
    // 3. Without `always`, the records they speak of may not be synced yet: a power loss must not
    //    keep a "moved" item whose moved copy it took back.
    if (this.options.durability !== 'always') {
      await this.log.sync();
      await Promise.all(this.options.mainLogs.map((log) => log.sync()));
    }
    indexedEnd = Math.min(indexedEnd, this.log.syncedOffset + 1);
    // 4. Progress, then the finished buckets: loaded, every entry moved and the moves recorded,
    //    every entry below indexedEnd (a later one would be scheduled again after a crash).
    const finished = this.bucketStarts.filter((bucket) => this.isFinished(bucket, indexedEnd));
    const bucketMinOffsets = { ...this.state.bucketMinOffsets };
    for (const bucket of finished) delete bucketMinOffsets[String(bucket)];
    const state: DelayState = { version: STATE_VERSION, indexedEnd, movedScanFrom, bucketMinOffsets };
    await writeFileAtomic(this.options.fs, join(this.options.dir, STATE_FILE), Buffer.from(JSON.stringify(state)));
    this.state.indexedEnd = indexedEnd;
    this.state.movedScanFrom = movedScanFrom;
    this.legacyCursor = null;
    for (const bucket of finished) {
      if (!this.isFinished(bucket, indexedEnd)) continue;
      await this.options.fs.unlink(this.bucketPath(bucket)).catch(() => undefined);
      // New entries may have come while unlinking: their items are queued and recreate the file.
      if (!this.isFinished(bucket, indexedEnd)) continue;
      this.bucketStarts.splice(lowerBound(this.bucketStarts, bucket), 1);
      delete this.state.bucketMinOffsets[String(bucket)];
      this.bucketMaxOffsets.delete(bucket);
      this.dirtyBuckets.delete(bucket);
    }
    let minPending = indexedEnd;
    for (const offset of Object.values(this.state.bucketMinOffsets)) if (offset < minPending) minPending = offset;
    await this.log.deleteSegmentsBefore(minPending);
    await this.epochs.prune(minPending).catch((error: unknown) => this.options.logger.warn('broker.delay.clock_prune_failed', { topic: this.options.topic, error }));
  }

  private isFinished(bucket: number, indexedEnd: number): boolean {
    return (
      bucket < this.loadedEnd &&
      !this.unreadable.has(bucket) &&
      !this.unmoved.has(bucket) &&
      !this.queued.has(bucket) &&
      !this.dirtyBuckets.has(bucket) &&
      (this.bucketMaxOffsets.get(bucket) ?? -1) < indexedEnd
    );
  }

  private async recover(): Promise<void> {
    // 1. Records the bucket files may not hold: scan the delay log from the checkpoint.
    const rescanned: Entry[] = [];
    await scanLog(this.log, Math.max(this.state.indexedEnd, this.log.startOffset), (record) => {
      const dueHeader = record.headers.find(([name]) => name === DELIVER_AT_HEADER);
      if (dueHeader !== undefined) rescanned.push({ dueMs: Number(dueHeader[1]), offset: record.offset, releaseMonoMs: 0 });
    });
    if (rescanned.length > 0) this.schedule(rescanned);
    // Messages stored before a wall-clock step on this boot are released as if it had not happened.
    // Every bucket holding them is known by now: once all are loaded, the shifts are not needed.
    const lastBucket = this.bucketStarts.at(-1);
    if (lastBucket !== undefined) {
      for (const { first, last, shiftMs } of this.epochs.restored) {
        if (!this.shifts.record(first, last, shiftMs, lastBucket + DELAY_BUCKET_MS - 1)) this.options.logger.warn('broker.delay.wall_shifts_full', { topic: this.options.topic });
      }
    }
    // 2. Moves after the checkpoint: their records in the topic carry the delay offset and due time.
    let movedFound = 0;
    for (const [partition, log] of this.options.mainLogs.entries()) {
      await scanLog(log, Math.max(this.state.movedScanFrom[partition] ?? 0, log.startOffset), (record) => {
        const marker = record.headers.find(([name]) => name === DELAY_OFFSET_HEADER);
        const dueHeader = record.headers.find(([name]) => name === DELIVER_AT_HEADER);
        if (marker === undefined || dueHeader === undefined) return;
        const item: BucketItem = { dueMs: Number(dueHeader[1]), offset: Number(marker[1]), moved: true };
        const bucket = bucketOf(item.dueMs);
        // A bucket already deleted as finished needs no reminder.
        if (this.bucketStarts[lowerBound(this.bucketStarts, bucket)] !== bucket) return;
        this.queue(bucket, item);
        movedFound++;
      });
    }
    if (this.legacyCursor !== null) {
      for (const entry of rescanned) if (atOrBefore(entry, this.legacyCursor)) this.queue(bucketOf(entry.dueMs), { ...entry, moved: true });
    }
    this.requestFlush();
    await this.loadDueBuckets();
    this.options.logger.info('broker.delay.recovered', {
      topic: this.options.topic,
      rescanned: rescanned.length,
      movedFound,
      buckets: this.bucketStarts.length,
      dueSoon: this.due.length,
    });
  }

  /**
   * Version 1 state: entries at or before its (due, offset) cursor count as moved. Each bucket gets
   * "moved" items for them (made durable by the first checkpoint, which writes version 2), and
   * until then loads and the rescan skip them too.
   */
  private async convertCursor(saved: CursorStateV1): Promise<void> {
    const cursor = { dueMs: saved.cursorDueMs, offset: saved.cursorOffset };
    this.legacyCursor = cursor;
    for (const bucket of this.bucketStarts) {
      if (bucket > cursor.dueMs) break;
      const items = await readBucketItems(this.options.fs, this.bucketPath(bucket));
      for (const item of pendingItems(items)) if (atOrBefore(item, cursor)) this.queue(bucket, { ...item, moved: true });
    }
    this.options.logger.info('broker.delay.state_converted', { topic: this.options.topic, fromVersion: STATE_VERSION_CURSOR });
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
    // A checkpoint under way took its figures before the last moves: one more after it.
    if (this.checkpointing !== null) await this.checkpointing.catch(() => undefined);
    try {
      await this.checkpoint();
    } finally {
      // Even without it the log closes: the next open rescans from the last checkpoint.
      await this.ioTail;
      await this.log.close();
    }
  }
}

/**
 * A message's delay as of now: the delay it was published with when it gave one (its due time was
 * computed from a wall-clock reading a moment ago, and the clock may have stepped since), else what
 * is left until the wall-clock time it asked for.
 */
function remainingMs(message: PublishMessage, dueMs: number, wallMs: number): number {
  return givenDelayMs(message) ?? dueMs - wallMs;
}

/** The delay a message was published with, when its due time was computed from it. */
function givenDelayMs(message: PublishMessage): number | undefined {
  return message.deliverAtMs === undefined ? message.delayMs : undefined;
}

function atOrBefore(entry: { dueMs: number; offset: number }, cursor: { dueMs: number; offset: number }): boolean {
  return entry.dueMs < cursor.dueMs || (entry.dueMs === cursor.dueMs && entry.offset <= cursor.offset);
}

function compareEntries(a: Entry, b: Entry): number {
  return a.releaseMonoMs - b.releaseMonoMs || a.offset - b.offset;
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
