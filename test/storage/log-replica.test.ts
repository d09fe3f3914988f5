/**
 * What a follower's log needs (storage/log-replica.ts, epoch-cache.ts): a leader's batches copied
 * byte for byte at their offsets and epochs, damaged or misplaced batches refused before anything
 * is written, a diverged tail cut back durably, and the end offset of each leader epoch, kept
 * across crashes and rebuilt from the batch headers. All on the simulated disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Log } from '../../src/storage/log.js';
import { EPOCH_FILE } from '../../src/storage/epoch-cache.js';
import { crc32c } from '../../src/storage/crc32c.js';
import type { LogOptions } from '../../src/storage/types.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { seededRandom } from '../sim/random.js';
import { assertRecord, readAll, record, rejectsWith } from './log-kit.js';
import { eventually } from '../helpers.js';

const LEADER_DIR = '/data/leader';
const FOLLOWER_DIR = '/data/follower';
/** Small segments, so that a few records span several of them. */
const SMALL_SEGMENT_BYTES = 4096;
/** Enough bytes per fetch for every batch these tests write. */
const FETCH_BYTES = 1 << 20;

interface Pair {
  fs: SimFileSystem;
  clock: SimClock;
  open(dir: string, options?: Partial<LogOptions>): Promise<Log>;
}

function pair(): Pair {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  return {
    fs,
    clock,
    open: (dir, options = {}) => Log.open({ dir, fs: fs.session(), clock, durability: 'always', segmentBytes: SMALL_SEGMENT_BYTES, ...options }),
  };
}

/** Copies everything `from` has written that `to` lacks, the way a follower fetches. */
async function replicate(from: Log, to: Log): Promise<void> {
  while (to.nextOffset < from.writtenOffset + 1) {
    const batches = await from.readBatches(to.nextOffset, { bytesMax: FETCH_BYTES });
    assert.ok(batches.length > 0, `nothing to fetch at ${to.nextOffset}`);
    await to.appendBatches(Buffer.concat(batches));
  }
}

async function appendEach(log: Log, first: number, count: number): Promise<void> {
  for (let i = first; i < first + count; i++) await log.append([record(i)]);
}

/** Every batch of a log, as bytes (what a replica must hold identically). */
async function allBatches(log: Log): Promise<Buffer> {
  const out: Buffer[] = [];
  let offset = log.startOffset;
  while (offset < log.writtenOffset + 1) {
    const batches = await log.readBatches(offset, { bytesMax: FETCH_BYTES });
    out.push(...batches);
    offset = batches[batches.length - 1]!.readUInt32BE(12) + Number(batches[batches.length - 1]!.readBigUInt64BE(16));
  }
  return Buffer.concat(out);
}

test('log replica - a follower holds the leader batches byte for byte, at their offsets and epochs, across segments', async () => {
  const env = pair();
  const leader = await env.open(LEADER_DIR, { leaderEpoch: 3 });
  const follower = await env.open(FOLLOWER_DIR);
  await appendEach(leader, 0, 40);
  await leader.beginEpoch(5);
  await leader.append([record(40), record(41), record(42)]);
  await replicate(leader, follower);
  assert.equal(follower.nextOffset, 43);
  assert.ok((await allBatches(follower)).equals(await allBatches(leader)), 'same bytes');
  assert.deepEqual(follower.epochs(), [{ epoch: 3, startOffset: 0 }, { epoch: 5, startOffset: 40 }]);
  assert.deepEqual(leader.epochs(), follower.epochs());
  await follower.sync();
  const records = await readAll(follower);
  records.forEach((found, i) => assertRecord(found, i));
  assert.equal(records[41]!.leaderEpoch, 5);
  assert.ok(follower.stats().segments > 1, 'the copy spans several segments');
  await leader.close();
  await follower.close();
});

