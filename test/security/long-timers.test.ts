/**
 * Delays past 2^31−1 ms in the broker (issue 22, item 7): `deliverAt` 30 days ahead made the broker
 * log ~880 TimeoutOverflowWarning lines a second, and `nack({ delayMs: 30 days })` redelivered
 * after 3 ms. Here a broker runs on SystemClock with Node's timers watched: no timer is ever armed
 * past 2^31−1 ms, a 30-day nack is not redelivered early, and delayed messages up to the 366-day
 * limit sit quietly (test/platform/timers.test.ts checks the steps fire on time).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Broker } from '../../src/broker/broker.js';
import { DELAY_MS_MAX } from '../../src/broker/limits.js';
import { SystemClock, type NodeTimers } from '../../src/platform/clock.js';
import { TIMER_DELAY_MS_MAX } from '../../src/platform/timers.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { RecordingSink } from '../broker/sim-broker.js';

const DAY_MS = 24 * 3600 * 1000;
/** How long the test watches for an early redelivery or a spinning timer. */
const WATCH_MS = 300;
/** Timers a quiet broker arms in WATCH_MS, at most (a spinning 1 ms timer arms hundreds). */
const QUIET_ARMS_MAX = 40;

function watchedTimers(): { timers: NodeTimers; armed: number[] } {
  const armed: number[] = [];
  const timers: NodeTimers = {
    setTimeout: (callback, delayMs) => {
      armed.push(delayMs);
      return setTimeout(callback, delayMs);
    },
    clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
  };
  return { timers, armed };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await sleep(5);
  assert.ok(condition(), 'in time');
}

test('long timers - nack with a delay of 2^31 ms or 30 days is not redelivered early, and no Node timer overflows', async () => {
  const { timers, armed } = watchedTimers();
  const broker = await Broker.open({ dir: '/data', fs: new SimFileSystem(), clock: new SystemClock(timers) });
  try {
    await broker.createTopic('jobs');
    await broker.publish('jobs', [{ value: Buffer.from('a') }, { value: Buffer.from('b') }]);
    const sink = new RecordingSink();
    const subscription = await broker.subscribe('jobs', { group: 'w', from: { kind: 'earliest' }, credit: 2 }, sink);
    await until(() => sink.received.length === 2);
    await subscription.nack(0, 0, { delayMs: 2 ** 31 });
    await subscription.nack(0, 1, { delayMs: 30 * DAY_MS });
    await sleep(WATCH_MS);
    assert.equal(sink.received.length, 2, 'nothing redelivered');
    assert.equal(broker.describeGroup('jobs', 'w').pendingRedelivery, 2);
    assert.ok(Math.max(...armed) <= TIMER_DELAY_MS_MAX, `longest timer armed: ${Math.max(...armed)} ms`);
    await subscription.close();
  } finally {
    await broker.close();
  }
});

test('long timers - messages delayed 30 days and 366 days (the limit) wait without a spinning timer', async () => {
  const { timers, armed } = watchedTimers();
  const broker = await Broker.open({ dir: '/data', fs: new SimFileSystem(), clock: new SystemClock(timers) });
  try {
    await broker.createTopic('later');
    const sink = new RecordingSink();
    const subscription = await broker.subscribe('later', { group: 'w', from: { kind: 'earliest' }, credit: 10 }, sink);
    await broker.publish('later', 'month', { deliverAt: new Date(Date.now() + 30 * DAY_MS) });
    await broker.publish('later', 'year', { delayMs: DELAY_MS_MAX - 1000 });
    const armedBefore = armed.length;
    await sleep(WATCH_MS);
    assert.equal(sink.received.length, 0, 'nothing delivered early');
    assert.ok(armed.length - armedBefore <= QUIET_ARMS_MAX, `${armed.length - armedBefore} timers armed in ${WATCH_MS} ms`);
    assert.ok(Math.max(...armed) <= TIMER_DELAY_MS_MAX, `longest timer armed: ${Math.max(...armed)} ms`);
    await subscription.close();
  } finally {
    await broker.close();
  }
});
