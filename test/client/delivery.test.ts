/**
 * Reliable delivery through the client against the real broker over TCP: group settings,
 * delivery counts, nack with and without a delay, reject to the dead-letter topic, touch, delayed
 * messages, redrive, and group administration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, isFerryError, type FerryClient, type Message, type Subscription } from '../../src/client/index.js';
import { eventually } from '../helpers.js';
import { startBroker } from '../transport/harness.js';

/** A real broker over TCP and a connected client, both closed whatever the test's outcome. */
async function withClient(run: (client: FerryClient, port: number) => Promise<void>): Promise<void> {
  const running = await startBroker();
  try {
    const client = await connect({ port: running.port, reconnect: false });
    try {
      await run(client, running.port);
    } finally {
      await client.close();
    }
  } finally {
    await running.close();
  }
}

/** Takes the next message of a subscription, failing the test if none comes within the bound. */
async function next(sub: Subscription, timeoutMs = 5_000): Promise<Message> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const result = await Promise.race([sub.next(), timeout]);
    assert.equal(result.done, false, 'the subscription ended');
    return result.value as Message;
  } finally {
    clearTimeout(timer);
  }
}

/** Every message of a topic, read by a stream subscription from the start. */
async function readAll(client: FerryClient, topic: string): Promise<Message[]> {
  const expected = (await client.describeTopic(topic)).partitions.reduce((sum, p) => sum + p.nextOffset - p.startOffset, 0);
  const sub = await client.subscribe(topic, { from: 'earliest' });
  const messages: Message[] = [];
  while (messages.length < expected) messages.push(await next(sub));
  await sub.close();
  return messages;
}

test('client delivery - the contract: group settings, delivery counts, ack, nack, nack with delay, reject with durable dead letter', async () => {
  await withClient(async (client) => {
    await client.createTopic('jobs');
    for (const value of ['a', 'b', 'c']) await client.publish('jobs', value);
    const sub = await client.subscribe('jobs', {
      group: 'workers',
      ackTimeoutMs: 30_000,
      backoffMs: [50, 100],
      deliveriesMax: 3,
      deadLetterTopic: 'jobs.dlq',
      prefetch: 10,
    });
    const first = new Map<string, Message>();
    for (let i = 0; i < 3; i++) {
      const msg = await next(sub);
      first.set(msg.value.toString(), msg);
      assert.equal(msg.deliveryCount, 1, 'deliveryCount is 1 on first delivery');
    }
    await first.get('a')!.ack();
    await first.get('c')!.reject('bad input');
    // reject() resolved: the dead letter is already stored and the original settled.
    const dlqAfterReject = await client.describeTopic('jobs.dlq');
    assert.equal(dlqAfterReject.partitions[0]!.nextOffset, 1);
    assert.equal((await client.describeGroup('jobs', 'workers')).deadLetteredTotal, 1);

    await first.get('b')!.nack({ delayMs: 0 });
    const second = await next(sub);
    assert.equal(second.value.toString(), 'b');
    assert.equal(second.deliveryCount, 2);
    await second.nack(); // the group's backoff: 100 ms for the second delivery
    const third = await next(sub);
    assert.equal(third.deliveryCount, 3);
    await third.nack(); // deliveriesMax reached: dead-lettered
    await eventually(async () => assert.equal((await client.describeGroup('jobs', 'workers')).deadLetteredTotal, 2));

    const letters = await readAll(client, 'jobs.dlq');
    assert.deepEqual(letters.map((m) => m.value.toString()), ['c', 'b']);
    const rejected = letters[0]!.headers;
    assert.equal(rejected['ferry-dlq-topic'], 'jobs');
    assert.equal(rejected['ferry-dlq-group'], 'workers');
    assert.equal(rejected['ferry-dlq-offset'], String(first.get('c')!.offset));
    assert.equal(rejected['ferry-dlq-partition'], '0');
    assert.equal(rejected['ferry-dlq-deliveries'], '1');
    assert.equal(rejected['ferry-dlq-reason'], 'bad input');
    assert.ok(!Number.isNaN(Date.parse(rejected['ferry-dlq-time']!)));
    assert.equal(letters[1]!.headers['ferry-dlq-deliveries'], '3');
    assert.match(letters[1]!.headers['ferry-dlq-reason']!, /nack/);

    const info = await client.describeGroup('jobs', 'workers');
    assert.equal(info.pending, 0);
    assert.equal(info.inFlight, 0);
    assert.equal(info.redeliveredTotal, 2);
    assert.deepEqual(info.config, { ackTimeoutMs: 30_000, backoffMs: [50, 100], deliveriesMax: 3, deadLetterTopic: 'jobs.dlq' });
    assert.deepEqual(info.partitions, [{ partition: 0, ackFloor: 3, lag: 0 }]);
    await sub.close();
  });
});

