/**
 * The delay store's schedule in memory: the entries due soon, in release order, and what is known of
 * every bucket (its offsets, whether it is loaded, how many of its entries wait). The items behind
 * it live in the bucket files (bucket-files.ts); release times follow the monotonic clock.
 */
import type { Logger } from '../../platform/logger.js';
import type { BucketFiles } from './bucket-files.js';
import { bucketOf, DELAY_BUCKET_MS, itemKey, pendingItems, type BucketItem } from './buckets.js';
import { insertSorted, lowerBound } from './sorted-array.js';
import { SHIFT_TOLERANCE_MS, WallShifts } from './wall-shifts.js';

/** Entries inserted one by one into the sorted due list; more at once are sorted together. */
const INSERTS_BEFORE_SORT_MAX = 32;

/** A pending message held in memory, due soon. */
export interface Entry {
  dueMs: number;
  offset: number;
  /** Monotonic time at which it is moved, computed once when it entered memory. */
  releaseMonoMs: number;
}

export interface DelayScheduleOptions {
  files: BucketFiles;
  logger: Logger;
  topic: string;
  /** Buckets with a file at open, ascending. */
  bucketStarts: number[];
  /** Lowest delay-log offset in each bucket not yet finished: the state file's, kept up to date here. */
  bucketMinOffsets: Record<string, number>;
  /** Wall minus monotonic time at open: turns wall-clock due times into monotonic release times. */
  wallMinusMonoMs: number;
}

export class DelaySchedule {
  /** Loaded entries not yet moved, sorted by (releaseMonoMs, offset). */
  private due: Entry[] = [];
  /** Buckets whose start is below this are loaded: their new entries go straight into `due`. */
  private loadedEnd = -Infinity;
  /** Buckets with a file or queued items, ascending. */
  readonly bucketStarts: number[];
  /** Loaded buckets: entries in memory not yet moved (including those being moved). */
  private readonly unmoved = new Map<number, number>();
  /** Keys (itemKey) of the entries in memory, in `due` or being moved: each is held once. */
  private readonly held = new Set<string>();
  /** Buckets below `loadedEnd` whose file could not be read: read again, never deleted meanwhile. */
  private readonly unreadable = new Set<number>();
  /** Highest delay-log offset scheduled in each bucket seen in this process. */
  private readonly bucketMaxOffsets = new Map<number, number>();
  /** Version 1 state only: entries at or before this (due, offset) were moved. */
  legacyCursor: { dueMs: number; offset: number } | null = null;
  /** Release shifts of messages published after a wall-clock step (wall-shifts.ts). */
  readonly shifts = new WallShifts();
  readonly wallMinusMonoMs: number;
  private readonly files: BucketFiles;
  readonly bucketMinOffsets: Record<string, number>;

  constructor(private readonly options: DelayScheduleOptions) {
    this.files = options.files;
    this.bucketStarts = options.bucketStarts;
    this.bucketMinOffsets = options.bucketMinOffsets;
    this.wallMinusMonoMs = options.wallMinusMonoMs;
  }

  /** Entries in memory waiting for their release. */
  get dueCount(): number {
    return this.due.length;
  }

  /** The entry released first, if any is in memory. */
  get next(): Entry | undefined {
    return this.due[0];
  }

  /** Queues entries' scheduled items; those of loaded buckets go into memory too. */
  add(entries: readonly Entry[]): void {
    // Many entries at once are appended and sorted in one go rather than inserted one by one.
    const sortAfter = entries.length > INSERTS_BEFORE_SORT_MAX;
    let added = 0;
    for (const entry of entries) {
      const bucket = bucketOf(entry.dueMs);
      this.files.queue(bucket, { dueMs: entry.dueMs, offset: entry.offset, moved: false });
      const key = String(bucket);
      this.bucketMinOffsets[key] = Math.min(this.bucketMinOffsets[key] ?? Infinity, entry.offset);
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
  }

  /** Takes, oldest first, up to `max` entries released by the monotonic time `nowMs`. */
  takeReleased(nowMs: number, max: number): Entry[] {
    let count = 0;
    while (count < max && count < this.due.length && this.due[count]!.releaseMonoMs <= nowMs) count++;
    return this.due.splice(0, count);
  }

  /** An entry whose move failed waits in line again. */
  putBack(entry: Entry): void {
    insertEntry(this.due, entry);
  }

  /** Records moves: a "moved" item per message in its bucket, made durable by the next checkpoint. */
  markMoved(entries: readonly Entry[]): void {
    for (const entry of entries) {
      const bucket = bucketOf(entry.dueMs);
      this.files.queue(bucket, { dueMs: entry.dueMs, offset: entry.offset, moved: true });
      this.held.delete(itemKey(entry));
      const left = (this.unmoved.get(bucket) ?? 0) - 1;
      if (left > 0) this.unmoved.set(bucket, left);
      else this.unmoved.delete(bucket);
    }
  }

  /**
   * Remembers, for entries that may wait on disk, how their release differs from the one their due
   * time gives at open (a wall-clock step since): runs of consecutive offsets with one shift.
   */
  recordShifts(entries: readonly Entry[]): void {
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
      this.recordShift(entries[start]!.offset, entries[end]!.offset, runShiftMs, dueMaxMs);
      start = end + 1;
    }
  }

