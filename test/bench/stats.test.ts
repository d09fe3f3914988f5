import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, percentileOfSorted, summarizeLatencies } from '../../bench/stats.js';

test('stats - median takes the middle value of an odd count', () => {
  assert.equal(median([5, 1, 3]), 3);
});

test('stats - median averages the two middle values of an even count', () => {
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('stats - median does not reorder its input', () => {
  const values = [3, 1, 2];
  median(values);
  assert.deepEqual(values, [3, 1, 2]);
});

test('stats - percentile uses the nearest rank', () => {
  const sorted = Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
  assert.equal(percentileOfSorted(sorted, 50), 50);
  assert.equal(percentileOfSorted(sorted, 99), 99);
  assert.equal(percentileOfSorted(sorted, 99.9), 100);
  assert.equal(percentileOfSorted(sorted, 100), 100);
  assert.equal(percentileOfSorted(sorted, 0), 1);
  assert.equal(percentileOfSorted([7], 99.9), 7);
});

test('stats - summary sorts numerically and reports observed samples', () => {
  const samples = Float64Array.from({ length: 1000 }, (_, i) => (1000 - i) / 10); // 100.0 .. 0.1
  const summary = summarizeLatencies(samples);
  assert.equal(summary.count, 1000);
  assert.equal(summary.p50Ms, 50);
  assert.equal(summary.p99Ms, 99);
  assert.equal(summary.p999Ms, 99.9);
  assert.equal(summary.maxMs, 100);
  assert.equal(samples[0], 100, 'the input is left as it was');
});

test('stats - empty input and out-of-range percentiles are programmer errors', () => {
  assert.throws(() => median([]), assert.AssertionError);
  assert.throws(() => percentileOfSorted([], 50), assert.AssertionError);
  assert.throws(() => percentileOfSorted([1], 101), assert.AssertionError);
});
