/**
 * Redrive's edges: a topic that holds no dead letters is refused and left as it was (no internal
 * group behind), an empty one moves nothing and leaves nothing; a redriven message carries one
 * message id, its original one under another name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../src/errors.js';
import { REDRIVE_GROUP } from '../../src/broker/redrive.js';
import { flush, openSimBroker, RecordingSink } from './sim-broker.js';

test('redrive - a topic of ordinary messages is refused with INVALID_ARGUMENT and keeps no redrive group', async () => {
  const { broker } = await openSimBroker();
  await broker.createTopic('orders');
  await broker.publish('orders', [{ value: Buffer.from('a') }, { value: Buffer.from('b') }]);
  await assert.rejects(broker.redrive('orders'), (error: unknown) => {
    assert.ok(error instanceof FerryError);
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.match(error.message, /orders is not a dead-letter topic: its messages carry no ferry-dlq-topic header/);
    return true;
  });
  assert.deepEqual(broker.describeTopic('orders').groups, [], 'nothing left behind');
  await broker.close();
});

test('redrive - the refusal names the dead-letter topic of the same name when it exists', async () => {
  const { broker } = await openSimBroker();
  await broker.createTopic('jobs');
  await broker.publish('jobs', [{ value: Buffer.from('m') }]);
  const sink = new RecordingSink();
  const subscription = await broker.subscribe('jobs', { group: 'w', from: { kind: 'earliest' }, credit: 10 }, sink);
  await flush();
  await subscription.reject!(0, 0, 'bad');
  await flush();
  await assert.rejects(broker.redrive('jobs'), /redrive that/);
  assert.deepEqual(broker.describeTopic('jobs').groups, ['w']);
  assert.deepEqual(await broker.redrive('jobs.dlq'), { moved: 1 }, 'the dead-letter topic itself redrives');
  assert.deepEqual(broker.describeTopic('jobs.dlq').groups, [REDRIVE_GROUP]);
  await broker.close();
});

test('redrive - an empty topic moves nothing and leaves no group', async () => {
  const { broker } = await openSimBroker();
  await broker.createTopic('quiet.dlq');
  assert.deepEqual(await broker.redrive('quiet.dlq'), { moved: 0 });
  assert.deepEqual(broker.describeTopic('quiet.dlq').groups, []);
  await broker.close();
});

/** Names of a delivery's headers that appear more than once. */
function repeated(headers: ReadonlyArray<readonly [string, string]>): string[] {
  const names = headers.map(([name]) => name);
  return names.filter((name, i) => names.indexOf(name) !== i);
}

test('redrive - a redriven message has one ferry-id (the redrive id) and keeps its original id as ferry-original-id, round after round', async () => {
  const { broker } = await openSimBroker();
  await broker.createTopic('jobs');
  await broker.publish('jobs', [{ value: Buffer.from('with-id'), id: 'order-42' }, { value: Buffer.from('without-id') }]);
  const sink = new RecordingSink();
  const subscription = await broker.subscribe('jobs', { group: 'w', from: { kind: 'earliest' }, credit: 100 }, sink);
  for (let round = 1; round <= 2; round++) {
    await flush();
    const pending = sink.received.slice(-2);
    for (const delivery of pending) await subscription.reject!(delivery.partition, delivery.offset, `round ${round}`);
    await flush();
    assert.deepEqual(await broker.redrive('jobs.dlq'), { moved: 2 }, `round ${round}`);
    await flush();
    const [withId, withoutId] = sink.received.slice(-2);
    assert.ok(withId !== undefined && withoutId !== undefined && withId.value.toString() === 'with-id', `round ${round}: both came back`);
    for (const delivery of [withId, withoutId]) {
      assert.deepEqual(repeated(delivery.headers), [], `round ${round}: no header twice`);
      assert.match(delivery.headers.find(([name]) => name === 'ferry-id')?.[1] ?? '', /^ferry-redrive:jobs\.dlq:/);
    }
    assert.equal(withId.headers.find(([name]) => name === 'ferry-original-id')?.[1], 'order-42', `round ${round}`);
    assert.equal(withoutId.headers.some(([name]) => name === 'ferry-original-id'), false, `round ${round}: a redrive id is no original id`);
  }
  await broker.close();
});
