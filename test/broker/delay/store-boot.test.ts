/**
 * Delayed messages across restarts under wall-clock steps, on the simulated clock and disk. On one
 * boot, the machine's monotonic clock (Clock.bootTime) tells a restarted broker how far the wall
 * clock stepped while a message waited, so it is released on time whatever the step and however
 * the broker stopped. After a reboot, or without a boot clock, the wall clock is the only
 * reference (docs/RELIABILITY.md, "Wall-clock steps").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Broker } from '../../../src/broker/broker.js';
import { DELAY_BUCKET_MS } from '../../../src/broker/delay/store.js';
import { SimClock } from '../../sim/sim-clock.js';
import { SimFileSystem } from '../../sim/sim-fs.js';
import { randomInt, seededRandom } from '../../sim/random.js';
import { flush, RecordingSink, SIM_DIR, values, type SimWorld } from '../sim-broker.js';

const MINUTE_MS = 60_000;
const CLOCK_FILE = `${SIM_DIR}/topics/jobs/delayed/clock.json`;

async function openWorld(fs: SimFileSystem, clock: SimClock): Promise<SimWorld> {
  const broker = await Broker.open({ dir: SIM_DIR, fs: fs.session(), clock, random: seededRandom(7) });
  return { fs, clock, broker };
}

/** Stops the broker (cleanly, or by a crash that keeps only what was synced) and starts the next process, `downMs` later. */
async function restart(world: SimWorld, options: { crash?: boolean; downMs?: number; reboot?: boolean } = {}): Promise<SimWorld> {
  if (options.crash) world.fs.crash({ tearLastWrite: false, random: seededRandom(3) });
  else await world.broker.close();
  return openWorld(world.fs, world.clock.nextProcess({ downMs: options.downMs ?? 0, reboot: options.reboot ?? false }));
}

/** Advances `ms` and returns what the sink received meanwhile. */
async function after(world: SimWorld, sink: RecordingSink, ms: number): Promise<string[]> {
  const before = sink.received.length;
  await world.clock.advanceAndSettle(ms);
  await flush();
  return values(sink).slice(before);
}

async function watch(world: SimWorld): Promise<RecordingSink> {
  const sink = new RecordingSink();
  await world.broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 1000 }, sink);
  await flush();
  return sink;
}

for (const crash of [false, true]) {
  for (const stepMs of [10 * MINUTE_MS, -10 * MINUTE_MS]) {
    test(`delay store - a ${stepMs > 0 ? 'forward' : 'backward'} step, then a ${crash ? 'crash' : 'restart'} on the same boot: every message on time`, async () => {
      let world = await openWorld(new SimFileSystem(), new SimClock());
      await world.broker.createTopic('jobs');
      // Due soon (held in memory), beyond the in-memory horizon, and far beyond it.
      await world.broker.publish('jobs', [
        { value: Buffer.from('3s'), delayMs: 3000 },
        { value: Buffer.from('5m'), delayMs: 5 * MINUTE_MS },
        { value: Buffer.from('30m'), delayMs: 30 * MINUTE_MS },
      ]);
      world.clock.jumpWallClock(stepMs);
      await world.clock.advanceAndSettle(1000);
      world = await restart(world, { crash, downMs: 1000 });
      const sink = await watch(world);
      assert.deepEqual(values(sink), [], 'nothing is due 2 s after the publish');
      assert.deepEqual(await after(world, sink, 999), []);
      assert.deepEqual(await after(world, sink, 1), ['3s']);
      assert.deepEqual(await after(world, sink, 5 * MINUTE_MS - 3001), []);
      assert.deepEqual(await after(world, sink, 1), ['5m']);
      assert.deepEqual(await after(world, sink, 25 * MINUTE_MS - 1), []);
      assert.deepEqual(await after(world, sink, 1), ['30m']);
      await world.broker.close();
    });
  }
}

