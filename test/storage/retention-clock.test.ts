/**
 * Retention by age and rolling by age under wall-clock steps, on the simulated clock and disk.
 * While the log is open, segment ages are measured on the monotonic clock: a forward step deletes
 * nothing early, a backward one keeps nothing longer. Across a reopen, a segment stamped in the
 * future (the clock went back) is kept at most `ageMs` more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgeClock } from '../../src/storage/retention.js';
import { SimClock } from '../sim/sim-clock.js';
import { appendSequential, openSimLog, simEnv } from './log-kit.js';

const DAY_MS = 24 * 3600 * 1000;
const YEAR_MS = 365 * DAY_MS;

test('retention - a forward wall-clock step longer than ageMs deletes nothing early', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096, retention: { ageMs: DAY_MS } });
  try {
    await appendSequential(log, 0, 60, 200);
    const segments = log.stats().segments;
    assert.ok(segments > 2);
    env.clock.jumpWallClock(3 * DAY_MS);
    assert.equal((await log.enforceRetention()).segmentsDeleted, 0, 'no time passed');
    await env.clock.advanceAndSettle(DAY_MS);
    assert.equal((await log.enforceRetention()).segmentsDeleted, 0, 'exactly ageMs: kept');
    await env.clock.advanceAndSettle(1);
    assert.equal((await log.enforceRetention()).segmentsDeleted, segments - 1);
  } finally {
    await log.close();
  }
});

test('retention - records written after a backward step age from when they were written', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096, retention: { ageMs: DAY_MS } });
  try {
    await appendSequential(log, 0, 30, 200);
    env.clock.jumpWallClock(-YEAR_MS);
    await appendSequential(log, 30, 30, 200);
    const segments = log.stats().segments;
    await env.clock.advanceAndSettle(DAY_MS);
    assert.equal((await log.enforceRetention()).segmentsDeleted, 0, 'stamped a year back, but written a day ago');
    await env.clock.advanceAndSettle(1);
    assert.equal((await log.enforceRetention()).segmentsDeleted, segments - 1, 'on both sides of the step');
  } finally {
    await log.close();
  }
});

test('retention - a backward wall-clock step keeps nothing longer than ageMs', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentBytes: 4_096, retention: { ageMs: DAY_MS } });
  try {
    await appendSequential(log, 0, 60, 200);
    const segments = log.stats().segments;
    env.clock.jumpWallClock(-YEAR_MS);
    await env.clock.advanceAndSettle(DAY_MS + 1);
    assert.equal((await log.enforceRetention()).segmentsDeleted, segments - 1);
  } finally {
    await log.close();
  }
});

test('retention - reopened after the clock went back, a segment stamped in the future is kept ageMs, not until that future', async () => {
  const env = simEnv();
  const first = await openSimLog(env, { segmentBytes: 4_096, retention: { ageMs: DAY_MS } });
  await appendSequential(first, 0, 60, 200);
  const segments = first.stats().segments;
  await first.close();
  const clock = new SimClock(env.clock.nowMs() - YEAR_MS);
  const log = await openSimLog({ fs: env.fs, clock }, { segmentBytes: 4_096, retention: { ageMs: DAY_MS } });
  try {
    await clock.advanceAndSettle(DAY_MS);
    assert.equal((await log.enforceRetention()).segmentsDeleted, 0);
    await clock.advanceAndSettle(1);
    assert.equal((await log.enforceRetention()).segmentsDeleted, segments - 1);
  } finally {
    await log.close();
  }
});

test('segment - rolls by age on the monotonic clock, whatever the wall clock does', async () => {
  const env = simEnv();
  const log = await openSimLog(env, { segmentAgeMs: 60_000 });
  try {
    await appendSequential(log, 0, 1);
    env.clock.jumpWallClock(YEAR_MS);
    await appendSequential(log, 1, 1);
    assert.equal(log.stats().segments, 1, 'a forward step is no age');
    env.clock.jumpWallClock(-2 * YEAR_MS);
    await env.clock.advanceAndSettle(60_000);
    await appendSequential(log, 2, 1);
    assert.equal(log.stats().segments, 2, 'a backward step does not hold the roll back');
  } finally {
    await log.close();
  }
});

test('age clock - reads the wall clock of open plus monotonic time, and takes wall timestamps as of now', () => {
  const clock = new SimClock();
  const ages = new AgeClock(clock);
  const openMs = clock.nowMs();
  clock.advance(1000);
  clock.jumpWallClock(-5000);
  assert.equal(ages.nowMs(), openMs + 1000);
  assert.equal(ages.fromWall(clock.nowMs() - 200), openMs + 800, 'a timestamp 200 ms ago, by the stepped clock');
  assert.equal(ages.fromWall(clock.nowMs() + 10_000), openMs + 1000, 'a future timestamp counts as now');
});
