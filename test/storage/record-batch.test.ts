import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BATCH_HEADER_BYTES,
  decodeRecord,
  encodeRecord,
  readBatchHeader,
  readU64,
  recordBytes,
  verifyBatchRecords,
  writeBatchHeader,
  writeU64,
  type BatchHeader,
  type DecodeCursor,
} from '../../src/storage/record-batch.js';
import type { Header } from '../../src/storage/types.js';
import { crc32c } from '../../src/storage/crc32c.js';
import { seededRandom, randomInt } from '../sim/random.js';

interface Input {
  key: Buffer | null;
  headers: Header[];
  value: Buffer;
  timestampMs: number;
}

const INPUTS: Input[] = [
  { key: null, headers: [], value: Buffer.from('plain'), timestampMs: 1_700_000_000_000 },
  { key: Buffer.alloc(0), headers: [], value: Buffer.alloc(0), timestampMs: 0 },
  { key: Buffer.from('k'), headers: [['trace', 'abc'], ['émoji', '🚢 ferry']], value: Buffer.alloc(300, 7), timestampMs: 2 ** 53 - 1 },
];

function encodeBatch(baseOffset: number, inputs: Input[], leaderEpoch = 4): { buf: Buffer; header: BatchHeader } {
  const bytes =
    BATCH_HEADER_BYTES +
    inputs.reduce((sum, input) => {
      const headerBytes = input.headers.reduce((h, [name, value]) => h + Buffer.byteLength(name) + Buffer.byteLength(value), 0);
      return sum + recordBytes(input.key?.length ?? 0, input.headers.length, headerBytes, input.value.length);
    }, 0);
  const buf = Buffer.alloc(bytes);
  let at = BATCH_HEADER_BYTES;
  inputs.forEach((input, i) => {
    at = encodeRecord(buf, at, baseOffset + i, input.timestampMs, input.key, input.headers, input.value);
  });
  assert.equal(at, bytes);
  const header: BatchHeader = {
    batchBytes: bytes,
    recordCount: inputs.length,
    baseOffset,
    leaderEpoch,
    maxTimestampMs: Math.max(...inputs.map((input) => input.timestampMs)),
    attributes: 0,
  };
  writeBatchHeader(buf, 0, header);
  return { buf, header };
}

/** True when the damaged batch is refused: by its header, or by one of its records. */
function detected(buf: Buffer, baseOffset: number): boolean {
  const header = readBatchHeader(buf, 0);
  if (header === null || header.baseOffset !== baseOffset || header.batchBytes !== buf.length) return true;
  return verifyBatchRecords(buf, 0, header) !== null;
}

test('record format - a batch round-trips every field', () => {
  const { buf, header } = encodeBatch(1_000_000_007, INPUTS);
  assert.deepEqual(readBatchHeader(buf, 0), header);
  assert.equal(verifyBatchRecords(buf, 0, header), null);
  const cursor: DecodeCursor = { at: BATCH_HEADER_BYTES, damage: null };
  INPUTS.forEach((input, i) => {
    const record = decodeRecord(buf, cursor, buf.length, header.baseOffset + i, header.leaderEpoch, true);
    assert.ok(record !== null, `record ${i}: ${cursor.damage}`);
    assert.equal(record.offset, header.baseOffset + i);
    assert.equal(record.timestampMs, input.timestampMs);
    assert.deepEqual(record.key, input.key);
    assert.deepEqual(record.headers, input.headers);
    assert.ok(record.value.equals(input.value));
    assert.equal(record.leaderEpoch, 4);
  });
  assert.equal(cursor.at, buf.length);
});

test('record format - every single-bit flip anywhere in a batch is detected', () => {
  const { buf } = encodeBatch(42, INPUTS);
  for (let byte = 0; byte < buf.length; byte++) {
    for (let bit = 0; bit < 8; bit++) {
      const damaged = Buffer.from(buf);
      damaged[byte]! ^= 1 << bit;
      assert.ok(detected(damaged, 42), `flip of bit ${bit} of byte ${byte} went unnoticed`);
    }
  }
});

test('record format - a record at the wrong offset is refused even with a valid CRC', () => {
  const { buf, header } = encodeBatch(10, INPUTS);
  const cursor: DecodeCursor = { at: BATCH_HEADER_BYTES, damage: null };
  assert.equal(decodeRecord(buf, cursor, buf.length, 11, header.leaderEpoch, true), null);
  assert.equal(cursor.damage, 'offset');
});

test('record format - truncated batches and random garbage are never read as records', () => {
  const { buf } = encodeBatch(5, INPUTS);
  for (let length = 0; length < buf.length; length++) assert.ok(detected(buf.subarray(0, length), 5), `cut at ${length}`);
  const random = seededRandom(3);
  for (let i = 0; i < 200; i++) {
    const garbage = Buffer.alloc(randomInt(random, 0, 400));
    for (let b = 0; b < garbage.length; b++) garbage[b] = randomInt(random, 0, 255);
    assert.ok(detected(garbage, 5));
  }
});

test('record format - u64 fields hold every safe integer and refuse larger ones', () => {
  const buf = Buffer.alloc(8);
  for (const value of [0, 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
    writeU64(buf, value, 0);
    assert.equal(readU64(buf, 0), value);
  }
  buf.fill(0xff);
  assert.equal(readU64(buf, 0), -1);
});

/** The damage found by decoding every record (what verifyBatchRecords did before it stopped building records). */
function damageByDecoding(buf: Buffer, header: BatchHeader): string | null {
  const cursor: DecodeCursor = { at: BATCH_HEADER_BYTES, damage: null };
  for (let i = 0; i < header.recordCount; i++) {
    if (decodeRecord(buf, cursor, header.batchBytes, header.baseOffset + i, header.leaderEpoch, true) === null) return cursor.damage;
  }
  return cursor.at === header.batchBytes ? null : 'length';
}

test('record format - verifying a batch finds the same damage as decoding it, CRCs resealed or not', () => {
  const random = seededRandom(18);
  const { buf, header } = encodeBatch(77, INPUTS);
  const starts: number[] = [];
  for (let at = BATCH_HEADER_BYTES; at < buf.length; at += buf.readUInt32BE(at)) starts.push(at);
  for (let i = 0; i < 2_000; i++) {
    const damaged = Buffer.from(buf);
    for (let flips = randomInt(random, 1, 3); flips > 0; flips--) damaged[randomInt(random, BATCH_HEADER_BYTES, buf.length - 1)] = randomInt(random, 0, 255);
    if (i % 2 === 0) {
      // Reseal every record whose length still fits, so the structure checks behind the CRC are reached.
      for (const at of starts) {
        const size = damaged.readUInt32BE(at);
        if (size >= 8 && at + size <= damaged.length) damaged.writeUInt32BE(crc32c(damaged.subarray(at + 8, at + size)), at + 4);
      }
    }
    assert.equal(verifyBatchRecords(damaged, 0, header), damageByDecoding(damaged, header), `case ${i}`);
  }
});