/** A leader at epoch 2 with two batches (offsets 0-1 and 2), read back for an empty follower at epoch 2 to take. */
async function twoBatchesToCopy() {
  const env = pair();
  const leader = await env.open(LEADER_DIR, { leaderEpoch: 2 });
  const follower = await env.open(FOLLOWER_DIR, { leaderEpoch: 2 });
  await leader.append([record(0), record(1)]);
  await leader.append([record(2)]);
  const [first, second] = await leader.readBatches(0, { bytesMax: FETCH_BYTES });
  return { env, leader, follower, first, second };
}

test('log replica - damaged, misplaced and stale batches are refused and nothing is written', async () => {
  const { env, leader, follower, first, second } = await twoBatchesToCopy();
  const flipped = Buffer.from(first!);
  flipped[flipped.length - 3]! ^= 0x40;
  await rejectsWith(follower.appendBatches(flipped), 'CORRUPT_RANGE');
  await rejectsWith(follower.appendBatches(second!), 'INVALID_ARGUMENT');
  await rejectsWith(follower.appendBatches(first!.subarray(0, first!.length - 1)), 'CORRUPT_RANGE');
  assert.equal(follower.nextOffset, 0);
  await follower.appendBatches(first!);
  assert.equal(follower.nextOffset, 2);
  // A batch of an older epoch than the log already holds.
  const old = await env.open('/data/old', { leaderEpoch: 1 });
  await old.append([record(2)]);
  const [stale] = await old.readBatches(0, { bytesMax: FETCH_BYTES });
  const moved = Buffer.from(stale!);
  await rejectsWith(follower.appendBatches(rebase(moved, 2)), 'INVALID_ARGUMENT');
  assert.equal(follower.nextOffset, 2);
  await Promise.all([leader.close(), follower.close(), old.close()]);
});

test('log replica - batches that matched the leader\'s digests still have their headers, offsets and epochs checked', async () => {
  const { env, leader, follower, first, second } = await twoBatchesToCopy();
  const matched = { matchedLeaderDigests: true };
  const header = Buffer.from(first!);
  header[20]! ^= 0x01;
  await rejectsWith(follower.appendBatches(header, matched), 'CORRUPT_RANGE');
  await rejectsWith(follower.appendBatches(second!, matched), 'INVALID_ARGUMENT');
  await rejectsWith(follower.appendBatches(first!.subarray(0, first!.length - 1), matched), 'CORRUPT_RANGE');
  assert.equal(follower.nextOffset, 0);
  await follower.appendBatches(Buffer.concat([first!, second!]), matched);
  assert.equal(follower.nextOffset, 3);
  const old = await env.open('/data/old', { leaderEpoch: 1 });
  await old.append([record(3)]);
  const [stale] = await old.readBatches(0, { bytesMax: FETCH_BYTES });
  await rejectsWith(follower.appendBatches(rebase(Buffer.from(stale!), 3), matched), 'INVALID_ARGUMENT');
  // Written, not cached: what it reads back comes from its segments, equal to the leader's.
  await leader.append([record(3)]);
  const [fourth] = await leader.readBatches(3, { bytesMax: FETCH_BYTES });
  await follower.appendBatches(fourth!);
  assert.deepEqual(Buffer.concat(await follower.readBatches(0, { bytesMax: FETCH_BYTES })), Buffer.concat(await leader.readBatches(0, { bytesMax: FETCH_BYTES })));
  await Promise.all([leader.close(), follower.close(), old.close()]);
});

