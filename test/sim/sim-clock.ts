/**
 * A Clock whose time moves only when a test says so. Timers run on monotonic time; the wall clock
 * is monotonic time plus an offset that `jumpWallClock` changes, so a test can make `nowMs()` jump
 * (NTP step, VM resume) while durations measured with `monotonicMs()` stay honest.
 *
 * It also simulates the machine under the process (`bootTime`): a boot id and a monotonic clock
 * since boot that, unlike the process's own, carries on into the next process (`nextProcess`) and
 * starts again at a reboot. A `new SimClock()` is a new boot, so independent clocks never look
 * like one machine.
 *
 * Its timers behave as Node's: one armed with more than 2^31−1 ms fires after 1 ms (counted in
 * `timerOverflows`, where Node prints a TimeoutOverflowWarning); `schedule` arms long delays in
 * steps, as SystemClock does (src/platform/timers.ts).
 */
import assert from 'node:assert/strict';
import type { BootTime, Clock, TimerHandle } from '../../src/platform/clock.js';
import { scheduleCapped, TIMER_DELAY_MS_MAX } from '../../src/platform/timers.js';

/** An arbitrary but fixed start (2024-01-01T00:00:00Z) so that timestamps in failures are readable. */
export const SIM_EPOCH_MS = Date.UTC(2024, 0, 1);

/**
 * Event-loop turns `advanceAndSettle` and `settle` give promise chains between timer firings. A
 * chain over the in-memory fs finishes within one turn; the spare turns cover code that itself
 * defers with setImmediate.
 */
const SETTLE_TURNS = 4;
/** How long a simulated machine has been up when its first clock is made: not 0, so that boot and process monotonic times differ in tests. */
const SIM_UPTIME_AT_START_MS = 3_600_000;

let bootsMade = 0;

export interface SimBootOptions {
  /** The boot's id; null simulates a platform that has none (no /proc). Default: a new boot. */
  bootId?: string | null;
  /** The boot's monotonic clock when this process starts. */
  bootMonotonicMs?: number;
}

interface Timer {
  dueMs: number;
  /** Creation order: timers due at the same time fire in the order they were scheduled. */
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

export class SimClock implements Clock {
  private monoMs = 0;
  private wallOffsetMs: number;
  private seqNext = 0;
  /** Pending timers, kept sorted by (dueMs, seq); tests hold few timers so an array is enough. */
  private timers: Timer[] = [];
  private readonly bootId: string | null;
  /** Boot monotonic minus process monotonic time. */
  private readonly bootOffsetMs: number;

  constructor(startWallMs: number = SIM_EPOCH_MS, boot: SimBootOptions = {}) {
    this.wallOffsetMs = startWallMs;
    this.bootId = boot.bootId === undefined ? `sim-boot-${++bootsMade}` : boot.bootId;
    this.bootOffsetMs = boot.bootMonotonicMs ?? SIM_UPTIME_AT_START_MS;
  }

  nowMs(): number {
    return this.wallOffsetMs + this.monoMs;
  }

  monotonicMs(): number {
    return this.monoMs;
  }

  /** Timers armed with more than one Node timer holds (each fired after 1 ms, as Node does). */
  timerOverflows = 0;

  schedule(delayMs: number, callback: () => void): TimerHandle {
    assert.ok(Number.isFinite(delayMs), 'delayMs must be finite');
    return scheduleCapped((ms, fire) => this.arm(ms, fire), () => this.monoMs, delayMs, callback);
  }

  /** One timer, as Node arms it. */
  private arm(delayMs: number, callback: () => void): TimerHandle {
    let armedMs = Math.max(0, delayMs);
    if (armedMs > TIMER_DELAY_MS_MAX) {
      this.timerOverflows += 1;
      armedMs = 1;
    }
    const timer: Timer = { dueMs: this.monoMs + armedMs, seq: this.seqNext++, callback, cancelled: false };
    const at = this.timers.findIndex((t) => t.dueMs > timer.dueMs);
    if (at === -1) this.timers.push(timer);
    else this.timers.splice(at, 0, timer);
    return {
      cancel: () => {
        if (timer.cancelled) return;
        timer.cancelled = true;
        const index = this.timers.indexOf(timer);
        if (index !== -1) this.timers.splice(index, 1);
      },
    };
  }

  bootTime(): BootTime | null {
    return this.bootId === null ? null : { bootId: this.bootId, monotonicMs: this.bootOffsetMs + this.monoMs };
  }

  /**
   * The clock of a process started on the same machine `downMs` after this one's present (its wall
   * clock and boot carry on; its own monotonic clock starts at 0, with no timers). With `reboot`,
   * the machine rebooted meanwhile: a new boot id and a boot monotonic clock starting from 0.
   */
  nextProcess(options: { downMs?: number; reboot?: boolean } = {}): SimClock {
    const downMs = options.downMs ?? 0;
    assert.ok(downMs >= 0, 'time only moves forward');
    const bootId = this.bootId === null ? null : options.reboot ? `sim-boot-${++bootsMade}` : this.bootId;
    const bootMonotonicMs = options.reboot ? 0 : this.bootOffsetMs + this.monoMs + downMs;
    return new SimClock(this.nowMs() + downMs, { bootId, bootMonotonicMs });
  }

  /** Timers scheduled and neither fired nor cancelled. */
  pendingTimers(): number {
    return this.timers.length;
  }

  /** Monotonic time of the next timer, or null when none is pending. */
  nextDueMs(): number | null {
    return this.timers[0]?.dueMs ?? null;
  }

  /**
   * Moves time forward by `ms`, firing every timer that falls due on the way in time order, each
   * with the clock set to its due time — including timers that callbacks schedule inside the window.
   * Promise callbacks do not run in between; use `advanceAndSettle` for code that awaits.
   */
  advance(ms: number): void {
    assert.ok(ms >= 0, 'time only moves forward');
    const targetMs = this.monoMs + ms;
    for (let timer = this.takeDue(targetMs); timer !== null; timer = this.takeDue(targetMs)) {
      timer.callback();
    }
    this.monoMs = targetMs;
  }

  /**
   * Like `advance`, but lets pending promise callbacks run after each timer fires (and once at the
   * end), so that a timer which starts async work sees that work finish before the next timer.
   */
  async advanceAndSettle(ms: number): Promise<void> {
    assert.ok(ms >= 0, 'time only moves forward');
    const targetMs = this.monoMs + ms;
    await settle();
    for (let timer = this.takeDue(targetMs); timer !== null; timer = this.takeDue(targetMs)) {
      timer.callback();
      await settle();
    }
    this.monoMs = targetMs;
    await settle();
  }

  /** The wall clock jumps by `ms` (either direction); monotonic time and timers are unaffected. */
  jumpWallClock(ms: number): void {
    this.wallOffsetMs += ms;
  }

  private takeDue(targetMs: number): Timer | null {
    const first = this.timers[0];
    if (first === undefined || first.dueMs > targetMs) return null;
    this.timers.shift();
    first.cancelled = true;
    this.monoMs = Math.max(this.monoMs, first.dueMs);
    return first;
  }
}

/** Lets every pending promise callback (and anything it chains) run: a few macrotask turns. */
export async function settle(turns: number = SETTLE_TURNS): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
