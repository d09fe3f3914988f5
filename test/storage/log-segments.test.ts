import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectRetentionVictims } from '../../src/storage/retention.js';
import { appendSequential, assertRecord, openSimLog, readAll, record, simEnv } from './log-kit.js';

const DAY_MS = 24 * 3600 * 1000;

test('segment - rolls when the next batch would pass segmentBytes', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096 });
  try {
    await appendSequential(log, 0, 100, 200);
    const stats = log.stats();
    // ~240 bytes per batch: 17 batches fit in 4 KiB, so 100 records take 6 segments.
    assert.equal(stats.segments, Math.ceil(100 / Math.floor(4_096 / 276)));
    const names = (await env.fs.readdir('/data/log')).filter((name) => name.endsWith('.log')).sort();
    assert.equal(names.length, stats.segments);
    assert.equal(names[0], '00000000000000000000.log');
    for (const name of names) assert.match(name, /^\d{20}\.log$/);
    (await readAll(log)).forEach((found, i) => assertRecord(found, i, 200));
  } finally {
    await log.close();
  }
});

test('segment - rolls when the active segment is older than segmentAgeMs', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentAgeMs: 60_000 });
  try {
    await appendSequential(log, 0, 3);
    await env.clock.advanceAndSettle(59_999);
    await appendSequential(log, 3, 1);
    assert.equal(log.stats().segments, 1);
    await env.clock.advanceAndSettle(1);
    await appendSequential(log, 4, 1);
    assert.equal(log.stats().segments, 2, 'the append after segmentAgeMs starts a new segment');
    await env.clock.advanceAndSettle(10 * 60_000);
    assert.equal(log.stats().segments, 2, 'no roll without appends: an empty segment is never made');
  } finally {
    await log.close();
  }
});

test('segment - a roll syncs the sealed segment and writes its index files before the checkpoint moves', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096, durability: 'interval', syncIntervalMs: 1_000_000 });
  try {
    await appendSequential(log, 0, 20, 200);
    assert.ok(log.stats().segments >= 2);
    const names = await env.fs.readdir('/data/log');
    assert.ok(names.includes('00000000000000000000.index'));
    assert.ok(names.includes('00000000000000000000.timeindex'));
    const sealed = env.fs.fileBytes('/data/log/00000000000000000000.log', 'durable');
    assert.equal(sealed?.length, env.fs.fileBytes('/data/log/00000000000000000000.log', 'current')?.length, 'sealed segment fully synced');
  } finally {
    await log.close();
  }
});

test('retention - by age deletes sealed segments whose newest record is older than ageMs', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096, retention: { ageMs: DAY_MS } });
  try {
    await appendSequential(log, 0, 60, 200);
    const segmentsBefore = log.stats().segments;
    await env.clock.advanceAndSettle(DAY_MS - 1);
    assert.equal((await log.enforceRetention()).segmentsDeleted, 0);
    await env.clock.advanceAndSettle(2);
    const report = await log.enforceRetention();
    assert.equal(report.segmentsDeleted, segmentsBefore - 1, 'all but the active segment');
    assert.equal(log.stats().segments, 1);
    assert.equal(report.startOffset, log.startOffset);
    assert.ok(report.recordsDeleted > 0 && report.bytesDeleted > 0);
    const kept = await readAll(log);
    kept.forEach((found) => assertRecord(found, found.offset, 200));
    assert.equal(kept[kept.length - 1]!.offset, 59);
  } finally {
    await log.close();
  }
});

test('retention - by bytes and by record count, oldest first, never the active segment', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096, retention: { bytesMax: 10_000 } });
  try {
    await appendSequential(log, 0, 100, 200);
    await log.enforceRetention();
    assert.ok(log.stats().bytes <= 10_000 + 4_096, `${log.stats().bytes} bytes left`);
    assert.ok(log.stats().bytes > 10_000 - 4_096);
  } finally {
    await log.close();
  }
  const env2 = simEnv();
  const counted = await openSimLog(env2, { segmentBytes: 4_096, retention: { recordsMax: 30 } });
  try {
    await appendSequential(counted, 0, 100, 200);
    await counted.enforceRetention();
    assert.ok(counted.stats().records >= 30, 'never fewer than recordsMax');
    assert.ok(counted.stats().records < 30 + 15, 'at most one segment over');
    const tiny = await openSimLog(simEnv(), { retention: { recordsMax: 0, bytesMax: 0, ageMs: 0 } });
    await appendSequential(tiny, 0, 5);
    assert.equal((await tiny.enforceRetention()).segmentsDeleted, 0, 'the active segment stays');
    assert.equal(tiny.stats().records, 5);
    await tiny.close();
  } finally {
    await counted.close();
  }
});

test('retention - runs on its own timer', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096, retention: { recordsMax: 20 }, retentionCheckIntervalMs: 1_000 });
  try {
    await appendSequential(log, 0, 100, 200);
    assert.equal(log.startOffset, 0);
    await env.clock.advanceAndSettle(1_000);
    assert.ok(log.startOffset > 0, 'the timer enforced retention');
  } finally {
    await log.close();
  }
});

test('retention - deleteSegmentsBefore removes only whole sealed segments below the offset', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096 });
  try {
    await appendSequential(log, 0, 100, 200);
    const bases = (await env.fs.readdir('/data/log')).filter((name) => name.endsWith('.log')).map((name) => Number(name.slice(0, 20))).sort((a, b) => a - b);
    assert.equal(await log.deleteSegmentsBefore(bases[2]! - 1), 1, 'the second segment still holds an offset >= the bound');
    assert.equal(log.startOffset, bases[1]);
    assert.equal(await log.deleteSegmentsBefore(bases[2]!), 1);
    assert.equal(await log.deleteSegmentsBefore(1_000_000), bases.length - 3, 'never the active one');
    assert.equal(log.startOffset, bases[bases.length - 1]);
    const left = (await env.fs.readdir('/data/log')).filter((name) => /\.(log|index|timeindex)$/.test(name));
    assert.ok(left.every((name) => name.startsWith(String(bases[bases.length - 1]).padStart(20, '0'))), left.join(','));
  } finally {
    await log.close();
  }
});

test('retention - policy selection stops at the first segment no bound condemns', () => {
  const segments = [
    { sizeBytes: 100, recordCount: 10, maxTimestampMs: 500 },
    { sizeBytes: 100, recordCount: 10, maxTimestampMs: 2_000 },
    { sizeBytes: 100, recordCount: 10, maxTimestampMs: 900 },
    { sizeBytes: 100, recordCount: 10, maxTimestampMs: 100 },
  ];
  assert.equal(selectRetentionVictims(segments, { ageMs: 1_000 }, 2_000), 1);
  assert.equal(selectRetentionVictims(segments, { bytesMax: 150 }, 0), 3);
  assert.equal(selectRetentionVictims(segments, { recordsMax: 25 }, 0), 2);
  assert.equal(selectRetentionVictims(segments, {}, 0), 0);
});

test('segment - rolled segments keep their records readable after a reopen', async () => {
  const env = simEnv();
  let log = await openSimLog(env, { segmentBytes: 4_096 });
  await log.append(Array.from({ length: 40 }, (_, i) => record(i, 200)));
  await appendSequential(log, 40, 40, 200);
  await log.close();
  log = await openSimLog(env, { segmentBytes: 4_096 });
  try {
    (await readAll(log, 13)).forEach((found, i) => assertRecord(found, i, 200));
  } finally {
    await log.close();
  }
});
