import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ErrorCode } from '../../src/errors.js';
import {
  APPEND_RECORDS_MAX,
  BATCH_BYTES_MAX,
  HEADER_NAME_BYTES_MAX,
  HEADERS_BYTES_MAX,
  HEADERS_COUNT_MAX,
  KEY_BYTES_MAX,
  RECORD_BYTES_MAX,
  SEGMENT_BYTES_MIN,
} from '../../src/storage/limits.js';
import type { RecordInput } from '../../src/storage/types.js';
import { openSimLog, record, rejectsWith, simEnv } from './log-kit.js';

const value = Buffer.from('v');

const CASES: { name: string; records: unknown; code: ErrorCode }[] = [
  { name: 'no records', records: [], code: 'INVALID_ARGUMENT' },
  { name: 'not an array', records: { value }, code: 'INVALID_ARGUMENT' },
  { name: 'a record without a value', records: [{ key: null }], code: 'INVALID_ARGUMENT' },
  { name: 'a string value', records: [{ value: 'text' }], code: 'INVALID_ARGUMENT' },
  { name: 'a string key', records: [{ key: 'k', value }], code: 'INVALID_ARGUMENT' },
  { name: 'a negative timestamp', records: [{ value, timestampMs: -1 }], code: 'INVALID_ARGUMENT' },
  { name: 'a fractional timestamp', records: [{ value, timestampMs: 1.5 }], code: 'INVALID_ARGUMENT' },
  { name: 'a header that is not a pair of strings', records: [{ value, headers: [['a', 1]] }], code: 'INVALID_ARGUMENT' },
  { name: 'a key over KEY_BYTES_MAX', records: [{ key: Buffer.alloc(KEY_BYTES_MAX + 1), value }], code: 'KEY_TOO_LARGE' },
  {
    name: 'more than HEADERS_COUNT_MAX headers',
    records: [{ value, headers: Array.from({ length: HEADERS_COUNT_MAX + 1 }, (_, i) => [`h${i}`, '']) }],
    code: 'HEADERS_TOO_LARGE',
  },
  { name: 'a header name over HEADER_NAME_BYTES_MAX', records: [{ value, headers: [['n'.repeat(HEADER_NAME_BYTES_MAX + 1), '']] }], code: 'HEADERS_TOO_LARGE' },
  { name: 'headers over HEADERS_BYTES_MAX', records: [{ value, headers: [['big', 'x'.repeat(HEADERS_BYTES_MAX)]] }], code: 'HEADERS_TOO_LARGE' },
  { name: 'a record over RECORD_BYTES_MAX', records: [{ value: Buffer.alloc(RECORD_BYTES_MAX) }], code: 'RECORD_TOO_LARGE' },
  { name: 'more than APPEND_RECORDS_MAX records', records: Array.from({ length: APPEND_RECORDS_MAX + 1 }, () => ({ value })), code: 'BATCH_TOO_LARGE' },
  { name: 'an append over BATCH_BYTES_MAX', records: Array.from({ length: 3 }, () => ({ value: Buffer.alloc(BATCH_BYTES_MAX / 3) })), code: 'BATCH_TOO_LARGE' },
];

test('limits - each bad append is a typed FerryError and leaves the log untouched', async () => {
  const env = simEnv();
  const log = await openSimLog(env);
  try {
    await log.append([record(0)]);
    for (const testCase of CASES) {
      const writesBefore = env.fs.counts.write;
      const error = await rejectsWith(log.append(testCase.records as RecordInput[]), testCase.code);
      assert.ok(error.message.length > 0, testCase.name);
      assert.equal(env.fs.counts.write, writesBefore, `${testCase.name}: nothing written`);
      assert.deepEqual([log.nextOffset, log.writtenOffset, log.syncedOffset], [1, 0, 0], `${testCase.name}: offsets unchanged`);
    }
    // A bad record anywhere in an append rejects all of it.
    await rejectsWith(log.append([record(1), { key: Buffer.alloc(KEY_BYTES_MAX + 1), value }]), 'KEY_TOO_LARGE');
    assert.equal(log.nextOffset, 1);
    const largest = await log.append([{ key: Buffer.alloc(KEY_BYTES_MAX), value: Buffer.alloc(1024) }]);
    assert.equal(largest.baseOffset, 1, 'limits are inclusive');
  } finally {
    await log.close();
  }
});

test('limits - bad options are INVALID_ARGUMENT from open', async () => {
  const env = simEnv();
  await rejectsWith(openSimLog(env, { segmentBytes: SEGMENT_BYTES_MIN - 1 }), 'INVALID_ARGUMENT');
  await rejectsWith(openSimLog(env, { durability: 'sometimes' as never }), 'INVALID_ARGUMENT');
  await rejectsWith(openSimLog(env, { leaderEpoch: -1 }), 'INVALID_ARGUMENT');
  await rejectsWith(openSimLog(env, { syncIntervalMs: 0 }), 'INVALID_ARGUMENT');
  await rejectsWith(openSimLog(env, { retention: { bytesMax: -5 } }), 'INVALID_ARGUMENT');
});
