import { test } from 'node:test';
import assert from 'node:assert/strict';
import { seededRandom } from '../sim/random.js';
import type { FileHandle, FileSystem } from '../../src/platform/fs.js';
import { appendSequential, assertRecord, openSimLog, readAll, record, RecordingLogger, rejectsWith, simEnv } from './log-kit.js';

test('log - appends get contiguous offsets and read back byte for byte', async () => {
  const env = simEnv();
  const log = await openSimLog(env);
  try {
    const first = await log.append([record(0), record(1), record(2)]);
    assert.deepEqual(first, { baseOffset: 0, lastOffset: 2, durability: 'synced' });
    await appendSequential(log, 3, 20);
    const records = await readAll(log);
    assert.equal(records.length, 23);
    records.forEach((found, i) => {
      assert.equal(found.offset, i);
      assertRecord(found, i);
    });
    assert.deepEqual(
      [log.startOffset, log.nextOffset, log.appendedOffset, log.writtenOffset, log.syncedOffset, log.visibleEndOffset],
      [0, 23, 22, 22, 22, 23],
    );
  } finally {
    await log.close();
  }
});

test('log - one append of many records is one batch written with one write call', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'never' });
  try {
    const writesBefore = env.fs.counts.write;
    await log.append(Array.from({ length: 500 }, (_, i) => record(i)));
    assert.equal(env.fs.counts.write - writesBefore, 1);
  } finally {
    await log.close();
  }
});

test('log - concurrent appends coalesce into one write and one fdatasync (group commit)', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'always' });
  try {
    const writesBefore = env.fs.counts.write;
    const syncsBefore = env.fs.counts.datasync;
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append([record(i)])));
    assert.equal(env.fs.counts.write - writesBefore, 1, 'one write');
    assert.equal(env.fs.counts.datasync - syncsBefore, 1, 'one fdatasync');
    assert.deepEqual(
      results.map((result) => result.baseOffset),
      results.map((_, i) => i),
      'offsets in call order',
    );
  } finally {
    await log.close();
  }
});

test('log - read honours recordsMax, bytesMax and endOffset; [] at the end; OFFSET_OUT_OF_RANGE below the start', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096, tailCacheBytes: 0 });
  try {
    await log.append(Array.from({ length: 100 }, (_, i) => record(i)));
    await appendSequential(log, 100, 100);
    assert.equal((await log.read(10, { recordsMax: 5 })).length, 5);
    const byBytes = await log.read(10, { bytesMax: 500 });
    assert.ok(byBytes.length >= 1 && byBytes.length <= 4, `about 500 bytes: ${byBytes.length} records`);
    assert.equal((await log.read(10, { bytesMax: 1 })).length, 1, 'at least one record');
    const bounded = await log.read(150, { endOffset: 160 });
    assert.deepEqual(
      bounded.map((found) => found.offset),
      Array.from({ length: 10 }, (_, i) => 150 + i),
    );
    assert.deepEqual(await log.read(200), []);
    assert.deepEqual(await log.read(10_000), []);
    await rejectsWith(log.read(-1), 'INVALID_ARGUMENT');
    await log.deleteSegmentsBefore(150);
    assert.ok(log.startOffset > 0);
    const error = await rejectsWith(log.read(0), 'OFFSET_OUT_OF_RANGE');
    assert.equal(error.detail?.['startOffset'], log.startOffset);
  } finally {
    await log.close();
  }
});