for (const stepMs of [10 * MINUTE_MS, -10 * MINUTE_MS]) {
  test(`delay store - published just after a ${stepMs > 0 ? 'forward' : 'backward'} step, then a crash before any checkpoint: released on time`, async () => {
    let world = await openWorld(new SimFileSystem(), new SimClock());
    await world.broker.createTopic('jobs');
    await world.broker.publish('jobs', [{ value: Buffer.from('before'), delayMs: 5 * MINUTE_MS }]);
    await world.clock.advanceAndSettle(MINUTE_MS);
    world.clock.jumpWallClock(stepMs);
    // Its due time is in the stepped clock's terms, the other's in the old clock's.
    await world.broker.publish('jobs', [{ value: Buffer.from('after'), deliverAtMs: world.clock.nowMs() + 5 * MINUTE_MS }]);
    world = await restart(world, { crash: true });
    const sink = await watch(world);
    assert.deepEqual(await after(world, sink, 4 * MINUTE_MS - 1), []);
    assert.deepEqual(await after(world, sink, 1), ['before']);
    assert.deepEqual(await after(world, sink, MINUTE_MS - 1), []);
    assert.deepEqual(await after(world, sink, 1), ['after']);
    await world.broker.close();
  });
}

test('delay store - steps over several restarts on one boot add up, and epochs no longer needed are dropped', async () => {
  let world = await openWorld(new SimFileSystem(), new SimClock());
  await world.broker.createTopic('jobs');
  await world.broker.publish('jobs', [{ value: Buffer.from('a'), delayMs: 20 * MINUTE_MS }]);
  for (const [index, stepMs] of [7 * MINUTE_MS, -3 * MINUTE_MS, 11 * MINUTE_MS].entries()) {
    world.clock.jumpWallClock(stepMs);
    await world.clock.advanceAndSettle(MINUTE_MS);
    await world.broker.publish('jobs', [{ value: Buffer.from(`b${index}`), delayMs: 10 * MINUTE_MS }]);
    world = await restart(world, { crash: index === 1, downMs: MINUTE_MS });
  }
  // Six minutes have passed: "a" is due in 14, b0 in 5, b1 in 7, b2 in 9.
  const sink = await watch(world);
  assert.deepEqual(await after(world, sink, 5 * MINUTE_MS - 1), []);
  assert.deepEqual(await after(world, sink, 1), ['b0']);
  assert.deepEqual(await after(world, sink, 2 * MINUTE_MS), ['b1']);
  assert.deepEqual(await after(world, sink, 2 * MINUTE_MS), ['b2']);
  assert.deepEqual(await after(world, sink, 5 * MINUTE_MS - 1), []);
  assert.deepEqual(await after(world, sink, 1), ['a']);
  await world.clock.advanceAndSettle(5000); // a checkpoint after the last move
  const file = JSON.parse((await world.fs.readFile(CLOCK_FILE)).toString('utf8')) as { epochs: unknown[] };
  assert.equal(file.epochs.length, 1, 'only the current epoch is left once every message is moved');
  await world.broker.close();
});

test('delay store - after a reboot, or without a boot clock, the wall clock is the reference', async () => {
  // A reboot: the step made before it brings the message forward (the documented limit).
  let world = await openWorld(new SimFileSystem(), new SimClock());
  await world.broker.createTopic('jobs');
  await world.broker.publish('jobs', [{ value: Buffer.from('rebooted'), delayMs: 5 * MINUTE_MS }]);
  world.clock.jumpWallClock(3 * MINUTE_MS);
  world = await restart(world, { reboot: true, downMs: 1000 });
  let sink = await watch(world);
  assert.deepEqual(await after(world, sink, 2 * MINUTE_MS - 1000 - 1), []);
  assert.deepEqual(await after(world, sink, 1), ['rebooted'], 'due by the wall clock: 3 minutes early');
  await world.broker.close();

  // No boot clock at all (no /proc): the same, and no clock file is kept.
  world = await openWorld(new SimFileSystem(), new SimClock(undefined, { bootId: null }));
  await world.broker.createTopic('jobs');
  await world.broker.publish('jobs', [{ value: Buffer.from('no-boot'), delayMs: 5 * MINUTE_MS }]);
  world.clock.jumpWallClock(-MINUTE_MS);
  world = await restart(world);
  assert.equal(await world.fs.stat(CLOCK_FILE), null);
  sink = await watch(world);
  assert.deepEqual(await after(world, sink, 6 * MINUTE_MS - 1), []);
  assert.deepEqual(await after(world, sink, 1), ['no-boot'], 'due by the wall clock: 1 minute late');
  await world.broker.close();
});

