/**
 * Recovery on the real filesystem: torn tails, garbage, damaged checkpoints and indexes, made by
 * editing the files a real log left behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readdir, readFile, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHECKPOINT_FILE } from '../../src/storage/checkpoint.js';
import type { Log } from '../../src/storage/log.js';
import { tempDir } from '../helpers.js';
import { randomInt, seededRandom } from '../sim/random.js';
import { appendSequential, assertRecord, openRealLog, readAll, record, RecordingLogger, rejectsWith } from './log-kit.js';

const SMALL = { segmentBytes: 4_096, indexIntervalBytes: 256, tailCacheBytes: 0 } as const;

async function segmentFiles(dir: string, suffix: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith(suffix)).sort();
}

/** Writes records 0..count-1 (one append each, so one batch each) and closes the log. */
async function writeLog(dir: string, count: number, options: Parameters<typeof openRealLog>[1] = SMALL): Promise<void> {
  const log = await openRealLog(dir, options);
  await appendSequential(log, 0, count);
  await log.close();
}

async function withLog<T>(dir: string, options: Parameters<typeof openRealLog>[1], body: (log: Log) => Promise<T>): Promise<T> {
  const log = await openRealLog(dir, options);
  try {
    return await body(log);
  } finally {
    await log.close();
  }
}

test('recovery - a tail torn mid-batch is cut, reported and logged; appends go on from there', async () => {
  await using dir = await tempDir();
  await writeLog(dir.path, 10, { tailCacheBytes: 0 });
  // Crash-like: the checkpoint names an earlier point, and the last batch is half written.
  await unlink(join(dir.path, CHECKPOINT_FILE));
  const [segment] = await segmentFiles(dir.path, '.log');
  const path = join(dir.path, segment!);
  const size = (await stat(path)).size;
  await truncate(path, size - 60);
  const logger = new RecordingLogger();
  await withLog(dir.path, { tailCacheBytes: 0, logger }, async (log) => {
    assert.equal(log.nextOffset, 9);
    assert.equal(log.recovery.truncatedRecords, 1);
    assert.equal(log.recovery.truncatedBytes, size - 60 - (size / 10) * 9);
    const [line] = logger.events('storage.recovery.truncated');
    assert.ok(line !== undefined, 'a storage.recovery.truncated log line');
    assert.equal(line['truncatedRecords'], 1);
    (await readAll(log)).forEach((found, i) => assertRecord(found, i));
    await appendSequential(log, 9, 3);
  });
  await withLog(dir.path, { tailCacheBytes: 0 }, async (log) => {
    assert.equal(log.recovery.truncatedBytes, 0);
    (await readAll(log)).forEach((found, i) => assertRecord(found, i));
    assert.equal(log.nextOffset, 12);
  });
});

test('recovery - garbage after the last batch is cut', async () => {
  await using dir = await tempDir();
  await writeLog(dir.path, 5, {});
  const [segment] = await segmentFiles(dir.path, '.log');
  await appendFile(join(dir.path, segment!), Buffer.from('this is not a batch header, nor anything else'));
  await withLog(dir.path, {}, async (log) => {
    assert.equal(log.nextOffset, 5);
    assert.equal(log.recovery.truncatedBytes, 45);
    assert.equal(log.recovery.truncatedRecords, 1, 'a partial record');
    await appendSequential(log, 5, 1);
    (await readAll(log)).forEach((found, i) => assertRecord(found, i));
  });
});

test('recovery - a torn segment that is not the last drops every later segment', async () => {
  await using dir = await tempDir();
  await writeLog(dir.path, 100, SMALL);
  await unlink(join(dir.path, CHECKPOINT_FILE));
  const segments = await segmentFiles(dir.path, '.log');
  assert.ok(segments.length >= 4);
  const victim = join(dir.path, segments[1]!);
  await truncate(victim, (await stat(victim)).size - 10);
  await withLog(dir.path, SMALL, async (log) => {
    assert.equal(log.recovery.segmentsDropped, segments.length - 2);
    assert.equal(log.stats().segments, 2);
    assert.equal(log.nextOffset, Number(segments[2]!.slice(0, 20)) - 1);
    (await readAll(log)).forEach((found, i) => assertRecord(found, i));
  });
  assert.deepEqual(await segmentFiles(dir.path, '.log'), segments.slice(0, 2));
});