test('log - wholeBatches: bytesMax stops only where a batch starts, and no batch is read from disk only to be dropped', async () => {
  for (const tailCacheBytes of [0, 1 << 20]) {
    const env = simEnv();
    const log = await openSimLog(env, { tailCacheBytes });
    try {
      // Three batches of 20 records (about 3 KiB each).
      for (let i = 0; i < 60; i += 20) await log.append(Array.from({ length: 20 }, (_, j) => record(i + j)));
      const where = tailCacheBytes === 0 ? 'from disk' : 'from the tail cache';
      const plain = await log.read(5, { bytesMax: 500 });
      assert.ok(plain.length < 15, `${where}: without the option bytesMax cuts the batch (${plain.length} records)`);
      const whole = await log.read(5, { bytesMax: 500, wholeBatches: true });
      assert.deepEqual(whole.map((found) => found.offset), Array.from({ length: 15 }, (_, i) => 5 + i), `${where}: the rest of the batch, and no more`);
      whole.forEach((found, i) => assertRecord(found, 5 + i));
      const next = await log.read(20, { bytesMax: 500, wholeBatches: true, endOffset: 30 });
      assert.deepEqual(next.map((found) => found.offset), Array.from({ length: 10 }, (_, i) => 20 + i), `${where}: endOffset still bounds it`);
    } finally {
      await log.close();
    }
  }
  // Batches larger than a read window (80 KiB each), so that each batch takes reads of its own.
  const env = simEnv();
  const log = await openSimLog(env, { tailCacheBytes: 0 });
  try {
    for (let i = 0; i < 60; i += 20) await log.append(Array.from({ length: 20 }, (_, j) => record(i + j, 4_096)));
    // The reads one batch takes: a read bounded by its record count stops before the next batch.
    const readsBefore = env.fs.counts.read;
    assert.equal((await log.read(0, { recordsMax: 20 })).length, 20);
    const oneBatch = env.fs.counts.read - readsBefore;
    const readsBeforeTwo = env.fs.counts.read;
    assert.equal((await log.read(0, { bytesMax: 90_000, wholeBatches: true })).length, 40);
    assert.ok(env.fs.counts.read - readsBeforeTwo > oneBatch, 'a second batch takes reads of its own');
    // The same read bounded to the first batch by endOffset: the reads the first batch takes at this read's window size.
    const readsBeforeFirst = env.fs.counts.read;
    assert.equal((await log.read(0, { bytesMax: 1, wholeBatches: true, endOffset: 20 })).length, 20);
    const firstBatch = env.fs.counts.read - readsBeforeFirst;
    const readsBeforeAgain = env.fs.counts.read;
    assert.equal((await log.read(0, { bytesMax: 1, wholeBatches: true })).length, 20);
    assert.equal(env.fs.counts.read - readsBeforeAgain, firstBatch, 'once the bytes asked for are in, the next batch is not read');
  } finally {
    await log.close();
  }
});

test('log - a read sizes its pread to what it wants: many small batches take one pread, not one per 64 KiB', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { tailCacheBytes: 0 });
  try {
    // 40 batches of 20 records of 1 KiB: about 860 KiB, 21 KiB a batch.
    for (let i = 0; i < 800; i += 20) await log.append(Array.from({ length: 20 }, (_, j) => record(i + j, 1_024)));
    const readsBefore = env.fs.counts.read;
    const found = await log.read(0, { bytesMax: 1024 * 1024, recordsMax: 4_096, wholeBatches: true });
    assert.equal(found.length, 800);
    found.forEach((record, i) => assertRecord(record, i, 1_024));
    assert.equal(env.fs.counts.read - readsBefore, 1, 'one pread covers every batch the read returns');
    // A read of a few records asks for about their bytes, not for bytesMax.
    const readsBeforeFew = env.fs.counts.read;
    const few = await log.read(100, { recordsMax: 3 });
    assert.deepEqual(few.map((record) => record.offset), [100, 101, 102]);
    assert.equal(env.fs.counts.read - readsBeforeFew, 1);
  } finally {
    await log.close();
  }
});