test('delay store - random steps, crashes and restarts on one boot: nothing early, late or lost, none moved twice', async () => {
  const seeds = process.env['CI'] ? 20 : 8;
  for (let seed = 1; seed <= seeds; seed++) {
    const random = seededRandom(seed);
    let world = await openWorld(new SimFileSystem(), new SimClock());
    await world.broker.createTopic('jobs');
    const bootMs = (): number => world.clock.bootTime()!.monotonicMs;
    /** Due time of each confirmed message on the boot's monotonic clock. */
    const dueAt = new Map<string, number>();
    /** First delivery of each message, and when the broker that delivered it had opened. */
    const seen = new Map<string, { atMs: number; openedAtMs: number }>();
    let alive = true;
    const watchRun = async (): Promise<void> => {
      const openedAtMs = bootMs();
      const clock = world.clock;
      await world.broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 1_000_000 }, {
        deliver: (delivery) => {
          const value = delivery.value.toString();
          if (!seen.has(value)) seen.set(value, { atMs: clock.bootTime()!.monotonicMs, openedAtMs });
        },
        writable: () => true,
      });
    };
    await watchRun();
    for (let step = 0; step < 24; step++) {
      const action = random();
      if (action < 0.45 && alive) {
        const batch = Array.from({ length: randomInt(random, 1, 20) }, (_, i) => ({
          value: Buffer.from(`s${seed}-${step}-${i}`),
          delayMs: randomInt(random, 1, 3 * DELAY_BUCKET_MS),
        }));
        const publishedMs = bootMs();
        void world.broker.publish('jobs', batch).then(
          () => batch.forEach((message) => dueAt.set(message.value.toString(), publishedMs + message.delayMs)),
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
          alive = false;
          await world.clock.advanceAndSettle(randomInt(random, 0, 2000));
        }
        world = await restart(world, { crash, downMs: randomInt(random, 0, 5000) });
        alive = true;
        await watchRun();
      }
    }
    await world.clock.advanceAndSettle(4 * DELAY_BUCKET_MS);
    await flush();
    const stored = new RecordingSink();
    await world.broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 1_000_000 }, stored);
    await flush();
    const copies = new Map<string, number>();
    for (const value of values(stored)) copies.set(value, (copies.get(value) ?? 0) + 1);
    for (const [value, dueMs] of dueAt) {
      assert.equal(copies.get(value), 1, `seed ${seed}: ${value} stored ${copies.get(value) ?? 0} times`);
      const first = seen.get(value);
      assert.ok(first !== undefined, `seed ${seed}: ${value} never delivered`);
      assert.ok(first.atMs >= dueMs, `seed ${seed}: ${value} delivered ${dueMs - first.atMs} ms early`);
      // Released when due, or when a broker is back: a failed move is tried again a second later.
      const lateMs = first.atMs - Math.max(dueMs, first.openedAtMs);
      assert.ok(lateMs <= 1000, `seed ${seed}: ${value} delivered ${lateMs} ms late`);
    }
    for (const [value, count] of copies) assert.equal(count, 1, `seed ${seed}: ${value} stored ${count} times`);
    await world.broker.close();
  }
});
