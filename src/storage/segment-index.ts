/**
 * The sparse index of one segment, in memory and as its two files:
 *   `.index`     entries {relativeOffset u32, position u32}      — where a batch starts
 *   `.timeindex` entries {maxTimestampMs u64, relativeOffset u32} — running max timestamp up to
 *                                                                  and including that batch
 * One entry (in both files) for the first batch of the segment and then for the first batch that
 * starts at least `indexIntervalBytes` after the previous entry, so any record is found with one
 * binary search and one pread of about indexIntervalBytes plus a batch.
 *
 * Indexes are derived data: on open they are validated and rebuilt from the segment when missing
 * or damaged, so they are written only when a segment is sealed and when the log closes.
 */
import assert from 'node:assert/strict';
import { readU64, writeU64 } from './record-batch.js';

export const OFFSET_INDEX_ENTRY_BYTES = 8;
export const TIME_INDEX_ENTRY_BYTES = 12;
/** Entries the arrays start with; they double as the segment grows. */
const INITIAL_CAPACITY = 64;

/**
 * Whether the batch at `position` gets an index entry, given the position of the last entry (-1
 * when none): the segment's first batch does, and then the first batch `indexIntervalBytes` on.
 */
export function needsIndexEntry(lastIndexedPosition: number, position: number, indexIntervalBytes: number): boolean {
  return lastIndexedPosition < 0 || position - lastIndexedPosition >= indexIntervalBytes;
}

export class SegmentIndex {
  private relativeOffsets = new Uint32Array(INITIAL_CAPACITY);
  private positions = new Uint32Array(INITIAL_CAPACITY);
  private maxTimestamps = new Float64Array(INITIAL_CAPACITY);
  private countValue = 0;

  get count(): number {
    return this.countValue;
  }

  relativeOffsetAt(i: number): number {
    return this.relativeOffsets[i]!;
  }

  positionAt(i: number): number {
    return this.positions[i]!;
  }

  maxTimestampAt(i: number): number {
    return this.maxTimestamps[i]!;
  }

  /** Position of the last entry, or -1 when empty. */
  lastPosition(): number {
    return this.countValue === 0 ? -1 : this.positions[this.countValue - 1]!;
  }

  add(relativeOffset: number, position: number, maxTimestampMs: number): void {
    const n = this.countValue;
    if (n > 0) {
      assert.ok(relativeOffset > this.relativeOffsets[n - 1]!, 'index offsets increase');
      assert.ok(position > this.positions[n - 1]!, 'index positions increase');
      assert.ok(maxTimestampMs >= this.maxTimestamps[n - 1]!, 'index timestamps are a running max');
    }
    if (n === this.relativeOffsets.length) this.grow();
    this.relativeOffsets[n] = relativeOffset;
    this.positions[n] = position;
    this.maxTimestamps[n] = maxTimestampMs;
    this.countValue = n + 1;
  }

  /** Index of the last entry whose relative offset is <= `relativeOffset`, or -1. */
  floorByOffset(relativeOffset: number): number {
    let low = 0;
    let high = this.countValue - 1;
    let found = -1;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      if (this.relativeOffsets[mid]! <= relativeOffset) {
        found = mid;
        low = mid + 1;
      } else {
        high = mid - 1;
      }
    }
    return found;
  }

  /** Index of the first entry with a position > `position`, or count. */
  firstAfterPosition(position: number): number {
    let low = 0;
    let high = this.countValue;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.positions[mid]! > position) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  /** Index of the first entry whose running max timestamp is >= `timestampMs`, or count. */
  firstWithMaxTimestampAtLeast(timestampMs: number): number {
    let low = 0;
    let high = this.countValue;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.maxTimestamps[mid]! >= timestampMs) high = mid;
      else low = mid + 1;
    }
    return low;
  }

  /** Drops the entries from `i` on (their batches are being cut or re-verified). */
  truncateTo(i: number): void {
    assert.ok(i >= 0 && i <= this.countValue, 'truncate within the index');
    this.countValue = i;
  }

  encodeOffsetIndex(): Buffer {
    const buf = Buffer.allocUnsafe(this.countValue * OFFSET_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.countValue; i++) {
      buf.writeUInt32BE(this.relativeOffsets[i]!, i * OFFSET_INDEX_ENTRY_BYTES);
      buf.writeUInt32BE(this.positions[i]!, i * OFFSET_INDEX_ENTRY_BYTES + 4);
    }
    return buf;
  }

  encodeTimeIndex(): Buffer {
    const buf = Buffer.allocUnsafe(this.countValue * TIME_INDEX_ENTRY_BYTES);
    for (let i = 0; i < this.countValue; i++) {
      writeU64(buf, this.maxTimestamps[i]!, i * TIME_INDEX_ENTRY_BYTES);
      buf.writeUInt32BE(this.relativeOffsets[i]!, i * TIME_INDEX_ENTRY_BYTES + 8);
    }
    return buf;
  }

  /**
   * Parses both files and checks what can be checked without the segment: sizes a multiple of the
   * entry size, the same entries in both, strictly increasing offsets and positions, non-decreasing
   * timestamps, positions inside the segment. Returns the index, or the reason it is unusable.
   */
  static decode(offsetFile: Buffer, timeFile: Buffer, segmentBytes: number): SegmentIndex | string {
    if (offsetFile.length % OFFSET_INDEX_ENTRY_BYTES !== 0) return 'offset index size is not a multiple of its entry size';
    if (timeFile.length % TIME_INDEX_ENTRY_BYTES !== 0) return 'time index size is not a multiple of its entry size';
    const count = offsetFile.length / OFFSET_INDEX_ENTRY_BYTES;
    if (timeFile.length / TIME_INDEX_ENTRY_BYTES !== count) return 'offset and time index differ in length';
    const index = new SegmentIndex();
    for (let i = 0; i < count; i++) {
      const relativeOffset = offsetFile.readUInt32BE(i * OFFSET_INDEX_ENTRY_BYTES);
      const position = offsetFile.readUInt32BE(i * OFFSET_INDEX_ENTRY_BYTES + 4);
      const maxTimestampMs = readU64(timeFile, i * TIME_INDEX_ENTRY_BYTES);
      if (timeFile.readUInt32BE(i * TIME_INDEX_ENTRY_BYTES + 8) !== relativeOffset) return `entry ${i}: time index offset differs`;
      if (i === 0 && (relativeOffset !== 0 || position !== 0)) return 'first entry is not the first batch';
      if (position >= segmentBytes) return `entry ${i}: position past the end of the segment`;
      if (maxTimestampMs < 0) return `entry ${i}: timestamp out of range`;
      if (i > 0) {
        const previous = i - 1;
        if (relativeOffset <= index.relativeOffsets[previous]!) return `entry ${i}: offsets not increasing`;
        if (position <= index.positions[previous]!) return `entry ${i}: positions not increasing`;
        if (maxTimestampMs < index.maxTimestamps[previous]!) return `entry ${i}: timestamps decrease`;
      }
      index.add(relativeOffset, position, maxTimestampMs);
    }
    return index;
  }

  private grow(): void {
    const capacity = this.relativeOffsets.length * 2;
    const relativeOffsets = new Uint32Array(capacity);
    relativeOffsets.set(this.relativeOffsets);
    const positions = new Uint32Array(capacity);
    positions.set(this.positions);
    const maxTimestamps = new Float64Array(capacity);
    maxTimestamps.set(this.maxTimestamps);
    this.relativeOffsets = relativeOffsets;
    this.positions = positions;
    this.maxTimestamps = maxTimestamps;
  }
}
