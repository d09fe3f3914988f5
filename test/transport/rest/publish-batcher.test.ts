/**
 * The publish batcher (issue 24): the publishes of one turn for one topic become one broker call,
 * each caller answered with its own results; what must not be joined (ids, delays, requests past
 * the limits) goes alone, and a failed joined publish fails each of its callers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../src/errors.js';
import { ADMISSION_CEILINGS } from '../../../src/broker/limits.js';
import type { BrokerApi, PublishMessage, PublishResult } from '../../../src/broker/types.js';
import { PublishBatcher } from '../../../src/transport/rest/publish-batcher.js';

/** Records each publish call; assigns offsets per topic, or fails with `failWith`. */
function recordingBroker(failWith?: FerryError): { broker: BrokerApi; calls: Array<{ topic: string; count: number }> } {
  const calls: Array<{ topic: string; count: number }> = [];
  const next = new Map<string, number>();
  const broker = {
    async publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
      calls.push({ topic, count: messages.length });
      if (failWith !== undefined) throw failWith;
      const start = next.get(topic) ?? 0;
      next.set(topic, start + messages.length);
      return messages.map((_, i) => ({ partition: 0, offset: start + i, durability: 'synced' as const }));
    },
  } as unknown as BrokerApi;
  return { broker, calls };
}

const message = (value: string, extra: Partial<PublishMessage> = {}): PublishMessage => ({ value: Buffer.from(value), ...extra });

test('publish batcher - one turn, one publish per topic; every caller gets its own slice of the results', async () => {
  const { broker, calls } = recordingBroker();
  const batcher = new PublishBatcher(broker);
  const answers = await Promise.all([
    batcher.publish('a', [message('1')]),
    batcher.publish('b', [message('2')]),
    batcher.publish('a', [message('3'), message('4')]),
    batcher.publish('a', [message('5')]),
  ]);
  assert.deepEqual(calls, [
    { topic: 'a', count: 4 },
    { topic: 'b', count: 1 },
  ]);
  assert.deepEqual(
    answers.map((results) => results.map((result) => result.offset)),
    [[0], [0], [1, 2], [3]],
  );
});

test('publish batcher - ids, delays and publishes past the limits go alone', async () => {
  const { broker, calls } = recordingBroker();
  const batcher = new PublishBatcher(broker, { ...ADMISSION_CEILINGS, recordBytesMax: 10 });
  await Promise.all([
    batcher.publish('a', [message('plain')]),
    batcher.publish('a', [message('dedup', { id: 'x' })]),
    batcher.publish('a', [message('later', { delayMs: 1000 })]),
    batcher.publish('a', [message('far too large for the limit')]),
    batcher.publish('a', [message('plain too')]),
  ]);
  // The three that go alone are called at once; the two plain ones together at the turn's end.
  assert.deepEqual(
    calls.map((call) => call.count),
    [1, 1, 1, 2],
  );
});

test('publish batcher - a failed joined publish fails each caller with its error', async () => {
  const { broker } = recordingBroker(new FerryError('UNKNOWN_TOPIC', 'no topic a'));
  const batcher = new PublishBatcher(broker);
  const outcomes = await Promise.allSettled([batcher.publish('a', [message('1')]), batcher.publish('a', [message('2')])]);
  for (const outcome of outcomes) {
    assert.equal(outcome.status, 'rejected');
    assert.equal((outcome.reason as FerryError).code, 'UNKNOWN_TOPIC');
  }
});

test('publish batcher - a turn past the joined bounds is split into several publishes', async () => {
  const { broker, calls } = recordingBroker();
  const batcher = new PublishBatcher(broker, { ...ADMISSION_CEILINGS, publishMessagesMax: 3 });
  const answers = await Promise.all(Array.from({ length: 7 }, (_, i) => batcher.publish('a', [message(String(i))])));
  assert.deepEqual(
    calls.map((call) => call.count),
    [3, 3, 1],
  );
  assert.deepEqual(
    answers.map(([result]) => result!.offset),
    [0, 1, 2, 3, 4, 5, 6],
  );
});
