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
  bytes: Buffer;
}

/** Evicted slots are compacted away once this many accumulate at the front. */
const COMPACT_AFTER_SLOTS = 1024;

export class TailCache {
  private batches: CachedBatch[] = [];
  private head = 0;
  private bytesValue = 0;

  constructor(private readonly bytesMax: number) {}

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
    this.batches.push({ baseOffset, recordCount, leaderEpoch, bytes });
    this.bytesValue += bytes.length;
    while (this.bytesValue > this.bytesMax) this.evictOldest();
  }

  clear(): void {
    this.batches = [];
    this.head = 0;
    this.bytesValue = 0;
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
    this.batches[this.head] = undefined as unknown as CachedBatch;
    this.head++;
    if (this.head === this.batches.length) {
      this.clear();
    } else if (this.head >= COMPACT_AFTER_SLOTS && this.head * 2 >= this.batches.length) {
      this.batches = this.batches.slice(this.head);
      this.head = 0;
    }
  }
}
