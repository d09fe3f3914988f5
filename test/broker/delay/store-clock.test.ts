/**
 * Delayed messages under wall-clock steps (NTP, `date -s`), on the simulated clock and disk. While
 * the broker runs, a delay is measured on the monotonic clock: a step in either direction neither
 * releases a message early nor holds it back. Across a restart the wall clock is the only reference,
 * so a message may then come early or late, but it is never lost and never moved twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DELAY_BUCKET_MS } from '../../../src/broker/delay/store.js';
import { SimClock } from '../../sim/sim-clock.js';
import { randomInt, seededRandom } from '../../sim/random.js';
import { Broker } from '../../../src/broker/broker.js';
import { SimFileSystem } from '../../sim/sim-fs.js';
import { flush, RecordingSink, SIM_DIR, values, type SimWorld } from '../sim-broker.js';

const MINUTE_MS = 60_000;

/**
 * Opens a broker incarnation on `fs` through a session: once the disk "crashes", whatever the old
 * incarnation still has in flight fails instead of writing into the new one's files.
 */
async function openWorld(fs: SimFileSystem = new SimFileSystem(), clock: SimClock = new SimClock()): Promise<SimWorld> {
  const broker = await Broker.open({ dir: SIM_DIR, fs: fs.session(), clock, random: seededRandom(7) });
  return { fs, clock, broker };
}

/** Restarts the broker on the same disk: a new process, so a new monotonic clock, same wall time. */
async function restart(world: SimWorld, options: { crash?: boolean; random?: () => number } = {}): Promise<SimWorld> {
  if (options.crash) {
    const random = options.random ?? seededRandom(1);
    world.fs.crash({ tearLastWrite: random() < 0.5, random });
  } else {
    await world.broker.close();
  }
  return openWorld(world.fs, new SimClock(world.clock.nowMs()));
}

test('delay store - a forward wall-clock step releases nothing early, and nothing late', async () => {
  const { broker, clock } = await openWorld();
  await broker.createTopic('jobs');
  const sink = new RecordingSink();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 100 }, sink);
  await broker.publish('jobs', [{ value: Buffer.from('5m'), delayMs: 5 * MINUTE_MS }]);
  clock.jumpWallClock(10 * MINUTE_MS);
  await clock.advanceAndSettle(1);
  await flush();
  assert.deepEqual(values(sink), [], 'the step made no time pass');
  // Published after the step, due beyond the in-memory horizon: scheduled from the disk later.
  await broker.publish('jobs', [{ value: Buffer.from('after-step-7m'), delayMs: 7 * MINUTE_MS }]);
  await clock.advanceAndSettle(5 * MINUTE_MS - 2);
  await flush();
  assert.deepEqual(values(sink), []);
  await clock.advanceAndSettle(1);
  await flush();
  assert.deepEqual(values(sink), ['5m'], 'due after 5 minutes of monotonic time, not later');
  // Published at monotonic time 1: due at 7 minutes and 1 ms.
  await clock.advanceAndSettle(2 * MINUTE_MS);
  await flush();
  assert.deepEqual(values(sink), ['5m']);
  await clock.advanceAndSettle(1);
  await flush();
  assert.deepEqual(values(sink), ['5m', 'after-step-7m']);
  await broker.close();
});

test('delay store - a backward wall-clock step holds nothing back, however far the message is', async () => {
  const { broker, clock } = await openWorld();
  await broker.createTopic('jobs');
  const sink = new RecordingSink();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 100 }, sink);
  await broker.publish('jobs', [
    { value: Buffer.from('3s'), delayMs: 3000 },
    { value: Buffer.from('4m'), delayMs: 4 * MINUTE_MS },
  ]);
  clock.jumpWallClock(-10 * MINUTE_MS);
  await broker.publish('jobs', [{ value: Buffer.from('after-step-6m'), delayMs: 6 * MINUTE_MS }]);
  await clock.advanceAndSettle(2999);
  await flush();
  assert.deepEqual(values(sink), []);
  await clock.advanceAndSettle(1);
  await flush();
  assert.deepEqual(values(sink), ['3s']);
  await clock.advanceAndSettle(4 * MINUTE_MS - 3000);
  await flush();
  assert.deepEqual(values(sink), ['3s', '4m']);
  await clock.advanceAndSettle(2 * MINUTE_MS - 1);
  await flush();
  assert.deepEqual(values(sink), ['3s', '4m']);
  await clock.advanceAndSettle(1);
  await flush();
  assert.deepEqual(values(sink), ['3s', '4m', 'after-step-6m']);
  await broker.close();
});

test('delay store - a backward step while a move is under way, then a restart, loses nothing', async () => {
  let world = await openWorld();
  await world.broker.createTopic('jobs');
  await world.broker.publish('jobs', [{ value: Buffer.from('first'), delayMs: 1000 }]);
  // The mover starts (no settling: its reads and its append are still pending) ...
  world.clock.advance(1000);
  // ... when the wall clock steps back and another delayed message is confirmed.
  world.clock.jumpWallClock(-556_000);
  await world.broker.publish('jobs', [{ value: Buffer.from('second'), delayMs: 3000 }]);
  await flush();
  world = await restart(world);
  const sink = new RecordingSink();
  await world.broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 100 }, sink);
  await world.clock.advanceAndSettle(15 * MINUTE_MS);
  await flush();
  assert.deepEqual(values(sink).sort(), ['first', 'second']);
  await world.broker.close();
});