test('log - always: a queue of 512 KiB or more is written as two batches, so the first is confirmed a sync earlier; a smaller one as one', async () => {
  const env = simEnv();
  const batches: number[] = [];
  const observer = { fsyncCompleted: () => undefined, batchWritten: (records: number) => void batches.push(records) };
  const log = await openSimLog(env, { observer, tailCacheBytes: 0 });
  try {
    // 600 appends of 1 KiB queued in one turn: about 620 KiB.
    await Promise.all(Array.from({ length: 600 }, (_, i) => log.append([record(i, 1_024)])));
    assert.equal(batches.length, 2, `two batches (${batches.join(', ')} records)`);
    assert.equal(batches[0]! + batches[1]!, 600);
    assert.ok(Math.abs(batches[0]! - batches[1]!) <= 2, 'split in halves');
    await Promise.all(Array.from({ length: 100 }, (_, i) => log.append([record(600 + i, 1_024)])));
    assert.equal(batches.length, 3, 'about 100 KiB: one batch');
    const found = await readAll(log, 1_000);
    assert.equal(found.length, 700);
    found.forEach((record, i) => assertRecord(record, i, 1_024));
  } finally {
    await log.close();
  }
});

test('log - an fdatasync that takes FSYNC_SLOW_MS or longer is logged as storage.fsync_slow; a quick one is not', async () => {
  const env = simEnv();
  let slowSyncMs = 0;
  // The simulated disk, with each datasync taking `slowSyncMs` of the simulated clock.
  const fs: FileSystem = Object.create(env.fs);
  fs.open = async (path, mode) => {
    const handle = await env.fs.open(path, mode);
    const slowed: FileHandle = Object.create(handle);
    slowed.datasync = async () => {
      await handle.datasync();
      env.clock.advance(slowSyncMs);
    };
    return slowed;
  };
  const logger = new RecordingLogger();
  const log = await openSimLog({ ...env, fs: fs as typeof env.fs }, { logger });
  try {
    slowSyncMs = 499;
    await log.append([record(0)]);
    assert.deepEqual(logger.events('storage.fsync_slow'), []);
    slowSyncMs = 500;
    await log.append([record(1)]);
    const [fields] = logger.events('storage.fsync_slow');
    assert.equal(fields?.['ms'], 500);
    assert.equal(fields?.['segmentBaseOffset'], 0);
  } finally {
    slowSyncMs = 0;
    await log.close();
  }
});

test('log - reads by offset cross segment boundaries', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096, indexIntervalBytes: 256, tailCacheBytes: 0 });
  try {
    await appendSequential(log, 0, 300);
    assert.ok(log.stats().segments > 5, `${log.stats().segments} segments`);
    for (const start of [0, 1, 37, 38, 150, 299]) {
      const records = await log.read(start, { recordsMax: 50 });
      assert.equal(records.length, Math.min(50, 300 - start));
      records.forEach((found, i) => assertRecord(found, start + i));
    }
  } finally {
    await log.close();
  }
});

test('log - offsetForTimestamp finds the first record at or after a time, across segments', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096, indexIntervalBytes: 128, tailCacheBytes: 0 });
  try {
    // Timestamps rise by 10 ms per record with a few going back in time, as producer clocks do.
    const timestamps = Array.from({ length: 200 }, (_, i) => 1_000 + i * 10 - (i % 17 === 0 ? 25 : 0));
    for (let i = 0; i < timestamps.length; i++) await log.append([{ ...record(i), timestampMs: timestamps[i]! }]);
    assert.ok(log.stats().segments > 3);
    const random = seededRandom(5);
    for (let probe = 0; probe < 100; probe++) {
      const t = Math.floor(900 + random() * 2_200);
      const expected = timestamps.findIndex((ts) => ts >= t);
      assert.equal(await log.offsetForTimestamp(t), expected === -1 ? log.nextOffset : expected, `t=${t}`);
    }
  } finally {
    await log.close();
  }
});

test('log - the leader epoch is stored with each batch and survives a reopen', async () => {
  const env = simEnv();
  let log = await openSimLog(env, { leaderEpoch: 3 });
  await appendSequential(log, 0, 5);
  await log.close();
  log = await openSimLog(env, { leaderEpoch: 5 });
  try {
    await appendSequential(log, 5, 5);
    const epochs = (await readAll(log)).map((found) => found.leaderEpoch);
    assert.deepEqual(epochs, [3, 3, 3, 3, 3, 5, 5, 5, 5, 5]);
  } finally {
    await log.close();
  }
});