test('client delivery - touch restarts the ack timeout; an untouched delivery times out and comes back', async () => {
  await withClient(async (client) => {
    await client.createTopic('jobs');
    await client.publish('jobs', 'slow');
    // prefetch 2: the timed-out delivery still holds one credit until the client settles it.
    const sub = await client.subscribe('jobs', { group: 'w', ackTimeoutMs: 600, backoffMs: [0], prefetch: 2 });
    const msg = await next(sub);
    const touchedUntil = performance.now() + 1_500;
    while (performance.now() < touchedUntil) {
      await msg.touch();
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
    const info = await client.describeGroup('jobs', 'w');
    assert.equal(info.redeliveredTotal, 0, 'touched: never timed out');
    assert.equal(info.inFlight, 1);
    assert.ok(info.oldestUnackedAgeMs >= 1_400, `oldest unacked age ${info.oldestUnackedAgeMs}`);
    // Stop touching: the delivery times out and comes back with the next delivery count.
    const again = await next(sub);
    assert.equal(again.offset, msg.offset);
    assert.equal(again.deliveryCount, 2);
    await again.ack();
    await eventually(async () => assert.equal((await client.describeGroup('jobs', 'w')).pending, 0));
    await sub.close();
  });
});

test('client delivery - delayed messages reach groups no earlier than delayMs or deliverAt', async () => {
  await withClient(async (client) => {
    await client.createTopic('jobs');
    const sub = await client.subscribe('jobs', { group: 'w' });
    const sentMs = Date.now();
    const byDelay = await client.publish('jobs', 'later', { id: 'order-42', delayMs: 400 });
    const byTime = await client.publish('jobs', 'at', { deliverAt: new Date(sentMs + 200) });
    assert.ok(byDelay.deliverAt instanceof Date && byDelay.deliverAt.getTime() >= sentMs + 400);
    assert.ok(byTime.deliverAt instanceof Date && byTime.deliverAt.getTime() === sentMs + 200);
    const firstIn = await next(sub);
    const firstAtMs = Date.now();
    const secondIn = await next(sub);
    const secondAtMs = Date.now();
    assert.equal(firstIn.value.toString(), 'at');
    assert.ok(firstAtMs >= byTime.deliverAt!.getTime(), 'not before deliverAt');
    assert.equal(secondIn.value.toString(), 'later');
    assert.ok(secondAtMs >= byDelay.deliverAt!.getTime(), 'not before the delay');
    // The delayed message kept its id: publishing it again is a duplicate.
    assert.equal((await client.publish('jobs', 'later', { id: 'order-42', delayMs: 400 })).duplicate, true);
    await firstIn.ack();
    await secondIn.ack();
    await sub.close();
  });
});

test('client delivery - redrive moves dead letters back, all, by limit, by offset range or by header', async () => {
  await withClient(async (client) => {
    await client.createTopic('jobs');
    await client.publishBatch('jobs', Array.from({ length: 6 }, (_, i) => ({ value: `m${i}` })));
    const sub = await client.subscribe('jobs', { group: 'w', prefetch: 10 });
    for (let i = 0; i < 6; i++) {
      const msg = await next(sub);
      await msg.reject(i % 2 === 0 ? 'even' : 'odd');
    }
    assert.equal((await client.describeTopic('jobs.dlq')).partitions[0]!.nextOffset, 6);

    assert.deepEqual(await client.redrive('jobs.dlq', { header: ['ferry-dlq-reason', 'odd'], limit: 2 }), { moved: 2 });
    assert.deepEqual(await client.redrive('jobs.dlq', { fromOffset: 0, toOffset: 2 }), { moved: 1 }, 'offset 1 already moved');
    assert.deepEqual(await client.redrive('jobs.dlq'), { moved: 3 });
    assert.deepEqual(await client.redrive('jobs.dlq'), { moved: 0 });

    const back: string[] = [];
    for (let i = 0; i < 6; i++) {
      const msg = await next(sub);
      assert.equal(msg.deliveryCount, 1, 'a redriven message is a new message');
      assert.equal(msg.headers['ferry-dlq-reason'], undefined, 'dead-letter headers are removed');
      back.push(msg.value.toString());
      await msg.ack();
    }
    assert.deepEqual(back, ['m1', 'm3', 'm0', 'm2', 'm4', 'm5']);
    await assert.rejects(client.redrive('jobs.dlq', { limit: -1 }), (e: unknown) => isFerryError(e, 'INVALID_ARGUMENT'));
    await assert.rejects(client.redrive('missing.dlq'), (e: unknown) => isFerryError(e, 'UNKNOWN_TOPIC'));
    await sub.close();
  });
});

test('client delivery - listGroups, describeGroup and resetGroup to earliest, latest, an offset and a time', async () => {
  await withClient(async (client) => {
    await client.createTopic('jobs', { partitions: 2 });
    await client.publishBatch('jobs', Array.from({ length: 10 }, (_, i) => ({ value: `m${i}`, partition: i % 2 })));
    const a = await client.subscribe('jobs', { group: 'a', prefetch: 1 });
    const b = await client.subscribe('jobs', { group: 'b', from: 'latest' });
    await eventually(async () => assert.equal((await client.describeGroup('jobs', 'a')).inFlight, 1));
    const groups = await client.listGroups('jobs');
    assert.deepEqual(groups.map((g) => [g.name, g.pending, g.subscribers]), [['a', 10, 1], ['b', 0, 1]]);
    await a.close();
    await b.close();

    assert.equal((await client.resetGroup('jobs', 'a', 'latest')).pending, 0);
    assert.equal((await client.resetGroup('jobs', 'b', 'earliest')).pending, 10);
    const atOffset = await client.resetGroup('jobs', 'b', 3);
    assert.deepEqual(atOffset.partitions.map((p) => p.ackFloor), [3, 3]);
    assert.equal(atOffset.pending, 4);
    const atTime = await client.resetGroup('jobs', 'b', new Date(Date.now() + 60_000));
    assert.equal(atTime.pending, 0);

    await assert.rejects(client.describeGroup('jobs', 'missing'), (e: unknown) => isFerryError(e, 'UNKNOWN_GROUP'));
    await assert.rejects(client.listGroups('missing'), (e: unknown) => isFerryError(e, 'UNKNOWN_TOPIC'));
  });
});

test('client delivery - reject is refused for streams and for a message whose connection was lost', async () => {
  await withClient(async (client) => {
    await client.createTopic('jobs');
    await client.publish('jobs', 'x');
    const stream = await client.subscribe('jobs', { from: 'earliest' });
    const streamed = await next(stream);
    await assert.rejects(streamed.reject('no'), (e: unknown) => isFerryError(e, 'INVALID_ARGUMENT'));
    await streamed.touch(); // a no-op for streams
    await stream.close();

    const sub = await client.subscribe('jobs', { group: 'w' });
    const msg = await next(sub);
    await msg.ack();
    // Rejecting a message twice: the broker no longer has it in flight.
    await assert.rejects(msg.reject('late'), (e: unknown) => isFerryError(e, 'UNKNOWN_DELIVERY'));
    await sub.close();
    await assert.rejects(msg.reject('closed'), (e: unknown) => isFerryError(e, 'CONNECTION_CLOSED'));
  });
});

test('client delivery - deleting a topic ends its subscriptions with the reason', async () => {
  await withClient(async (client, port) => {
    const admin = await connect({ port, reconnect: false });
    await client.createTopic('jobs');
    const sub = await client.subscribe('jobs', { group: 'w' });
    const ended = assert.rejects(sub.next(), (e: unknown) => isFerryError(e, 'UNKNOWN_SUBSCRIPTION') && /deleted/.test((e as Error).message));
    await admin.deleteTopic('jobs');
    await ended;
    assert.equal(sub.isClosed, true);
    await sub.close();
    await admin.close();
  });
});

test('client delivery - a group delivers higher priorities first; a priority outside 0-9 is refused', async () => {
  await withClient(async (client) => {
    await client.createTopic('jobs');
    for (const [value, priority] of [['low-1', 0], ['high-1', 9], ['mid', 5], ['high-2', 9], ['low-2', undefined]] as const) {
      await client.publish('jobs', value, priority === undefined ? {} : { priority });
    }
    // Priority orders what the group has read ahead, and it reads ahead as far as the credit goes.
    const sub = await client.subscribe('jobs', { group: 'w', prefetch: 10 });
    const order: string[] = [];
    for (let i = 0; i < 5; i++) {
      const msg = await next(sub);
      order.push(msg.value.toString());
      await msg.ack();
    }
    assert.deepEqual(order, ['high-1', 'high-2', 'mid', 'low-1', 'low-2']);
    await assert.rejects(client.publish('jobs', 'x', { priority: 10 }), (e: unknown) => isFerryError(e, 'INVALID_ARGUMENT'));
    await sub.close();
  });
});

test(
  'client delivery - a short delay published after a longer one is not held back by it',
  async () => {
    await withClient(async (client) => {
      await client.createTopic('jobs');
      const sub = await client.subscribe('jobs', { group: 'w' });
      await client.publish('jobs', 'long', { delayMs: 3_000 });
      const short = await client.publish('jobs', 'short', { delayMs: 100 });
      const first = await next(sub, 10_000);
      const lateMs = Date.now() - short.deliverAt!.getTime();
      assert.equal(first.value.toString(), 'short');
      assert.ok(lateMs < 1_000, `the 100 ms message came ${lateMs} ms late`);
      await first.ack();
      await (await next(sub, 10_000)).ack();
      await sub.close();
    });
  },
);
