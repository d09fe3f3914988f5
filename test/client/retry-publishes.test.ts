/**
 * `retryPublishes`: publishes left unconfirmed by a lost connection are sent again after the
 * reconnect with their ids, so a message the broker had stored before the cut is not stored twice.
 * A proxy that holds the server's replies makes "stored, but never confirmed" deterministic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, isFerryError, type FerryClient, type Message } from '../../src/client/index.js';
import { eventually } from '../helpers.js';
import { CuttableProxy, startBroker } from '../transport/harness.js';

const FAST_RECONNECT = { delayMsMin: 10, delayMsMax: 50, attemptsMax: 200 };

async function stored(client: FerryClient, topic: string): Promise<number> {
  const info = await client.describeTopic(topic);
  return info.partitions.reduce((sum, p) => sum + p.nextOffset - p.startOffset, 0);
}

async function readValues(client: FerryClient, topic: string, count: number): Promise<Message[]> {
  const sub = await client.subscribe(topic, { from: 'earliest', prefetch: 1000 });
  const messages: Message[] = [];
  for await (const message of sub) {
    messages.push(message);
    if (messages.length === count) break;
  }
  return messages;
}

test('retry publishes - publishes stored but unconfirmed at a cut are sent again and stored once', async () => {
  const running = await startBroker();
  const proxy = await CuttableProxy.start(running.port);
  const direct = await connect({ port: running.port, reconnect: false });
  const client = await connect({ port: proxy.port, reconnect: FAST_RECONNECT, retryPublishes: true });
  try {
    await client.createTopic('t');
    await client.publish('t', 'before');
    proxy.holdReplies();
    const singles = Array.from({ length: 100 }, (_, i) => client.publish('t', `v${i}`, i === 0 ? { id: 'order-1' } : {}));
    const batch = client.publishBatch('t', Array.from({ length: 20 }, (_, i) => ({ value: `b${i}` })));
    // Everything reached the broker and was stored; the confirmations are held back.
    await eventually(async () => assert.equal(await stored(direct, 't'), 121));
    proxy.cut();
    const results = await Promise.all(singles);
    const batchResults = await batch;
    assert.equal(client.publishesRetried, 101, 'every unconfirmed call was sent again');
    assert.ok([...results, ...batchResults].every((r) => r.duplicate === true), 'the retries were recognised by id');
    assert.deepEqual(results.map((r) => r.offset), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.equal(await stored(direct, 't'), 121, 'nothing stored twice');

    const messages = await readValues(direct, 't', 121);
    assert.equal(new Set(messages.map((m) => m.value.toString())).size, 121);
    assert.equal(messages[1]!.headers['ferry-id'], 'order-1', 'an application id is kept');
    assert.ok(messages[2]!.headers['ferry-id']!.startsWith(`${client.clientId}-`), 'a generated id names the client');
    // After the reconnect, new publishes work as before.
    assert.equal((await client.publish('t', 'after')).offset, 121);
  } finally {
    await client.close();
    await direct.close();
    await proxy.close();
    await running.close();
  }
});

test('retry publishes - a publish first sent before the retry window is rejected, not retried', async () => {
  const running = await startBroker();
  const proxy = await CuttableProxy.start(running.port);
  const direct = await connect({ port: running.port, reconnect: false });
  const client = await connect({ port: proxy.port, reconnect: FAST_RECONNECT, retryPublishes: { windowMs: 50 } });
  try {
    await client.createTopic('t');
    proxy.holdReplies();
    const late = client.publish('t', 'slow').then(
      () => assert.fail('confirmed without a reply'),
      (error: unknown) => error,
    );
    await eventually(async () => assert.equal(await stored(direct, 't'), 1));
    await new Promise((resolve) => setTimeout(resolve, 60));
    proxy.cut();
    const error = await late;
    assert.ok(isFerryError(error, 'CONNECTION_CLOSED'), String(error));
    assert.match((error as Error).message, /not retried/);
    assert.equal(client.publishesRetried, 0);
  } finally {
    await client.close();
    await direct.close();
    await proxy.close();
    await running.close();
  }
});

test('retry publishes - without the option unconfirmed publishes still reject with CONNECTION_CLOSED', async () => {
  const running = await startBroker();
  const proxy = await CuttableProxy.start(running.port);
  const client = await connect({ port: proxy.port, reconnect: FAST_RECONNECT });
  try {
    await client.createTopic('t');
    proxy.holdReplies();
    const pending = client.publish('t', 'x').then(
      () => 'confirmed',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    proxy.cut();
    assert.ok(isFerryError(await pending, 'CONNECTION_CLOSED'));
    assert.equal(client.publishesRetried, 0);
  } finally {
    await client.close();
    await proxy.close();
    await running.close();
  }
});