test('log - close and reopen keep every record, offset and index', async () => {
  const env = simEnv();
  let log = await openSimLog(env, { segmentBytes: 4_096, durability: 'never' });
  await appendSequential(log, 0, 120);
  await log.close();
  log = await openSimLog(env, { segmentBytes: 4_096, durability: 'never' });
  try {
    assert.deepEqual(
      { ...log.recovery, segments: 0 },
      { segments: 0, records: 120, startOffset: 0, nextOffset: 120, truncatedBytes: 0, truncatedRecords: 0, indexesRebuilt: 0, segmentsDropped: 0 },
    );
    assert.equal(log.syncedOffset, 119, 'what a clean close left is synced');
    (await readAll(log)).forEach((found, i) => assertRecord(found, i));
    await appendSequential(log, 120, 3);
  } finally {
    await log.close();
  }
});

test('log - after close every call rejects LOG_CLOSED, and close is idempotent', async () => {
  const env = simEnv();
  const log = await openSimLog(env);
  await log.append([record(0)]);
  await log.close();
  await log.close();
  await rejectsWith(log.append([record(1)]), 'LOG_CLOSED');
  await rejectsWith(log.read(0), 'LOG_CLOSED');
  await rejectsWith(log.sync(), 'LOG_CLOSED');
  await rejectsWith(log.offsetForTimestamp(0), 'LOG_CLOSED');
  await rejectsWith(log.enforceRetention(), 'LOG_CLOSED');
  await rejectsWith(log.deleteSegmentsBefore(1), 'LOG_CLOSED');
});

test('log - appends accepted before close are written and synced by close', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'never' });
  const appends = Array.from({ length: 10 }, (_, i) => log.append([record(i)]));
  await log.close();
  assert.equal((await Promise.all(appends)).length, 10);
  env.fs.crash({ random: seededRandom(1) });
  const reopened = await openSimLog({ fs: env.fs, clock: env.clock }, { durability: 'never' });
  try {
    assert.equal(reopened.nextOffset, 10);
  } finally {
    await reopened.close();
  }
});

test('log - onAdvance fires as written and synced offsets move, until unsubscribed', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'always' });
  try {
    const seen: [number, number][] = [];
    const unsubscribe = log.onAdvance(() => seen.push([log.writtenOffset, log.syncedOffset]));
    await log.append([record(0)]);
    assert.deepEqual(seen, [
      [0, -1],
      [0, 0],
    ]);
    unsubscribe();
    await log.append([record(1)]);
    assert.equal(seen.length, 2);
  } finally {
    await log.close();
  }
});

test('log - always: an append resolves only once synced, so it survives a power cut', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'always' });
  const result = await log.append([record(0), record(1)]);
  assert.equal(result.durability, 'synced');
  assert.ok(log.syncedOffset >= 1);
  env.fs.crash({ random: seededRandom(2), tearLastWrite: true, garbage: true });
  const reopened = await openSimLog(env);
  try {
    (await readAll(reopened)).forEach((found, i) => assertRecord(found, i));
    assert.equal(reopened.nextOffset, 2);
  } finally {
    await reopened.close();
  }
});

test('log - interval: appends resolve when written and a timer syncs them within syncIntervalMs', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'interval', syncIntervalMs: 50, checkpointIntervalMs: 1_000 });
  try {
    const result = await log.append([record(0)]);
    assert.equal(result.durability, 'written');
    assert.equal(log.writtenOffset, 0);
    assert.equal(log.syncedOffset, -1, 'not synced before the timer');
    assert.equal(log.visibleEndOffset, 1, 'written records are visible in interval mode');
    await env.clock.advanceAndSettle(49);
    assert.equal(log.syncedOffset, -1);
    await env.clock.advanceAndSettle(1);
    assert.equal(log.syncedOffset, 0, 'synced by the interval timer');
  } finally {
    await log.close();
  }
});

