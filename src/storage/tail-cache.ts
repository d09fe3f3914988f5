/**
 * The hot tail: the most recently written batches, in the ring of the broker's budget, so that
 * consumers keeping up with producers read without touching the disk; the oldest leave first.
 * The rest: docs/INTERNALS.md.
 */
import assert from 'node:assert/strict';
import { BATCH_HEADER_BYTES, decodeRecord, recordSizeAt, type DecodeCursor } from './record-batch.js';
import { passesBytesMax, type ReadRequest } from './segment-reader.js';
import type { LogRecord } from './record.js';

interface CachedBatch {
  baseOffset: number;
  recordCount: number;
  leaderEpoch: number;
  /** A view of the ring; emptied when the batch leaves the cache. */
  bytes: Buffer;
  /** Where the batch starts in the ring (see TailCacheBudget). */
  ringAt: number;
  cached: boolean;
}

const NO_BYTES = Buffer.alloc(0);

/** Evicted slots are compacted away once this many accumulate at the front. */
const COMPACT_AFTER_SLOTS = 1024;

/**
 * The ring is made of equal chunks of at most this size, allocated on first use: one Buffer can
 * only be so large, and a broker configured with a large budget should not touch it all at once.
 * A batch never spans two chunks, so a batch larger than a chunk is not cached.
 */
export const TAIL_CACHE_CHUNK_BYTES_MAX = 64 * 1024 * 1024;

/**
 * One memory budget shared by the tail caches of every log of a broker, and the ring their bytes
 * live in. Batches take ring space in the order they are written, whichever log writes them; a
 * new batch takes the space after the newest one, evicting the batches written longest ago that
 * occupy it. Without a shared budget each topic kept its own full cache, and a broker with ten
 * busy topics held ten times the configured memory.
 *
 * Invariant: every cached batch lies in the circular range that ends at `tail`, in the order the
 * batches were added, so the batches a new one overwrites are always the oldest.
 */
export class TailCacheBudget {
  /** Batches of every cache in the order they were added; each cache's own order is the same. */
  private entries: Array<{ cache: TailCache; batch: CachedBatch } | undefined> = [];
  private head = 0;
  private bytesValue = 0;
  /** Batches cached by all caches together (entries beyond these are stale). */
  private liveBatches = 0;
  /** Ring chunks, allocated on first use. */
  private readonly chunks: Array<Buffer | undefined>;
  /** The largest batch the ring holds. */
  readonly chunkBytes: number;
  private readonly ringBytes: number;
  /** Ring position where the next batch goes (just after the newest one). */
  private tail = 0;

  constructor(
    readonly bytesMax: number,
    /** Largest ring chunk; smaller only in tests, to exercise batches that skip to the next chunk. */
    chunkBytesMax: number = TAIL_CACHE_CHUNK_BYTES_MAX,
  ) {
    assert.ok(Number.isSafeInteger(bytesMax) && bytesMax >= 0, 'the tail cache budget is a byte count');
    assert.ok(Number.isSafeInteger(chunkBytesMax) && chunkBytesMax > 0, 'a ring chunk has bytes');
    const chunkCount = Math.max(1, Math.ceil(bytesMax / chunkBytesMax));
    this.chunkBytes = Math.floor(bytesMax / chunkCount);
    this.ringBytes = this.chunkBytes * chunkCount;
    this.chunks = new Array<Buffer | undefined>(chunkCount).fill(undefined);
    assert.ok(this.ringBytes <= bytesMax, 'the ring stays within the budget');
  }

  /** Bytes cached by all caches together. */
  get bytes(): number {
    return this.bytesValue;
  }

  /**
   * @internal room for a batch of `size` bytes (at most `chunkBytes`): evicts the oldest batches,
   * in whichever cache, that occupy the space after the newest one; returns where it is.
   */
  reserve(size: number): { ringAt: number; bytes: Buffer } {
    assert.ok(size > 0 && size <= this.chunkBytes, 'a cached batch fits one ring chunk');
    let start = this.tail;
    const intoChunk = start % this.chunkBytes;
    // A batch never spans two chunks: skip to the next one (the rest of this one stays unused).
    if (intoChunk + size > this.chunkBytes) start = (start - intoChunk + this.chunkBytes) % this.ringBytes;
    this.evictWithin(((start - this.tail + this.ringBytes) % this.ringBytes) + size);
    this.tail = (start + size) % this.ringBytes;
    const index = Math.floor(start / this.chunkBytes);
    const chunk = (this.chunks[index] ??= Buffer.allocUnsafeSlow(this.chunkBytes));
    const at = start - index * this.chunkBytes;
    return { ringAt: start, bytes: chunk.subarray(at, at + size) };
  }

