/**
 * The bytes of a batch: a fixed header, then its records, all big-endian. docs/STORAGE.md shows the
 * layout byte by byte. The header carries its own CRC32C (so a damaged length is caught before it
 * is trusted) and every record a CRC32C over everything after its CRC field.
 *
 * Hot path: `encodeRecord` writes straight into the batch buffer the writer allocated for the whole
 * batch; no per-record allocation except the subarray the native CRC needs.
 */
import assert from 'node:assert/strict';
import type { Header, LogRecord } from './record.js';
import { crc32c } from './crc32c.js';

/** "FRY1": changes if the layout ever changes, so an old reader refuses a new file. */
export const BATCH_MAGIC = 0x46525931;
export const BATCH_HEADER_BYTES = 40;
/** recordBytes u32, crc u32, offset u64, timestampMs u64, attributes u16, keyLength i32, headerCount u16, valueLength u32. */
export const RECORD_OVERHEAD_BYTES = 36;
/** Per header: nameLength u16 + valueLength u32. */
export const HEADER_OVERHEAD_BYTES = 6;

// Header field positions.
const H_MAGIC = 0;
const H_HEADER_CRC = 4;
const H_BATCH_BYTES = 8;
const H_RECORD_COUNT = 12;
const H_BASE_OFFSET = 16;
const H_LEADER_EPOCH = 24;
const H_MAX_TIMESTAMP = 28;
const H_ATTRIBUTES = 36;
/** The header CRC covers everything after its own field. */
const H_CRC_FROM = 8;

// Record field positions, relative to the record's first byte.
const R_CRC = 4;
const R_OFFSET = 8;
const R_TIMESTAMP = 16;
const R_ATTRIBUTES = 24;
const R_KEY_LENGTH = 26;
const R_KEY = 30;
/** The record CRC covers everything after its own field. */
const R_CRC_FROM = 8;

const TWO_POW_32 = 0x1_0000_0000;
/** Largest high word of a u64 that still gives a safe JS integer (2^53 - 1). */
const SAFE_HIGH_WORD_MAX = 0x1f_ffff;

export interface BatchHeader {
  batchBytes: number;
  recordCount: number;
  baseOffset: number;
  leaderEpoch: number;
  maxTimestampMs: number;
  attributes: number;
}

export function writeU64(buf: Buffer, value: number, at: number): void {
  const high = Math.floor(value / TWO_POW_32);
  buf.writeUInt32BE(high, at);
  buf.writeUInt32BE(value - high * TWO_POW_32, at + 4);
}

/** A u64 as a JS number, or -1 when it does not fit in a safe integer (only damage produces that). */
export function readU64(buf: Uint8Array, at: number): number {
  const high = ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
  if (high > SAFE_HIGH_WORD_MAX) return -1;
  const low = ((buf[at + 4]! << 24) | (buf[at + 5]! << 16) | (buf[at + 6]! << 8) | buf[at + 7]!) >>> 0;
  return high * TWO_POW_32 + low;
}

export function readU32(buf: Uint8Array, at: number): number {
  return ((buf[at]! << 24) | (buf[at + 1]! << 16) | (buf[at + 2]! << 8) | buf[at + 3]!) >>> 0;
}

function readU16(buf: Uint8Array, at: number): number {
  return (buf[at]! << 8) | buf[at + 1]!;
}

/** Writes the header into `buf[at..at+40)`; the records must already be in place. */
export function writeBatchHeader(buf: Buffer, at: number, header: BatchHeader): void {
  assert.ok(header.recordCount > 0, 'a batch holds at least one record');
  assert.ok(header.batchBytes >= BATCH_HEADER_BYTES + header.recordCount * RECORD_OVERHEAD_BYTES, 'batchBytes covers its records');
  buf.writeUInt32BE(BATCH_MAGIC, at + H_MAGIC);
  buf.writeUInt32BE(header.batchBytes, at + H_BATCH_BYTES);
  buf.writeUInt32BE(header.recordCount, at + H_RECORD_COUNT);
  writeU64(buf, header.baseOffset, at + H_BASE_OFFSET);
  buf.writeUInt32BE(header.leaderEpoch, at + H_LEADER_EPOCH);
  writeU64(buf, header.maxTimestampMs, at + H_MAX_TIMESTAMP);
  buf.writeUInt32BE(header.attributes, at + H_ATTRIBUTES);
  buf.writeUInt32BE(crc32c(buf.subarray(at + H_CRC_FROM, at + BATCH_HEADER_BYTES)), at + H_HEADER_CRC);
}

