/**
 * Catch-up from the leader's segments (cluster/catch-up.ts, catch-up-rate.ts), on the simulated
 * clock and disk: chunks of whole leaves copied from a leader's sealed segments and checked against
 * its digests build an equal log; a chunk whose bytes differ from what the leader hashed is refused
 * with the range; and the copy rate never passes `replicaCatchUpBytesPerSec`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Log } from '../../src/storage/log.js';
import { isFerryError } from '../../src/errors.js';
import { DIGEST_LEAF_RECORDS } from '../../src/storage/log-digest.js';
import { batchesEndOffset, checkChunk, readChunk } from '../../src/cluster/catch-up.js';
import { CatchUpRate } from '../../src/cluster/catch-up-rate.js';
import { CATCH_UP_CHUNK_BYTES_MAX } from '../../src/cluster/limits.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { record } from '../storage/log-kit.js';

const RECORDS = 6_000;
const CHUNK_BYTES = 256 * 1024;

async function leaderAndReplica(): Promise<{ leader: Log; replica: Log; other: Log }> {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const open = (dir: string, segmentBytes: number) => Log.open({ dir, fs: fs.session(), clock, durability: 'never', segmentBytes });
  const leader = await open('/data/leader', 48 * 1024);
  const other = await open('/data/other', 48 * 1024);
  for (let i = 0; i < RECORDS; i += 7) {
    await leader.append(Array.from({ length: 7 }, (_, j) => record(i + j)));
    await other.append(Array.from({ length: 7 }, (_, j) => record(i + j + (i === 700 ? 1 : 0))));
  }
  return { leader, replica: await open('/data/replica', 20 * 1024), other };
}

const request = (fromOffset: number) => ({ topic: 't', replicaId: 'n2', epoch: 1, logId: 'p0', fromOffset, bytesMax: CHUNK_BYTES });

test('catch-up - chunks of the leader\'s sealed segments, checked against its digests, build an equal log', async () => {
  const { leader, replica, other } = await leaderAndReplica();
  await other.close();
  let chunks = 0;
  for (;;) {
    const chunk = await readChunk(leader, request(replica.nextOffset), CHUNK_BYTES);
    if (chunk.batches.length === 0) break;
    chunks++;
    assert.ok(chunk.toOffset % DIGEST_LEAF_RECORDS === 0 || chunk.toOffset === chunk.sealedEnd || chunk.toOffset - chunk.fromOffset < DIGEST_LEAF_RECORDS, `${chunk.fromOffset}..${chunk.toOffset}`);
    const end = batchesEndOffset(chunk.batches, chunk.fromOffset);
    await replica.appendBatches(checkChunk(chunk), { matchedLeaderDigests: true });
    assert.equal(end, replica.nextOffset, 'the next chunk is asked for before this one is written: from where it ends');
  }
  assert.ok(chunks > 3, `${chunks} chunks`);
  assert.equal(replica.nextOffset, leader.sealedEndOffset, 'the copy ends where the leader\'s active segment begins');
  const all = { fromOffset: 0, toOffset: replica.nextOffset, spanRecords: DIGEST_LEAF_RECORDS };
  assert.deepEqual(await replica.digests(all), await leader.digests(all));
  await Promise.all([leader.close(), replica.close()]);
});

test('catch-up - a chunk whose bytes are not what the leader hashed is refused with the range, nothing written', async () => {
  const { leader, replica, other } = await leaderAndReplica();
  const chunk = await readChunk(leader, request(0), CHUNK_BYTES);
  // The same offsets and batch sizes from a log whose batch at 700 holds other (valid) records.
  const theirs = await readChunk(other, request(0), CHUNK_BYTES);
  assert.deepEqual([theirs.fromOffset, theirs.toOffset], [chunk.fromOffset, chunk.toOffset]);
  assert.ok(chunk.toOffset > 700);
  assert.throws(
    () => checkChunk({ ...chunk, batches: theirs.batches }),
    (error) => isFerryError(error, 'CORRUPT_RANGE') && error.detail?.['fromOffset'] === 0 && (error.detail?.['toOffset'] as number) >= 700,
  );
  assert.equal(replica.nextOffset, 0, 'nothing written');
  await other.close();
  // From the leader's active segment on there is nothing to copy: fetching takes over.
  assert.equal((await readChunk(leader, request(leader.sealedEndOffset), CHUNK_BYTES)).batches.length, 0);
  await Promise.all([leader.close(), replica.close()]);
});

test('catch-up - a tampered chunk is refused by its digests before anything is written, though matched chunks are written without a second record check', async () => {
  const { leader, replica, other } = await leaderAndReplica();
  await other.close();
  const chunk = await readChunk(leader, request(0), CHUNK_BYTES);
  // One bit of one record's value flipped: its CRC no longer holds, and neither does the digest.
  const flipped = Buffer.from(chunk.batches);
  flipped[flipped.length - 5]! ^= 0x10;
  assert.throws(() => checkChunk({ ...chunk, batches: flipped }), (error) => isFerryError(error, 'CORRUPT_RANGE') && error.detail?.['damage'] === 'digest');
  // A valid batch the digests do not cover, appended to a matching chunk.
  const end = batchesEndOffset(chunk.batches, chunk.fromOffset);
  assert.ok(end >= chunk.toOffset);
  const [extra] = await leader.readBatches(end, { bytesMax: 1 });
  assert.throws(() => checkChunk({ ...chunk, batches: Buffer.concat([chunk.batches, extra!]) }), (error) => isFerryError(error, 'CORRUPT_RANGE') && error.detail?.['damage'] === 'uncovered batch');
  // Digests that cover less than the chunk's batches (a range dropped): refused too.
  assert.throws(() => checkChunk({ ...chunk, ranges: chunk.ranges.slice(0, -1) }), (error) => isFerryError(error, 'CORRUPT_RANGE'));
  assert.equal(replica.nextOffset, 0, 'nothing written');
  await replica.appendBatches(checkChunk(chunk), { matchedLeaderDigests: true });
  assert.equal(replica.nextOffset, end);
  await Promise.all([leader.close(), replica.close()]);
});

test('catch-up - the leader reads a chunk once: its digests hash the batches read for it, not a second read', async () => {
  const { leader, replica, other } = await leaderAndReplica();
  const read = leader.readBatches.bind(leader);
  let bytesRead = 0;
  leader.readBatches = async (offset, options) => {
    const batches = await read(offset, options);
    for (const batch of batches) bytesRead += batch.length;
    return batches;
  };
  const chunk = await readChunk(leader, request(0), CHUNK_BYTES);
  assert.ok(chunk.toOffset >= DIGEST_LEAF_RECORDS, `${chunk.fromOffset}..${chunk.toOffset}`);
  assert.ok(bytesRead <= CHUNK_BYTES + 64 * 1024, `${bytesRead} bytes read for a chunk of ${chunk.batches.length}`);
  // And the digests are the log's: the chunk checks, and the leader's later answers agree.
  await replica.appendBatches(checkChunk(chunk));
  const range = { fromOffset: 0, toOffset: chunk.toOffset, spanRecords: DIGEST_LEAF_RECORDS };
  assert.deepEqual(await leader.digests(range), await replica.digests(range));
  await Promise.all([leader.close(), replica.close(), other.close()]);
});

test('catch-up - a chunk inside one segment is one read, sent as it is: a read cut short by the chunk\'s room is not topped up with a second', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const leader = await Log.open({ dir: '/data/leader', fs: fs.session(), clock, durability: 'never', segmentBytes: 256 * 1024 });
  for (let i = 0; i < RECORDS; i += 7) await leader.append(Array.from({ length: 7 }, (_, j) => record(i + j)));
  const read = leader.readBatches.bind(leader);
  let reads = 0;
  leader.readBatches = async (offset, options) => {
    reads++;
    return read(offset, options);
  };
  // Five chunks of 16 KiB, all inside the first segment (256 KiB).
  for (let from = 0, chunks = 0; chunks < 5; chunks++) {
    reads = 0;
    const chunk = await readChunk(leader, request(from), 16 * 1024);
    assert.equal(reads, 1, `chunk ${chunks}: one read`);
    assert.ok(chunk.batches.length <= 16 * 1024, `${chunk.batches.length} bytes`);
    from = batchesEndOffset(chunk.batches, chunk.fromOffset);
  }
  await leader.close();
});

test('catch-up - batches read before a cut of the log are read again for its digests, never taken for the log\'s', async () => {
  const { leader, replica, other } = await leaderAndReplica();
  // Below a leaf nothing is kept, so each answer hashes what its source gives.
  const range = { fromOffset: 0, toOffset: 1024, spanRecords: 512 };
  const theirs = await other.readBatches(0, { bytesMax: CHUNK_BYTES, endOffset: 1100 });
  const before = leader.cutGeneration;
  assert.deepEqual(await leader.digests(range, { batches: theirs, cutGeneration: before }), await other.digests(range), 'held batches are what is hashed');
  await leader.truncateTo(5_000);
  assert.notEqual(leader.cutGeneration, before);
  const mine = await leader.digests(range, { batches: theirs, cutGeneration: before });
  assert.deepEqual(mine, await leader.digests(range));
  assert.notDeepEqual(mine, await other.digests(range));
  await Promise.all([leader.close(), replica.close(), other.close()]);
});

test('catch-up - the chunks asked for stay within replicaCatchUpBytesPerSec on the simulated clock', async () => {
  const clock = new SimClock();
  const bytesPerSec = 100_000;
  const rate = new CatchUpRate(bytesPerSec, clock);
  assert.equal(rate.chunkBytes, bytesPerSec, 'a chunk is at most one second of the rate');
  const started = clock.monotonicMs();
  let copied = 0;
  let done = false;
  // Two copies (two topics) share the bound; chunks carry less or (a batch past the end) more than asked.
  const copy = async (carried: (i: number) => number): Promise<void> => {
    for (let i = 0; i < 10; i++) {
      const reserved = await rate.reserve();
      copied += carried(i);
      rate.settle(reserved, carried(i));
    }
  };
  const copies = Promise.all([copy((i) => (i % 3 === 0 ? 60_000 : 100_000)), copy((i) => (i === 4 ? 110_000 : 100_000))]).then(() => (done = true));
  // At every step of simulated time, what was copied fits the rate, plus the chunk in hand (and its 10 kB over).
  while (!done) {
    await clock.advanceAndSettle(50);
    const elapsedSec = (clock.monotonicMs() - started) / 1000;
    assert.ok(copied <= bytesPerSec * elapsedSec + 110_000, `${copied} bytes after ${elapsedSec} s`);
  }
  await copies;
  assert.ok(clock.monotonicMs() - started >= (copied - 110_000) / 100, `${copied} bytes at 100 kB/s take their time`);
  assert.equal(new CatchUpRate(undefined, clock).chunkBytes, CATCH_UP_CHUNK_BYTES_MAX);
  assert.equal(await new CatchUpRate(undefined, clock).reserve(), CATCH_UP_CHUNK_BYTES_MAX);
});

test('catch-up - the time a chunk spends being read and sent runs within the time paid for it: a copy that keeps up runs at the rate', async () => {
  const clock = new SimClock();
  const rate = new CatchUpRate(100_000, clock);
  const started = clock.monotonicMs();
  let finished = -1;
  const copy = (async () => {
    let next = rate.reserve();
    for (let i = 0; i < 20; i++) {
      const reserved = await next;
      // The chunk travels and is written for 300 ms (less than the second paid for it); the next is asked for meanwhile.
      await new Promise<void>((resolve) => clock.schedule(300, resolve));
      next = rate.reserve();
      rate.settle(reserved, reserved);
    }
    await next;
    finished = clock.monotonicMs();
  })();
  while (finished < 0 && clock.monotonicMs() - started < 60_000) await clock.advanceAndSettle(100);
  await copy;
  const seconds = (finished - started) / 1000;
  assert.ok(seconds <= 20.5, `20 chunks of one second each took ${seconds} s, not 20 + 20 × 0.3`);
});
