/**
 * The embedded subscription (MessageStream): closing the broker ends every open `for await`, as
 * closing a TCP client does, whether the loop waits for a message or has some buffered; calls of
 * next() made before the previous one resolved are queued, as an async generator queues them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Broker } from '../../src/broker/broker.js';
import { eventually, tempDir } from '../helpers.js';

/** Drains `iterable` in the background; `done` turns true when its loop ends. */
function consume(iterable: AsyncIterable<{ ack(): Promise<void> }>, ack: boolean): { done: boolean; received: number; error: unknown } {
  const state = { done: false, received: 0, error: undefined as unknown };
  void (async () => {
    try {
      for await (const message of iterable) {
        state.received += 1;
        if (ack) await message.ack();
      }
    } catch (error) {
      state.error = error;
    }
    state.done = true;
  })();
  return state;
}

test('message stream - broker.close() ends every embedded for-await: streams and groups, waiting or not', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  await broker.createTopic('orders');
  await broker.publish('orders', 'one');
  const waitingStream = consume(await broker.subscribe('orders', { from: 'latest' }), false);
  const group = consume(await broker.subscribe('orders', { group: 'billing', from: 'earliest' }), true);
  const unread = await broker.subscribe('orders', { from: 'earliest' });
  await eventually(() => group.received === 1);
  await broker.close();
  await eventually(() => waitingStream.done && group.done);
  assert.equal(waitingStream.error, undefined);
  assert.equal(group.error, undefined);
  // A stream never iterated is over too: its next() says done at once.
  assert.deepEqual(await unread.next(), { value: undefined, done: true });
});

test('message stream - overlapping next() calls are queued and answered in order, streams and groups', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    for (const [topic, options] of [['streamed', { from: 'earliest' }], ['grouped', { group: 'billing', from: 'earliest' }]] as const) {
      await broker.createTopic(topic);
      const stream = await broker.subscribe(topic, options);
      const calls = [stream.next(), stream.next(), stream.next()];
      for (const value of ['m0', 'm1', 'm2']) await broker.publish(topic, value);
      const results = await Promise.all(calls);
      assert.deepEqual(results.map((result) => result.value?.value.toString()), ['m0', 'm1', 'm2'], topic);
      const afterClose = stream.next();
      await stream.close();
      assert.deepEqual(await afterClose, { value: undefined, done: true }, 'close answers every pending call');
    }
  } finally {
    await broker.close();
  }
});
