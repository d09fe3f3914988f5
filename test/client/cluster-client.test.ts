/**
 * The client's cluster mode (several servers, routing by leader) against today's real single
 * broker: the bootstrap tries the servers in turn; a broker that does not know METADATA is taken
 * as a single broker leading every topic (the probe costs one connection, before the client is
 * handed out, and is never repeated); requests, publishes with generated ids, group and stream
 * subscriptions all work through the router; a lost connection is invisible to the application:
 * publishes are sent again (stored once) and subscriptions resume. Leader changes and NOT_LEADER
 * need brokers in cluster mode: test/cluster/ drives them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { connect, isFerryError, type FerryClient, type Message } from '../../src/client/index.js';
import { eventually } from '../helpers.js';
import { CuttableProxy, startBroker } from '../transport/harness.js';

/** A loopback port nothing listens on (bound, then released). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function stored(client: FerryClient, topic: string): Promise<number> {
  const info = await client.describeTopic(topic);
  return info.partitions.reduce((sum, p) => sum + p.nextOffset - p.startOffset, 0);
}

async function take(iterator: AsyncIterator<Message>, count: number): Promise<Message[]> {
  const messages: Message[] = [];
  while (messages.length < count) messages.push((await iterator.next()).value as Message);
  return messages;
}

test('cluster client - several servers: a dead one is skipped, a broker without METADATA serves everything as a single broker', async () => {
  const running = await startBroker();
  const dead = await deadPort();
  const client = await connect({ servers: [`127.0.0.1:${dead}`, `127.0.0.1:${running.port}`] });
  const errors: unknown[] = [];
  client.on('error', (error) => errors.push(error));
  try {
    assert.equal(client.isCluster, true);
    assert.equal(client.isConnected, true);
    await client.createTopic('orders', { partitions: 2 });
    const result = await client.publish('orders', 'one', { key: 'k' });
    assert.equal(result.offset, 0);
    await client.publishBatch('orders', [{ value: 'two', key: 'k' }, { value: 'three', key: 'k' }]);
    const sub = await client.subscribe('orders', { group: 'billing', from: 'earliest' });
    const messages = await take(sub[Symbol.asyncIterator](), 3);
    assert.deepEqual(messages.map((m) => m.value.toString()), ['one', 'two', 'three']);
    for (const message of messages) {
      // In cluster mode every publish carries an id, so a publish sent twice is stored once.
      assert.match(message.headers['ferry-id'] ?? '', new RegExp(`^${client.clientId}-\\d+$`));
      await message.ack();
    }
    await eventually(async () => assert.equal((await client.describeGroup('orders', 'billing')).pending, 0));
    assert.deepEqual((await client.listGroups('orders')).map((g) => g.name), ['billing']);
    assert.deepEqual((await client.listTopics()).map((t) => t.name), ['orders']);

    const metadata = await client.metadata();
    assert.deepEqual(metadata, {
      cluster: false,
      brokers: [{ nodeId: '', address: `127.0.0.1:${running.port}`, alive: true }],
      topics: [{ topic: 'orders', leader: '', address: `127.0.0.1:${running.port}`, epoch: 0 }],
    });
    const status = await client.clusterStatus();
    assert.deepEqual(status, { cluster: false, brokers: [{ nodeId: '', address: `127.0.0.1:${running.port}`, alive: true, topicsLed: 1, replicaLag: 0 }] });
    const info = await client.describeTopic('orders');
    assert.equal(info.partitions[0]!.leader, undefined, 'a single broker sends no replication state');
    await sub.close();
    assert.deepEqual(errors, []);
  } finally {
    await client.close();
    await running.close();
  }
});

test('cluster client - a lost connection: unconfirmed publishes are sent again and stored once, a group resumes, nothing is lost', async () => {
  const running = await startBroker();
  const proxy = await CuttableProxy.start(running.port);
  const direct = await connect({ port: running.port, reconnect: false });
  const client = await connect({ servers: [`127.0.0.1:${proxy.port}`, `127.0.0.1:${await deadPort()}`] });
  try {
    await client.createTopic('t', { durability: 'always' });
    await client.publishBatch('t', Array.from({ length: 10 }, (_, i) => ({ value: `job${i}` })));
    const sub = await client.subscribe('t', { group: 'workers', from: 'earliest', prefetch: 4 });
    const iterator = sub[Symbol.asyncIterator]();
    const done = new Set<string>();
    for (const message of await take(iterator, 4)) {
      done.add(message.value.toString());
      await message.ack();
    }
    await eventually(async () => assert.equal((await direct.describeGroup('t', 'workers')).pending, 6));

    proxy.holdReplies();
    const publishes = Array.from({ length: 50 }, (_, i) => client.publish('t', `late${i}`));
    // Everything reached the broker and was stored; the confirmations are lost with the connection.
    await eventually(async () => assert.equal(await stored(direct, 't'), 60));
    proxy.cut();
    const results = await Promise.all(publishes);
    assert.ok(results.every((r) => r.duplicate === true), 'the retries were recognised by id');
    assert.equal(client.publishesRetried >= 50, true);
    assert.equal(await stored(direct, 't'), 60, 'nothing stored twice');

    // The group subscription was made again on the new connection; its state is the broker's.
    while (done.size < 60) {
      const message = (await iterator.next()).value as Message;
      done.add(message.value.toString());
      await message.ack();
    }
    assert.equal(done.size, 60);
    await sub.close();
  } finally {
    await client.close();
    await direct.close();
    await proxy.close();
    await running.close();
  }
});

test('cluster client - a stream resumes after the last offset it delivered, without gaps or duplicates', async () => {
  const running = await startBroker();
  const proxy = await CuttableProxy.start(running.port);
  const client = await connect({ servers: [`127.0.0.1:${proxy.port}`, `127.0.0.1:${await deadPort()}`] });
  try {
    await client.createTopic('s');
    await client.publishBatch('s', Array.from({ length: 20 }, (_, i) => ({ value: String(i) })));
    const sub = await client.subscribe('s', { from: 'earliest', prefetch: 5 });
    const iterator = sub[Symbol.asyncIterator]();
    const offsets = (await take(iterator, 7)).map((m) => m.offset);
    proxy.cut();
    const after = await client.publish('s', 'after');
    assert.equal(after.offset, 20);
    while (offsets.at(-1)! < after.offset) offsets.push(((await iterator.next()).value as Message).offset);
    assert.deepEqual(offsets, Array.from({ length: 21 }, (_, i) => i));
    await sub.close();
  } finally {
    await client.close();
    await proxy.close();
    await running.close();
  }
});

test('cluster client - with no broker left, a publish rejects with a typed error within its timeout, never silently', async () => {
  const running = await startBroker();
  const client = await connect({ servers: [`127.0.0.1:${running.port}`, `127.0.0.1:${await deadPort()}`], requestTimeoutMs: 800 });
  try {
    await client.createTopic('t');
    await running.close();
    const startedMs = performance.now();
    const outcome = await client.publish('t', 'x').then(
      () => 'stored',
      (error: unknown) => error,
    );
    const tookMs = performance.now() - startedMs;
    assert.ok(isFerryError(outcome), String(outcome));
    assert.ok(['CONNECTION_REFUSED', 'CONNECTION_CLOSED', 'TIMEOUT'].includes(outcome.code), outcome.code);
    assert.ok(tookMs < 800 + 500, `rejected after ${Math.round(tookMs)} ms`);
    // A request that cannot be repeated safely is not: an unknown topic is the broker's final answer.
  } finally {
    await client.close();
  }
});

test('cluster client - a non-retryable refusal is final: UNKNOWN_TOPIC rejects at once; bad replicas are refused locally', async () => {
  const running = await startBroker();
  const client = await connect({ servers: [`127.0.0.1:${running.port}`, `127.0.0.1:${await deadPort()}`] });
  try {
    const startedMs = performance.now();
    await assert.rejects(client.publish('nope', 'x'), (error: unknown) => isFerryError(error, 'UNKNOWN_TOPIC'));
    assert.ok(performance.now() - startedMs < 1_000);
    await assert.rejects(client.createTopic('t', { replicas: 0 }), (error: unknown) => isFerryError(error, 'INVALID_ARGUMENT'));
    await assert.rejects(client.createTopic('t', { replicas: 256 }), (error: unknown) => isFerryError(error, 'INVALID_ARGUMENT'));
    await assert.rejects(client.createTopic('t', { replicas: 2, minInSync: 3 }), /minInSync \(3\) cannot exceed replicas \(2\)/);
  } finally {
    await client.close();
    await running.close();
  }
});

test('cluster client - one server that does not announce cluster mode is a plain client: no METADATA, the old reconnect', async () => {
  const running = await startBroker();
  const client = await connect({ port: running.port });
  const events: string[] = [];
  client.on('reconnecting', () => events.push('reconnecting'));
  try {
    assert.equal(client.isCluster, false);
    await client.createTopic('t');
    await client.publish('t', 'x');
    const metadata = await client.metadata();
    assert.deepEqual(metadata, {
      cluster: false,
      brokers: [{ nodeId: '', address: `127.0.0.1:${running.port}`, alive: true }],
      topics: [{ topic: 't', leader: '', address: `127.0.0.1:${running.port}`, epoch: 0 }],
    });
    assert.equal((await client.clusterStatus()).brokers[0]!.topicsLed, 1);
    // METADATA would have closed the connection (today's broker does not know it): it stayed up.
    assert.deepEqual(events, []);
    assert.equal(client.isConnected, true);
  } finally {
    await client.close();
    await running.close();
  }
});
