/**
 * The hot tail: the most recently written batches, kept as the exact bytes that went to disk so
 * that consumers keeping up with producers read from memory. Bounded in bytes; the oldest batches
 * leave first, and the cached range always ends at the written offset, so a read either starts
 * inside it and is served entirely from memory, or goes to disk.
 *
 * Cached bytes were produced by this process and never left memory, so records are decoded
 * without re-checking their CRC.
 */
import assert from 'node:assert/strict';
import { BATCH_HEADER_BYTES, decodeRecord, recordSizeAt, type DecodeCursor } from './record-batch.js';
import type { ReadRequest } from './segment-reader.js';
import type { LogRecord } from './types.js';

interface CachedBatch {
  baseOffset: number;
  recordCount: number;
  leaderEpoch: number;
  /** Emptied when the batch leaves the cache, so that a stale budget entry holds no memory. */
  bytes: Buffer;
  cached: boolean;
}

const NO_BYTES = Buffer.alloc(0);

/** Evicted slots are compacted away once this many accumulate at the front. */
const COMPACT_AFTER_SLOTS = 1024;

/**
 * One memory budget shared by the tail caches of every log of a broker: when the caches together
 * pass it, the batch written longest ago, in whichever log, leaves first. Without it each topic
 * kept its own full cache, and a broker with ten busy topics held ten times the configured memory.
 */
export class TailCacheBudget {
  /** Batches of every cache in the order they were added; each cache's own order is the same. */
  private entries: Array<{ cache: TailCache; batch: CachedBatch } | undefined> = [];
  private head = 0;
  private bytesValue = 0;
  /** Batches cached by all caches together (entries beyond these are stale). */
  private liveBatches = 0;

  constructor(readonly bytesMax: number) {
    assert.ok(Number.isSafeInteger(bytesMax) && bytesMax >= 0, 'the tail cache budget is a byte count');
  }

  /** Bytes cached by all caches together. */
  get bytes(): number {
    return this.bytesValue;
  }

  /** @internal a cache added `batch`; evicts the globally oldest batches while over budget. */
  added(cache: TailCache, batch: CachedBatch): void {
    this.entries.push({ cache, batch });
    this.bytesValue += batch.bytes.length;
    this.liveBatches++;
    while (this.bytesValue > this.bytesMax && this.head < this.entries.length) {
      const oldest = this.entries[this.head]!;
      this.entries[this.head] = undefined;
      this.head++;
      // Stale when its cache evicted or cleared it already (then its bytes were given back).
      oldest.cache.evictIfOldest(oldest.batch);
    }
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER_SLOTS && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    } else if (this.entries.length - this.head > COMPACT_AFTER_SLOTS + 2 * this.liveBatches) {
      // Caches that clear (close, delete) leave stale entries that no eviction reaches: drop them.
      this.entries = this.entries.slice(this.head).filter((entry) => entry !== undefined && entry.batch.cached);
      this.head = 0;
    }
  }

  /** @internal a cache gave `batches` holding `bytes` back (evicted or cleared). */
  released(bytes: number, batches: number): void {
    this.bytesValue -= bytes;
    this.liveBatches -= batches;
    assert.ok(this.bytesValue >= 0 && this.liveBatches >= 0, 'the budget never gets back more than it lent');
  }
}

export class TailCache {
  private batches: CachedBatch[] = [];
  private head = 0;
  private bytesValue = 0;

  constructor(
    private readonly bytesMax: number,
    /** The broker-wide budget this cache also counts against; none: only `bytesMax` bounds it. */
    private readonly budget: TailCacheBudget | null = null,
  ) {}

  get bytes(): number {
    return this.bytesValue;
  }

  /** First cached offset; +Infinity when empty. */
  get startOffset(): number {
    return this.head < this.batches.length ? this.batches[this.head]!.baseOffset : Number.POSITIVE_INFINITY;
  }

  /** Adds a batch just written; it must follow the newest cached batch. */
  add(bytes: Buffer, baseOffset: number, recordCount: number, leaderEpoch: number): void {
    if (bytes.length > this.bytesMax) {
      // Too big to keep: drop everything so the cache stays a contiguous range ending at the tail.
      this.clear();
      return;
    }
    const newest = this.batches[this.batches.length - 1];
    if (this.head < this.batches.length && newest !== undefined) {
      assert.equal(baseOffset, newest.baseOffset + newest.recordCount, 'cached batches are contiguous');
    }
    const batch: CachedBatch = { baseOffset, recordCount, leaderEpoch, bytes, cached: true };
    this.batches.push(batch);
    this.bytesValue += bytes.length;
    while (this.bytesValue > this.bytesMax) this.evictOldest();
    this.budget?.added(this, batch);
  }

  clear(): void {
    this.budget?.released(this.bytesValue, this.batches.length - this.head);
    for (let i = this.head; i < this.batches.length; i++) uncache(this.batches[i]!);
    this.batches = [];
    this.head = 0;
    this.bytesValue = 0;
  }

  /** @internal the budget's eviction: drops `batch` if it is still this cache's oldest. */
  evictIfOldest(batch: CachedBatch): void {
    if (this.head < this.batches.length && this.batches[this.head] === batch) this.evictOldest();
  }

  /** Appends records from `request.offset` on; the caller checked `offset >= startOffset`. */
  read(request: ReadRequest, out: LogRecord[], bytesSoFar: { bytes: number }): void {
    assert.ok(request.offset >= this.startOffset, 'read starts inside the cache');
    const cursor: DecodeCursor = { at: 0, damage: null };
    for (let i = this.findBatch(request.offset); i < this.batches.length; i++) {
      const batch = this.batches[i]!;
      const end = batch.bytes.length;
      cursor.at = BATCH_HEADER_BYTES;
      const batchEnd = batch.baseOffset + batch.recordCount;
      for (let offset = batch.baseOffset; offset < batchEnd; offset++) {
        if (offset >= request.endOffset || out.length >= request.recordsMax) return;
        const size = recordSizeAt(batch.bytes, cursor.at);
        if (offset < request.offset) {
          cursor.at += size;
          continue;
        }
        if (out.length > 0 && bytesSoFar.bytes + size > request.bytesMax) return;
        const record = decodeRecord(batch.bytes, cursor, end, offset, batch.leaderEpoch, false);
        assert.ok(record !== null, 'cached batches decode');
        out.push(record);
        bytesSoFar.bytes += size;
      }
    }
  }

  /** Index of the last batch whose base offset is <= `offset`. */
  private findBatch(offset: number): number {
    let low = this.head;
    let high = this.batches.length - 1;
    let found = this.head;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.batches[mid]!.baseOffset <= offset) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }

  private evictOldest(): void {
    const oldest = this.batches[this.head]!;
    this.bytesValue -= oldest.bytes.length;
    this.budget?.released(oldest.bytes.length, 1);
    uncache(oldest);
    this.batches[this.head] = undefined as unknown as CachedBatch;
    this.head++;
    if (this.head === this.batches.length) {
      this.batches = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER_SLOTS && this.head * 2 >= this.batches.length) {
      this.batches = this.batches.slice(this.head);
      this.head = 0;
    }
  }
}

function uncache(batch: CachedBatch): void {
  batch.cached = false;
  batch.bytes = NO_BYTES;
}
