/**
 * The publish quota (src/security/quota.ts): a token bucket per key, kept least recently used first.
 * Held against a model that moves the key to the end on every use: the same verdicts, tokens and
 * order whatever the run of keys, counts and pauses (the quota skips the move for the key used last).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PublishQuota } from '../../src/security/quota.js';
import { SimClock } from '../sim/sim-clock.js';

const RATE = 10;
const BURST = 5;

class ModelQuota {
  readonly buckets = new Map<string, { tokens: number; lastMs: number }>();
  constructor(private readonly clock: SimClock) {}
  take(key: string, count: number): boolean {
    const nowMs = this.clock.monotonicMs();
    const bucket = this.buckets.get(key) ?? { tokens: BURST, lastMs: nowMs };
    bucket.tokens = Math.min(BURST, bucket.tokens + ((nowMs - bucket.lastMs) * RATE) / 1000);
    bucket.lastMs = nowMs;
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    if (bucket.tokens <= 0) return false;
    bucket.tokens -= count;
    return true;
  }
}

test('publish quota - verdicts, refills and least-recently-used order match a bucket moved on every use', () => {
  const step = fc.record({ key: fc.constantFrom('a', 'b', 'c'), count: fc.integer({ min: 1, max: 4 }), pauseMs: fc.constantFrom(0, 0, 50, 300) });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
      const clock = new SimClock();
      const quota = new PublishQuota(RATE, BURST, clock);
      const model = new ModelQuota(clock);
      for (const { key, count, pauseMs } of steps) {
        clock.advance(pauseMs);
        assert.equal(quota.take(key, count), model.take(key, count));
        assert.equal(quota.exhausted(key), model.buckets.get(key)!.tokens <= 0);
      }
      const order = [...(quota as unknown as { buckets: Map<string, unknown> }).buckets.keys()];
      assert.deepEqual(order, [...model.buckets.keys()]);
    }),
  );
});
