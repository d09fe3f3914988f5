/**
 * The delay store's files: bucket items (scheduled and moved, torn tails), and the conversion of a
 * version 1 store, which decided what was moved from a (due, offset) cursor.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  appendBucketItems,
  BUCKET_ITEM_BYTES,
  bucketFileName,
  decodeItems,
  encodeItems,
  parseBucketFileName,
  pendingItems,
  readBucketItems,
  type BucketItem,
} from '../../../src/broker/delay/buckets.js';
import { DELAY_BUCKET_MS } from '../../../src/broker/delay/store.js';
import { SimClock } from '../../sim/sim-clock.js';
import { SimFileSystem } from '../../sim/sim-fs.js';
import { flush, openSimBroker, RecordingSink, SIM_DIR, values } from '../sim-broker.js';

const DELAYED_DIR = join(SIM_DIR, 'topics', 'jobs', 'delayed');

test('delay buckets - items round-trip, moved ones flagged, and a moved item cancels only its own message', () => {
  const items: BucketItem[] = [
    { dueMs: 1_704_067_200_000, offset: 0, moved: false },
    { dueMs: 1_704_067_200_001, offset: 2 ** 40 + 3, moved: false },
    { dueMs: 1_704_067_200_000, offset: 0, moved: true },
    // Same offset, another due time: a record that reused the offset, not the moved one.
    { dueMs: 1_704_067_299_999, offset: 2 ** 40 + 3, moved: true },
    { dueMs: 1_704_067_200_001, offset: 2 ** 40 + 3, moved: false },
  ];
  const decoded = decodeItems(encodeItems(items));
  assert.deepEqual(decoded, items);
  assert.deepEqual(pendingItems(decoded), [items[1]]);
  assert.equal(parseBucketFileName(bucketFileName(DELAY_BUCKET_MS * 3)), DELAY_BUCKET_MS * 3);
  assert.equal(parseBucketFileName('state.json'), null);
});

test('delay buckets - an append after a torn tail starts at the last whole item', async () => {
  const fs = new SimFileSystem();
  await fs.mkdir('/b');
  const path = '/b/x.bin';
  const first: BucketItem = { dueMs: 5, offset: 1, moved: false };
  const second: BucketItem = { dueMs: 6, offset: 2, moved: false };
  const handle = await fs.open(path, 'create');
  await handle.write(Buffer.concat([encodeItems([first]), encodeItems([second]).subarray(0, 7)]), 0);
  await handle.close();
  assert.deepEqual(await readBucketItems(fs, path), [first], 'a torn item is not read');
  await appendBucketItems(fs, path, [second]);
  assert.equal(fs.fileBytes(path)!.length, 2 * BUCKET_ITEM_BYTES);
  assert.deepEqual(await readBucketItems(fs, path), [first, second]);
});

test('delay store - a version 1 store opens: entries up to its cursor count as moved, the rest are delivered', async () => {
  const world = await openSimBroker();
  await world.broker.createTopic('jobs', { partitions: 1 });
  const startMs = world.clock.nowMs();
  const published = await world.broker.publish('jobs', [
    { value: Buffer.from('moved-by-v1'), delayMs: 30_000 },
    { value: Buffer.from('later'), delayMs: 3 * DELAY_BUCKET_MS },
    { value: Buffer.from('same-due-after-cursor'), delayMs: 30_000 },
  ]);
  await world.broker.close();
  // What version 1 left: the same log and bucket files (no moved items), a cursor in state.json.
  const current = JSON.parse(world.fs.fileBytes(join(DELAYED_DIR, 'state.json'))!.toString('utf8')) as { movedScanFrom: number[]; bucketMinOffsets: Record<string, number> };
  const v1 = {
    version: 1,
    cursorDueMs: startMs + 30_000,
    cursorOffset: published[0]!.offset,
    indexedEnd: 3,
    movedScanFrom: current.movedScanFrom,
    bucketMinOffsets: current.bucketMinOffsets,
  };
  const stateFile = await world.fs.open(join(DELAYED_DIR, 'state.json'), 'create');
  await stateFile.truncate(0);
  await stateFile.write(Buffer.from(JSON.stringify(v1)), 0);
  await stateFile.close();
  for (const name of await world.fs.readdir(join(DELAYED_DIR, 'buckets'))) {
    const path = join(DELAYED_DIR, 'buckets', name);
    const scheduled = (await readBucketItems(world.fs, path)).filter((item) => !item.moved);
    const handle = await world.fs.open(path, 'create');
    await handle.truncate(0);
    await handle.write(encodeItems(scheduled), 0);
    await handle.close();
  }
  const clock = new SimClock(world.clock.nowMs());
  let { broker } = await openSimBroker(world.fs, clock);
  const sink = new RecordingSink();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 10 }, sink);
  await clock.advanceAndSettle(4 * DELAY_BUCKET_MS);
  await flush();
  assert.deepEqual(values(sink), ['same-due-after-cursor', 'later']);
  await broker.close();
  // Converted for good: a further restart moves nothing again.
  const again = new SimClock(clock.nowMs());
  ({ broker } = await openSimBroker(world.fs, again));
  const all = new RecordingSink();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 10 }, all);
  await again.advanceAndSettle(DELAY_BUCKET_MS);
  await flush();
  assert.deepEqual(values(all), ['same-due-after-cursor', 'later']);
  assert.equal(JSON.parse(world.fs.fileBytes(join(DELAYED_DIR, 'state.json'))!.toString('utf8')).version, 2);
  await broker.close();
});

test('delay store - a bucket file that cannot be read is read again, and its messages still come on time, once', async () => {
  const world = await openSimBroker();
  await world.broker.createTopic('jobs');
  await world.broker.publish('jobs', [{ value: Buffer.from('far'), delayMs: 5 * DELAY_BUCKET_MS }]);
  const sink = new RecordingSink();
  await world.broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 10 }, sink);
  await world.clock.advanceAndSettle(DELAY_BUCKET_MS);
  world.fs.failNext('readFile', 'EIO', 'buckets');
  await world.clock.advanceAndSettle(4 * DELAY_BUCKET_MS - 1);
  assert.equal(world.fs.faultsPending(), 0, 'the load met the fault');
  await flush();
  assert.deepEqual(values(sink), []);
  await world.clock.advanceAndSettle(1);
  await flush();
  assert.deepEqual(values(sink), ['far']);
  await world.broker.close();
  const again = new SimClock(world.clock.nowMs());
  const { broker } = await openSimBroker(world.fs, again);
  const all = new RecordingSink();
  await broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 10 }, all);
  await again.advanceAndSettle(10 * DELAY_BUCKET_MS);
  await flush();
  assert.deepEqual(values(all), ['far']);
  await broker.close();
});

test('delay store - a move that cannot be appended is tried again, and the message is moved once', async () => {
  const world = await openSimBroker();
  await world.broker.createTopic('jobs');
  await world.broker.publish('jobs', [{ value: Buffer.from('d'), delayMs: 1000 }]);
  const sink = new RecordingSink();
  await world.broker.subscribe('jobs', { from: { kind: 'earliest' }, credit: 10 }, sink);
  world.fs.failNext('write', 'ENOSPC', 'partitions');
  await world.clock.advanceAndSettle(1000);
  await flush();
  assert.equal(world.fs.faultsPending(), 0, 'the move met the fault');
  assert.deepEqual(values(sink), []);
  await world.clock.advanceAndSettle(2000);
  await flush();
  assert.deepEqual(values(sink), ['d']);
  await world.clock.advanceAndSettle(10_000);
  await flush();
  assert.deepEqual(values(sink), ['d']);
  await world.broker.close();
});
