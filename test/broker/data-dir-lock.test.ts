/**
 * One broker per data directory: Broker.open takes the directory's lock before it reads anything,
 * holds it until close, and frees it when an open fails; `ferry serve` refuses a directory another
 * process holds and exits with its own code. A message two brokers on one directory both confirmed
 * was lost before this (issue: a newcomer's first hour).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Broker } from '../../src/broker/broker.js';
import { FerryError, isFerryError } from '../../src/errors.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { seededRandom } from '../sim/random.js';
import { SimClock } from '../sim/sim-clock.js';
import { ferry } from '../cli/run-ferry.js';
import { BrokerProcess, warnIfStale } from '../e2e/broker-process.js';
import { tempDir } from '../helpers.js';

/** Spawning `ferry serve` twice on a loaded 2-core machine. */
const SERVE_TEST_TIMEOUT_MS = 60_000;

test('data dir lock - a second Broker.open on one directory fails at once; the first keeps its data', async () => {
  await using dir = await tempDir();
  const first = await Broker.open({ dir: dir.path });
  try {
    await first.createTopic('orders');
    await first.publish('orders', 'from-first');
    await assert.rejects(Broker.open({ dir: dir.path }), (error) => {
      assert.ok(isFerryError(error, 'DATA_DIR_LOCKED'));
      assert.equal((error as FerryError).detail?.pid, process.pid);
      return true;
    });
    await first.publish('orders', 'still-first');
  } finally {
    await first.close();
  }
  const reopened = await Broker.open({ dir: dir.path });
  try {
    const info = reopened.describeTopic('orders');
    assert.equal(info.partitions[0]!.nextOffset, 2);
  } finally {
    await reopened.close();
  }
});

test('data dir lock - on the simulated disk: held until close, freed by a crash, freed when open fails', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const first = await Broker.open({ dir: '/data', fs: fs.session(), clock });
  assert.ok(fs.isLocked('/data'));
  await assert.rejects(Broker.open({ dir: '/data', fs: fs.session(), clock }), (error) => isFerryError(error, 'DATA_DIR_LOCKED'));
  await first.close();
  assert.equal(fs.isLocked('/data'), false);

  // A crash is the process dying: the next boot opens without a close.
  await Broker.open({ dir: '/data', fs: fs.session(), clock });
  assert.ok(fs.isLocked('/data'));
  fs.crash({ random: seededRandom(1) });
  assert.equal(fs.isLocked('/data'), false);

  // An open that fails after taking the lock gives it back.
  fs.failNext('readdir', 'EIO', '/data/topics');
  await assert.rejects(Broker.open({ dir: '/data', fs: fs.session(), clock }), (error: NodeJS.ErrnoException) => error.code === 'EIO');
  assert.equal(fs.isLocked('/data'), false);
  const last = await Broker.open({ dir: '/data', fs: fs.session(), clock });
  await last.close();
});

test('data dir lock - ferry serve refuses a directory a running broker holds, names it, exits 5; after a SIGKILL the directory is free', { timeout: SERVE_TEST_TIMEOUT_MS }, async () => {
  warnIfStale();
  await using dir = await tempDir();
  const running = await BrokerProcess.start(dir.path, 0);
  try {
    const second = await ferry(['serve', '--dir', dir.path, '--port', '0', '--http-port', '0', '--log-format', 'json']);
    assert.equal(second.code, 5, second.stderr);
    assert.match(second.stderr, /DATA_DIR_LOCKED/);
    assert.match(second.stderr, new RegExp(`in use by process ${running.pid} on `));
    await assert.rejects(Broker.open({ dir: dir.path }), (error) => isFerryError(error, 'DATA_DIR_LOCKED') && (error as FerryError).detail?.pid === running.pid);
  } finally {
    await running.kill();
  }
  const restarted = await BrokerProcess.start(dir.path, 0);
  await restarted.kill();
});
