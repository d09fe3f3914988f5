/**
 * Appends between `append()` and their write: the queue (bounded by the log's byte limit), taking
 * the next batch off it, and encoding a batch — ONE buffer, allocated once at its exact size, with
 * offsets assigned here so that the writer loop is the only place offsets come from.
 */
import assert from 'node:assert/strict';
import type { FerryError } from '../errors.js';
import { BATCH_HEADER_BYTES, encodeRecord, writeBatchHeader, type BatchHeader } from './record-batch.js';
import type { AppendResult, RecordInput } from './types.js';

/** The queue array is compacted once this many taken slots accumulate at its front. */
const COMPACT_AFTER_SLOTS = 4096;

/** Something waiting for `syncedOffset >= lastOffset`. */
export interface SyncWaiter {
  lastOffset: number;
  synced(): void;
  failed(error: FerryError): void;
}

/** One append() call between being queued and being settled. */
export class PendingAppend implements SyncWaiter {
  baseOffset = -1;
  lastOffset = -1;
  resolve!: (result: AppendResult) => void;
  reject!: (error: unknown) => void;

  constructor(
    readonly records: readonly RecordInput[],
    /** Encoded bytes of the records, measured by validation. */
    readonly bytes: number,
    /** Default timestamp of the records: the clock when append() was called. */
    readonly timestampMs: number,
    /**
     * A batch encoded elsewhere (a leader's, replicated): written as it is, alone, at the offsets
     * it carries, and settled once written whatever the log's mode (the follower reports its syncs).
     */
    readonly raw: RawBatch | null = null,
  ) {}

  written(): void {
    this.resolve({ baseOffset: this.baseOffset, lastOffset: this.lastOffset, durability: 'written' });
  }

  synced(): void {
    this.resolve({ baseOffset: this.baseOffset, lastOffset: this.lastOffset, durability: 'synced' });
  }

  failed(error: FerryError): void {
    this.reject(error);
  }
}

/** A whole batch as it lies on disk, with its checked header. */
export interface RawBatch {
  buf: Buffer;
  header: BatchHeader;
  /** Not kept in the tail cache (a catch-up copy of old batches no reader waits for): the cache is emptied instead. */
  uncached?: boolean;
}

export interface TakenBatch {
  appends: PendingAppend[];
  /** Encoded size including the batch header. */
  bytes: number;
  records: number;
}

export class AppendQueue {
  private pending: PendingAppend[] = [];
  private head = 0;
  private bytesValue = 0;

  /** Encoded bytes waiting (without batch headers). */
  get bytes(): number {
    return this.bytesValue;
  }

  get isEmpty(): boolean {
    return this.head === this.pending.length;
  }

  push(append: PendingAppend): void {
    this.pending.push(append);
    this.bytesValue += append.bytes;
  }

  /**
   * Everything queued, oldest first, up to `capBytes` (but always at least one append). A raw
   * batch is taken alone.
   */
  take(capBytes: number): TakenBatch {
    assert.ok(!this.isEmpty, 'take from a non-empty queue');
    let bytes = BATCH_HEADER_BYTES;
    let records = 0;
    let end = this.head;
    while (end < this.pending.length) {
      const next = this.pending[end]!;
      if (end > this.head && (next.raw !== null || this.pending[this.head]!.raw !== null)) break;
      if (end > this.head && bytes + next.bytes > capBytes) break;
      bytes += next.bytes;
      records += next.raw === null ? next.records.length : next.raw.header.recordCount;
      end++;
    }
    const appends = this.pending.slice(this.head, end);
    this.head = end;
    this.bytesValue -= bytes - BATCH_HEADER_BYTES;
    if (this.head === this.pending.length) {
      this.pending = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER_SLOTS) {
      this.pending = this.pending.slice(this.head);
      this.head = 0;
    }
    return { appends, bytes, records };
  }

  rejectAll(error: FerryError): void {
    const pending = this.pending.slice(this.head);
    this.pending = [];
    this.head = 0;
    this.bytesValue = 0;
    for (const append of pending) append.failed(error);
  }
}

/**
 * Encodes `batch` as one buffer with offsets from `baseOffset` on, and tells each append its
 * offsets. The hot path: no per-record allocation beyond what encodeRecord needs.
 */
export function encodeBatch(batch: TakenBatch, baseOffset: number, leaderEpoch: number, into: Buffer): { buf: Buffer; header: BatchHeader } {
  const { appends, bytes, records } = batch;
  assert.ok(into.length >= bytes, 'the batch fits the buffer it is encoded into');
  const buf = into.length === bytes ? into : into.subarray(0, bytes);
  let at = BATCH_HEADER_BYTES;
  let offset = baseOffset;
  let maxTimestampMs = 0;
  for (let i = 0; i < appends.length; i++) {
    const pending = appends[i]!;
    const inputs = pending.records;
    pending.baseOffset = offset;
    for (let j = 0; j < inputs.length; j++) {
      const input = inputs[j]!;
      const timestampMs = input.timestampMs ?? pending.timestampMs;
      at = encodeRecord(buf, at, offset, timestampMs, input.key ?? null, input.headers, input.value);
      if (timestampMs > maxTimestampMs) maxTimestampMs = timestampMs;
      offset++;
    }
    pending.lastOffset = offset - 1;
  }
  assert.equal(at, bytes, 'records fill the batch exactly (inputs must not change until append resolves)');
  assert.equal(offset - baseOffset, records, 'one offset per record');
  const header: BatchHeader = { batchBytes: bytes, recordCount: records, baseOffset, leaderEpoch, maxTimestampMs, attributes: 0 };
  writeBatchHeader(buf, 0, header);
  return { buf, header };
}
