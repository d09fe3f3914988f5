/**
 * Delays past what one Node timer holds (issue 22, item 7): 2^31 ms, 30 days and the 366-day delay
 * limit fire when due and not before, on the simulated clock (whose raw timers overflow as Node's
 * do) and through SystemClock (whose Node timers are watched here).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SystemClock, type NodeTimers } from '../../src/platform/clock.js';
import { TIMER_DELAY_MS_MAX } from '../../src/platform/timers.js';
import { DELAY_MS_MAX } from '../../src/broker/limits.js';
import { SimClock } from '../sim/sim-clock.js';

const DAY_MS = 24 * 3600 * 1000;
const LONG_DELAYS_MS = [2 ** 31, 30 * DAY_MS, DELAY_MS_MAX];

test('timers - a long delay on the simulated clock fires exactly when due, without an overflowed timer', () => {
  assert.equal(DELAY_MS_MAX, 366 * DAY_MS);
  for (const delayMs of LONG_DELAYS_MS) {
    const clock = new SimClock();
    let firedAtMs: number | null = null;
    clock.schedule(delayMs, () => (firedAtMs = clock.monotonicMs()));
    clock.advance(TIMER_DELAY_MS_MAX);
    assert.equal(firedAtMs, null, `${delayMs} ms: not early`);
    clock.advance(delayMs - TIMER_DELAY_MS_MAX - 1);
    assert.equal(firedAtMs, null, `${delayMs} ms: not 1 ms early`);
    clock.advance(1);
    assert.equal(firedAtMs, delayMs, `${delayMs} ms: on time`);
    assert.equal(clock.timerOverflows, 0);
    assert.equal(clock.pendingTimers(), 0);
  }
});

test('timers - a long delay cancelled between its steps never fires', () => {
  const clock = new SimClock();
  let fired = false;
  const handle = clock.schedule(30 * DAY_MS, () => (fired = true));
  clock.advance(TIMER_DELAY_MS_MAX + 5);
  handle.cancel();
  clock.advance(30 * DAY_MS);
  assert.equal(fired, false);
  assert.equal(clock.pendingTimers(), 0);
});

test('timers - the simulated clock\'s raw timers overflow as Node\'s do (what the steps avoid)', () => {
  const clock = new SimClock();
  // Reach the raw timer through the class's own arm (what schedule would use without its steps).
  const arm = (clock as unknown as { arm(ms: number, fire: () => void): unknown }).arm.bind(clock);
  let fired = false;
  arm(30 * DAY_MS, () => (fired = true));
  clock.advance(1);
  assert.equal(fired, true);
  assert.equal(clock.timerOverflows, 1);
});

test('timers - SystemClock never arms a Node timer with more than 2^31-1 ms, and cancels the step armed', () => {
  const armed: number[] = [];
  const cleared: unknown[] = [];
  const timers: NodeTimers = {
    setTimeout: (_callback, delayMs) => {
      armed.push(delayMs);
      const timer = { id: armed.length, unref: () => timer };
      return timer;
    },
    clearTimeout: (timer) => cleared.push(timer),
  };
  const clock = new SystemClock(timers);
  for (const delayMs of LONG_DELAYS_MS) clock.schedule(delayMs, () => undefined).cancel();
  clock.schedule(1500, () => undefined);
  assert.deepEqual(armed, [TIMER_DELAY_MS_MAX, TIMER_DELAY_MS_MAX, TIMER_DELAY_MS_MAX, 1500]);
  assert.equal(cleared.length, 3);
});
