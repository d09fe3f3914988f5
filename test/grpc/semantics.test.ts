/**
 * The broker's delivery features reached through gRPC fields: dedup ids, delays (delay_ms and
 * deliver_at), priority, explicit partitions and keys, group backoff, touch, reset and pull
 * consumers that go idle.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '../helpers.js';
import {
  CloseConsumerRequest,
  ConsumeRequest,
  NackRequest,
  PublishRequest,
  PullRequest,
  TouchRequest,
} from './generated/ferry/v1/messages.js';
import { CreateTopicRequest, DescribeGroupRequest, DescribeTopicRequest, ResetGroupRequest } from './generated/ferry/v1/topics.js';
import { ferryDetail, text } from './client.js';
import { startGrpc } from './harness.js';

test('grpc semantics - a repeated id is stored once and answered with the first offset', async () => {
  const fixture = await startGrpc();
  const { client } = fixture;
  try {
    await client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'once' }));
    const publish = (value: string) => client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 'once', messages: [{ value: Buffer.from(value), id: 'order-17' }] }));
    const first = await publish('a');
    const second = await publish('b');
    assert.deepEqual(first.results[0], { partition: 0, offset: 0, duplicate: false, deliverAt: undefined });
    assert.deepEqual(second.results[0], { partition: 0, offset: 0, duplicate: true, deliverAt: undefined });
    const topic = await client.call(client.topics.describeTopic, DescribeTopicRequest.fromPartial({ name: 'once' }));
    assert.equal(topic.topic?.partitions[0]?.nextOffset, 1);
  } finally {
    await fixture.close();
  }
});

test('grpc semantics - delayed messages reach the group when due, priorities go first, keys and partitions route', async () => {
  const fixture = await startGrpc();
  const { client } = fixture;
  try {
    await client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'work', config: { partitions: 2 } }));
    const delayed = await client.call(
      client.messages.publish,
      PublishRequest.fromPartial({
        topic: 'work',
        messages: [
          { value: Buffer.from('later'), delayMs: 300, partition: 1 },
          { value: Buffer.from('at'), deliverAt: new Date(Date.now() + 300), partition: 1 },
        ],
      }),
    );
    assert.ok(delayed.results.every((result) => result.deliverAt instanceof Date));
    const published = await client.call(
      client.messages.publish,
      PublishRequest.fromPartial({
        topic: 'work',
        messages: [
          { value: Buffer.from('low'), partition: 0 },
          { value: Buffer.from('high'), partition: 0, priority: 9 },
          { value: Buffer.from('mid'), partition: 0, priority: 5 },
          { value: Buffer.from('keyed'), key: Buffer.from('customer-4') },
          { value: Buffer.from('keyed'), key: Buffer.from('customer-4') },
        ],
      }),
    );
    assert.equal(published.results[3]!.partition, published.results[4]!.partition, 'one key, one partition');
    const stream = client.consume(ConsumeRequest.fromPartial({ start: { topic: 'work', group: 'g' }, credit: 3 }));
    await stream.next();
    const firstThree = await stream.messages(3);
    const partitionZero = firstThree.filter((m) => m.partition === 0).map((m) => text(m.value));
    assert.deepEqual(partitionZero.slice(0, 2), ['high', 'mid'], 'higher priorities first');
    assert.equal(firstThree.find((m) => text(m.value) === 'high')?.headers['ferry-priority'], '9');
    stream.send({ acks: firstThree.map(({ partition, offset }) => ({ partition, offset })), credit: 10 });
    const rest = await stream.messages(4, 5_000);
    const values = rest.map((m) => text(m.value));
    // The delayed ones come last: the others were deliverable at once.
    assert.deepEqual(values.slice(-2).sort(), ['at', 'later']);
    stream.call.cancel();
  } finally {
    await fixture.close();
  }
});

test('grpc semantics - nack follows the group backoff; touch keeps a delivery; reset moves the group', async () => {
  const fixture = await startGrpc();
  const { client } = fixture;
  try {
    await client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'retry' }));
    await client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 'retry', messages: [{ value: Buffer.from('x') }, { value: Buffer.from('y') }] }));
    const open = PullRequest.fromPartial({ subscription: { topic: 'retry', group: 'g', groupConfig: { backoffMs: [150], ackTimeoutMs: 60_000 } }, maxMessages: 1, waitMs: 2_000 });
    const first = await client.call(client.messages.pull, open);
    const consumerId = first.consumerId;
    assert.equal(text(first.messages[0]!.value), 'x');
    const touched = await client.call(client.messages.touch, TouchRequest.fromPartial({ consumerId, positions: [{ partition: 0, offset: 0 }] }));
    assert.deepEqual(touched.failures, []);
    const nackedAt = performance.now();
    const nacked = await client.call(client.messages.nack, NackRequest.fromPartial({ consumerId, entries: [{ partition: 0, offset: 0 }] }));
    assert.deepEqual(nacked.failures, []);
    // The next pull gets y at once; x comes back after the 150 ms backoff with delivery count 2.
    const second = await client.call(client.messages.pull, PullRequest.fromPartial({ consumerId, maxMessages: 1, waitMs: 2_000 }));
    assert.equal(text(second.messages[0]!.value), 'y');
    const third = await client.call(client.messages.pull, PullRequest.fromPartial({ consumerId, maxMessages: 1, waitMs: 2_000 }));
    assert.equal(text(third.messages[0]!.value), 'x');
    assert.equal(third.messages[0]!.deliveryCount, 2);
    assert.ok(performance.now() - nackedAt >= 140, 'the redelivery waited for the backoff');

    const reset = await client.call(client.topics.resetGroup, ResetGroupRequest.fromPartial({ topic: 'retry', group: 'g', position: { latest: true } }));
    assert.equal(reset.group?.pending, 0);
    await client.call(client.messages.closeConsumer, CloseConsumerRequest.fromPartial({ consumerId }));
    const gone = await client.call(client.messages.pull, PullRequest.fromPartial({ consumerId })).catch((error: unknown) => ferryDetail(error)?.code);
    assert.equal(gone, 'UNKNOWN_SUBSCRIPTION');
  } finally {
    await fixture.close();
  }
});

test('grpc semantics - an idle pull consumer is closed and its messages go to another', async () => {
  const fixture = await startGrpc();
  const { client } = fixture;
  try {
    await client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'idle' }));
    await client.call(client.messages.publish, PublishRequest.fromPartial({ topic: 'idle', messages: [{ value: Buffer.from('held') }] }));
    const subscription = { topic: 'idle', group: 'g', groupConfig: { ackTimeoutMs: 60_000 } };
    const held = await client.call(client.messages.pull, PullRequest.fromPartial({ subscription, waitMs: 2_000, idleTimeoutMs: 1_000 }));
    assert.equal(held.messages.length, 1);
    await eventually(async () => {
      const group = await client.call(client.topics.describeGroup, DescribeGroupRequest.fromPartial({ topic: 'idle', group: 'g' }));
      assert.equal(group.group?.subscribers, 0);
    });
    const other = await client.call(client.messages.pull, PullRequest.fromPartial({ subscription, waitMs: 2_000 }));
    assert.equal(text(other.messages[0]!.value), 'held');
    assert.equal(other.messages[0]!.deliveryCount, 2);
  } finally {
    await fixture.close();
  }
});