test('delay store - messages published on both sides of a backward step survive a crash, each moved once', async () => {
  let world = await openWorld();
  await world.broker.createTopic('jobs');
  await world.broker.publish('jobs', [{ value: Buffer.from('before'), delayMs: 2000 }]);
  await world.clock.advanceAndSettle(2000);
  await world.clock.advanceAndSettle(1500); // a checkpoint records the move
  world.clock.jumpWallClock(-5 * MINUTE_MS);
  await world.broker.publish('jobs', [{ value: Buffer.from('after'), delayMs: 2000 }]);
  await world.clock.advanceAndSettle(1500); // and one more checkpoint, before the move
  world = await restart(world, { crash: true });
  const sink = new RecordingSink();
  await world.broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 100 }, sink);
  await world.clock.advanceAndSettle(10 * MINUTE_MS);
  await flush();
  assert.deepEqual(values(sink), ['before', 'after']);
  await world.broker.close();
});

test('delay store - random wall-clock steps, crashes and restarts: no delayed message lost, none moved twice, none early within a run', async () => {
  const seeds = process.env['CI'] ? 25 : 12;
  for (let seed = 1; seed <= seeds; seed++) {
    const random = seededRandom(seed);
    let world = await openWorld();
    await world.broker.createTopic('jobs');
    const confirmed = new Map<string, { life: number; monoDueMs: number }>();
    /** First delivery of each message in each run (`life:value`), in monotonic time of that run. */
    const firstSeenMs = new Map<string, number>();
    let life = 0;
    let latestDueMs = 0;
    const watch = async (): Promise<void> => {
      const at = life;
      const clock = world.clock;
      await world.broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 1_000_000 }, {
        deliver: (delivery) => {
          const key = `${at}:${delivery.value.toString()}`;
          if (!firstSeenMs.has(key)) firstSeenMs.set(key, clock.monotonicMs());
        },
        writable: () => true,
      });
    };
    await watch();
    for (let step = 0; step < 24; step++) {
      const action = random();
      if (action < 0.45) {
        const batch = Array.from({ length: randomInt(random, 1, 30) }, (_, i) => ({
          value: Buffer.from(`s${seed}-${step}-${i}`),
          delayMs: randomInt(random, 1, 3 * DELAY_BUCKET_MS),
        }));
        const publishedLife = life;
        const monoMs = world.clock.monotonicMs();
        for (const message of batch) latestDueMs = Math.max(latestDueMs, world.clock.nowMs() + message.delayMs);
        void world.broker.publish('jobs', batch).then(
          () => batch.forEach((message) => confirmed.set(message.value.toString(), { life: publishedLife, monoDueMs: monoMs + message.delayMs })),
          () => undefined,
        );
      } else if (action < 0.65) {
        world.clock.jumpWallClock(randomInt(random, -10 * MINUTE_MS, 10 * MINUTE_MS));
      } else if (action < 0.9) {
        await world.clock.advanceAndSettle(randomInt(random, 0, DELAY_BUCKET_MS));
      } else {
        const crash = random() < 0.7;
        if (crash && random() < 0.5) {
          // The disk stops mid-work: the crash lands between any two I/O steps.
          world.fs.cutPowerAfter(randomInt(random, 0, 40));
          await world.clock.advanceAndSettle(randomInt(random, 0, 2000));
        }
        world = await restart(world, { crash, random });
        life++;
        await watch();
      }
    }
    // Let everything come due: after a restart, due times count on the wall clock, wherever the
    // steps left it.
    await world.clock.advanceAndSettle(1);
    world.clock.jumpWallClock(Math.max(0, latestDueMs - world.clock.nowMs()));
    world = await restart(world);
    await world.clock.advanceAndSettle(5 * DELAY_BUCKET_MS);
    await flush();
    const stored = new RecordingSink();
    await world.broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 1_000_000 }, stored);
    await flush();
    const copies = new Map<string, number>();
    for (const value of values(stored)) copies.set(value, (copies.get(value) ?? 0) + 1);
    for (const [value, { life: publishedLife, monoDueMs }] of confirmed) {
      assert.ok(copies.has(value), `seed ${seed}: ${value} was lost`);
      assert.equal(copies.get(value), 1, `seed ${seed}: ${value} was moved ${copies.get(value)} times`);
      const seenMs = firstSeenMs.get(`${publishedLife}:${value}`);
      if (seenMs !== undefined) assert.ok(seenMs >= monoDueMs, `seed ${seed}: ${value} was delivered ${monoDueMs - seenMs} ms early within one run`);
    }
    for (const [value, count] of copies) assert.equal(count, 1, `seed ${seed}: ${value} stored ${count} times`);
    await world.broker.close();
  }
});
