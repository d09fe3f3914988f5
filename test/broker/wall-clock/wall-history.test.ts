/**
 * The broker's record of the wall clock's steps on one boot, on the simulated clock and disk: a
 * restarted process reads a stored timestamp's age as the boot's monotonic clock measured it, so a
 * step before a restart neither ages segments (retention) nor forgets dedup ids early. After a
 * reboot, or without a boot clock, the wall clock is the only reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Broker } from '../../../src/broker/broker.js';
import { STEP_TOLERANCE_MS, WALL_EPOCHS_MAX, WALL_HISTORY_FILE, WallHistory } from '../../../src/broker/wall-clock/wall-history.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { SimClock } from '../../sim/sim-clock.js';
import { SimFileSystem } from '../../sim/sim-fs.js';
import { seededRandom } from '../../sim/random.js';
import { SIM_DIR, type SimWorld } from '../sim-broker.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
const HISTORY_PATH = `${SIM_DIR}/${WALL_HISTORY_FILE}`;

async function openHistory(fs: SimFileSystem, clock: SimClock): Promise<WallHistory> {
  await fs.mkdir(SIM_DIR);
  return WallHistory.open({ fs, dir: SIM_DIR, clock, logger: silentLogger });
}

test('wall history - a stamp written before a forward step reads its real age in the next process', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const history = await openHistory(fs, clock);
  const stampMs = clock.nowMs();
  await clock.advanceAndSettle(10_000);
  clock.jumpWallClock(30 * MINUTE_MS);
  await history.observe();
  const next = clock.nextProcess({ downMs: 5_000 });
  const reopened = await openHistory(fs, next);
  assert.equal(reopened.ageMs(stampMs), 15_000, '10 s before the kill and 5 s down; the step is not age');
  assert.equal(reopened.ageMs(next.nowMs() - 1_000), 1_000, 'a stamp of the new epoch');
  assert.equal(reopened.aheadMsMax(), 30 * MINUTE_MS);
});

test('wall history - a step made while no process ran is found at open', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  await openHistory(fs, clock);
  const stampMs = clock.nowMs();
  const next = clock.nextProcess({ downMs: 2_000 });
  next.jumpWallClock(DAY_MS);
  const reopened = await openHistory(fs, next);
  assert.equal(reopened.ageMs(stampMs), 2_000);
});

test('wall history - after a backward step no stamp reads older than it is', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const history = await openHistory(fs, clock);
  const beforeMs = clock.nowMs();
  await clock.advanceAndSettle(1_000);
  clock.jumpWallClock(-10 * MINUTE_MS);
  await history.observe();
  const afterMs = clock.nowMs();
  await clock.advanceAndSettle(3_000);
  const reopened = await openHistory(fs, clock.nextProcess());
  assert.equal(reopened.ageMs(afterMs), 3_000, 'written after the step: read exactly');
  assert.ok(reopened.ageMs(beforeMs) <= 4_000, 'written before it: never older than it is');
  assert.equal(reopened.aheadMsMax(), 0, 'the clock only went back');
});

test('wall history - after a reboot, and without a boot clock, the wall clock is the reference', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const history = await openHistory(fs, clock);
  const stampMs = clock.nowMs();
  clock.jumpWallClock(DAY_MS);
  await history.observe();
  const rebooted = await openHistory(fs, clock.nextProcess({ reboot: true }));
  assert.equal(rebooted.ageMs(stampMs), DAY_MS);

  const bootless = new SimClock(undefined, { bootId: null });
  const plain = await openHistory(new SimFileSystem(), bootless);
  bootless.jumpWallClock(DAY_MS);
  assert.equal(plain.observe(), undefined);
  assert.equal(plain.ageMs(bootless.nowMs() - 5_000), 5_000);
});

test('wall history - the broker opens when the file cannot be written; the next append fails with DISK_FULL, then works', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  await fs.mkdir(SIM_DIR);
  fs.failNext('open', 'ENOSPC', WALL_HISTORY_FILE);
  fs.failNext('open', 'ENOSPC', WALL_HISTORY_FILE);
  const history = await WallHistory.open({ fs, dir: SIM_DIR, clock, logger: silentLogger });
  assert.equal(await fs.stat(HISTORY_PATH), null);
  await assert.rejects(history.observe()!, (error: unknown) => (error as { code?: string }).code === 'DISK_FULL');
  await history.observe();
  assert.equal(history.observe(), undefined, 'written: nothing to wait for');
  assert.notEqual(await fs.stat(HISTORY_PATH), null);
});

test('wall history - random steps and restarts: no stamp ever reads older than it is', () =>
  fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          advanceMs: fc.integer({ min: 0, max: 5 * MINUTE_MS }),
          stepMs: fc.integer({ min: -DAY_MS, max: DAY_MS }),
          restart: fc.boolean(),
          stamp: fc.boolean(),
        }),
        { minLength: 1, maxLength: 20 },
      ),
      async (moves) => {
        const fs = new SimFileSystem();
        let clock = new SimClock();
        let history = await openHistory(fs, clock);
        /** Stamps with the boot-monotonic time they were written at. */
        const stamps: Array<{ stampMs: number; bootMs: number }> = [];
        for (const move of moves) {
          await clock.advanceAndSettle(move.advanceMs);
          clock.jumpWallClock(move.stepMs);
          if (move.restart) {
            clock = clock.nextProcess({ downMs: move.advanceMs });
            history = await openHistory(fs, clock);
          }
          if (move.stamp) {
            // As an append does: observe first, then stamp.
            await history.observe();
            stamps.push({ stampMs: clock.nowMs(), bootMs: clock.bootTime()!.monotonicMs });
          }
        }
        const bootNowMs = clock.bootTime()!.monotonicMs;
        for (const { stampMs, bootMs } of stamps) {
          assert.ok(history.ageMs(stampMs) <= bootNowMs - bootMs + STEP_TOLERANCE_MS, `stamp ${stampMs} read as ${history.ageMs(stampMs)} ms old, is ${bootNowMs - bootMs}`);
        }
      },
    ),
    { numRuns: process.env.CI ? 300 : 100 },
  ));

