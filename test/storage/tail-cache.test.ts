import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BATCH_HEADER_BYTES, encodeRecord, writeBatchHeader } from '../../src/storage/record-batch.js';
import { TailCache } from '../../src/storage/tail-cache.js';
import type { LogRecord } from '../../src/storage/types.js';
import { appendSequential, assertRecord, openSimLog, readAll, simEnv } from './log-kit.js';

function batch(baseOffset: number, count: number): Buffer {
  const buf = Buffer.alloc(BATCH_HEADER_BYTES + count * (36 + 10));
  let at = BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) at = encodeRecord(buf, at, baseOffset + i, 1, null, undefined, Buffer.alloc(10, i));
  writeBatchHeader(buf, 0, { batchBytes: buf.length, recordCount: count, baseOffset, leaderEpoch: 0, maxTimestampMs: 1, attributes: 0 });
  return buf;
}

test('tail cache - stays within its byte bound, evicting the oldest batches', () => {
  const one = batch(0, 4).length;
  const cache = new TailCache(one * 3);
  for (let i = 0; i < 10; i++) cache.add(batch(i * 4, 4), i * 4, 4, 0);
  assert.equal(cache.bytes, one * 3);
  assert.equal(cache.startOffset, 28);
  const out: LogRecord[] = [];
  cache.read({ offset: 30, endOffset: 40, recordsMax: 100, bytesMax: 1 << 20 }, out, { bytes: 0 });
  assert.deepEqual(
    out.map((found) => found.offset),
    [30, 31, 32, 33, 34, 35, 36, 37, 38, 39],
  );
  cache.add(batch(40, 100), 40, 100, 0);
  assert.equal(cache.bytes, 0, 'a batch larger than the cache empties it (the cache stays a contiguous tail)');
  assert.equal(cache.startOffset, Number.POSITIVE_INFINITY);
});

test('tail cache - the log keeps recent batches in memory and reads older ones from disk', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { tailCacheBytes: 2_000 });
  try {
    await appendSequential(log, 0, 100);
    assert.ok(log.stats().tailCacheBytes <= 2_000 && log.stats().tailCacheBytes > 1_000, `${log.stats().tailCacheBytes} bytes cached`);
    const readsBefore = env.fs.counts.read;
    assertRecord((await log.read(99))[0]!, 99);
    assert.equal(env.fs.counts.read, readsBefore, 'the tail comes from memory');
    assertRecord((await log.read(3, { recordsMax: 1 }))[0]!, 3);
    assert.ok(env.fs.counts.read > readsBefore, 'older records come from disk');
    (await readAll(log, 30)).forEach((found, i) => assertRecord(found, i));
  } finally {
    await log.close();
  }
});
