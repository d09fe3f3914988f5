/**
 * The failover benchmark's figures, as pure functions over what the publisher recorded: the times
 * at which publishes were confirmed (ascending, as they arrive) and the times at which a publish
 * attempt failed. Kept apart from bench/failover.ts so that they can be unit-tested.
 */
import assert from 'node:assert/strict';

/** Index of the first element of the ascending `times` that is >= `at` (times.length if none). */
export function firstAtOrAfter(times: ArrayLike<number>, at: number, length = times.length): number {
  let low = 0;
  let high = length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (times[middle]! < at) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * The longest gap between consecutive confirmations that overlaps [fromMs, toMs]: it runs from the
 * last confirmation before `fromMs` (if any) to the first at or after `toMs` (or `toMs` itself when
 * none came, so an outage still open at `toMs` counts up to there).
 */
export function longestGapMs(confirmedAtMs: ArrayLike<number>, fromMs: number, toMs: number, length = confirmedAtMs.length): number {
  assert.ok(fromMs <= toMs, 'window ends before it starts');
  const start = Math.max(0, firstAtOrAfter(confirmedAtMs, fromMs, length) - 1);
  let previous = start < length ? confirmedAtMs[start]! : fromMs;
  if (previous > fromMs) previous = fromMs; // nothing confirmed before the window: it opens the first gap
  let longest = 0;
  for (let index = start; index < length; index++) {
    const at = confirmedAtMs[index]!;
    longest = Math.max(longest, at - previous);
    previous = at;
    if (at >= toMs) return longest;
  }
  return Math.max(longest, toMs - previous);
}

/** How many of the ascending `times` fall in [fromMs, toMs). */
export function countBetween(times: ArrayLike<number>, fromMs: number, toMs: number, length = times.length): number {
  return firstAtOrAfter(times, toMs, length) - firstAtOrAfter(times, fromMs, length);
}

/** An append-only list of times (ms), growing without copying per element. */
export class TimeSeries {
  private buffer = new Float64Array(1024);
  length = 0;

  push(atMs: number): void {
    if (this.length === this.buffer.length) {
      const grown = new Float64Array(this.buffer.length * 2);
      grown.set(this.buffer);
      this.buffer = grown;
    }
    this.buffer[this.length++] = atMs;
  }

  get times(): Float64Array {
    return this.buffer;
  }
}
