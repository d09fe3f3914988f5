import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SIM_EPOCH_MS, SimClock } from './sim-clock.js';

test('sim-clock - time stands still until advanced', () => {
  const clock = new SimClock();
  assert.equal(clock.nowMs(), SIM_EPOCH_MS);
  assert.equal(clock.monotonicMs(), 0);
  clock.advance(250);
  assert.equal(clock.nowMs(), SIM_EPOCH_MS + 250);
  assert.equal(clock.monotonicMs(), 250);
});

test('sim-clock - timers fire in due order with the clock at their due time', () => {
  const clock = new SimClock();
  const fired: string[] = [];
  clock.schedule(30, () => fired.push(`c@${clock.monotonicMs()}`));
  clock.schedule(10, () => fired.push(`a@${clock.monotonicMs()}`));
  clock.schedule(10, () => fired.push(`b@${clock.monotonicMs()}`));
  clock.schedule(31, () => fired.push('late'));
  clock.advance(30);
  assert.deepEqual(fired, ['a@10', 'b@10', 'c@30']);
  assert.equal(clock.pendingTimers(), 1);
  assert.equal(clock.nextDueMs(), 31);
});

test('sim-clock - timers scheduled by callbacks inside the window fire too', () => {
  const clock = new SimClock();
  const fired: number[] = [];
  const tick = (): void => {
    fired.push(clock.monotonicMs());
    clock.schedule(10, tick);
  };
  clock.schedule(10, tick);
  clock.advance(45);
  assert.deepEqual(fired, [10, 20, 30, 40]);
  assert.equal(clock.monotonicMs(), 45);
  assert.equal(clock.pendingTimers(), 1);
});

test('sim-clock - a zero or negative delay fires on the next advance', () => {
  const clock = new SimClock();
  let fired = 0;
  clock.schedule(-5, () => fired++);
  clock.schedule(0, () => fired++);
  assert.equal(fired, 0);
  clock.advance(0);
  assert.equal(fired, 2);
});

test('sim-clock - cancelled timers do not fire', () => {
  const clock = new SimClock();
  let fired = false;
  const handle = clock.schedule(5, () => (fired = true));
  handle.cancel();
  handle.cancel();
  clock.advance(10);
  assert.equal(fired, false);
  assert.equal(clock.pendingTimers(), 0);
});

test('sim-clock - jumpWallClock moves wall time only', () => {
  const clock = new SimClock();
  let fired = false;
  clock.schedule(100, () => (fired = true));
  clock.jumpWallClock(-60_000);
  assert.equal(clock.nowMs(), SIM_EPOCH_MS - 60_000);
  assert.equal(clock.monotonicMs(), 0);
  clock.jumpWallClock(3_600_000);
  assert.equal(fired, false);
  clock.advance(100);
  assert.equal(fired, true);
  assert.equal(clock.nowMs(), SIM_EPOCH_MS - 60_000 + 3_600_000 + 100);
});

test('sim-clock - advanceAndSettle lets awaited work finish between timers', async () => {
  const clock = new SimClock();
  const events: string[] = [];
  clock.schedule(10, () => {
    void (async () => {
      await Promise.resolve();
      await new Promise<void>((resolve) => setImmediate(resolve));
      events.push(`async work of t10 done at ${clock.monotonicMs()}`);
    })();
  });
  clock.schedule(20, () => events.push(`t20 at ${clock.monotonicMs()}`));
  await clock.advanceAndSettle(25);
  assert.deepEqual(events, ['async work of t10 done at 10', 't20 at 20']);
  assert.equal(clock.monotonicMs(), 25);
});

test('sim-clock - the boot clock carries on into the next process, and starts again at a reboot', () => {
  const clock = new SimClock();
  const boot = clock.bootTime()!;
  clock.advance(1000);
  clock.jumpWallClock(-60_000);
  assert.equal(clock.bootTime()!.monotonicMs, boot.monotonicMs + 1000, 'a wall-clock step does not move it');
  const next = clock.nextProcess({ downMs: 500 });
  assert.equal(next.monotonicMs(), 0, 'a new process has its own monotonic clock');
  assert.equal(next.nowMs(), clock.nowMs() + 500);
  assert.deepEqual(next.bootTime(), { bootId: boot.bootId, monotonicMs: boot.monotonicMs + 1500 });
  const rebooted = next.nextProcess({ reboot: true });
  assert.notEqual(rebooted.bootTime()!.bootId, boot.bootId);
  assert.equal(rebooted.bootTime()!.monotonicMs, 0);
  assert.notEqual(new SimClock().bootTime()!.bootId, boot.bootId, 'another clock is another machine');
  assert.equal(new SimClock(undefined, { bootId: null }).bootTime(), null);
});
