/**
 * The dedup index on its own, on the simulated clock: ids kept in a ring of parallel arrays are
 * found with their partition, offset and delay flag while the ring grows, expire oldest first, and
 * past DEDUP_ENTRIES_MAX the oldest are forgotten; ids still being published answer once stored.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DedupIndex, type DedupEntry } from '../../src/broker/dedup.js';
import { DEDUP_ENTRIES_MAX } from '../../src/broker/limits.js';
import { SimClock } from '../sim/sim-clock.js';

const WINDOW_MS = 60_000;

function entryFor(n: number): DedupEntry {
  return { partition: n % 7, offset: 1_000_000_000 + n, storedAtMs: 1_700_000_000_000 + n, ...(n % 5 === 0 ? { delayed: true } : {}) };
}

test('dedup index - every id is found with its place across growth, and ids expire oldest first', async () => {
  const clock = new SimClock();
  const index = new DedupIndex(WINDOW_MS, clock);
  const count = 5_000;
  for (let n = 0; n < count; n++) {
    index.remember(`id-${n}`, entryFor(n));
    if (n === count / 2) await clock.advanceAndSettle(WINDOW_MS / 2);
  }
  assert.equal(index.size, count);
  for (let n = 0; n < count; n += 37) assert.deepEqual(index.lookup(`id-${n}`), entryFor(n));
  assert.equal(index.lookup('id-never'), undefined);
  index.remember('id-3', entryFor(99));
  assert.deepEqual(index.lookup('id-3'), entryFor(3), 'the first copy is the one remembered');
  // The first half was remembered half a window earlier: it goes first, the second half stays.
  await clock.advanceAndSettle(WINDOW_MS / 2 + 1);
  assert.equal(index.lookup('id-0'), undefined);
  assert.equal(index.lookup(`id-${count / 2}`), undefined);
  assert.deepEqual(index.lookup(`id-${count / 2 + 1}`), entryFor(count / 2 + 1));
  assert.equal(index.size, count / 2 - 1);
  // An expired id may be published (and remembered) again.
  index.remember('id-0', entryFor(0));
  assert.deepEqual(index.lookup('id-0'), entryFor(0));
  await clock.advanceAndSettle(WINDOW_MS + 1);
  assert.equal(index.lookup('id-0'), undefined);
  assert.equal(index.size, 0);
});

test('dedup index - past its bound (DEDUP_ENTRIES_MAX) the oldest ids are forgotten first', () => {
  const clock = new SimClock();
  const entriesMax = 3_000;
  const index = new DedupIndex(WINDOW_MS, clock, undefined, entriesMax);
  const extra = 10;
  for (let n = 0; n < entriesMax + extra; n++) index.remember(`id-${n}`, entryFor(n));
  assert.equal(index.size, entriesMax);
  assert.equal(index.lookup(`id-${extra - 1}`), undefined);
  assert.deepEqual(index.lookup(`id-${extra}`), entryFor(extra));
  assert.deepEqual(index.lookup(`id-${entriesMax + extra - 1}`), entryFor(entriesMax + extra - 1));
  assert.ok(DEDUP_ENTRIES_MAX >= entriesMax, 'the real bound is larger');
});

test('dedup index - ids being published answer with where they landed, or nothing when the publish failed', async () => {
  const clock = new SimClock();
  const index = new DedupIndex(WINDOW_MS, clock);
  let store!: (entries: DedupEntry[] | undefined) => void;
  index.beginAll(['a', 'b'], new Promise((resolve) => (store = resolve)));
  const waiting = index.lookup('b');
  assert.ok(waiting instanceof Promise);
  store([entryFor(1), entryFor(2)]);
  assert.deepEqual(await waiting, entryFor(2));
  assert.deepEqual(index.lookup('a'), entryFor(1), 'remembered once stored');
  let fail!: (entries: undefined) => void;
  index.beginAll(['c'], new Promise((resolve) => (fail = resolve)));
  const failing = index.lookup('c');
  fail(undefined);
  assert.equal(await failing, undefined);
  assert.equal(index.lookup('c'), undefined, 'a failed publish leaves nothing behind');
});