test('log replica - a read of batches from a segment reads their bytes once: the walk over their headers already holds them', async () => {
  const fs = new SimFileSystem();
  const session = fs.session();
  let bytesRead = 0;
  const counting = Object.create(session) as typeof session;
  counting.open = async (path, mode) => {
    const handle = await session.open(path, mode);
    return Object.assign(Object.create(handle) as typeof handle, {
      read: async (buffer: Uint8Array, offset: number, length: number, position: number) => {
        const n = await handle.read(buffer, offset, length, position);
        bytesRead += n;
        return n;
      },
    });
  };
  const leader = await Log.open({ dir: LEADER_DIR, fs: counting, clock: new SimClock(), durability: 'never', segmentBytes: 1 << 20, tailCacheBytes: 0 });
  for (let i = 0; i < 2_000; i += 10) await leader.append(Array.from({ length: 10 }, (_, j) => record(i + j)));
  const expected = await allBatches(leader);
  bytesRead = 0;
  const batches = await leader.readBatches(0, { bytesMax: 64 * 1024 });
  const got = Buffer.concat(batches);
  assert.ok(got.length >= 32 * 1024, `${got.length} bytes`);
  assert.deepEqual(got, expected.subarray(0, got.length));
  // One segment (smaller than the walk's window): the walk reads it once, and nothing is read again.
  assert.equal(leader.stats().segments, 1);
  assert.ok(bytesRead <= expected.length, `${bytesRead} bytes read for ${got.length} of a ${expected.length}-byte segment`);
  await leader.close();
});

/** A copy of a one-record batch moved to `offset` (header and record re-checksummed), for the epoch check alone. */
function rebase(batch: Buffer, offset: number): Buffer {
  const out = Buffer.from(batch);
  out.writeBigUInt64BE(BigInt(offset), 16);
  out.writeBigUInt64BE(BigInt(offset), 40 + 8);
  // Header CRC covers bytes 8..40; the record CRC covers the record after its CRC field.
  out.writeUInt32BE(crc32c(out.subarray(8, 40)), 4);
  out.writeUInt32BE(crc32c(out.subarray(48, out.length)), 44);
  return out;
}

test('log replica - truncateTo cuts back to a batch boundary across segments, durably, and appends continue there', async () => {
  const env = pair();
  const log = await env.open(LEADER_DIR, { leaderEpoch: 1 });
  await appendEach(log, 0, 30);
  await log.beginEpoch(4);
  await log.append([record(30), record(31), record(32), record(33)]);
  await appendEach(log, 34, 20);
  const segmentsBefore = log.stats().segments;
  // 31 is inside the batch 30..33: the cut is at 30.
  assert.equal(await log.truncateTo(31), 30);
  assert.equal(log.nextOffset, 30);
  assert.equal(log.syncedOffset, 29);
  assert.ok(log.stats().segments < segmentsBefore);
  assert.deepEqual(log.epochs(), [{ epoch: 1, startOffset: 0 }]);
  assert.deepEqual(log.epochEnd(4), { epoch: 1, endOffset: 30 });
  const records = await readAll(log);
  assert.equal(records.length, 30);
  assert.deepEqual(await log.read(30), []);
  assert.deepEqual(await log.readBatches(30, { bytesMax: FETCH_BYTES }), []);
  // The power goes out right after: the cut holds.
  env.fs.crash({ random: seededRandom(7) });
  const reopened = await env.open(LEADER_DIR);
  assert.equal(reopened.nextOffset, 30);
  assert.deepEqual(reopened.epochs(), [{ epoch: 1, startOffset: 0 }]);
  await reopened.append([record(30)]);
  const again = await readAll(reopened);
  again.forEach((found, i) => assertRecord(found, i));
  await reopened.close();
});

test('log replica - resetTo empties the log to start at an offset, past or before its end, durably', async () => {
  const env = pair();
  const log = await env.open(LEADER_DIR);
  await appendEach(log, 0, 10);
  assert.equal(await log.resetTo(500), 500);
  assert.equal(log.startOffset, 500);
  assert.equal(log.nextOffset, 500);
  assert.deepEqual(await log.read(500), []);
  await rejectsWith(log.read(5), 'OFFSET_OUT_OF_RANGE');
  env.fs.crash({ random: seededRandom(3) });
  const reopened = await env.open(LEADER_DIR);
  assert.equal(reopened.startOffset, 500);
  assert.equal(reopened.nextOffset, 500);
  const appended = await reopened.append([record(0)]);
  assert.equal(appended.baseOffset, 500);
  await reopened.close();
});