test('recovery - a leftover temp file and a damaged checkpoint are harmless', async () => {
  await using dir = await tempDir();
  await writeLog(dir.path, 30, SMALL);
  await writeFile(join(dir.path, CHECKPOINT_FILE + '.tmp'), Buffer.from('half a checkpoint'));
  const checkpoint = await readFile(join(dir.path, CHECKPOINT_FILE));
  checkpoint[20]! ^= 0x40;
  await writeFile(join(dir.path, CHECKPOINT_FILE), checkpoint);
  const logger = new RecordingLogger();
  await withLog(dir.path, { ...SMALL, logger }, async (log) => {
    assert.equal(log.nextOffset, 30);
    assert.equal(log.recovery.truncatedBytes, 0);
    assert.equal(logger.events('storage.recovery.checkpoint_invalid').length, 1);
    (await readAll(log)).forEach((found, i) => assertRecord(found, i));
  });
  assert.ok(!(await readdir(dir.path)).some((name) => name.endsWith('.tmp')), 'temp files removed');
  // The checkpoint was rewritten (atomically) and is valid again.
  const logger2 = new RecordingLogger();
  await withLog(dir.path, { ...SMALL, logger: logger2 }, async () => undefined);
  assert.equal(logger2.events('storage.recovery.checkpoint_invalid').length, 0);
});

test('recovery - missing and damaged index files are rebuilt from their segment', async () => {
  await using dir = await tempDir();
  await withLog(dir.path, SMALL, async (log) => {
    for (let i = 0; i < 100; i++) await log.append([{ ...record(i), timestampMs: 1_000 + i * 10 }]);
  });
  const indexes = await segmentFiles(dir.path, '.index');
  const times = await segmentFiles(dir.path, '.timeindex');
  await unlink(join(dir.path, indexes[0]!));
  await truncate(join(dir.path, indexes[1]!), 13);
  const swapped = await readFile(join(dir.path, indexes[2]!));
  swapped.copy(swapped, 8, 0, 8);
  await writeFile(join(dir.path, indexes[2]!), swapped);
  await writeFile(join(dir.path, times[3]!), Buffer.alloc(0));
  await withLog(dir.path, SMALL, async (log) => {
    assert.equal(log.recovery.indexesRebuilt, 4);
    (await readAll(log, 3)).forEach((found, i) => assertRecord(found, i));
    for (let t = 995; t < 2_010; t += 7) assert.equal(await log.offsetForTimestamp(t), Math.min(100, Math.max(0, Math.ceil((t - 1_000) / 10))), `t=${t}`);
  });
  // Rebuilt indexes were written back: the next open finds them valid.
  await withLog(dir.path, SMALL, async (log) => assert.equal(log.recovery.indexesRebuilt, 0));
});

test('damage - random truncations and bit flips in segment and index files never yield a wrong record', async () => {
  const random = seededRandom(1234);
  for (let round = 0; round < 8; round++) {
    await using dir = await tempDir();
    await writeLog(dir.path, 80, SMALL);
    const files = (await readdir(dir.path)).filter((name) => /\.(log|index|timeindex)$/.test(name));
    for (let hit = 0; hit < 3; hit++) {
      const path = join(dir.path, files[randomInt(random, 0, files.length - 1)]!);
      const bytes = await readFile(path);
      if (bytes.length === 0) continue;
      if (random() < 0.3) {
        await truncate(path, randomInt(random, 0, bytes.length - 1));
      } else {
        bytes[randomInt(random, 0, bytes.length - 1)]! ^= 1 << randomInt(random, 0, 7);
        await writeFile(path, bytes);
      }
    }
    await withLog(dir.path, SMALL, async (log) => {
      for (let offset = log.startOffset; offset < log.nextOffset; offset++) {
        try {
          const [found] = await log.read(offset, { recordsMax: 1 });
          assert.ok(found !== undefined, `round ${round}: read(${offset}) returned nothing`);
          assert.equal(found.offset, offset);
          assertRecord(found, offset);
        } catch (error) {
          assert.equal((error as { code?: string }).code, 'CORRUPT_RANGE', `round ${round}, offset ${offset}: ${String(error)}`);
        }
      }
      // The log still takes appends after whatever recovery did.
      const next = log.nextOffset;
      await log.append([record(next)]);
      assertRecord((await log.read(next))[0]!, next);
    });
  }
});

