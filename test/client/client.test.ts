import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, FerryError, isFerryError, type Message } from '../../src/client/index.js';
import { eventually } from '../helpers.js';
import { startBroker, startBrokerWith } from '../transport/harness.js';

test('client - the contract example: create, publish, subscribe in a group, ack', async () => {
  const running = await startBroker();
  try {
    const client = await connect({ url: `ferry://127.0.0.1:${running.port}` });
    await client.createTopic('orders', { durability: 'always' });
    const result = await client.publish('orders', Buffer.from('hi'), { key: 'k1', headers: { source: 'web' } });
    assert.deepEqual(result, { topic: 'orders', partition: 0, offset: 0, durability: 'synced' });
    const results = await client.publishBatch('orders', [{ value: 'a' }, { value: new Uint8Array([98]), key: 'k2' }]);
    assert.deepEqual(results.map((r) => r.offset), [1, 2]);
    const sub = await client.subscribe('orders', { group: 'billing', from: 'earliest', prefetch: 256 });
    const seen: Message[] = [];
    for await (const msg of sub) {
      seen.push(msg);
      await msg.ack();
      if (seen.length === 3) break;
    }
    assert.equal(sub.isClosed, true, 'break closes the subscription');
    assert.deepEqual(seen.map((m) => m.value.toString()), ['hi', 'a', 'b']);
    assert.deepEqual(seen[0]!.headers, { source: 'web' });
    assert.equal(seen[0]!.key?.toString(), 'k1');
    assert.equal(seen[1]!.key, null);
    assert.equal(seen[0]!.deliveryCount, 1);
    assert.ok(seen[0]!.timestamp instanceof Date && Math.abs(seen[0]!.timestamp.getTime() - Date.now()) < 60_000);
    assert.deepEqual((await client.listTopics()).map((t) => t.name), ['orders']);
    assert.equal((await client.describeTopic('orders')).partitions[0]!.nextOffset, 3);
    await client.deleteTopic('orders');
    await assert.rejects(client.describeTopic('orders'), (e: unknown) => isFerryError(e, 'UNKNOWN_TOPIC'));
    await client.close();
  } finally {
    await running.close();
  }
});

test('client - typed errors carry the server code', async () => {
  const running = await startBroker();
  try {
    const client = await connect({ port: running.port });
    await client.createTopic('t');
    await assert.rejects(client.createTopic('t'), (e: unknown) => e instanceof FerryError && e.code === 'TOPIC_EXISTS');
    await assert.rejects(client.publish('missing', 'x'), (e: unknown) => isFerryError(e, 'UNKNOWN_TOPIC'));
    await assert.rejects(client.subscribe('t', { prefetch: 0 }), (e: unknown) => isFerryError(e, 'INVALID_ARGUMENT'));
    await client.close();
    await assert.rejects(client.publish('t', 'x'), (e: unknown) => isFerryError(e, 'CONNECTION_CLOSED'));
  } finally {
    await running.close();
  }
});

test('client - connecting to nothing is CONNECTION_REFUSED', async () => {
  const running = await startBroker();
  const port = running.port;
  await running.close();
  await assert.rejects(connect({ port, reconnect: false }), (e: unknown) => isFerryError(e, 'CONNECTION_REFUSED'));
});

test('client - 1,000 publishes in flight are pipelined and each gets its own offset', async () => {
  const running = await startBroker();
  try {
    const client = await connect({ port: running.port });
    await client.createTopic('t', { partitions: 1, durability: 'always' });
    const pending = Array.from({ length: 1000 }, (_, i) => client.publish('t', `m${i}`));
    const results = await Promise.all(pending);
    assert.deepEqual(results.map((r) => r.offset), Array.from({ length: 1000 }, (_, i) => i));
    assert.ok(results.every((r) => r.durability === 'synced'));
    // Keyed messages land on a stable partition.
    await client.createTopic('keyed', { partitions: 4 });
    const keyed = await Promise.all(Array.from({ length: 20 }, () => client.publish('keyed', 'v', { key: 'same' })));
    assert.equal(new Set(keyed.map((r) => r.partition)).size, 1);
    await client.close();
  } finally {
    await running.close();
  }
});

