/**
 * A follower's notes of the ids it replicates (cluster/noted-ids.ts), and the dedup index a
 * promotion builds from them (broker/dedup.ts): the same index as reading the log back, with the
 * notes' holes (cuts, resets, forgotten entries, records written before noting) read from the log.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Log } from '../../src/storage/log.js';
import { DedupIndex, ID_HEADER } from '../../src/broker/dedup.js';
import { NotedIdTable, NotedIds, TopicNotes } from '../../src/cluster/noted-ids.js';
import { eventually } from '../helpers.js';
import { MapNotedIds } from './noted-ids-model.js';
import type { NotedHeaders, PartitionLog, RecordInput } from '../../src/storage/types.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';

const WINDOW_MS = 60_000;
const FETCH_BYTES = 1 << 20;

function withId(i: number): RecordInput {
  return { key: null, value: Buffer.from(`v${i}`), headers: i % 3 === 2 ? [] : [['other', 'x'], [ID_HEADER, `id-${i}`]] };
}

async function logs(): Promise<{ leader: Log; follower: Log; clock: SimClock }> {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const open = (dir: string): Promise<Log> => Log.open({ dir, fs: fs.session(), clock, durability: 'always', segmentBytes: 4096 });
  return { leader: await open('/data/leader'), follower: await open('/data/follower'), clock };
}

/** Copies the leader's new batches to the follower, noting them as a follower does. */
async function replicate(leader: Log, follower: Log, notes: NotedIds, clock: SimClock): Promise<void> {
  while (follower.nextOffset < leader.writtenOffset + 1) {
    const bytes = Buffer.concat(await leader.readBatches(follower.nextOffset, { bytesMax: FETCH_BYTES }));
    const from = follower.nextOffset;
    await follower.appendBatches(bytes);
    notes.note(bytes, from, clock.nowMs());
  }
}

/** A fresh DedupIndex rebuilt from `log`, with `noted` offered as the log's notes. */
async function rebuilt(log: Log, clock: SimClock, noted: NotedHeaders | null): Promise<DedupIndex> {
  // What the rebuild uses of a log, with the notes a replicated log would offer.
  const view = {
    nextOffset: log.nextOffset,
    offsetForTimestamp: (timestampMs: number) => log.offsetForTimestamp(timestampMs),
    read: (offset: number, options?: Parameters<Log['read']>[1]) => log.read(offset, options),
    notedHeaders: (name: string) => (name === ID_HEADER ? noted : null),
  } as unknown as PartitionLog;
  const index = new DedupIndex(WINDOW_MS, clock);
  await index.rebuild([view]);
  return index;
}

/** Where handed-over notes begin, and their ids in order. */
function summary(noted: ReturnType<NotedIds['handOver']>): { fromOffset: number; ids: string[] } | null {
  return noted === null ? null : { fromOffset: noted.fromOffset, ids: [...noted.entries.keys()] };
}

/** What `index` answers for every id the tests write. */
function known(index: DedupIndex): Map<string, number> {
  const found = new Map<string, number>();
  for (let i = 0; i < 2000; i++) {
    const hit = index.lookup(`id-${i}`) as { offset: number } | undefined;
    if (hit !== undefined) found.set(`id-${i}`, hit.offset);
  }
  return found;
}

test('noted ids - a promotion from notes finds what reading the log back finds, across cuts, resets and records before noting', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(fc.constant('write'), fc.constant('cut'), fc.constant('tick')), { minLength: 1, maxLength: 12 }), fc.nat(20), async (steps, before) => {
      const { leader, follower, clock } = await logs();
      let next = 0;
      for (; next < before; next++) await leader.append([withId(next)]);
      // Records the follower held before it began noting (recovered from its disk).
      while (follower.nextOffset < leader.writtenOffset + 1) await follower.appendBatches(Buffer.concat(await leader.readBatches(follower.nextOffset, { bytesMax: FETCH_BYTES })));
      const notes = new NotedIds(follower.nextOffset, WINDOW_MS);
      for (const step of steps) {
        if (step === 'write') {
          for (let n = 0; n < 5; n++, next++) await leader.append([withId(next), withId(next + 1000)]);
          await replicate(leader, follower, notes, clock);
        } else if (step === 'cut' && follower.nextOffset > 0) {
          const end = await follower.truncateTo(Math.floor(follower.nextOffset / 2));
          notes.cut(end);
          // The leader's log is cut the same way, as a new leader's would differ from here on.
          await leader.truncateTo(end);
        } else {
          clock.advance(WINDOW_MS / 2);
        }
      }
      const fromNotes = await rebuilt(follower, clock, notes.handOver(follower.nextOffset));
      const fromLog = await rebuilt(follower, clock, null);
      assert.deepEqual(known(fromNotes), known(fromLog));
      // And as their windows pass.
      clock.advance(WINDOW_MS / 3);
      assert.deepEqual(known(fromNotes), known(fromLog));
      clock.advance(WINDOW_MS);
      assert.deepEqual(known(fromNotes), new Map());
      await leader.close();
      await follower.close();
    }),
    { numRuns: 25 },
  );
});

