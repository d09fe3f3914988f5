/**
 * Credit over the Consume stream: the server never has more messages outstanding than the client
 * granted, and a consumer that goes away mid-stream loses its unsettled messages to others.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '../helpers.js';
import { ConsumeRequest, type ConsumeResponse } from './generated/ferry/v1/messages.js';
import { CreateTopicRequest, DescribeGroupRequest } from './generated/ferry/v1/topics.js';
import { PublishRequest } from './generated/ferry/v1/messages.js';
import { startGrpc, type GrpcFixture } from './harness.js';

async function fill(fixture: GrpcFixture, topic: string, count: number, partitions = 1): Promise<void> {
  const { client } = fixture;
  await client.call(client.topics.createTopic, CreateTopicRequest.fromPartial({ name: topic, config: { partitions } }));
  await client.call(
    client.messages.publish,
    PublishRequest.fromPartial({ topic, messages: Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`m${i}`) })) }),
  );
}

async function group(fixture: GrpcFixture, topic: string, name: string) {
  const { client } = fixture;
  const response = await client.call(client.topics.describeGroup, DescribeGroupRequest.fromPartial({ topic, group: name }));
  return response.group!;
}

test('grpc flow control - a subscriber granting 10 credits never holds more than 10 unacknowledged messages', async () => {
  const fixture = await startGrpc();
  try {
    const total = 300;
    const creditLimit = 10;
    await fill(fixture, 'flow', total, 3);
    const stream = fixture.client.consume(ConsumeRequest.fromPartial({ start: { topic: 'flow', group: 'g' }, credit: creditLimit }));
    const unacked = new Set<string>();
    let received = 0;
    let maxUnacked = 0;
    let response: ConsumeResponse | null;
    while (received < total && (response = await stream.next()) !== null) {
      for (const message of response.messages) {
        received += 1;
        unacked.add(`${message.partition}:${message.offset}`);
        maxUnacked = Math.max(maxUnacked, unacked.size);
      }
      // Settle half of what is held, later, one credit per ack: the client side of the contract.
      const settleNow = [...unacked].slice(0, Math.ceil(unacked.size / 2));
      if (settleNow.length === 0) continue;
      await new Promise((resolve) => setImmediate(resolve));
      for (const key of settleNow) unacked.delete(key);
      stream.send({ acks: settleNow.map((key) => ({ partition: Number(key.split(':')[0]), offset: Number(key.split(':')[1]) })), credit: settleNow.length });
    }
    assert.equal(received, total);
    assert.ok(maxUnacked <= creditLimit, `held ${maxUnacked} unacknowledged messages with ${creditLimit} credits`);
    assert.ok(maxUnacked >= 2, 'the test did have several messages in flight at once');
    stream.send({ acks: [...unacked].map((key) => ({ partition: Number(key.split(':')[0]), offset: Number(key.split(':')[1]) })), requestId: 1 });
    while ((await stream.next())?.settled?.requestId !== 1);
    assert.equal((await group(fixture, 'flow', 'g')).pending, 0);
    stream.call.cancel();
  } finally {
    await fixture.close();
  }
});

test('grpc flow control - without more credit, nothing more is delivered', async () => {
  const fixture = await startGrpc();
  try {
    await fill(fixture, 'stall', 50);
    const stream = fixture.client.consume(ConsumeRequest.fromPartial({ start: { topic: 'stall', group: 'g' }, credit: 10 }));
    assert.ok((await stream.next())?.subscribed !== undefined, 'subscribed comes first');
    const first = await stream.messages(10);
    assert.equal(first.length, 10);
    await eventually(async () => assert.equal((await group(fixture, 'stall', 'g')).inFlight, 10));
    // An ack alone grants nothing: the broker's credit is a counter the client raises.
    stream.send({ acks: [{ partition: 0, offset: first[0]!.offset }], requestId: 7 });
    const settled = await stream.next();
    assert.equal(settled?.settled?.requestId, 7);
    assert.equal(settled?.messages.length, 0);
    const state = await group(fixture, 'stall', 'g');
    assert.equal(state.inFlight, 9);
    assert.equal(state.pending, 49);
    // One credit: exactly one more message.
    stream.send({ credit: 1 });
    const [next] = await stream.messages(1);
    assert.equal(next!.offset, 10);
    await eventually(async () => assert.equal((await group(fixture, 'stall', 'g')).inFlight, 10));
    stream.call.cancel();
  } finally {
    await fixture.close();
  }
});

test('grpc flow control - a subscriber that disconnects mid-stream has its unacked messages redelivered to another', async () => {
  const fixture = await startGrpc();
  try {
    await fill(fixture, 'handover', 8);
    const first = fixture.client.consume(ConsumeRequest.fromPartial({ start: { topic: 'handover', group: 'g', groupConfig: { ackTimeoutMs: 60_000 } }, credit: 5 }));
    const held = await first.messages(5);
    // Acks two of its five, then vanishes without a word.
    first.send({ acks: held.slice(0, 2).map(({ partition, offset }) => ({ partition, offset })), requestId: 1 });
    while ((await first.next())?.settled?.requestId !== 1);
    const second = fixture.client.consume(ConsumeRequest.fromPartial({ start: { topic: 'handover', group: 'g' }, credit: 100 }));
    const beforeCancel = await second.messages(3);
    assert.deepEqual(beforeCancel.map((m) => m.offset), [5, 6, 7], 'the second consumer gets what was never delivered');
    first.call.cancel();
    const redelivered = await second.messages(3);
    assert.deepEqual(redelivered.map((m) => m.offset).sort(), [2, 3, 4]);
    assert.ok(redelivered.every((m) => m.deliveryCount === 2), 'a redelivery counts the lost delivery');
    second.send({ acks: [...beforeCancel, ...redelivered].map(({ partition, offset }) => ({ partition, offset })), requestId: 2 });
    while ((await second.next())?.settled?.requestId !== 2);
    await eventually(async () => {
      const state = await group(fixture, 'handover', 'g');
      assert.equal(state.pending, 0);
      assert.equal(state.subscribers, 1);
    });
    second.call.cancel();
  } finally {
    await fixture.close();
  }
});
