/**
 * The dedup window under wall-clock steps, on the simulated clock and disk: while the broker runs
 * it is measured on the monotonic clock, so a step neither forgets ids early (a retried publish
 * would be stored twice) nor keeps them longer than the window.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DedupIndex } from '../../src/broker/dedup.js';
import { Log } from '../../src/storage/log.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { openSimBroker } from './sim-broker.js';

const WINDOW_MS = 60_000;
const MINUTE_MS = 60_000;

test('dedup - a forward wall-clock step longer than the window forgets no id', async () => {
  const { broker, clock } = await openSimBroker();
  await broker.createTopic('orders', { dedupWindowMs: WINDOW_MS });
  const [first] = await broker.publish('orders', [{ value: Buffer.from('a'), id: 'order-1' }]);
  clock.jumpWallClock(10 * MINUTE_MS);
  const [retried] = await broker.publish('orders', [{ value: Buffer.from('a'), id: 'order-1' }]);
  assert.equal(retried!.duplicate, true, 'the retry after the step is recognised');
  assert.equal(retried!.offset, first!.offset);
  await clock.advanceAndSettle(WINDOW_MS);
  const [atEdge] = await broker.publish('orders', [{ value: Buffer.from('a'), id: 'order-1' }]);
  assert.equal(atEdge!.duplicate, true, 'a whole window of real time');
  await clock.advanceAndSettle(1);
  const [later] = await broker.publish('orders', [{ value: Buffer.from('a'), id: 'order-1' }]);
  assert.equal(later!.duplicate, undefined);
  assert.equal(broker.describeTopic('orders').partitions[0]!.nextOffset, 2);
  await broker.close();
});

test('dedup - a backward wall-clock step keeps no id longer than the window', async () => {
  const { broker, clock } = await openSimBroker();
  await broker.createTopic('orders', { dedupWindowMs: WINDOW_MS });
  await broker.publish('orders', [{ value: Buffer.from('a'), id: 'order-1' }]);
  clock.jumpWallClock(-10 * MINUTE_MS);
  await clock.advanceAndSettle(WINDOW_MS + 1);
  const [again] = await broker.publish('orders', [{ value: Buffer.from('a'), id: 'order-1' }]);
  assert.equal(again!.duplicate, undefined, 'forgotten a window after it was stored');
  await broker.close();
});

test('dedup - rebuilt at open, an id keeps what is left of its window, and a future timestamp counts as now', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const log = await Log.open({ dir: '/data/p0', fs, clock, durability: 'always' });
  await log.append([{ key: null, headers: [['ferry-id', 'old']], value: Buffer.from('a') }]);
  await clock.advanceAndSettle(40_000);
  // Stamped 5 minutes ahead of the clock: the clock went back since (or was ahead then).
  await log.append([{ key: null, headers: [['ferry-id', 'ahead']], value: Buffer.from('b'), timestampMs: clock.nowMs() + 5 * MINUTE_MS }]);
  const index = new DedupIndex(WINDOW_MS, clock);
  await index.rebuild([log]);
  clock.jumpWallClock(30 * MINUTE_MS);
  await clock.advanceAndSettle(WINDOW_MS - 40_000);
  assert.notEqual(index.lookup('old'), undefined, 'stored 60 s ago: still within its window');
  await clock.advanceAndSettle(1);
  assert.equal(index.lookup('old'), undefined);
  assert.notEqual(index.lookup('ahead'), undefined);
  await clock.advanceAndSettle(40_000 - 1);
  assert.notEqual(index.lookup('ahead'), undefined, 'a whole window from the rebuild');
  await clock.advanceAndSettle(1);
  assert.equal(index.lookup('ahead'), undefined, 'and no longer');
  await log.close();
});
