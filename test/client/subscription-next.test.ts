/**
 * Calls of a subscription's next() made before the previous one resolved are queued, as an async
 * generator queues them: each gets the next message in order (a caller racing next() against a
 * timeout leaves calls behind). The TCP client here; the embedded form in
 * test/broker/message-stream.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from '../../src/client/index.js';
import { startBroker } from '../transport/harness.js';

const TEST_OPTIONS = { timeout: 15_000 };

/** Resolves `undefined` after `ms`: the timeout a caller races next() against. */
const timeout = (ms: number): Promise<undefined> => new Promise((resolve) => setTimeout(resolve, ms));

test('subscription next - overlapping next() calls are queued and answered in order, streams and groups', TEST_OPTIONS, async () => {
  const server = await startBroker();
  const client = await connect({ host: '127.0.0.1', port: server.port });
  try {
    for (const [topic, options] of [['streamed', { from: 'earliest' }], ['grouped', { group: 'billing', from: 'earliest' }]] as const) {
      await client.createTopic(topic);
      const sub = await client.subscribe(topic, options);
      const first = sub.next();
      const second = sub.next();
      // A caller racing next() against a timeout leaves its call pending; that call takes the next message.
      assert.equal(await Promise.race([sub.next(), timeout(50)]), undefined);
      const fourth = sub.next();
      for (const value of ['m0', 'm1', 'm2', 'm3']) await client.publish(topic, Buffer.from(value));
      const [a, b, d] = await Promise.all([first, second, fourth]);
      assert.deepEqual([a.value?.value.toString(), b.value?.value.toString(), d.value?.value.toString()], ['m0', 'm1', 'm3'], topic);
      if ('group' in options) for (const message of [a, b, d]) await message.value!.ack();
      const afterClose = sub.next();
      await sub.close();
      assert.deepEqual(await afterClose, { done: true, value: undefined }, 'close answers every pending call');
    }
  } finally {
    await client.close();
    await server.close();
  }
});
