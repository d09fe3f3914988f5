/**
 * Reads from one segment on disk: records from an offset, and the first offset at or after a
 * timestamp. Both start with a binary search of the sparse index and a pread at the indexed
 * position, then walk batch by batch; nothing loads a whole segment.
 *
 * Damage is a value the reader reports, never a crash: a batch whose header fails its CRC is
 * skipped by resynchronising at the next index entry whose header checks out; a record failing its
 * CRC makes the rest of its batch unreadable (record lengths after it cannot be trusted). Either way
 * the reader throws CORRUPT_RANGE {fromOffset, toOffset} (both inclusive) for exactly that span and
 * every record outside it stays readable. Index entries are verified on use (the header they point
 * at must carry the offset they claim), so a damaged index costs time, not wrong answers.
 */
import assert from 'node:assert/strict';
import type { FileHandle } from '../platform/fs.js';
import { FerryError } from '../errors.js';
import { BATCH_HEADER_BYTES, decodeRecord, readBatchHeader, type BatchHeader, type DecodeCursor } from './record-batch.js';
import { readFully, type Segment } from './segment.js';
import type { LogRecord } from './record.js';

/** Bytes per pread when reading records: a few batches of typical size in one system call. */
export const READ_WINDOW_BYTES = 64 * 1024;
/** The most one pread of a record read asks for (a read of many large records still takes several). */
export const READ_WINDOW_BYTES_MAX = 4 * 1024 * 1024;

/**
 * The pread size for a read of records: what the read still wants, in bytes (its `bytesMax`, or its
 * records at the segment's average record size when that is less), plus READ_WINDOW_BYTES of slack
 * so a batch that straddles the end is usually whole. Every batch the first pread covers costs no
 * further system call; with READ_WINDOW_BYTES alone, a 1 MiB read of 300 KiB batches took eight.
 */
export function readWindowBytes(segment: Segment, request: ReadRequest, recordsTaken: number, bytesTaken: number): number {
  const inSegment = Math.min(request.endOffset, segment.nextOffset) - Math.max(request.offset, segment.baseOffset);
  const recordsWanted = Math.max(0, Math.min(request.recordsMax - recordsTaken, inSegment));
  const recordBytesAverage = segment.recordCount > 0 ? segment.sizeBytes / segment.recordCount : 0;
  const wanted = Math.min(request.bytesMax - bytesTaken, recordsWanted * recordBytesAverage);
  return Math.min(READ_WINDOW_BYTES_MAX, Math.max(READ_WINDOW_BYTES, Math.ceil(wanted) + READ_WINDOW_BYTES));
}

/**
 * A buffer over a range of a file, refilled on demand. Each refill allocates a fresh buffer
 * because returned records are views into it.
 */
export class ByteWindow {
  buf: Buffer = Buffer.alloc(0);
  private start = 0;

  constructor(
    private readonly handle: FileHandle,
    /** File bytes past this are never read (the segment's written size). */
    private readonly limit: number,
    private readonly windowBytes: number = READ_WINDOW_BYTES,
  ) {}

  /** Makes `[position, position + length)` available; returns its index in `buf`, or -1 if the file is shorter. */
  async ensure(position: number, length: number): Promise<number> {
    if (position >= this.start && position + length <= this.start + this.buf.length) return position - this.start;
    if (position + length > this.limit) return -1;
    const want = Math.min(Math.max(length, this.windowBytes), this.limit - position);
    const buf = Buffer.allocUnsafe(want);
    const got = await readFully(this.handle, buf, 0, want, position);
    this.buf = got === want ? buf : buf.subarray(0, got);
    this.start = position;
    return got >= length ? 0 : -1;
  }

  /** `[position, position + length)` as a view of the bytes read already, or null when they are not all in the window. */
  view(position: number, length: number): Buffer | null {
    const at = position - this.start;
    return at >= 0 && at + length <= this.buf.length ? this.buf.subarray(at, at + length) : null;
  }

