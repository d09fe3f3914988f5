import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BATCH_HEADER_BYTES, encodeRecord, writeBatchHeader } from '../../src/storage/record-batch.js';
import { TailCache, TailCacheBudget } from '../../src/storage/tail-cache.js';
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
  const beyond: LogRecord[] = [];
  cache.read({ offset: 45, endOffset: 50, recordsMax: 100, bytesMax: 1 << 20 }, beyond, { bytes: 0 });
  assert.deepEqual(beyond, [], 'a read past the cached end returns nothing');
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

test('tail cache - caches sharing a budget stay within it together, the batch added longest ago leaving first', () => {
  const one = batch(0, 4).length;
  const budget = new TailCacheBudget(one * 4);
  const a = new TailCache(one * 100, budget);
  const b = new TailCache(one * 100, budget);
  a.add(batch(0, 4), 0, 4, 0);
  a.add(batch(4, 4), 4, 4, 0);
  b.add(batch(0, 4), 0, 4, 0);
  b.add(batch(4, 4), 4, 4, 0);
  assert.equal(budget.bytes, one * 4);
  b.add(batch(8, 4), 8, 4, 0);
  assert.deepEqual([a.startOffset, b.startOffset, budget.bytes], [4, 0, one * 4], "a's first batch was the oldest");
  b.add(batch(12, 4), 12, 4, 0);
  b.add(batch(16, 4), 16, 4, 0);
  assert.deepEqual([a.startOffset, a.bytes, b.startOffset, b.bytes], [Number.POSITIVE_INFINITY, 0, 4, one * 4]);
  b.clear();
  assert.equal(budget.bytes, 0, 'a cleared cache gives its memory back');
  a.add(batch(8, 4), 8, 4, 0);
  assert.deepEqual([a.startOffset, budget.bytes], [8, one]);
});

/** A batch of `count` records whose values say which cache and offset they belong to. */
function taggedBatch(owner: number, baseOffset: number, count: number, valueBytes: number): Buffer {
  const values = Array.from({ length: count }, (_, i) => taggedValue(owner, baseOffset + i, valueBytes));
  const buf = Buffer.alloc(BATCH_HEADER_BYTES + values.reduce((sum, value) => sum + 36 + value.length, 0));
  let at = BATCH_HEADER_BYTES;
  values.forEach((value, i) => (at = encodeRecord(buf, at, baseOffset + i, 1, null, undefined, value)));
  writeBatchHeader(buf, 0, { batchBytes: buf.length, recordCount: count, baseOffset, leaderEpoch: 0, maxTimestampMs: 1, attributes: 0 });
  return buf;
}

function taggedValue(owner: number, offset: number, valueBytes: number): Buffer {
  const value = Buffer.alloc(Math.max(8, valueBytes), (owner * 31 + offset) % 251);
  value.writeUInt32BE(owner, 0);
  value.writeUInt32BE(offset, 4);
  return value;
}

test('tail cache - a shared ring: within bounds, each cache a contiguous tail, the oldest leaving first, every byte intact (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 6_000 }),
      fc.integer({ min: 200, max: 3_000 }),
      fc.array(
        fc.record({
          cache: fc.integer({ min: 0, max: 2 }),
          op: fc.constantFrom('add', 'add', 'add', 'add', 'clear', 'read'),
          records: fc.integer({ min: 1, max: 6 }),
          valueBytes: fc.integer({ min: 0, max: 300 }),
        }),
        { maxLength: 150 },
      ),
      (budgetBytes, chunkBytesMax, ops) => {
        const budget = new TailCacheBudget(budgetBytes, chunkBytesMax);
        // Each cache may use the whole budget (as in the broker), so only the budget evicts.
        const caches = [0, 1, 2].map(() => new TailCache(10_000, budget));
        const nextOffset = [0, 0, 0];
        const valueBytesAt = new Map<string, number>();
        /** Every add since the cache's last clear, in global order: [cache, baseOffset, count, bytes]. */
        let added: Array<[number, number, number, number]> = [];
        /** Records read earlier, checked again at the end: the ring reusing their bytes must not change them. */
        const kept: Array<[number, LogRecord]> = [];
        for (const { cache, op, records, valueBytes } of ops) {
          const subject = caches[cache]!;
          if (op === 'clear') {
            subject.clear();
            added = added.filter(([owner]) => owner !== cache);
          } else if (op === 'read') {
            if (subject.startOffset === Number.POSITIVE_INFINITY) continue;
            const out: LogRecord[] = [];
            subject.read({ offset: subject.startOffset, endOffset: nextOffset[cache]!, recordsMax: 1_000, bytesMax: 1 << 20 }, out, { bytes: 0 });
            assert.deepEqual(
              out.map((found) => found.offset),
              Array.from({ length: nextOffset[cache]! - subject.startOffset }, (_, i) => subject.startOffset + i),
              'a read from the cache returns every cached record, in order',
            );
            for (const found of out) kept.push([cache, found]);
          } else {
            const base = nextOffset[cache]!;
            const bytes = taggedBatch(cache, base, records, valueBytes);
            for (let i = 0; i < records; i++) valueBytesAt.set(`${cache}/${base + i}`, valueBytes);
            nextOffset[cache] = base + records;
            subject.add(bytes, base, records, 0);
            const fits = bytes.length <= budget.chunkBytes;
            assert.equal(subject.startOffset <= base, fits, 'a batch that fits a ring chunk is cached; one that does not empties its cache');
            if (fits) added.push([cache, base, records, bytes.length]);
            else added = added.filter(([owner]) => owner !== cache);
          }
        }
        // Which adds are still cached: for each cache a suffix of its adds since its last clear.
        const cachedFrom = caches.map((subject) => subject.startOffset);
        const live = added.filter(([owner, base]) => base >= cachedFrom[owner]!);
        for (let i = 0; i < 3; i++) {
          const mine = added.filter(([owner]) => owner === i);
          const cached = mine.filter(([, base]) => base >= cachedFrom[i]!);
          if (cached.length > 0) {
            assert.equal(cached[0]![1], cachedFrom[i], 'a cache starts at a batch boundary');
            assert.equal(cached.at(-1)![1] + cached.at(-1)![2], nextOffset[i], 'a cache always ends at its tail');
          }
          assert.equal(caches[i]!.bytes, cached.reduce((sum, [, , , bytes]) => sum + bytes, 0));
        }
        assert.equal(budget.bytes, live.reduce((sum, [, , , bytes]) => sum + bytes, 0));
        assert.ok(budget.bytes <= budgetBytes, 'all caches together within the budget');
        // The oldest leave first: after the first batch still cached, every batch added is cached.
        const firstLive = added.findIndex(([owner, base]) => base >= cachedFrom[owner]!);
        if (firstLive >= 0) assert.equal(live.length, added.length - firstLive, 'the cached batches are the newest ones');
        // Every byte a read ever returned, and every byte still cached, is what was written.
        for (let i = 0; i < 3; i++) {
          if (cachedFrom[i] === Number.POSITIVE_INFINITY) continue;
          const out: LogRecord[] = [];
          caches[i]!.read({ offset: cachedFrom[i]!, endOffset: nextOffset[i]!, recordsMax: 1_000, bytesMax: 1 << 20 }, out, { bytes: 0 });
          for (const found of out) kept.push([i, found]);
        }
        for (const [owner, found] of kept) {
          assert.ok(found.value.equals(taggedValue(owner, found.offset, valueBytesAt.get(`${owner}/${found.offset}`)!)), `record ${owner}/${found.offset} intact`);
        }
      },
    ),
    { numRuns: process.env['CI'] ? 1_000 : 200 },
  );
});
