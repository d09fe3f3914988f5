import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Broker } from '../../src/broker/broker.js';
import type { Delivery, DeliverySink } from '../../src/broker/types.js';
import { FerryError } from '../../src/errors.js';
import { eventually, tempDir } from '../helpers.js';

/** A sink that records what it receives. */
class RecordingSink implements DeliverySink {
  readonly received: Delivery[] = [];
  open = true;
  deliver(delivery: Delivery): void {
    this.received.push(delivery);
  }
  writable(): boolean {
    return this.open;
  }
}

const text = (value: Buffer): string => value.toString('utf8');

test('broker - publish and consume embedded, with key and headers', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    await broker.createTopic('orders');
    const published = await broker.publish('orders', 'hello', { key: 'k1', headers: { source: 'web' } });
    assert.deepEqual(published, { topic: 'orders', partition: 0, offset: 0, durability: 'synced' });
    const stream = await broker.subscribe('orders', { group: 'billing', from: 'earliest' });
    for await (const message of stream) {
      assert.equal(text(message.value), 'hello');
      assert.equal(message.key?.toString(), 'k1');
      assert.deepEqual(message.headers, { source: 'web' });
      assert.equal(message.deliveryCount, 1);
      await message.ack();
      break;
    }
  } finally {
    await broker.close();
  }
});

test('broker - unknown topics and duplicate creates are typed errors', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    await assert.rejects(broker.publish('missing', 'x'), (error: unknown) => error instanceof FerryError && error.code === 'UNKNOWN_TOPIC');
    await broker.createTopic('t');
    await assert.rejects(broker.createTopic('t'), (error: unknown) => error instanceof FerryError && error.code === 'TOPIC_EXISTS');
    await assert.rejects(broker.createTopic('../escape'), (error: unknown) => error instanceof FerryError && error.code === 'INVALID_ARGUMENT');
    await assert.rejects(broker.createTopic('p', { partitions: 0 }), (error: unknown) => error instanceof FerryError && error.code === 'INVALID_ARGUMENT');
  } finally {
    await broker.close();
  }
});

test('broker - a group shares messages among competing subscribers, each message once', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    await broker.createTopic('jobs', { partitions: 3 });
    await broker.publish('jobs', Array.from({ length: 300 }, (_, i) => ({ value: Buffer.from(String(i)) })));
    const sinks = [new RecordingSink(), new RecordingSink(), new RecordingSink()];
    const subscriptions = await Promise.all(sinks.map((sink) => broker.subscribe('jobs', { group: 'w', from: { kind: 'earliest' }, credit: 1000 }, sink)));
    await eventually(() => assert.equal(sinks.reduce((n, sink) => n + sink.received.length, 0), 300));
    const seen = new Set<string>();
    for (const sink of sinks) {
      assert.ok(sink.received.length > 0, 'every subscriber got work');
      for (const delivery of sink.received) seen.add(`${delivery.partition}:${delivery.offset}`);
    }
    assert.equal(seen.size, 300);
    for (const subscription of subscriptions) await subscription.close();
  } finally {
    await broker.close();
  }
});

test('broker - credit bounds what a subscriber holds unacknowledged', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    await broker.createTopic('t');
    await broker.publish('t', Array.from({ length: 50 }, (_, i) => ({ value: Buffer.from(String(i)) })));
    const sink = new RecordingSink();
    const subscription = await broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 10 }, sink);
    await eventually(() => assert.equal(sink.received.length, 10));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(sink.received.length, 10);
    for (const delivery of sink.received.slice(0, 5)) await subscription.ack(delivery.partition, delivery.offset);
    assert.equal(sink.received.length, 10, 'acks do not add credit by themselves');
    subscription.grantCredit(5);
    await eventually(() => assert.equal(sink.received.length, 15));
    await subscription.close();
  } finally {
    await broker.close();
  }
});

test('broker - acknowledged messages are not delivered again after a restart; the rest are', async () => {
  await using dir = await tempDir();
  let broker = await Broker.open({ dir: dir.path });
  await broker.createTopic('t', { partitions: 2 });
  await broker.publish('t', Array.from({ length: 20 }, (_, i) => ({ value: Buffer.from(String(i)) })));
  const sink = new RecordingSink();
  const subscription = await broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 100 }, sink);
  await eventually(() => assert.equal(sink.received.length, 20));
  // Ack out of order: every odd value.
  const acked = sink.received.filter((delivery) => Number(text(delivery.value)) % 2 === 1);
  await Promise.all(acked.map((delivery) => subscription.ack(delivery.partition, delivery.offset)));
  await broker.close();

  broker = await Broker.open({ dir: dir.path });
  try {
    const again = new RecordingSink();
    await broker.subscribe('t', { group: 'g', credit: 100 }, again);
    await eventually(() => assert.equal(again.received.length, 10));
    const values = again.received.map((delivery) => Number(text(delivery.value))).sort((a, b) => a - b);
    assert.deepEqual(values, [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]);
  } finally {
    await broker.close();
  }
});