test('client - a group consumer granting 10 credits never holds more than 10 unacknowledged', async () => {
  const running = await startBroker();
  try {
    const client = await connect({ port: running.port });
    await client.createTopic('t');
    await client.publishBatch('t', Array.from({ length: 100 }, (_, i) => ({ value: String(i) })));
    const sub = await client.subscribe('t', { group: 'g', from: 'earliest', prefetch: 10 });
    const held: Message[] = [];
    let maxHeld = 0;
    const iterator = sub[Symbol.asyncIterator]();
    let received = 0;
    while (received < 100) {
      const { value: msg } = await iterator.next();
      received++;
      held.push(msg as Message);
      maxHeld = Math.max(maxHeld, held.length + sub.buffered);
      assert.ok(held.length + sub.buffered <= 10, `holding ${held.length + sub.buffered}`);
      if (held.length === 10) {
        // Round trips give the server every chance to over-deliver before we ack.
        await client.describeTopic('t');
        await client.describeTopic('t');
        assert.equal(sub.buffered, 0);
        for (const m of held.splice(0, 5)) await m.ack();
      }
    }
    assert.equal(maxHeld, 10);
    for (const m of held) await m.ack();
    await sub.close();
    await client.close();
  } finally {
    await running.close();
  }
});

test('client - a stream subscription buffers at most prefetch messages', async () => {
  const running = await startBroker();
  try {
    const client = await connect({ port: running.port });
    await client.createTopic('t');
    await client.publishBatch('t', Array.from({ length: 50 }, (_, i) => ({ value: String(i) })));
    const sub = await client.subscribe('t', { from: 'earliest', prefetch: 8 });
    await eventually(() => assert.equal(sub.buffered, 8));
    await client.describeTopic('t');
    assert.equal(sub.buffered, 8);
    const values: string[] = [];
    for await (const msg of sub) {
      values.push(msg.value.toString());
      assert.ok(sub.buffered <= 8);
      if (values.length === 50) break;
    }
    assert.deepEqual(values, Array.from({ length: 50 }, (_, i) => String(i)));
    await client.close();
  } finally {
    await running.close();
  }
});

test('client - nack redelivers with a higher delivery count', async () => {
  const running = await startBroker();
  try {
    const client = await connect({ port: running.port });
    await client.createTopic('t');
    await client.publish('t', 'again');
    const sub = await client.subscribe('t', { group: 'g', from: 'earliest', prefetch: 1 });
    const iterator = sub[Symbol.asyncIterator]();
    const first = (await iterator.next()).value as Message;
    assert.equal(first.deliveryCount, 1);
    await first.nack();
    const second = (await iterator.next()).value as Message;
    assert.equal(second.offset, first.offset);
    assert.equal(second.deliveryCount, 2);
    await second.ack();
    await sub.close();
    await client.close();
  } finally {
    await running.close();
  }
});

test('client - publishes issued in one turn are coalesced into few frames', async () => {
  const running = await startBrokerWith({});
  try {
    const client = await connect({ port: running.port });
    await client.createTopic('t');
    const framesBefore = running.server!.connectionStats()[0]!.framesIn;
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => client.publish('t', `v${i}`)));
    assert.deepEqual(results.map((r) => r.offset), Array.from({ length: 500 }, (_, i) => i));
    const frames = running.server!.connectionStats()[0]!.framesIn - framesBefore;
    assert.ok(frames <= 5, `${frames} frames for 500 publishes`);
    await client.close();
  } finally {
    await running.close();
  }
});

test('client - a message larger than the frame limit is refused locally', async () => {
  const running = await startBroker();
  try {
    const client = await connect({ port: running.port });
    await client.createTopic('t');
    const limit = client.server!.frameBytesMax;
    await assert.rejects(client.publish('t', Buffer.alloc(limit)), (e: unknown) => isFerryError(e, 'RECORD_TOO_LARGE'));
    await assert.rejects(
      client.publishBatch('t', [{ value: Buffer.alloc(limit / 2) }, { value: Buffer.alloc(limit / 2) }]),
      (e: unknown) => isFerryError(e, 'BATCH_TOO_LARGE'),
    );
    assert.equal((await client.publish('t', 'still fine')).offset, 0);
    await client.close();
  } finally {
    await running.close();
  }
});

test('client - a message id makes a repeated publish a duplicate with the first offset', async () => {
  const running = await startBroker();
  try {
    const client = await connect({ port: running.port });
    await client.createTopic('t');
    const first = await client.publish('t', 'once', { id: 'order-1' });
    const again = await client.publish('t', 'once', { id: 'order-1' });
    assert.equal(again.offset, first.offset);
    assert.equal(again.duplicate, true);
    assert.equal(first.duplicate, undefined);
    await client.close();
  } finally {
    await running.close();
  }
});