  /** The valid batch header at `position` carrying `expectedOffset` (any offset when null), or null. */
  async header(position: number, expectedOffset: number | null): Promise<BatchHeader | null> {
    const at = await this.ensure(position, BATCH_HEADER_BYTES);
    if (at < 0) return null;
    const header = readBatchHeader(this.buf, at);
    if (header === null) return null;
    if (expectedOffset !== null && header.baseOffset !== expectedOffset) return null;
    if (position + header.batchBytes > this.limit) return null;
    return header;
  }
}

export function corruptRange(segment: Segment, fromOffset: number, toOffset: number, position: number, damage: string): FerryError {
  assert.ok(fromOffset <= toOffset, 'a damaged range holds at least one offset');
  return new FerryError('CORRUPT_RANGE', `offsets ${fromOffset}..${toOffset} of segment ${segment.baseOffset} are damaged (${damage} at byte ${position})`, {
    detail: { fromOffset, toOffset, segmentBaseOffset: segment.baseOffset, position, damage },
  });
}

export interface ReadRequest {
  offset: number;
  /** Exclusive. */
  endOffset: number;
  recordsMax: number;
  bytesMax: number;
  /** See ReadOptions.wholeBatches. */
  wholeBatches?: boolean;
}

/** The read holds its bytes already: it returns before reading another batch. */
export function holdsBytesMax(request: ReadRequest, recordsTaken: number, bytes: number): boolean {
  return recordsTaken > 0 && bytes >= request.bytesMax;
}

/**
 * A record of `size` bytes would take the read past `bytesMax` (at least one record is always
 * returned). With `wholeBatches` only the first record taken from a batch is checked.
 */
export function passesBytesMax(request: ReadRequest, recordsTaken: number, bytes: number, size: number, takenFromBatch: boolean): boolean {
  return recordsTaken > 0 && bytes + size > request.bytesMax && !(request.wholeBatches === true && takenFromBatch);
}

/** Where a walk stands: the next batch's position and first offset. */
interface WalkPoint {
  position: number;
  offset: number;
  /** Index entry the position came from and is not yet verified (-1: verified or from byte 0). */
  entry: number;
}

function startPoint(segment: Segment, offset: number): WalkPoint {
  const entry = segment.index.floorByOffset(offset - segment.baseOffset);
  return entryPoint(segment, entry);
}

function entryPoint(segment: Segment, entry: number): WalkPoint {
  if (entry < 0) return { position: 0, offset: segment.baseOffset, entry: -1 };
  return { position: segment.index.positionAt(entry), offset: segment.baseOffset + segment.index.relativeOffsetAt(entry), entry };
}

/** The first index entry after `position` whose header checks out, as a point to continue from. */
async function resync(segment: Segment, window: ByteWindow, position: number): Promise<WalkPoint | null> {
  const index = segment.index;
  for (let i = index.firstAfterPosition(position); i < index.count; i++) {
    const point = entryPoint(segment, i);
    if ((await window.header(point.position, point.offset)) !== null) return { ...point, entry: -1 };
  }
  return null;
}

/**
 * Appends to `out` the records of `segment` from `request.offset` on, within the request's limits
 * (`bytesSoFar` carries the byte count across segments). Throws CORRUPT_RANGE when the first record
 * it would return is damaged; returns early with what it has when damage follows good records.
 */
export async function readSegmentRecords(segment: Segment, request: ReadRequest, out: LogRecord[], bytesSoFar: { bytes: number }): Promise<void> {
  const limit = segment.sizeBytes;
  const segmentEnd = segment.nextOffset;
  const window = new ByteWindow(segment.handle, limit, readWindowBytes(segment, request, out.length, bytesSoFar.bytes));
  const cursor: DecodeCursor = { at: 0, damage: null };
  let point = startPoint(segment, request.offset);
  // Once the bytes asked for are in, stop before reading the next batch from disk only to drop it.
  while (point.offset < request.endOffset && out.length < request.recordsMax && !holdsBytesMax(request, out.length, bytesSoFar.bytes)) {
    if (point.position >= limit) {
      if (point.offset >= segmentEnd || out.length > 0) return;
      throw corruptRange(segment, point.offset, segmentEnd - 1, point.position, 'segment shorter than its records');
    }
    const header = await window.header(point.position, point.offset);
    const bodyAt = header === null ? -1 : await window.ensure(point.position, header.batchBytes);
    if (header === null || bodyAt < 0) {
      if (point.entry >= 0) {
        // The index entry may be what is wrong: walk from the entry before it instead.
        point = entryPoint(segment, point.entry - 1);
        continue;
      }
      const next = await resync(segment, window, point.position);
      const toOffset = (next === null ? segmentEnd : next.offset) - 1;
      if (toOffset < request.offset && next !== null) {
        point = next;
        continue;
      }
      if (out.length > 0) return;
      throw corruptRange(segment, point.offset, Math.max(toOffset, point.offset), point.position, 'batch header');
    }
    point.entry = -1;
    const batchEnd = header.baseOffset + header.recordCount;
    if (batchEnd > request.offset) {
      const stop = readBatch(segment, window.buf, bodyAt, point.position, header, request, out, bytesSoFar, cursor);
      if (stop) return;
    }
    point.position += header.batchBytes;
    point.offset = batchEnd;
  }
}

