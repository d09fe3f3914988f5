/**
 * A clock whose wall time can be stepped, as an NTP step or an operator's `date -s` would: the
 * wall clock (nowMs) jumps by `offsetMs`; the monotonic clock and timers do not move, exactly as
 * on Linux, where a step changes CLOCK_REALTIME and leaves CLOCK_MONOTONIC alone.
 */
import { SystemClock, type BootTime, type Clock, type TimerHandle } from '../../src/platform/clock.js';

/** The broker fixture reads its wall-clock offset (ms) from the file this names. */
export const CLOCK_FILE_ENV = 'FERRY_CHAOS_CLOCK_FILE';

export class JumpClock implements Clock {
  /** How far the wall clock runs ahead of real time (negative: behind). */
  offsetMs = 0;

  constructor(private readonly inner: Clock = new SystemClock()) {}

  nowMs(): number {
    return this.inner.nowMs() + this.offsetMs;
  }

  monotonicMs(): number {
    return this.inner.monotonicMs();
  }

  schedule(delayMs: number, callback: () => void): TimerHandle {
    return this.inner.schedule(delayMs, callback);
  }

  /** The machine's own monotonic clock is not stepped either. */
  bootTime(): BootTime | null {
    return this.inner.bootTime?.() ?? null;
  }
}