test('log replica - epochEnd answers as KIP-101 says: the largest epoch at or below, and where it ends here', async () => {
  const env = pair();
  const log = await env.open(LEADER_DIR, { leaderEpoch: 1 });
  await appendEach(log, 0, 10);
  await log.beginEpoch(3);
  await appendEach(log, 10, 15);
  await log.beginEpoch(5);
  await appendEach(log, 25, 5);
  assert.deepEqual(log.epochEnd(0), { epoch: -1, endOffset: 0 });
  assert.deepEqual(log.epochEnd(1), { epoch: 1, endOffset: 10 });
  assert.deepEqual(log.epochEnd(2), { epoch: 1, endOffset: 10 });
  assert.deepEqual(log.epochEnd(3), { epoch: 3, endOffset: 25 });
  assert.deepEqual(log.epochEnd(5), { epoch: 5, endOffset: 30 });
  assert.deepEqual(log.epochEnd(9), { epoch: 5, endOffset: 30 });
  await rejectsWith(log.beginEpoch(4), 'INVALID_ARGUMENT');
  await log.close();
});

test('log replica - the epoch list survives crashes, and is rebuilt from the batch headers when its file is gone', async () => {
  const env = pair();
  const log = await env.open(LEADER_DIR, { leaderEpoch: 2 });
  await appendEach(log, 0, 20);
  await log.beginEpoch(6);
  await appendEach(log, 20, 20);
  // An epoch begun and crashed before its first batch: forgotten, harmlessly.
  await log.beginEpoch(8);
  env.fs.crash({ random: seededRandom(11) });
  const reopened = await env.open(LEADER_DIR);
  assert.deepEqual(reopened.epochs().slice(0, 2), [{ epoch: 2, startOffset: 0 }, { epoch: 6, startOffset: 20 }]);
  await reopened.close();
  await env.fs.unlink(`${LEADER_DIR}/${EPOCH_FILE}`);
  const rebuilt = await env.open(LEADER_DIR);
  assert.deepEqual(rebuilt.epochs(), [{ epoch: 2, startOffset: 0 }, { epoch: 6, startOffset: 20 }]);
  assert.equal(rebuilt.leaderEpoch, 6);
  await rebuilt.close();
});

test('log replica - the owner holds what consumers see; listeners hear when it moves forward', async () => {
  const env = pair();
  const log = await env.open(LEADER_DIR);
  let advances = 0;
  log.onAdvance(() => advances++);
  log.setVisibleEndOffset(0);
  await appendEach(log, 0, 5);
  assert.equal(log.visibleEndOffset, 0);
  assert.deepEqual(await log.read(0), []);
  const before = advances;
  log.setVisibleEndOffset(3);
  assert.equal(advances, before + 1);
  assert.equal((await log.read(0)).length, 3);
  // Never past the local rule (synced, for `always`).
  log.setVisibleEndOffset(1000);
  assert.equal(log.visibleEndOffset, 5);
  log.setVisibleEndOffset(null);
  assert.equal(log.visibleEndOffset, 5);
  await log.close();
});

test('log replica - a returning leader that truncates to the new leader\'s end of its last epoch holds the new leader\'s log exactly (property)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 0, max: 12 }),
      fc.integer({ min: 0, max: 8 }),
      fc.integer({ min: 1, max: 12 }),
      fc.integer({ min: 1, max: 3 }),
      async (shared, oldOnly, copiedOfOld, newOwn, batchRecords) => {
        const env = pair();
        const a = await env.open('/a', { leaderEpoch: 1 });
        const b = await env.open('/b');
        let next = 0;
        const appendRecords = async (log: Log, count: number): Promise<void> => {
          for (let left = count; left > 0; left -= batchRecords) {
            const size = Math.min(batchRecords, left);
            await log.append(Array.from({ length: size }, () => record(next++)));
          }
        };
        await appendRecords(a, shared);
        await replicate(a, b);
        // A goes on alone in epoch 1; B copies only part of it, then leads epoch 2.
        await appendRecords(a, oldOnly);
        const aBatches = await a.readBatches(b.nextOffset, { bytesMax: FETCH_BYTES });
        const copied = aBatches.slice(0, Math.min(copiedOfOld, aBatches.length));
        if (copied.length > 0) await b.appendBatches(Buffer.concat(copied));
        await b.beginEpoch(2);
        await appendRecords(b, newOwn);
        // A comes back: where does its last epoch end on B?
        const end = b.epochEnd(a.leaderEpoch);
        assert.equal(end.epoch, 1);
        await a.truncateTo(end.endOffset);
        await replicate(b, a);
        assert.ok((await allBatches(a)).equals(await allBatches(b)), 'A equals B');
        assert.deepEqual(a.epochs(), b.epochs());
        await a.close();
        await b.close();
      },
    ),
    { numRuns: 60 },
  );
});