test('log - never: nothing is synced until asked, and sync() covers everything written', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'never' });
  try {
    const syncsBefore = env.fs.counts.datasync;
    await appendSequential(log, 0, 5);
    await env.clock.advanceAndSettle(60_000);
    assert.equal(env.fs.counts.datasync, syncsBefore);
    assert.equal(log.syncedOffset, -1);
    await log.sync();
    assert.equal(log.syncedOffset, 4);
  } finally {
    await log.close();
  }
});

test('log - always: visibleEndOffset follows the synced offset, not the written one', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'always' });
  try {
    const seen: { written: number; synced: number; visible: number }[] = [];
    log.onAdvance(() => seen.push({ written: log.writtenOffset, synced: log.syncedOffset, visible: log.visibleEndOffset }));
    await Promise.all([log.append([record(0)]), log.append([record(1)])]);
    assert.ok(seen.some((point) => point.written > point.synced), 'a moment when written ran ahead of synced');
    for (const point of seen) assert.equal(point.visible, point.synced + 1);
  } finally {
    await log.close();
  }
});

test('log - a failed fdatasync fails the log with STORAGE_FAILED until it is reopened (fsyncgate)', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'always' });
  await log.append([record(0)]);
  env.fs.failNext('datasync', 'EIO');
  await rejectsWith(log.append([record(1)]), 'STORAGE_FAILED');
  await rejectsWith(log.append([record(2)]), 'STORAGE_FAILED');
  await rejectsWith(log.sync(), 'STORAGE_FAILED');
  assertRecord((await log.read(0))[0]!, 0);
  await log.close();
  const reopened = await openSimLog(env);
  try {
    const result = await reopened.append([record(9)]);
    assert.ok(result.baseOffset >= 1);
  } finally {
    await reopened.close();
  }
});

test('log - ENOSPC rejects the batch with DISK_FULL, rolls its offsets back, and appends resume once space returns', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'always' });
  try {
    await appendSequential(log, 0, 3);
    env.fs.setCapacity(env.fs.used + 50);
    await rejectsWith(log.append([record(3)]), 'DISK_FULL');
    assert.equal(log.nextOffset, 3, 'offsets rolled back');
    env.fs.setCapacity(Number.POSITIVE_INFINITY);
    await appendSequential(log, 3, 3);
    (await readAll(log)).forEach((found, i) => assertRecord(found, i));
  } finally {
    await log.close();
  }
});

test('log - a failed write with a later write in flight rolls both back, and the queue goes on without a gap', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { durability: 'never' });
  try {
    // 200 KB appends: each is its own batch, and two are written at once.
    const big = (i: number) => ({ ...record(i), value: Buffer.alloc(200_000, i) });
    env.fs.failNext('write', 'ENOSPC');
    const results = await Promise.allSettled([0, 1, 2, 3].map((i) => log.append([big(i)])));
    const statuses = results.map((result) => result.status);
    assert.deepEqual(statuses, ['rejected', 'rejected', 'fulfilled', 'fulfilled'], 'the failed batch and the one written after it');
    for (const result of results.slice(0, 2)) assert.equal((result as PromiseRejectedResult).reason.code, 'DISK_FULL');
    const kept = results.slice(2).map((result) => (result as PromiseFulfilledResult<{ baseOffset: number }>).value.baseOffset);
    assert.deepEqual(kept, [0, 1], 'offsets were given back and reused');
    const records = await readAll(log);
    assert.deepEqual(
      records.map((found) => found.value[0]),
      [2, 3],
    );
    assert.equal(log.stats().bytes, env.fs.fileBytes('/data/log/00000000000000000000.log')!.length, 'the file holds exactly the committed batches');
  } finally {
    await log.close();
  }
});
