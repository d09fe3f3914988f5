/**
 * The dashboard chart's y axis (src/admin/dashboard/chart.js): round, distinct labels whatever the
 * peak, the idle chart included (it read "1 B, 1 B, 1 B, 0 B, 0 B").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
// @ts-expect-error: the dashboard is plain JavaScript for the browser, without type declarations.
import { axisTicks } from '../../src/admin/dashboard/chart.js';
// @ts-expect-error: as above.
import { fmtBytes, fmtCompact } from '../../src/admin/dashboard/lib.js';

const ticksOf = axisTicks as (peak: number, options?: { binary?: boolean }) => number[];
const bytes = fmtBytes as (value: number) => string;
const compact = fmtCompact as (value: number) => string;

/** Peaks from idle to gigabytes, including the awkward ones just past a step. */
const PEAKS = [0, 1e-9, 0.3, 1, 1.1, 3.3, 7, 10, 99, 100, 101, 1000, 1023, 1024, 1100, 5000, 123_456, 1_048_577, 3.3e9];

test('dashboard chart - an idle chart has distinct round ticks: 0 B to 4 B, and 0 to 4', () => {
  assert.deepEqual(ticksOf(0, { binary: true }).map(bytes), ['0 B', '1 B', '2 B', '3 B', '4 B']);
  assert.deepEqual(ticksOf(0).map(compact), ['0', '1', '2', '3', '4']);
});

test('dashboard chart - for any peak the ticks start at 0, are evenly spaced by a round step, reach the peak and read differently', () => {
  for (const peak of PEAKS) {
    for (const binary of [true, false]) {
      const ticks = ticksOf(peak, { binary });
      const what = `peak ${peak}${binary ? ' (bytes)' : ''}: ${ticks.join(', ')}`;
      assert.equal(ticks[0], 0, what);
      assert.ok(ticks.at(-1)! >= peak, what);
      const step = ticks[1]!;
      ticks.forEach((tick, i) => assert.ok(Math.abs(tick - i * step) <= step * 1e-9, what));
      if (binary) assert.ok(Number.isInteger(Math.log2(step)) && step >= 1, `a power of two bytes: ${what}`);
      else assert.ok([1, 2, 5].includes(Number((step / 10 ** Math.floor(Math.log10(step))).toPrecision(6))), `1, 2 or 5 × 10^n: ${what}`);
      const labels = ticks.map(binary ? bytes : compact);
      assert.equal(new Set(labels).size, labels.length, `distinct labels: ${labels.join(', ')}`);
    }
  }
});