/**
 * The header at `buf[at..]`, or null when it is not a well-formed header: wrong magic, CRC
 * mismatch, or fields no writer produces. The caller checks the base offset against what it expects.
 */
export function readBatchHeader(buf: Uint8Array, at: number): BatchHeader | null {
  if (at < 0 || at + BATCH_HEADER_BYTES > buf.length) return null;
  if (readU32(buf, at + H_MAGIC) !== BATCH_MAGIC) return null;
  if (crc32c(buf.subarray(at + H_CRC_FROM, at + BATCH_HEADER_BYTES)) !== readU32(buf, at + H_HEADER_CRC)) return null;
  const batchBytes = readU32(buf, at + H_BATCH_BYTES);
  const recordCount = readU32(buf, at + H_RECORD_COUNT);
  const baseOffset = readU64(buf, at + H_BASE_OFFSET);
  const maxTimestampMs = readU64(buf, at + H_MAX_TIMESTAMP);
  if (recordCount === 0 || baseOffset < 0 || maxTimestampMs < 0) return null;
  if (batchBytes < BATCH_HEADER_BYTES + recordCount * RECORD_OVERHEAD_BYTES) return null;
  return {
    batchBytes,
    recordCount,
    baseOffset,
    leaderEpoch: readU32(buf, at + H_LEADER_EPOCH),
    maxTimestampMs,
    attributes: readU32(buf, at + H_ATTRIBUTES),
  };
}

/** Encoded size of one record; `headerBytes` is the UTF-8 length of all names and values. */
export function recordBytes(keyBytes: number, headerCount: number, headerBytes: number, valueBytes: number): number {
  return RECORD_OVERHEAD_BYTES + keyBytes + headerCount * HEADER_OVERHEAD_BYTES + headerBytes + valueBytes;
}

/**
 * Encodes one record at `buf[at..]` and returns the position after it. The caller sized `buf`
 * from the validated input, so every write lands inside it.
 */
export function encodeRecord(
  buf: Buffer,
  at: number,
  offset: number,
  timestampMs: number,
  key: Uint8Array | null,
  headers: readonly Header[] | undefined,
  value: Uint8Array,
): number {
  // Direct byte stores: the caller sized `buf` from validated input, so the bounds and range
  // checks of Buffer#writeUInt32BE would only cost time on the hottest path.
  putU64(buf, at + R_OFFSET, offset);
  putU64(buf, at + R_TIMESTAMP, timestampMs);
  buf[at + R_ATTRIBUTES] = 0;
  buf[at + R_ATTRIBUTES + 1] = 0;
  let p = at + R_KEY;
  if (key === null) {
    putU32(buf, at + R_KEY_LENGTH, 0xffff_ffff);
  } else {
    putU32(buf, at + R_KEY_LENGTH, key.length);
    buf.set(key, p);
    p += key.length;
  }
  const headerCount = headers === undefined ? 0 : headers.length;
  buf[p] = headerCount >>> 8;
  buf[p + 1] = headerCount & 0xff;
  p += 2;
  for (let i = 0; i < headerCount; i++) {
    const header = headers![i]!;
    const nameBytes = buf.write(header[0], p + 2, 'utf8');
    buf[p] = nameBytes >>> 8;
    buf[p + 1] = nameBytes & 0xff;
    p += 2 + nameBytes;
    const valueBytes = buf.write(header[1], p + 4, 'utf8');
    putU32(buf, p, valueBytes);
    p += 4 + valueBytes;
  }
  putU32(buf, p, value.length);
  p += 4;
  buf.set(value, p);
  p += value.length;
  putU32(buf, at, p - at);
  putU32(buf, at + R_CRC, crc32c(buf.subarray(at + R_CRC_FROM, p)));
  return p;
}

