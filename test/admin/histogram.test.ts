import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Histogram, Registry } from 'prom-client';
import { LabelledHistogram } from '../../src/admin/histogram.js';

const BOUNDS = [0.001, 0.01, 0.1, 1, 10];

test('histogram - renders exactly what prom-client renders for the same observations', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.oneof(fc.double({ min: 0, max: 20, noNaN: true }), fc.constantFrom(...BOUNDS))), { maxLength: 200 }),
      async (observations) => {
        const ours = new Registry();
        const theirs = new Registry();
        const fast = new LabelledHistogram('x_seconds', 'help text', 'topic', BOUNDS, ours);
        const reference = new Histogram({ name: 'x_seconds', help: 'help text', labelNames: ['topic'], buckets: BOUNDS, registers: [theirs] });
        // Series appear in first-observed order in both.
        for (const [topic, value] of observations) {
          fast.labels(topic).observe(value);
          reference.labels(topic).observe(value);
        }
        assert.equal(await ours.metrics(), await theirs.metrics());
      },
    ),
    { numRuns: process.env['CI'] ? 300 : 100 },
  );
});

test('histogram - a non-finite value is ignored, not counted', async () => {
  const registry = new Registry();
  const histogram = new LabelledHistogram('y_seconds', 'help', 'topic', BOUNDS, registry);
  const series = histogram.labels('t');
  series.observe(Number.NaN);
  series.observe(Number.POSITIVE_INFINITY);
  series.observe(0.5);
  const text = await registry.metrics();
  assert.match(text, /y_seconds_count\{topic="t"\} 1\n/);
  assert.match(text, /y_seconds_bucket\{le="\+Inf",topic="t"\} 1\n/);
});