test('damage - a flipped bit in a sealed segment fails reads of that range only', async () => {
  await using dir = await tempDir();
  const log = await openRealLog(dir.path, SMALL);
  // Batches of 5 records: a damaged record makes the rest of its batch unreadable, nothing else.
  for (let i = 0; i < 100; i += 5) await log.append(Array.from({ length: 5 }, (_, j) => record(i + j)));
  await log.close();
  const segments = await segmentFiles(dir.path, '.log');
  const path = join(dir.path, segments[1]!);
  const base = Number(segments[1]!.slice(0, 20));
  const bytes = await readFile(path);
  // The third record of the segment's second batch: skip its header, two records, into the value.
  const recordBytes = 36 + 'key-0'.length + 2 + 6 + 1 + 4 + 100;
  const secondBatch = 40 + 5 * (recordBytes + 1) - 5;
  const target = bytes.readUInt32BE(8) + 40 + 2 * (recordBytes + 1) + 80;
  assert.ok(target > secondBatch);
  bytes[target]! ^= 0x10;
  await writeFile(path, bytes);
  await withLog(dir.path, SMALL, async (reopened) => {
    assert.equal(reopened.recovery.truncatedBytes, 0, 'damage inside the checkpointed prefix is never cut');
    const damaged = new Set<number>();
    for (let offset = 0; offset < 100; offset++) {
      try {
        const [found] = await reopened.read(offset, { recordsMax: 1 });
        assertRecord(found!, offset);
      } catch (error) {
        const detail = (error as { code?: string; detail?: Record<string, number> }).detail!;
        assert.equal((error as { code?: string }).code, 'CORRUPT_RANGE');
        assert.ok(detail['fromOffset']! <= offset && offset <= detail['toOffset']!, 'the range holds the offset asked for');
        damaged.add(offset);
      }
    }
    assert.deepEqual([...damaged], [base + 7, base + 8, base + 9], 'the damaged record and the rest of its batch');
    // A read from before the damage returns the good records and stops there.
    const before = await reopened.read(base, { recordsMax: 100 });
    assert.equal(before[before.length - 1]!.offset, base + 6);
    const error = await rejectsWith(reopened.read(base + 7), 'CORRUPT_RANGE');
    assert.deepEqual([error.detail?.['fromOffset'], error.detail?.['toOffset']], [base + 7, base + 9]);
    assertRecord((await reopened.read(base + 10))[0]!, base + 10);
  });
});

test('damage - a flipped bit in a batch header fails the range up to the next index entry', async () => {
  await using dir = await tempDir();
  await writeLog(dir.path, 100, { ...SMALL, indexIntervalBytes: 400 });
  const segments = await segmentFiles(dir.path, '.log');
  const path = join(dir.path, segments[0]!);
  const bytes = await readFile(path);
  const batchBytes = bytes.readUInt32BE(8);
  bytes[batchBytes + 20]! ^= 0x01; // the second batch's base offset
  await writeFile(path, bytes);
  await withLog(dir.path, SMALL, async (log) => {
    assertRecord((await log.read(0))[0]!, 0);
    const error = await rejectsWith(log.read(1), 'CORRUPT_RANGE');
    assert.equal(error.detail?.['fromOffset'], 1);
    const resumeAt = Number(error.detail?.['toOffset']) + 1;
    assert.ok(resumeAt > 1 && resumeAt <= 4, `resynchronised at ${resumeAt}`);
    assertRecord((await log.read(resumeAt))[0]!, resumeAt);
  });
});

test('damage - a batch header recovery has to skip inside the synced prefix is reported with its range (RecoveryReport.damaged)', async () => {
  await using dir = await tempDir();
  await writeLog(dir.path, 100, { ...SMALL, indexIntervalBytes: 400 });
  const segments = await segmentFiles(dir.path, '.log');
  const path = join(dir.path, segments[0]!);
  const bytes = await readFile(path);
  bytes[bytes.readUInt32BE(8) + 20]! ^= 0x01; // the second batch's base offset
  await writeFile(path, bytes);
  // Without its index the segment is walked from its start, over the damaged header.
  for (const suffix of ['.index', '.timeindex']) await unlink(path.replace(/\.log$/, suffix));
  await withLog(dir.path, SMALL, async (log) => {
    assert.equal(log.recovery.truncatedBytes, 0, 'damage inside the synced prefix is kept, not cut');
    const damaged = log.recovery.damaged!;
    assert.equal(damaged.fromOffset, 1);
    assert.ok(damaged.toOffset >= 1 && damaged.toOffset < 100, JSON.stringify(damaged));
    await rejectsWith(log.read(1), 'CORRUPT_RANGE');
  });
});
