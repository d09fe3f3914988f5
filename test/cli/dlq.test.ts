/** `ferry dlq redrive` on a topic that holds no dead letters: refused in one line, nothing left behind. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ferry, withBroker } from './run-ferry.js';

test('cli dlq - redrive of an ordinary topic is refused with exit 1 and leaves no group', async () => {
  await withBroker(async (port, broker) => {
    await broker.createTopic('orders');
    await broker.publish('orders', 'hello');
    const run = await ferry(['dlq', 'redrive', 'orders', '--port', port]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^ferry dlq: orders is not a dead-letter topic: .*\(INVALID_ARGUMENT\)\n$/);
    assert.deepEqual(broker.describeTopic('orders').groups, []);
  });
});
