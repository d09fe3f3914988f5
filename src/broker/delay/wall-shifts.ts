/**
 * How far the wall clock had stepped (since the delay store opened) when each delayed message was
 * published in this process, by ranges of delay-log offsets.
 * The rest: docs/INTERNALS.md.
 */
import assert from 'node:assert/strict';

/**
 * Differences of wall and monotonic time within this are jitter, not steps: Date.now() has a
 * resolution of 1 ms, the monotonic clock a finer one. A message loaded from a bucket may therefore
 * be released up to this much early.
 */
export const SHIFT_TOLERANCE_MS = 1;
/**
 * Ranges kept at most. A range is dropped once every bucket it can touch is loaded; only a clock
 * stepping thousands of times within the load horizon reaches this, and then the oldest range is
 * forgotten (its messages fall back to the wall clock, as after a restart).
 */
export const SHIFT_RANGES_MAX = 10_000;

interface ShiftRange {
  first: number;
  last: number;
  /** Wall minus monotonic time at publish, minus the same at open. */
  shiftMs: number;
  /** The latest due time of the range: once its bucket is loaded, the range is not needed. */
  dueMaxMs: number;
}

export class WallShifts {
  /** Disjoint, sorted by `first`. */
  private readonly ranges: ShiftRange[] = [];
  /** The largest forward shift held (0 when none): the delay store loads buckets this much earlier. */
  aheadMs = 0;

  get size(): number {
    return this.ranges.length;
  }

  /**
   * Records the shift of the messages at delay-log offsets first..last. Returns false when the table
   * was full and the oldest range had to be dropped.
   */
  record(first: number, last: number, shiftMs: number, dueMaxMs: number): boolean {
    assert.ok(first <= last, 'an offset range is not empty');
    if (Math.abs(shiftMs) <= SHIFT_TOLERANCE_MS) return true;
    const tail = this.ranges.at(-1);
    if (tail !== undefined && tail.last + 1 === first && Math.abs(tail.shiftMs - shiftMs) <= SHIFT_TOLERANCE_MS) {
      // Merged ranges keep the smaller shift: a later release, never an earlier one.
      tail.last = last;
      tail.shiftMs = Math.min(tail.shiftMs, shiftMs);
      tail.dueMaxMs = Math.max(tail.dueMaxMs, dueMaxMs);
    } else {
      let at = this.ranges.length;
      while (at > 0 && this.ranges[at - 1]!.first > first) at--;
      this.ranges.splice(at, 0, { first, last, shiftMs, dueMaxMs });
    }
    this.aheadMs = Math.max(this.aheadMs, shiftMs);
    if (this.ranges.length <= SHIFT_RANGES_MAX) return true;
    this.ranges.shift();
    this.recomputeAhead();
    return false;
  }

  /** The shift of the message at `offset`: 0 unless it was published in this process after a step. */
  shiftOf(offset: number): number {
    let low = 0;
    let high = this.ranges.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.ranges[mid]!.last < offset) low = mid + 1;
      else high = mid;
    }
    const range = this.ranges[low];
    return range !== undefined && range.first <= offset ? range.shiftMs : 0;
  }

  /** Drops the ranges whose every message is due in a bucket below `loadedEnd` (already loaded). */
  dropLoaded(loadedEnd: number, bucketOf: (dueMs: number) => number): void {
    let kept = 0;
    for (const range of this.ranges) if (bucketOf(range.dueMaxMs) >= loadedEnd) this.ranges[kept++] = range;
    if (kept === this.ranges.length) return;
    this.ranges.length = kept;
    this.recomputeAhead();
  }

  private recomputeAhead(): void {
    this.aheadMs = 0;
    for (const range of this.ranges) this.aheadMs = Math.max(this.aheadMs, range.shiftMs);
  }
}