  /** @internal a cache added `batch`, in the space `reserve` just gave it. */
  added(cache: TailCache, batch: CachedBatch): void {
    this.entries.push({ cache, batch });
    this.bytesValue += batch.bytes.length;
    this.liveBatches++;
    assert.ok(this.bytesValue <= this.ringBytes, 'the caches hold no more than the ring');
    if (this.head >= COMPACT_AFTER_SLOTS && this.head * 2 >= this.entries.length) {
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

  /** Evicts the oldest batches that start within `length` bytes after `tail`. */
  private evictWithin(length: number): void {
    while (this.head < this.entries.length) {
      const oldest = this.entries[this.head]!;
      // Stale when its cache evicted or cleared it already (then its bytes were given back).
      if (oldest.batch.cached) {
        const distance = (oldest.batch.ringAt - this.tail + this.ringBytes) % this.ringBytes;
        if (distance >= length) return;
        oldest.cache.evictIfOldest(oldest.batch);
        assert.ok(!oldest.batch.cached, 'the globally oldest batch is its cache oldest');
      }
      this.entries[this.head] = undefined;
      this.head++;
    }
    if (this.head > 0) {
      this.entries = [];
      this.head = 0;
    }
  }
}

export class TailCache {
  private batches: CachedBatch[] = [];
  private head = 0;
  private bytesValue = 0;

  constructor(
    private readonly bytesMax: number,
    /** The broker-wide budget (and ring) this cache shares; by default one of its own. */
    private readonly budget: TailCacheBudget = new TailCacheBudget(bytesMax),
  ) {}

  get bytes(): number {
    return this.bytesValue;
  }

  /** First cached offset; +Infinity when empty. */
  get startOffset(): number {
    return this.head < this.batches.length ? this.batches[this.head]!.baseOffset : Number.POSITIVE_INFINITY;
  }

  /** Copies in a batch just written; it must follow the newest cached batch. */
  add(written: Buffer, baseOffset: number, recordCount: number, leaderEpoch: number): void {
    const size = written.length;
    if (size > this.bytesMax || size > this.budget.chunkBytes) {
      // Too big to keep: drop everything so the cache stays a contiguous range ending at the tail.
      this.clear();
      return;
    }
    const newest = this.batches[this.batches.length - 1];
    if (this.head < this.batches.length && newest !== undefined) {
      assert.equal(baseOffset, newest.baseOffset + newest.recordCount, 'cached batches are contiguous');
    }
    while (this.bytesValue + size > this.bytesMax) this.evictOldest();
    const { ringAt, bytes } = this.budget.reserve(size);
    written.copy(bytes);
    const batch: CachedBatch = { baseOffset, recordCount, leaderEpoch, bytes, ringAt, cached: true };
    this.batches.push(batch);
    this.bytesValue += size;
    this.budget.added(this, batch);
  }

  clear(): void {
    this.budget.released(this.bytesValue, this.batches.length - this.head);
    for (let i = this.head; i < this.batches.length; i++) uncache(this.batches[i]!);
    this.batches = [];
    this.head = 0;
    this.bytesValue = 0;
  }

  /** @internal the budget's eviction: drops `batch` if it is still this cache's oldest. */
  evictIfOldest(batch: CachedBatch): void {
    if (this.head < this.batches.length && this.batches[this.head] === batch) this.evictOldest();
  }

  /**
   * Appends records from `request.offset` on; the caller checked `offset >= startOffset`. The
   * records read from one batch are copied out of the ring together, and decoded from the copy.
   */
  read(request: ReadRequest, out: LogRecord[], bytesSoFar: { bytes: number }): void {
    assert.ok(request.offset >= this.startOffset, 'read starts inside the cache');
    const cursor: DecodeCursor = { at: 0, damage: null };
    for (let i = this.findBatch(request.offset); i < this.batches.length; i++) {
      const batch = this.batches[i]!;
      const batchEnd = batch.baseOffset + batch.recordCount;
      let offset = batch.baseOffset;
      let at = BATCH_HEADER_BYTES;
      for (; offset < request.offset && offset < batchEnd; offset++) at += recordSizeAt(batch.bytes, at);
      const firstOffset = offset;
      const first = at;
      let full = false;
      for (; offset < batchEnd; offset++) {
        const taken = out.length + (offset - firstOffset);
        if (offset >= request.endOffset || taken >= request.recordsMax) {
          full = true;
          break;
        }
        const size = recordSizeAt(batch.bytes, at);
        if (passesBytesMax(request, taken, bytesSoFar.bytes, size, offset > firstOffset)) {
          full = true;
          break;
        }
        bytesSoFar.bytes += size;
        at += size;
      }
      if (offset > firstOffset) {
        const copy = Buffer.allocUnsafe(at - first);
        batch.bytes.copy(copy, 0, first, at);
        cursor.at = 0;
        for (let next = firstOffset; next < offset; next++) {
          const record = decodeRecord(copy, cursor, copy.length, next, batch.leaderEpoch, false);
          assert.ok(record !== null, 'cached batches decode');
          out.push(record);
        }
      }
      if (full) return;
    }
  }

  /**
   * Copies of whole cached batches from the one holding `offset` (the caller checked `offset >=
   * startOffset`), up to `endOffset` (a batch reaching past it is left out) and about `bytesMax`
   * (at least one batch): what a leader ships to its followers.
   */
  readBatches(offset: number, endOffset: number, bytesMax: number): Buffer[] {
    assert.ok(offset >= this.startOffset, 'read starts inside the cache');
    const out: Buffer[] = [];
    let bytes = 0;
    for (let i = this.findBatch(offset); i < this.batches.length; i++) {
      const batch = this.batches[i]!;
      if (batch.baseOffset + batch.recordCount > endOffset) break;
      if (out.length > 0 && bytes + batch.bytes.length > bytesMax) break;
      out.push(Buffer.from(batch.bytes));
      bytes += batch.bytes.length;
      if (bytes >= bytesMax) break;
    }
    return out;
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
    this.budget.released(oldest.bytes.length, 1);
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
