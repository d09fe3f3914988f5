/**
 * Time, passed in rather than read from globals, so that tests can drive a simulated clock
 * (test/sim/sim-clock.ts) and run timeouts, retention and redelivery deterministically.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock time in milliseconds since the Unix epoch (may jump). */
  nowMs(): number;
  /** Monotonic time in milliseconds (never goes back); only differences are meaningful. */
  monotonicMs(): number;
  /** Runs `callback` once after `delayMs`; the timer does not keep the process alive. */
  schedule(delayMs: number, callback: () => void): TimerHandle;
}

export class SystemClock implements Clock {
  nowMs(): number {
    return Date.now();
  }

  monotonicMs(): number {
    return performance.now();
  }

  schedule(delayMs: number, callback: () => void): TimerHandle {
    const timer = setTimeout(callback, Math.max(0, delayMs));
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  }
}
