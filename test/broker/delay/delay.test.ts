/**
 * Delayed messages on the simulated clock and disk: never early, delivered after a restart or a
 * crash exactly once, and memory that follows what is due soon.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../src/errors.js';
import { DELAY_BUCKET_MS } from '../../../src/broker/delay/store.js';
import { SimClock } from '../../sim/sim-clock.js';
import { randomInt, seededRandom } from '../../sim/random.js';
import { flush, openSimBroker, RecordingSink, values } from '../sim-broker.js';

test('delay - a delayed message is stored at once and delivered at its time, never earlier', async () => {
  const { broker, clock } = await openSimBroker();
  await broker.createTopic('jobs');
  const [result] = await broker.publish('jobs', [{ value: Buffer.from('later'), delayMs: 60_000 }, { value: Buffer.from('now') }]);
  assert.equal(result!.deliverAtMs, clock.nowMs() + 60_000);
  assert.equal(result!.durability, 'synced');
  const sink = new RecordingSink();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 10 }, sink);
  await flush();
  assert.deepEqual(values(sink), ['now']);
  await clock.advanceAndSettle(59_999);
  assert.deepEqual(values(sink), ['now']);
  await clock.advanceAndSettle(1);
  await flush();
  assert.deepEqual(values(sink), ['now', 'later']);
  await broker.close();
});

test('delay - deliverAt, delays of zero and in the past, and limits', async () => {
  const { broker, clock } = await openSimBroker();
  await broker.createTopic('jobs');
  await broker.publish('jobs', [
    { value: Buffer.from('at'), deliverAtMs: clock.nowMs() + 5000 },
    { value: Buffer.from('zero'), delayMs: 0 },
    { value: Buffer.from('past'), deliverAtMs: clock.nowMs() - 5000 },
  ]);
  const sink = new RecordingSink();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 10 }, sink);
  await flush();
  assert.deepEqual(values(sink), ['zero', 'past']);
  await clock.advanceAndSettle(5000);
  await flush();
  assert.deepEqual(values(sink), ['zero', 'past', 'at']);
  await assert.rejects(
    broker.publish('jobs', [{ value: Buffer.from('x'), delayMs: 400 * 24 * 3600 * 1000 }]),
    (error: unknown) => error instanceof FerryError && error.code === 'INVALID_ARGUMENT',
  );
  await assert.rejects(
    broker.publish('jobs', [{ value: Buffer.from('x'), delayMs: -1 }]),
    (error: unknown) => error instanceof FerryError && error.code === 'INVALID_ARGUMENT',
  );
  await broker.close();
});

test('delay - a pending delay is delivered after a restart, once', async () => {
  const world = await openSimBroker();
  await world.broker.createTopic('jobs');
  await world.broker.publish('jobs', [{ value: Buffer.from('d'), delayMs: 3 * DELAY_BUCKET_MS }]);
  await world.clock.advanceAndSettle(DELAY_BUCKET_MS);
  await world.broker.close();
  const clock = new SimClock(world.clock.nowMs());
  const { broker } = await openSimBroker(world.fs, clock);
  const sink = new RecordingSink();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 10 }, sink);
  await clock.advanceAndSettle(2 * DELAY_BUCKET_MS - 1);
  assert.equal(sink.received.length, 0);
  await clock.advanceAndSettle(1);
  await flush();
  assert.deepEqual(values(sink), ['d']);
  await clock.advanceAndSettle(10 * DELAY_BUCKET_MS);
  assert.equal(sink.received.length, 1);
  await broker.close();
});

test('delay - crashes at random points lose no confirmed delayed message and move none twice', async () => {
  const seeds = process.env['CI'] ? 30 : 10;
  for (let seed = 1; seed <= seeds; seed++) {
    const random = seededRandom(seed);
    let world = await openSimBroker();
    await world.broker.createTopic('jobs');
    const confirmed = new Set<string>();
    for (let life = 0; life < 3; life++) {
      const batch = Array.from({ length: randomInt(random, 1, 20) }, (_, i) => ({
        value: Buffer.from(`s${seed}-l${life}-${i}`),
        delayMs: randomInt(random, 1, 4 * DELAY_BUCKET_MS),
      }));
      void world.broker.publish('jobs', batch).then(
        () => batch.forEach((message) => confirmed.add(message.value.toString())),
        () => undefined,
      );
      await world.clock.advanceAndSettle(randomInt(random, 0, 3 * DELAY_BUCKET_MS));
      world.fs.crash({ tearLastWrite: random() < 0.5, random });
      world = await openSimBroker(world.fs, new SimClock(world.clock.nowMs() + 1));
    }
    await world.clock.advanceAndSettle(10 * DELAY_BUCKET_MS);
    await flush();
    const sink = new RecordingSink();
    await world.broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 100_000 }, sink);
    await flush();
    const seen = values(sink);
    assert.equal(new Set(seen).size, seen.length, `seed ${seed}: a delayed message was moved twice`);
    for (const value of confirmed) assert.ok(seen.includes(value), `seed ${seed}: ${value} was lost`);
    await world.broker.close();
  }
});

test('delay - many delays spread over time: each delivered once, never early, with only due-soon entries in memory', async () => {
  const { broker, clock } = await openSimBroker();
  await broker.createTopic('jobs');
  const random = seededRandom(3);
  const startMs = clock.nowMs();
  const due = new Map<string, number>();
  const messages = Array.from({ length: 2000 }, (_, i) => {
    const delayMs = randomInt(random, 1, 60 * DELAY_BUCKET_MS);
    due.set(String(i), startMs + delayMs);
    return { value: Buffer.from(String(i)), delayMs };
  });
  for (let i = 0; i < messages.length; i += 500) await broker.publish('jobs', messages.slice(i, i + 500));
  const sink = new RecordingSink();
  const deliveredAt = new Map<string, number>();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 100_000 }, sink);
  const store = await (broker as unknown as { topics: Map<string, { delayed(): Promise<{ schedule: { dueCount: number } }> }> }).topics.get('jobs')!.delayed();
  let dueInMemoryMax = 0;
  for (let minute = 0; minute <= 61; minute++) {
    for (let step = 0; step < 6; step++) {
      await clock.advanceAndSettle(DELAY_BUCKET_MS / 6);
      for (const delivery of sink.received.splice(0)) deliveredAt.set(delivery.value.toString(), clock.nowMs());
      dueInMemoryMax = Math.max(dueInMemoryMax, store.schedule.dueCount);
    }
  }
  assert.equal(deliveredAt.size, 2000);
  for (const [value, at] of deliveredAt) assert.ok(at >= due.get(value)!, `${value} delivered early`);
  assert.ok(dueInMemoryMax < 250, `only a few buckets are in memory (max ${dueInMemoryMax} of 2000 entries)`);
  await broker.close();
});

test('delay - a short delay published after a longer one is delivered at its own time', async () => {
  const { broker, clock } = await openSimBroker();
  await broker.createTopic('jobs');
  await broker.publish('jobs', [{ value: Buffer.from('long'), delayMs: 5000 }]);
  await broker.publish('jobs', [{ value: Buffer.from('short'), delayMs: 200 }]);
  const sink = new RecordingSink();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 10 }, sink);
  await clock.advanceAndSettle(200);
  await flush();
  assert.deepEqual(values(sink), ['short']);
  await clock.advanceAndSettle(4800);
  await flush();
  assert.deepEqual(values(sink), ['short', 'long']);
  await broker.close();
});

test('delay - an id still waiting in the delay store is deduplicated after a restart', async () => {
  const world = await openSimBroker();
  await world.broker.createTopic('jobs');
  const [first] = await world.broker.publish('jobs', [{ value: Buffer.from('d'), id: 'once', delayMs: 60_000 }]);
  await world.broker.close();
  const { broker } = await openSimBroker(world.fs, new SimClock(world.clock.nowMs()));
  const [again] = await broker.publish('jobs', [{ value: Buffer.from('d'), id: 'once', delayMs: 60_000 }]);
  assert.equal(again!.duplicate, true);
  assert.equal(again!.offset, first!.offset);
  await broker.close();
});