/** Decodes the wanted records of one batch; true when the read is complete. */
function readBatch(
  segment: Segment,
  buf: Buffer,
  at: number,
  position: number,
  header: BatchHeader,
  request: ReadRequest,
  out: LogRecord[],
  bytesSoFar: { bytes: number },
  cursor: DecodeCursor,
): boolean {
  const end = at + header.batchBytes;
  const batchEnd = header.baseOffset + header.recordCount;
  cursor.at = at + BATCH_HEADER_BYTES;
  let takenHere = false;
  for (let offset = header.baseOffset; offset < batchEnd; offset++) {
    if (offset >= request.endOffset || out.length >= request.recordsMax) return true;
    const recordStart = cursor.at;
    const record = decodeRecord(buf, cursor, end, offset, header.leaderEpoch, true);
    if (record === null) {
      if (out.length > 0) return true;
      throw corruptRange(segment, offset, batchEnd - 1, position + (recordStart - at), `record ${cursor.damage}`);
    }
    if (offset < request.offset) continue;
    const size = cursor.at - recordStart;
    if (passesBytesMax(request, out.length, bytesSoFar.bytes, size, takenHere)) return true;
    assert.equal(record.offset, offset, 'decoded record carries its offset');
    out.push(record);
    bytesSoFar.bytes += size;
    takenHere = true;
  }
  return false;
}

/**
 * The first offset in `segment` whose record timestamp is >= `timestampMs`, or null when none is.
 * The time index gives the last entry whose running max is still below the target; every record
 * before that batch is older, so the walk starts there and skips whole batches by their header's
 * max timestamp. A damaged batch on the way answers with its first offset: the answer may be in it,
 * and a reader starting there is told exactly which range to skip.
 */
export async function segmentOffsetForTimestamp(segment: Segment, timestampMs: number): Promise<number | null> {
  if (segment.maxTimestampMs < timestampMs) return null;
  const limit = segment.sizeBytes;
  const window = new ByteWindow(segment.handle, limit);
  const index = segment.index;
  const first = index.firstWithMaxTimestampAtLeast(timestampMs);
  let point = entryPoint(segment, Math.min(first, index.count) - 1);
  const cursor: DecodeCursor = { at: 0, damage: null };
  while (point.position < limit) {
    const header = await window.header(point.position, point.offset);
    const bodyAt = header === null || header.maxTimestampMs < timestampMs ? -1 : await window.ensure(point.position, header.batchBytes);
    if (header === null || (header.maxTimestampMs >= timestampMs && bodyAt < 0)) {
      if (point.entry >= 0) {
        point = entryPoint(segment, point.entry - 1);
        continue;
      }
      return point.offset;
    }
    point.entry = -1;
    if (header.maxTimestampMs >= timestampMs) {
      cursor.at = bodyAt + BATCH_HEADER_BYTES;
      const end = bodyAt + header.batchBytes;
      for (let offset = header.baseOffset; offset < header.baseOffset + header.recordCount; offset++) {
        const record = decodeRecord(window.buf, cursor, end, offset, header.leaderEpoch, true);
        if (record === null || record.timestampMs >= timestampMs) return offset;
      }
    }
    point.position += header.batchBytes;
    point.offset = header.baseOffset + header.recordCount;
  }
  return null;
}