test('noted ids - entries older than two windows are forgotten and the notes then start after them; a hand-over starts them afresh', async () => {
  const { leader, follower, clock } = await logs();
  const notes = new NotedIds(0, WINDOW_MS);
  for (let i = 0; i < 10; i++) await leader.append([withId(i)]);
  await replicate(leader, follower, notes, clock);
  clock.advance(3 * WINDOW_MS);
  for (let i = 10; i < 12; i++) await leader.append([withId(i)]);
  await replicate(leader, follower, notes, clock);
  const noted = notes.handOver(12)!;
  assert.deepEqual([...noted.entries.keys()], ['id-10']);
  assert.equal(noted.fromOffset, 10);
  // Handed over, the notes begin again at the log's end.
  assert.deepEqual(summary(notes.handOver(12)), { fromOffset: 12, ids: [] });
  // Notes that do not reach the log's end (it grew by a copy that does not note) are not offered.
  assert.equal(notes.handOver(20), null);
  notes.reset(50);
  assert.deepEqual(summary(notes.handOver(50)), { fromOffset: 50, ids: [] });
  await leader.close();
  await follower.close();
});

test('noted ids - new notes are filled from the log before them in the background; a cut meanwhile drops the fill', async () => {
  const { leader, follower, clock } = await logs();
  for (let i = 0; i < 30; i++) await leader.append([withId(i)]);
  // What the follower held before it began noting (a restart): read back into the notes.
  while (follower.nextOffset < leader.writtenOffset + 1) await follower.appendBatches(Buffer.concat(await leader.readBatches(follower.nextOffset, { bytesMax: FETCH_BYTES })));
  const notes = new TopicNotes(() => WINDOW_MS, () => follower, () => clock.nowMs());
  for (let i = 30; i < 35; i++) await leader.append([withId(i)]);
  const bytes = Buffer.concat(await leader.readBatches(follower.nextOffset, { bytesMax: FETCH_BYTES }));
  const from = follower.nextOffset;
  await follower.appendBatches(bytes);
  notes.change('p0', { kind: 'appended', bytes, from });
  await eventually(() => assert.equal(notes.peek('p0')?.fromOffset, 0));
  notes.beginPromotion();
  const noted = notes.take('p0', follower.nextOffset)!;
  assert.deepEqual(known(await rebuilt(follower, clock, noted)), known(await rebuilt(follower, clock, null)));
  assert.equal(noted.entries.size, 24, 'every record with an id, before the notes and in them');

  // A fill that finds the notes cut below where it began is dropped.
  const cutNotes = new NotedIds(30, WINDOW_MS);
  cutNotes.cut(20);
  const fill = new NotedIdTable();
  fill.note('id-1', 1, 0);
  assert.equal(cutNotes.prepend(fill, 0, 30), false);
  await leader.close();
  await follower.close();
});

test('noted ids - a catch-up copy noted as it is written: batches older than what is kept are skipped whole, and a promotion finds what reading the log back finds', async () => {
  const { leader, follower, clock } = await logs();
  // Old records (three windows ago), then young ones: a catch-up copies both.
  for (let i = 0; i < 40; i++) await leader.append([withId(i)]);
  clock.advance(3 * WINDOW_MS);
  for (let i = 40; i < 60; i++) await leader.append([withId(i)]);
  const notes = new TopicNotes(() => WINDOW_MS, () => follower, () => clock.nowMs());
  let walked = 0;
  while (follower.nextOffset < leader.writtenOffset + 1) {
    const bytes = Buffer.concat(await leader.readBatches(follower.nextOffset, { bytesMax: 600 }));
    const from = follower.nextOffset;
    await follower.appendBatches(bytes, { matchedLeaderDigests: true });
    notes.change('p0', { kind: 'appended', bytes, from });
    walked++;
  }
  assert.ok(walked > 3, `${walked} chunks`);
  const extent = notes.peek('p0')!;
  assert.ok(extent.fromOffset >= 30 && extent.fromOffset <= 40, `the old batches were skipped: the notes begin at ${extent.fromOffset}`);
  assert.equal(extent.size, Array.from({ length: 20 }, (_, j) => 40 + j).filter((i) => i % 3 !== 2).length, 'the young records with ids');
  notes.beginPromotion();
  const noted = notes.take('p0', follower.nextOffset)!;
  assert.notEqual(noted, null, 'the notes reach the log\'s end: no read back at the promotion');
  assert.deepEqual(known(await rebuilt(follower, clock, noted)), known(await rebuilt(follower, clock, null)));
  await leader.close();
  await follower.close();
});