test('log replica - a power cut at any step of a truncation leaves a prefix of the old log, and the truncation can be done again', async () => {
  for (let cutAfter = 0; ; cutAfter++) {
    const env = pair();
    const log = await env.open(LEADER_DIR, { leaderEpoch: 1 });
    await appendEach(log, 0, 30);
    await log.beginEpoch(2);
    await appendEach(log, 30, 30);
    env.fs.cutPowerAfter(cutAfter);
    let done = false;
    void log.truncateTo(12).then(() => (done = true), () => (done = true));
    // Either it finishes, or it hangs on an operation the power cut stopped.
    await eventually(() => done || env.fs.operationsCutSoFar > 0);
    const report = env.fs.crash({ random: seededRandom(cutAfter) });
    const reopened = await env.open(LEADER_DIR);
    assert.ok(reopened.nextOffset >= 12 && reopened.nextOffset <= 60, `cut after ${cutAfter}: ends at ${reopened.nextOffset}`);
    const records = await readAll(reopened);
    records.forEach((found, i) => assertRecord(found, i));
    const epochs = reopened.epochs();
    assert.equal(epochs[0]!.epoch, 1);
    if (reopened.nextOffset > 30) assert.deepEqual(epochs[1], { epoch: 2, startOffset: 30 });
    else assert.equal(epochs.length, 1);
    assert.equal(await reopened.truncateTo(12), 12);
    await reopened.close();
    if (done && report.operationsCut === 0) break;
    assert.ok(cutAfter < 200, 'a truncation takes fewer steps than this');
  }
});

test('log replica - an epoch this log began without a record goes at a truncation to its start, so the leader\'s older epoch continues there (KIP-279)', async () => {
  const env = pair();
  const leader = await env.open(LEADER_DIR, { leaderEpoch: 2 });
  const follower = await env.open(FOLLOWER_DIR);
  await appendEach(leader, 0, 3);
  await replicate(leader, follower);
  // The follower led epoch 3 for a moment and wrote nothing there; the leader of epoch 2 wrote on
  // (uncommitted then, its own from the next epoch it leads: a leader never truncates its log).
  await follower.beginEpoch(3);
  await appendEach(leader, 3, 2);
  const [next] = await leader.readBatches(3, { bytesMax: FETCH_BYTES });
  await rejectsWith(follower.appendBatches(next!), 'INVALID_ARGUMENT');
  // The leader's answer for epoch 3: epoch 2, ending at its end (5); epoch 2 ends here at 3.
  const answer = leader.epochEnd(3);
  assert.deepEqual(answer, { epoch: 2, endOffset: 5 });
  assert.equal(follower.epochEnd(answer.epoch).endOffset, 3);
  assert.equal(await follower.truncateTo(3), 3);
  assert.deepEqual(follower.epochEnd(3), { epoch: 2, endOffset: 3 });
  await replicate(leader, follower);
  assert.deepEqual(await allBatches(follower), await allBatches(leader));
  // Across a restart too: the dropped epoch stays dropped.
  await follower.close();
  const reopened = await env.open(FOLLOWER_DIR);
  assert.deepEqual(reopened.epochEnd(3), { epoch: 2, endOffset: 5 });
  await reopened.close();
  await leader.close();
});
