/**
 * Time, passed in rather than read from globals, so that tests can drive a simulated clock
 * (test/sim/sim-clock.ts) and run timeouts, retention and redelivery deterministically.
 */
import { readFileSync } from 'node:fs';
import { scheduleCapped, type ArmTimer } from './timers.js';

export interface TimerHandle {
  cancel(): void;
}

/** A reading of the machine's own monotonic clock, which outlives the process (see `bootTime`). */
export interface BootTime {
  /** Names the boot: two readings are comparable only when their ids are equal. */
  bootId: string;
  /** Milliseconds since boot; never stepped, and the same for every process of the boot. */
  monotonicMs: number;
}

export interface Clock {
  /** Wall-clock time in milliseconds since the Unix epoch (may jump). */
  nowMs(): number;
  /** Monotonic time in milliseconds (never goes back); only differences are meaningful. */
  monotonicMs(): number;
  /**
   * Runs `callback` once after `delayMs` — any length, also past what one Node timer holds
   * (timers.ts); the timer does not keep the process alive.
   */
  schedule(delayMs: number, callback: () => void): TimerHandle;
  /**
   * The system-wide monotonic clock and the boot it belongs to, or null when the platform does not
   * tell (then only the wall clock links one process to the next). Lets a restarted broker measure
   * how much time really passed since a reading an earlier process of the same boot took, and so
   * how far the wall clock stepped meanwhile. Like `monotonicMs`, it does not advance while the
   * machine is suspended.
   */
  bootTime?(): BootTime | null;
}

/** Linux: a random id the kernel draws at each boot. */
const BOOT_ID_PATH = '/proc/sys/kernel/random/boot_id';
const NS_PER_MS = 1_000_000;

/** Node's timers, as SystemClock arms them (a test passes its own to watch the delays asked for). */
export interface NodeTimers {
  setTimeout(callback: () => void, delayMs: number): { unref(): unknown };
  clearTimeout(timer: unknown): void;
}

const NODE_TIMERS: NodeTimers = { setTimeout: (callback, delayMs) => setTimeout(callback, delayMs), clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout) };

export class SystemClock implements Clock {
  /** Read once: a process never outlives its boot. undefined: not read yet; null: unavailable. */
  private bootId: string | null | undefined = undefined;
  private readonly arm: ArmTimer;

  constructor(timers: NodeTimers = NODE_TIMERS) {
    this.arm = (delayMs, fire) => {
      const timer = timers.setTimeout(fire, delayMs);
      timer.unref();
      return { cancel: () => timers.clearTimeout(timer) };
    };
  }

  nowMs(): number {
    return Date.now();
  }

  monotonicMs(): number {
    return performance.now();
  }

  schedule(delayMs: number, callback: () => void): TimerHandle {
    return scheduleCapped(this.arm, () => this.monotonicMs(), delayMs, callback);
  }

  /**
   * On Linux, process.hrtime is CLOCK_MONOTONIC (time since boot, shared by all processes, not
   * moved by clock_settime) and the boot id comes from /proc; elsewhere, or without /proc, null.
   */
  bootTime(): BootTime | null {
    if (this.bootId === undefined) this.bootId = readBootId();
    if (this.bootId === null) return null;
    return { bootId: this.bootId, monotonicMs: Number(process.hrtime.bigint()) / NS_PER_MS };
  }
}

function readBootId(): string | null {
  // Other systems' high-resolution clocks are not known to be system-wide, and have no boot id.
  if (process.platform !== 'linux') return null;
  try {
    const id = readFileSync(BOOT_ID_PATH, 'utf8').trim();
    return id.length > 0 ? id : null;
  } catch {
    return null;
  }
}
