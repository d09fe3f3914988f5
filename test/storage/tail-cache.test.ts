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

test('tail cache - a shared budget: within bounds, each cache a contiguous tail, the oldest evicted (property)', () => {
  const one = batch(0, 2).length;
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 12 }),
      fc.array(fc.record({ cache: fc.integer({ min: 0, max: 2 }), op: fc.constantFrom('add', 'add', 'add', 'clear') }), { maxLength: 120 }),
      (budgetBatches, ops) => {
        const budget = new TailCacheBudget(one * budgetBatches);
        const caches = [0, 1, 2].map(() => new TailCache(one * 5, budget));
        const nextOffset = [0, 0, 0];
        /** Model: per cache the cached base offsets; plus global insertion order. */
        const model: number[][] = [[], [], []];
        let order: Array<[number, number]> = [];
        for (const { cache, op } of ops) {
          if (op === 'clear') {
            caches[cache]!.clear();
            model[cache] = [];
            order = order.filter(([owner]) => owner !== cache);
            continue;
          }
          const base = nextOffset[cache]!;
          nextOffset[cache] = base + 2;
          caches[cache]!.add(batch(base, 2), base, 2, 0);
          model[cache]!.push(base);
          order.push([cache, base]);
          // Per-cache bound first, then the global one, oldest first.
          while (model[cache]!.length > 5) {
            const dropped = model[cache]!.shift()!;
            order = order.filter(([owner, offset]) => owner !== cache || offset !== dropped);
          }
          while (order.length > budgetBatches) {
            const [owner, offset] = order.shift()!;
            assert.equal(model[owner]![0], offset, 'the globally oldest is its cache oldest');
            model[owner]!.shift();
          }
        }
        let total = 0;
        for (let i = 0; i < 3; i++) {
          const expected = model[i]!;
          assert.equal(caches[i]!.startOffset, expected.length === 0 ? Number.POSITIVE_INFINITY : expected[0]);
          assert.equal(caches[i]!.bytes, expected.length * one);
          if (expected.length > 0) assert.equal(expected.at(-1), nextOffset[i]! - 2, 'a cache always ends at its tail');
          total += caches[i]!.bytes;
        }
        assert.equal(budget.bytes, total);
        assert.ok(budget.bytes <= one * budgetBatches);
      },
    ),
    { numRuns: process.env['CI'] ? 1_000 : 200 },
  );
});
