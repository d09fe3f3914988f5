import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countBetween, firstAtOrAfter, longestGapMs, TimeSeries } from '../../bench/failover-stats.js';

test('failover stats - firstAtOrAfter finds the first time not before the mark', () => {
  const times = [10, 20, 20, 30];
  assert.equal(firstAtOrAfter(times, 5), 0);
  assert.equal(firstAtOrAfter(times, 20), 1);
  assert.equal(firstAtOrAfter(times, 21), 3);
  assert.equal(firstAtOrAfter(times, 31), 4);
});

test('failover stats - the gap spanning the kill runs from the last confirm before it to the first after', () => {
  // Confirms every 10 ms, an outage from 100 to 350, then every 10 ms again.
  const times = [70, 80, 90, 100, 350, 360, 370];
  assert.equal(longestGapMs(times, 95, 360), 250);
});

test('failover stats - an outage still open at the end of the window counts up to the window end', () => {
  assert.equal(longestGapMs([10, 20, 30], 25, 500), 470);
});

test('failover stats - with no confirm before the window, the window start opens the first gap', () => {
  assert.equal(longestGapMs([300, 310], 100, 310), 200);
  assert.equal(longestGapMs([], 100, 150), 50);
});

test('failover stats - gaps outside the window are not counted', () => {
  // A 500 ms gap long before the window, 10 ms steps inside it.
  const times = [0, 500, 510, 520, 530, 540];
  assert.equal(longestGapMs(times, 515, 540), 10);
});

test('failover stats - countBetween counts times in the half-open window', () => {
  assert.equal(countBetween([1, 2, 3, 4, 5], 2, 4), 2);
  assert.equal(countBetween([1, 2, 3], 10, 20), 0);
});

test('failover stats - a time series grows past its first buffer and keeps every time in order', () => {
  const series = new TimeSeries();
  for (let index = 0; index < 5000; index++) series.push(index);
  assert.equal(series.length, 5000);
  assert.equal(series.times[4999], 4999);
  assert.equal(countBetween(series.times, 1000, 2000, series.length), 1000);
});