test('noted ids - the compact notes keep, forget, cut and merge ids exactly as the Map they replaced', async () => {
  const step = fc.oneof(
    fc.record({ kind: fc.constant('write' as const), count: fc.integer({ min: 1, max: 40 }), pool: fc.integer({ min: 1, max: 30 }) }),
    fc.record({ kind: fc.constant('cut' as const), back: fc.nat(30) }),
    fc.record({ kind: fc.constant('reset' as const) }),
    fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: WINDOW_MS }) }),
    fc.record({ kind: fc.constant('prepend' as const), count: fc.integer({ min: 0, max: 10 }) }),
  );
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
      const { leader, clock } = await logs();
      const notes = new NotedIds(0, WINDOW_MS);
      const model = new MapNotedIds(0, WINDOW_MS);
      let written = 0;
      let end = 0;
      for (const s of steps) {
        if (s.kind === 'write') {
          const records = Array.from({ length: s.count }, (_, i): RecordInput => ({ key: null, value: Buffer.from('v'), headers: (written + i) % 4 === 3 ? [] : [[ID_HEADER, `id-${(written + i) % s.pool}`]] }));
          written += s.count;
          const before = leader.nextOffset;
          await leader.append(records);
          const bytes = Buffer.concat(await leader.readBatches(before, { bytesMax: FETCH_BYTES }));
          // A write that continues the notes, or (after a cut or reset) one that starts elsewhere.
          notes.note(bytes, before, clock.nowMs());
          model.note(bytes, before, clock.nowMs());
          end = leader.nextOffset;
        } else if (s.kind === 'cut') {
          const cutAt = Math.max(0, end - s.back);
          notes.cut(cutAt);
          model.cut(cutAt);
        } else if (s.kind === 'reset') {
          notes.reset(end);
          model.reset(end);
        } else if (s.kind === 'tick') {
          clock.advance(s.ms);
        } else {
          const from = Math.max(0, notes.extent().fromOffset - s.count);
          const fill = new NotedIdTable();
          const fillModel = new Map<string, { offset: number; timestampMs: number }>();
          for (let offset = from; offset < notes.extent().fromOffset; offset++) {
            fill.note(`id-${offset % 7}`, offset, clock.nowMs() - 1);
            fillModel.delete(`id-${offset % 7}`);
            fillModel.set(`id-${offset % 7}`, { offset, timestampMs: clock.nowMs() - 1 });
          }
          assert.equal(notes.prepend(fill, from, notes.extent().fromOffset), model.prepend(fillModel, from, model.extent().fromOffset));
        }
        assert.deepEqual(notes.extent(), model.extent());
      }
      const handed = notes.handOver(end);
      const expected = model.handOver(end);
      assert.equal(handed === null, expected === null);
      if (handed !== null && expected !== null) {
        assert.equal(handed.fromOffset, expected.fromOffset);
        assert.deepEqual([...handed.entries.keys()], [...expected.entries.keys()]);
        for (const [id, header] of expected.entries) assert.deepEqual(handed.entries.get(id), header);
        assert.equal(handed.entries.get('id-never'), undefined);
      }
      await leader.close();
    }),
    { numRuns: 60 },
  );
});

test('noted ids - past their bound the oldest ids are forgotten and the notes then start after them', async () => {
  const { leader, follower, clock } = await logs();
  const notes = new NotedIds(0, WINDOW_MS, 5);
  for (let i = 0; i < 9; i++) await leader.append([{ key: null, value: Buffer.from('v'), headers: [[ID_HEADER, `id-${i}`]] }]);
  await replicate(leader, follower, notes, clock);
  const noted = notes.handOver(9)!;
  assert.deepEqual([...noted.entries.keys()], ['id-4', 'id-5', 'id-6', 'id-7', 'id-8']);
  assert.equal(noted.fromOffset, 4, 'a promotion reads what was forgotten back from the log');
  await leader.close();
  await follower.close();
});