  /** Records one range of shifted offsets (wall-shifts.ts); a full table is logged. */
  recordShift(first: number, last: number, shiftMs: number, dueMaxMs: number): void {
    if (!this.shifts.record(first, last, shiftMs, dueMaxMs)) this.options.logger.warn('broker.delay.wall_shifts_full', { topic: this.options.topic });
  }

  private shiftOf(entry: Entry): number {
    return entry.dueMs - this.wallMinusMonoMs - entry.releaseMonoMs;
  }

  /** Whether a bucket file exists (or is to be written) for `bucket`. */
  hasBucket(bucket: number): boolean {
    return this.bucketStarts[lowerBound(this.bucketStarts, bucket)] === bucket;
  }

  // --- Loading buckets as they come within the horizon ---

  /**
   * The end of the buckets to hold in memory: two widths past the monotonic clock expressed as a
   * wall-clock time of this process, plus the largest forward step messages waiting on disk were
   * published under (their release comes that much before their due time suggests).
   */
  private horizonEnd(monoNowMs: number): number {
    return bucketOf(monoNowMs + this.wallMinusMonoMs + this.shifts.aheadMs) + 2 * DELAY_BUCKET_MS;
  }

  /** Reads the buckets that came within the horizon, and those that could not be read before (run as a bucket-file task). */
  async loadDue(monoNowMs: number): Promise<void> {
    const horizonEnd = this.horizonEnd(monoNowMs);
    if (horizonEnd > this.loadedEnd) {
      const buckets = this.bucketStarts.slice(lowerBound(this.bucketStarts, this.loadedEnd), lowerBound(this.bucketStarts, horizonEnd));
      // Items queued so far, copied: from now on these buckets' new entries go straight to
      // memory, and no append runs until this task ends, so each item is read once.
      const queuedNow = new Map<number, BucketItem[]>();
      for (const bucket of buckets) queuedNow.set(bucket, [...(this.files.queuedFor(bucket) ?? [])]);
      this.loadedEnd = horizonEnd;
      await this.load(buckets, (bucket) => queuedNow.get(bucket)!);
      this.shifts.dropLoaded(this.loadedEnd, bucketOf);
    }
    if (this.unreadable.size > 0) {
      // Everything queued for them since counts: entries already in memory are skipped as held.
      const retry = [...this.unreadable];
      this.unreadable.clear();
      await this.load(retry, (bucket) => this.files.queuedFor(bucket) ?? []);
    }
  }

  /** Monotonic time at which the next bucket comes within the horizon (or an unreadable one is read again); Infinity: none. */
  nextLoadAtMs(monoNowMs: number, retryMs: number): number {
    const next = this.bucketStarts[lowerBound(this.bucketStarts, this.loadedEnd)];
    // Due when horizonEnd() passes `next`, i.e. when the clock reaches one width before it.
    const loadAtMs = next === undefined ? Infinity : next - DELAY_BUCKET_MS - this.wallMinusMonoMs - this.shifts.aheadMs;
    return this.unreadable.size > 0 ? Math.min(loadAtMs, monoNowMs + retryMs) : loadAtMs;
  }

  /** Reads buckets into memory; those that cannot be read are tried again later. */
  private async load(buckets: readonly number[], queuedFor: (bucket: number) => readonly BucketItem[]): Promise<void> {
    // Joined to `due` only once all are read: `due` stays sorted for the mover meanwhile.
    const loaded: Entry[] = [];
    for (const bucket of buckets) {
      let items: BucketItem[];
      try {
        items = await this.files.read(bucket);
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

  // --- What a checkpoint may delete ---

  /** Loaded, every entry moved and the moves on disk, every entry below `indexedEnd` (a later one would be scheduled again after a crash). */
  isFinished(bucket: number, indexedEnd: number): boolean {
    return (
      bucket < this.loadedEnd &&
      !this.unreadable.has(bucket) &&
      !this.unmoved.has(bucket) &&
      !this.files.unsettled(bucket) &&
      (this.bucketMaxOffsets.get(bucket) ?? -1) < indexedEnd
    );
  }

  /** A finished bucket whose file is deleted. */
  forget(bucket: number): void {
    this.bucketStarts.splice(lowerBound(this.bucketStarts, bucket), 1);
    delete this.bucketMinOffsets[String(bucket)];
    this.bucketMaxOffsets.delete(bucket);
    this.files.forget(bucket);
  }

  /** The lowest delay-log offset still pending: no record below it is needed. */
  pendingFrom(indexedEnd: number): number {
    let minPending = indexedEnd;
    for (const offset of Object.values(this.bucketMinOffsets)) if (offset < minPending) minPending = offset;
    return minPending;
  }
}

export function atOrBefore(entry: { dueMs: number; offset: number }, cursor: { dueMs: number; offset: number }): boolean {
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
