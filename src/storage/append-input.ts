/**
 * Checks an append against src/storage/limits.ts before anything is queued, and measures its
 * encoded size so the writer can allocate each batch buffer exactly once. A violation is a typed
 * FerryError naming the record and the limit; the log is not touched.
 */
import { FerryError, type ErrorCode } from '../errors.js';
import {
  APPEND_RECORDS_MAX,
  BATCH_BYTES_MAX,
  HEADER_NAME_BYTES_MAX,
  HEADERS_BYTES_MAX,
  HEADERS_COUNT_MAX,
  KEY_BYTES_MAX,
  RECORD_BYTES_MAX,
} from './limits.js';
import { BATCH_HEADER_BYTES, recordBytes } from './record-batch.js';
import type { RecordInput } from './types.js';

function reject(code: ErrorCode, message: string, detail: Record<string, unknown>): never {
  throw new FerryError(code, message, { detail });
}

/** Encoded bytes of `records` (without the batch header); throws FerryError on bad input. */
export function measureAppend(records: readonly RecordInput[]): number {
  if (!Array.isArray(records)) reject('INVALID_ARGUMENT', 'append takes an array of records', {});
  const count = records.length;
  if (count === 0) reject('INVALID_ARGUMENT', 'append needs at least one record', {});
  if (count > APPEND_RECORDS_MAX) {
    reject('BATCH_TOO_LARGE', `append of ${count} records; at most ${APPEND_RECORDS_MAX} per call`, { records: count, max: APPEND_RECORDS_MAX });
  }
  let total = 0;
  for (let i = 0; i < count; i++) total += measureRecord(records[i]!, i);
  if (total > BATCH_BYTES_MAX - BATCH_HEADER_BYTES) {
    reject('BATCH_TOO_LARGE', `append of ${total} bytes; one append is one batch of at most ${BATCH_BYTES_MAX} bytes`, {
      bytes: total,
      max: BATCH_BYTES_MAX - BATCH_HEADER_BYTES,
    });
  }
  return total;
}

function measureRecord(record: RecordInput, index: number): number {
  if (typeof record !== 'object' || record === null) reject('INVALID_ARGUMENT', `record ${index} is not an object`, { index });
  const { key, headers, value, timestampMs } = record;
  if (!(value instanceof Uint8Array)) reject('INVALID_ARGUMENT', `record ${index}: value must be a Buffer`, { index });
  let keyBytes = 0;
  if (key !== undefined && key !== null) {
    if (!(key instanceof Uint8Array)) reject('INVALID_ARGUMENT', `record ${index}: key must be a Buffer or null`, { index });
    keyBytes = key.length;
    if (keyBytes > KEY_BYTES_MAX) {
      reject('KEY_TOO_LARGE', `record ${index}: key of ${keyBytes} bytes; at most ${KEY_BYTES_MAX}`, { index, bytes: keyBytes, max: KEY_BYTES_MAX });
    }
  }
  if (timestampMs !== undefined && !(Number.isSafeInteger(timestampMs) && timestampMs >= 0)) {
    reject('INVALID_ARGUMENT', `record ${index}: timestampMs must be a non-negative integer`, { index });
  }
  const headerCount = headers === undefined ? 0 : headers.length;
  const headerBytes = headers === undefined ? 0 : measureHeaders(headers, index);
  const bytes = recordBytes(keyBytes, headerCount, headerBytes, value.length);
  if (bytes > RECORD_BYTES_MAX) {
    reject('RECORD_TOO_LARGE', `record ${index}: ${bytes} bytes encoded; at most ${RECORD_BYTES_MAX}`, { index, bytes, max: RECORD_BYTES_MAX });
  }
  return bytes;
}

function measureHeaders(headers: RecordInput['headers'] & object, index: number): number {
  if (!Array.isArray(headers)) reject('INVALID_ARGUMENT', `record ${index}: headers must be an array of [name, value]`, { index });
  if (headers.length > HEADERS_COUNT_MAX) {
    reject('HEADERS_TOO_LARGE', `record ${index}: ${headers.length} headers; at most ${HEADERS_COUNT_MAX}`, {
      index,
      count: headers.length,
      max: HEADERS_COUNT_MAX,
    });
  }
  let total = 0;
  for (const header of headers) {
    if (!Array.isArray(header) || header.length !== 2 || typeof header[0] !== 'string' || typeof header[1] !== 'string') {
      reject('INVALID_ARGUMENT', `record ${index}: each header is a [name, value] pair of strings`, { index });
    }
    const nameBytes = Buffer.byteLength(header[0], 'utf8');
    if (nameBytes > HEADER_NAME_BYTES_MAX) {
      reject('HEADERS_TOO_LARGE', `record ${index}: header name of ${nameBytes} bytes; at most ${HEADER_NAME_BYTES_MAX}`, {
        index,
        bytes: nameBytes,
        max: HEADER_NAME_BYTES_MAX,
      });
    }
    total += nameBytes + Buffer.byteLength(header[1], 'utf8');
    if (total > HEADERS_BYTES_MAX) {
      reject('HEADERS_TOO_LARGE', `record ${index}: headers over ${HEADERS_BYTES_MAX} bytes`, { index, max: HEADERS_BYTES_MAX });
    }
  }
  return total;
}
