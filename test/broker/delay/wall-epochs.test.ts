/**
 * The clock epochs the delay store keeps on disk (wall-epochs.ts): what a restart on one boot
 * learns from them, and what happens when they cannot be written or read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Broker } from '../../../src/broker/broker.js';
import { EPOCH_EARLY_TOLERANCE_MS, EPOCH_LATE_TOLERANCE_MS, EPOCHS_MAX, WallEpochs } from '../../../src/broker/delay/wall-epochs.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { isFerryError } from '../../../src/errors.js';
import { SimClock } from '../../sim/sim-clock.js';
import { SimFileSystem } from '../../sim/sim-fs.js';
import { seededRandom } from '../../sim/random.js';
import { flush, RecordingSink, SIM_DIR, values } from '../sim-broker.js';

const MINUTE_MS = 60_000;
const DIR = '/data/delayed';

function openEpochs(fs: SimFileSystem, clock: SimClock, nextOffset: number): Promise<WallEpochs> {
  return WallEpochs.open({ fs, dir: DIR, clock, logger: silentLogger, topic: 't', startOffset: 0, nextOffset });
}

test('wall epochs - a step since the last process on this boot is undone, per range of offsets', async () => {
  const fs = new SimFileSystem();
  await fs.mkdir('/data');
  await fs.mkdir(DIR);
  const clock = new SimClock();
  const epochs = await openEpochs(fs, clock, 0);
  assert.deepEqual(epochs.restored, []);
  // Offsets 0-1 published as the clock read; 2-3 after it stepped 90 s ahead.
  assert.equal(epochs.inCurrent([clock.nowMs(), clock.nowMs()]), true);
  clock.jumpWallClock(90_000);
  assert.equal(epochs.inCurrent([clock.nowMs()]), false);
  await epochs.extend(2, [clock.nowMs(), clock.nowMs()]);
  assert.equal(epochs.covers(2, [clock.nowMs(), clock.nowMs()]), true);
  assert.equal(epochs.covers(0, [clock.nowMs()]), false, 'offset 0 is in the first epoch');
  clock.jumpWallClock(-30_000);
  const next = clock.nextProcess({ downMs: 5000 });
  const reopened = await openEpochs(fs, next, 4);
  assert.deepEqual(reopened.restored, [
    { first: 0, last: 1, shiftMs: -60_000 },
    { first: 2, last: 3, shiftMs: 30_000 },
  ]);
  const rebooted = await openEpochs(fs, next.nextProcess({ reboot: true }), 4);
  assert.deepEqual(rebooted.restored, [], 'after a reboot: the wall clock only');
});

test('wall epochs - a message whose due time was computed a while before its add lowers the epoch; later ones fit it', async () => {
  const fs = new SimFileSystem();
  await fs.mkdir('/data');
  await fs.mkdir(DIR);
  const clock = new SimClock();
  const epochs = await openEpochs(fs, clock, 0);
  const nowMs = clock.nowMs();
  assert.equal(epochs.inCurrent([nowMs - EPOCH_EARLY_TOLERANCE_MS]), true);
  // Its due time came from a reading 300 ms ago: read in this epoch, it could come early.
  assert.equal(epochs.inCurrent([nowMs - 300]), false);
  await epochs.extend(0, [nowMs - 300]);
  assert.equal(epochs.inCurrent([nowMs, nowMs - 300 + EPOCH_LATE_TOLERANCE_MS]), true, 'later at most by the late tolerance');
  assert.equal(epochs.inCurrent([nowMs - 300 + EPOCH_LATE_TOLERANCE_MS + 1]), false, 'beyond it: a backward step');
});

test('wall epochs - a damaged file is ignored: the wall clock is the reference', async () => {
  const fs = new SimFileSystem();
  await fs.mkdir('/data');
  await fs.mkdir(DIR);
  const clock = new SimClock();
  await openEpochs(fs, clock, 0);
  const handle = await fs.open(`${DIR}/clock.json`, 'create');
  await handle.write(Buffer.from('garbage!'), 0);
  await handle.close();
  clock.jumpWallClock(MINUTE_MS);
  const reopened = await openEpochs(fs, clock.nextProcess(), 3);
  assert.deepEqual(reopened.restored, []);
});

test('wall epochs - past EPOCHS_MAX the two oldest merge, keeping the smaller difference (a later release)', async () => {
  const fs = new SimFileSystem();
  await fs.mkdir('/data');
  await fs.mkdir(DIR);
  const clock = new SimClock();
  const epochs = await openEpochs(fs, clock, 0);
  for (let offset = 1; offset <= EPOCHS_MAX; offset++) {
    clock.jumpWallClock(offset % 2 === 0 ? 5000 : -5000);
    await epochs.extend(offset, [clock.nowMs()]);
  }
  const file = JSON.parse((await fs.readFile(`${DIR}/clock.json`)).toString('utf8')) as { epochs: Array<[number, number]> };
  assert.equal(file.epochs.length, EPOCHS_MAX);
  // Offset 0 was at difference d, offset 1 at d - 5 s: merged, offsets 0-1 take d - 5 s.
  assert.equal(file.epochs[0]![0], 0);
  assert.equal(file.epochs[1]![0], 2);
  assert.equal(file.epochs[0]![1], file.epochs[1]![1] - 5000);
});

test('wall epochs - a publish whose epoch cannot be written fails; the next writes it, and both come on time after a crash', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  let broker = await Broker.open({ dir: SIM_DIR, fs: fs.session(), clock, random: seededRandom(7) });
  await broker.createTopic('jobs');
  await broker.publish('jobs', [{ value: Buffer.from('before'), delayMs: 5 * MINUTE_MS }]);
  clock.jumpWallClock(-20 * MINUTE_MS);
  fs.failNext('rename', 'ENOSPC', 'clock.json');
  await assert.rejects(broker.publish('jobs', [{ value: Buffer.from('lost'), delayMs: 5 * MINUTE_MS }]), (error) => isFerryError(error, 'DISK_FULL'));
  await broker.publish('jobs', [{ value: Buffer.from('after'), delayMs: 6 * MINUTE_MS }]);
  fs.crash({ tearLastWrite: false, random: seededRandom(1) });
  const next = clock.nextProcess();
  broker = await Broker.open({ dir: SIM_DIR, fs: fs.session(), clock: next, random: seededRandom(7) });
  const sink = new RecordingSink();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 10 }, sink);
  await next.advanceAndSettle(5 * MINUTE_MS - 1);
  await flush();
  assert.deepEqual(values(sink), []);
  await next.advanceAndSettle(1);
  await flush();
  assert.deepEqual(values(sink), ['before']);
  await next.advanceAndSettle(MINUTE_MS);
  await flush();
  assert.deepEqual(values(sink), ['before', 'after']);
  await broker.close();
});