test('broker - a subscriber that leaves hands its unacknowledged messages to the others', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    await broker.createTopic('t');
    await broker.publish('t', Array.from({ length: 4 }, (_, i) => ({ value: Buffer.from(String(i)) })));
    const first = new RecordingSink();
    const leaving = await broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 4 }, first);
    await eventually(() => assert.equal(first.received.length, 4));
    await leaving.ack(0, 0);
    const second = new RecordingSink();
    await broker.subscribe('t', { group: 'g', credit: 10 }, second);
    await leaving.close();
    await eventually(() => assert.equal(second.received.length, 3));
    assert.deepEqual(second.received.map((delivery) => delivery.offset), [1, 2, 3]);
    assert.ok(second.received.every((delivery) => delivery.deliveryCount === 2));
  } finally {
    await broker.close();
  }
});

test('broker - nack redelivers with a higher delivery count', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    await broker.createTopic('t');
    await broker.publish('t', 'x');
    const sink = new RecordingSink();
    const subscription = await broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 5 }, sink);
    await eventually(() => assert.equal(sink.received.length, 1));
    await subscription.nack(0, 0);
    await eventually(() => assert.equal(sink.received.length, 2));
    assert.equal(sink.received[1]!.deliveryCount, 2);
    await assert.rejects(subscription.nack(0, 5), (error: unknown) => error instanceof FerryError && error.code === 'UNKNOWN_DELIVERY');
  } finally {
    await broker.close();
  }
});

test('broker - a stream reads in order from an offset, from a time, and follows new messages', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    await broker.createTopic('s');
    await broker.publish('s', Array.from({ length: 10 }, (_, i) => ({ value: Buffer.from(String(i)) })));
    const fromOffset = new RecordingSink();
    await broker.subscribe('s', { from: { kind: 'offset', offset: 7 }, credit: 100 }, fromOffset);
    await eventually(() => assert.deepEqual(fromOffset.received.map((d) => d.offset), [7, 8, 9]));
    const fromTime = new RecordingSink();
    await broker.subscribe('s', { from: { kind: 'timestamp', timestampMs: 0 }, credit: 100 }, fromTime);
    await eventually(() => assert.equal(fromTime.received.length, 10));
    await broker.publish('s', 'later');
    await eventually(() => assert.equal(fromOffset.received.at(-1)?.value.toString(), 'later'));
    const latest = new RecordingSink();
    await broker.subscribe('s', { from: { kind: 'latest' }, credit: 100 }, latest);
    await broker.publish('s', 'newest');
    await eventually(() => assert.deepEqual(latest.received.map((d) => text(d.value)), ['newest']));
  } finally {
    await broker.close();
  }
});

test('broker - keyed messages keep their partition and order', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    await broker.createTopic('k', { partitions: 4 });
    const results = [];
    for (let i = 0; i < 40; i++) results.push(await broker.publish('k', String(i), { key: `key-${i % 5}` }));
    for (let i = 5; i < 40; i++) assert.equal(results[i]!.partition, results[i - 5]!.partition);
    for (let i = 5; i < 40; i++) assert.ok(results[i]!.offset > results[i - 5]!.offset);
  } finally {
    await broker.close();
  }
});

test('broker - topics survive restart, and delete removes them', async () => {
  await using dir = await tempDir();
  let broker = await Broker.open({ dir: dir.path });
  await broker.createTopic('a', { partitions: 2, durability: 'interval', syncIntervalMs: 10 });
  await broker.createTopic('b');
  await broker.publish('a', 'one');
  await broker.close();
  broker = await Broker.open({ dir: dir.path });
  try {
    assert.deepEqual(broker.listTopics().map((topic) => topic.name), ['a', 'b']);
    const a = broker.describeTopic('a');
    assert.equal(a.config.partitions, 2);
    assert.equal(a.config.durability, 'interval');
    assert.equal(a.partitions.reduce((n, p) => n + p.nextOffset, 0), 1);
    await broker.deleteTopic('a');
    assert.deepEqual(broker.listTopics().map((topic) => topic.name), ['b']);
    assert.throws(() => broker.describeTopic('a'), (error: unknown) => error instanceof FerryError && error.code === 'UNKNOWN_TOPIC');
    await broker.createTopic('a');
    assert.equal(broker.describeTopic('a').partitions[0]!.nextOffset, 0);
  } finally {
    await broker.close();
  }
});

test('broker - embedded messages offer reject and touch like the client', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    await broker.createTopic('jobs');
    await broker.publish('jobs', 'bad');
    const stream = await broker.subscribe('jobs', { group: 'w', from: 'earliest' });
    for await (const message of stream) {
      await message.touch();
      await message.reject('cannot parse');
      break;
    }
    const dead = await broker.subscribe('jobs.dlq', { from: 'earliest' });
    for await (const message of dead) {
      assert.equal(message.value.toString(), 'bad');
      assert.equal(message.headers['ferry-dlq-reason'], 'cannot parse');
      break;
    }
  } finally {
    await broker.close();
  }
});