test('wall history - past its cap the oldest epochs merge, reading their stamps younger', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const history = await openHistory(fs, clock);
  const firstMs = clock.nowMs();
  for (let step = 0; step < WALL_EPOCHS_MAX + 5; step++) {
    await clock.advanceAndSettle(1_000);
    clock.jumpWallClock(step % 2 === 0 ? MINUTE_MS : -MINUTE_MS / 2);
    await history.observe();
  }
  const file = JSON.parse((await fs.readFile(HISTORY_PATH)).toString('utf8')) as { epochs: unknown[] };
  assert.equal(file.epochs.length, WALL_EPOCHS_MAX);
  assert.ok(history.ageMs(firstMs) <= (WALL_EPOCHS_MAX + 5) * 1_000, `the first stamp read as ${history.ageMs(firstMs)} ms old`);
});

// ---- across a broker restart ------------------------------------------------------------------

async function openWorld(fs: SimFileSystem, clock: SimClock): Promise<SimWorld> {
  const broker = await Broker.open({ dir: SIM_DIR, fs: fs.session(), clock, random: seededRandom(7) });
  return { fs, clock, broker };
}

async function restart(world: SimWorld, crash: boolean): Promise<SimWorld> {
  if (crash) world.fs.crash({ tearLastWrite: false, random: seededRandom(3) });
  else await world.broker.close();
  return openWorld(world.fs, world.clock.nextProcess({ downMs: 1_000 }));
}

for (const crash of [false, true]) {
  test(`wall history - a forward step before a restart (${crash ? 'crash' : 'clean close'}) forgets no dedup id`, async () => {
    let world = await openWorld(new SimFileSystem(), new SimClock());
    await world.broker.createTopic('orders', { dedupWindowMs: 2 * MINUTE_MS, durability: 'always' });
    const [first] = await world.broker.publish('orders', [{ value: Buffer.from('a'), id: 'order-1' }]);
    await world.clock.advanceAndSettle(10_000);
    world.clock.jumpWallClock(10 * MINUTE_MS);
    world = await restart(world, crash);
    const [retried] = await world.broker.publish('orders', [{ value: Buffer.from('a'), id: 'order-1' }]);
    assert.equal(retried!.duplicate, true, 'stored 11 s ago, whatever the wall clock says');
    assert.equal(retried!.offset, first!.offset);
    await world.clock.advanceAndSettle(2 * MINUTE_MS - 11_000 + 1);
    const [later] = await world.broker.publish('orders', [{ value: Buffer.from('a'), id: 'order-1' }]);
    assert.equal(later!.duplicate, undefined, 'forgotten a window after it was stored');
    await world.broker.close();
  });
}

test('wall history - a forward step before a restart deletes no segment early', async () => {
  let world = await openWorld(new SimFileSystem(), new SimClock());
  await world.broker.createTopic('orders', { segmentBytes: 4_096, retention: { ageMs: HOUR_MS } });
  for (let batch = 0; batch < 20; batch++) {
    await world.broker.publish('orders', Array.from({ length: 5 }, () => ({ value: Buffer.alloc(200) })));
  }
  const segments = world.broker.describeTopic('orders').partitions[0]!.segments;
  assert.ok(segments > 2, `${segments} segments`);
  world.clock.jumpWallClock(3 * DAY_MS);
  world = await restart(world, false);
  await world.clock.advanceAndSettle(HOUR_MS - 2_000);
  assert.equal(world.broker.describeTopic('orders').partitions[0]!.startOffset, 0, 'written an hour ago less 1 s: kept');
  await world.clock.advanceAndSettle(MINUTE_MS);
  assert.ok(world.broker.describeTopic('orders').partitions[0]!.startOffset > 0, 'and deleted once an hour old');
  await world.broker.close();
});