function putU32(buf: Uint8Array, at: number, value: number): void {
  buf[at] = value >>> 24;
  buf[at + 1] = value >>> 16;
  buf[at + 2] = value >>> 8;
  buf[at + 3] = value;
}

function putU64(buf: Uint8Array, at: number, value: number): void {
  const high = Math.floor(value / TWO_POW_32);
  putU32(buf, at, high);
  putU32(buf, at + 4, value - high * TWO_POW_32);
}

/**
 * The headers of every record that has none: one shared array instead of one per record read.
 * `readonly` in the types is what keeps it empty; it is not frozen because V8 handles a frozen
 * array less well on the delivery path (W2's broker collected 6% more garbage with it frozen).
 */
const NO_HEADERS: readonly Header[] = [];

/** Why a record could not be decoded; reported in CORRUPT_RANGE errors and recovery logs. */
export type RecordDamage = 'length' | 'crc' | 'offset' | 'structure';

/** Result slot for `decodeRecord`, reused across calls so decoding allocates only the record. */
export interface DecodeCursor {
  /** Position of the next record; advanced past a decoded record. */
  at: number;
  damage: RecordDamage | null;
}

/**
 * Decodes the record at `cursor.at`, which must end by `end` and carry `expectedOffset`. With
 * `verify`, its CRC is checked first. Returns null and sets `cursor.damage` when the bytes are not
 * a valid record; the record's key and value are views of `buf`.
 */
export function decodeRecord(
  buf: Buffer,
  cursor: DecodeCursor,
  end: number,
  expectedOffset: number,
  leaderEpoch: number,
  verify: boolean,
): LogRecord | null {
  const at = cursor.at;
  cursor.damage = null;
  if (at + RECORD_OVERHEAD_BYTES > end) return damaged(cursor, 'length');
  const size = readU32(buf, at);
  const recordEnd = at + size;
  if (size < RECORD_OVERHEAD_BYTES || recordEnd > end) return damaged(cursor, 'length');
  if (verify && crc32c(buf.subarray(at + R_CRC_FROM, recordEnd)) !== readU32(buf, at + R_CRC)) return damaged(cursor, 'crc');
  if (readU64(buf, at + R_OFFSET) !== expectedOffset) return damaged(cursor, 'offset');
  const timestampMs = readU64(buf, at + R_TIMESTAMP);
  if (timestampMs < 0) return damaged(cursor, 'structure');
  const keyLength = buf.readInt32BE(at + R_KEY_LENGTH);
  let p = at + R_KEY;
  let key: Buffer | null = null;
  if (keyLength >= 0) {
    if (p + keyLength > recordEnd) return damaged(cursor, 'structure');
    key = buf.subarray(p, p + keyLength);
    p += keyLength;
  } else if (keyLength !== -1) {
    return damaged(cursor, 'structure');
  }
  if (p + 2 > recordEnd) return damaged(cursor, 'structure');
  const headerCount = readU16(buf, p);
  p += 2;
  let headers = NO_HEADERS;
  if (headerCount > 0) {
    const list: Header[] = [];
    for (let i = 0; i < headerCount; i++) {
      if (p + 2 > recordEnd) return damaged(cursor, 'structure');
      const nameLength = readU16(buf, p);
      p += 2;
      if (p + nameLength + 4 > recordEnd) return damaged(cursor, 'structure');
      const name = buf.toString('utf8', p, p + nameLength);
      p += nameLength;
      const valueLength = readU32(buf, p);
      p += 4;
      if (p + valueLength > recordEnd) return damaged(cursor, 'structure');
      list.push([name, buf.toString('utf8', p, p + valueLength)]);
      p += valueLength;
    }
    headers = list;
  }
  if (p + 4 > recordEnd) return damaged(cursor, 'structure');
  const valueLength = readU32(buf, p);
  p += 4;
  if (p + valueLength !== recordEnd) return damaged(cursor, 'structure');
  cursor.at = recordEnd;
  return { offset: expectedOffset, timestampMs, key, headers, value: buf.subarray(p, recordEnd), leaderEpoch };
}

function damaged(cursor: DecodeCursor, damage: RecordDamage): null {
  cursor.damage = damage;
  return null;
}

