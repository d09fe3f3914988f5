/**
 * The few statistics the broker benchmark quotes: percentiles of a latency sample and the median of
 * repeated runs. Percentiles use the nearest-rank definition (the smallest sample with at least p%
 * of the samples at or below it), so every quoted figure is a latency that was really observed.
 */
import assert from 'node:assert/strict';

/** Nearest-rank percentile of an ascending array; `p` in [0, 100]. */
export function percentileOfSorted(sorted: ArrayLike<number>, p: number): number {
  assert.ok(sorted.length > 0, 'percentile of an empty sample');
  assert.ok(p >= 0 && p <= 100, `percentile ${p} outside [0, 100]`);
  if (p === 0) return sorted[0]!;
  // p * n first: (p / 100) * n picks up rounding error (99.9 / 100 * 1000 = 999.0000000000001),
  // and the ceiling would then skip a rank.
  const rank = Math.ceil((p * sorted.length) / 100);
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
}

/** Sorts a copy of the samples (milliseconds) and reads p50, p99, p99.9 and the maximum. */
export function summarizeLatencies(samplesMs: ArrayLike<number>): LatencySummary {
  const sorted = Float64Array.from(samplesMs).sort();
  return {
    count: sorted.length,
    p50Ms: percentileOfSorted(sorted, 50),
    p99Ms: percentileOfSorted(sorted, 99),
    p999Ms: percentileOfSorted(sorted, 99.9),
    maxMs: percentileOfSorted(sorted, 100),
  };
}

/** Median of the values: the middle one, or the mean of the two middle ones for an even count. */
export function median(values: readonly number[]): number {
  assert.ok(values.length > 0, 'median of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length % 2 === 1) return sorted[middle]!;
  return (sorted[middle - 1]! + sorted[middle]!) / 2;
}