/** Encoded size of the record at `at` (its first field), for skipping a record without decoding it. */
export function recordSizeAt(buf: Uint8Array, at: number): number {
  return readU32(buf, at);
}

/** The timestamp field of the record at `at`, without decoding the rest. */
export function recordTimestampAt(buf: Uint8Array, at: number): number {
  return readU64(buf, at + R_TIMESTAMP);
}

/**
 * The value of the first header named `name` (its UTF-8 bytes) in the record at `at`, or undefined;
 * for a record already checked (its CRC and structure), so only the walk to the headers is done.
 */
export function recordHeaderValue(buf: Buffer, at: number, name: Uint8Array): string | undefined {
  const start = recordHeaderValueAt(buf, at, name);
  return start < 0 ? undefined : buf.toString('utf8', start, start + readU32(buf, start - 4));
}

/**
 * Where the value of header `name` of the record at `buf[at..]` begins (its length is the u32
 * before it), or -1 when the record has no such header: for a reader that keeps the bytes.
 */
export function recordHeaderValueAt(buf: Buffer, at: number, name: Uint8Array): number {
  const keyLength = buf.readInt32BE(at + R_KEY_LENGTH);
  let p = at + R_KEY + Math.max(0, keyLength);
  const headerCount = readU16(buf, p);
  p += 2;
  for (let i = 0; i < headerCount; i++) {
    const nameLength = readU16(buf, p);
    p += 2;
    const valueLength = readU32(buf, p + nameLength);
    if (nameLength === name.length && buf.compare(name, 0, name.length, p, p + nameLength) === 0) return p + nameLength + 4;
    p += nameLength + 4 + valueLength;
  }
  return -1;
}

/**
 * Checks every record of the batch whose header is at `buf[at..]`: CRCs, consecutive offsets, and
 * that the records fill the batch exactly. Returns null when all is well, else the damage found.
 */
export function verifyBatchRecords(buf: Buffer, at: number, header: BatchHeader): RecordDamage | null {
  const end = at + header.batchBytes;
  let p = at + BATCH_HEADER_BYTES;
  for (let i = 0; i < header.recordCount; i++) {
    const next = checkRecord(buf, p, end, header.baseOffset + i);
    if (typeof next !== 'number') return next;
    p = next;
  }
  return p === end ? null : 'length';
}

/**
 * The checks of `decodeRecord` with `verify` (length, CRC, offset, structure), in the same order,
 * without building the record: a follower verifies every record it receives and recovery every
 * record of an unsynced tail, and neither needs the record itself. Returns the position after the
 * record, or its damage.
 */
function checkRecord(buf: Buffer, at: number, end: number, expectedOffset: number): number | RecordDamage {
  if (at + RECORD_OVERHEAD_BYTES > end) return 'length';
  const size = readU32(buf, at);
  const recordEnd = at + size;
  if (size < RECORD_OVERHEAD_BYTES || recordEnd > end) return 'length';
  if (crc32c(buf.subarray(at + R_CRC_FROM, recordEnd)) !== readU32(buf, at + R_CRC)) return 'crc';
  if (readU64(buf, at + R_OFFSET) !== expectedOffset) return 'offset';
  if (readU64(buf, at + R_TIMESTAMP) < 0) return 'structure';
  const keyLength = buf.readInt32BE(at + R_KEY_LENGTH);
  let p = at + R_KEY;
  if (keyLength >= 0) {
    if (p + keyLength > recordEnd) return 'structure';
    p += keyLength;
  } else if (keyLength !== -1) {
    return 'structure';
  }
  if (p + 2 > recordEnd) return 'structure';
  const headerCount = readU16(buf, p);
  p += 2;
  for (let i = 0; i < headerCount; i++) {
    if (p + 2 > recordEnd) return 'structure';
    const nameLength = readU16(buf, p);
    p += 2;
    if (p + nameLength + 4 > recordEnd) return 'structure';
    p += nameLength;
    const valueLength = readU32(buf, p);
    p += 4;
    if (p + valueLength > recordEnd) return 'structure';
    p += valueLength;
  }
  if (p + 4 > recordEnd) return 'structure';
  const valueLength = readU32(buf, p);
  p += 4;
  if (p + valueLength !== recordEnd) return 'structure';
  return recordEnd;
}
