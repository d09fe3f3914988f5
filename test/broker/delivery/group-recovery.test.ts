/**
 * A group's state against partition logs that lost their tail (issue 8, chaos `interval`): the
 * partition and the group journal are separate files synced independently, so after a power loss
 * the journal can settle, retry or dead-letter offsets the partition no longer has. New messages
 * get those offsets again; the group must deliver them. On the simulated disk: "write-back" of one
 * file (a datasync the broker did not ask for: the kernel flushes dirty pages in any order) and a
 * crash keep the journal and cut the partition.
 */
import { test } from 'node:test';
import { Log } from '../../../src/storage/log.js';
import assert from 'node:assert/strict';
import { AckSet } from '../../../src/broker/delivery/ack-set.js';
import { GROUP_SNAPSHOT_VERSION, PartitionGroupState } from '../../../src/broker/delivery/group-state.js';
import { encodeGroupEvents, GroupEventKind } from '../../../src/broker/delivery/group-journal.js';
import { writeFileAtomic } from '../../../src/platform/atomic-write.js';
import type { LogOptions } from '../../../src/storage/types.js';
import { GroupStore } from '../../../src/broker/delivery/group-store.js';
import { isFerryError } from '../../../src/errors.js';
import { SimClock } from '../../sim/sim-clock.js';
import { SimFileSystem } from '../../sim/sim-fs.js';
import { seededRandom } from '../../sim/random.js';
import { RecordingLogger } from '../../storage/log-kit.js';
import { flush, openSimBroker, RecordingSink, SIM_DIR, values, type SimWorld } from '../sim-broker.js';

const TOPIC_DIR = `${SIM_DIR}/topics/t`;
const PARTITION_DIR = `${TOPIC_DIR}/partitions/0`;
const JOURNAL_DIR = `${TOPIC_DIR}/groups/g/journal`;
const SEGMENT = `${PARTITION_DIR}/00000000000000000000.log`;
const AHEAD_EVENT = 'broker.group.state_ahead_of_log';

const messages = (prefix: string) => Array.from({ length: 5 }, (_, i) => ({ value: Buffer.from(`${prefix}${i}`) }));

/** The kernel writes back one file's dirty pages and not another's: datasync every segment of `dir`. */
async function writeBack(fs: SimFileSystem, dir: string): Promise<void> {
  for (const name of await fs.readdir(dir)) {
    if (!name.endsWith('.log')) continue;
    const handle = await fs.open(`${dir}/${name}`, 'readwrite');
    await handle.datasync();
    await handle.close();
  }
}

function powerLoss(world: SimWorld): { fs: SimFileSystem; clock: SimClock } {
  world.fs.crash({ random: seededRandom(1) });
  return { fs: world.fs, clock: new SimClock(world.clock.nowMs() + 1) };
}

/**
 * On an `interval` topic: a0..a4 synced, b0..b4 only written; group g settles all ten (or nacks
 * `nackOffset` with a 500 ms delay); the journal reaches the disk, the partition's tail does not.
 */
async function groupAheadOfLog(nackOffset?: number): Promise<SimWorld> {
  const world = await openSimBroker();
  const { broker, clock } = world;
  await broker.createTopic('t', { partitions: 1, durability: 'interval', syncIntervalMs: 50 });
  await broker.publish('t', messages('a'));
  await clock.advanceAndSettle(100);
  await broker.publish('t', messages('b'));
  const sink = new RecordingSink();
  const subscription = await broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 100 }, sink);
  await flush();
  assert.deepEqual(values(sink), ['a0', 'a1', 'a2', 'a3', 'a4', 'b0', 'b1', 'b2', 'b3', 'b4']);
  for (const delivery of sink.received) {
    if (delivery.offset === nackOffset) await subscription.nack(0, delivery.offset, { delayMs: 500 });
    else await subscription.ack(0, delivery.offset);
  }
  await writeBack(world.fs, JOURNAL_DIR);
  return world;
}

async function publishAndReceive(world: SimWorld, sink = new RecordingSink()): Promise<RecordingSink> {
  const results = await world.broker.publish('t', messages('c'));
  assert.deepEqual(
    results.map((result) => result.offset),
    [5, 6, 7, 8, 9],
    'the offsets the power loss took are given to new messages',
  );
  if (sink.received.length === 0) await world.broker.subscribe('t', { group: 'g', credit: 100 }, sink);
  await flush();
  return sink;
}

test('group recovery - messages published at offsets a power loss took back are delivered, though the journal settled them', async () => {
  const before = await groupAheadOfLog();
  const { fs, clock } = powerLoss(before);
  const logger = new RecordingLogger();
  const after = await openSimBroker(fs, clock, { logger });
  assert.equal(after.broker.describeTopic('t').partitions[0]!.nextOffset, 5, 'b0..b4 were lost');
  assert.equal(after.broker.describeGroup('t', 'g').partitions[0]!.ackFloor, 5);
  const sink = await publishAndReceive(after);
  assert.deepEqual(values(sink), ['c0', 'c1', 'c2', 'c3', 'c4']);
  assert.deepEqual(sink.received.map((delivery) => delivery.deliveryCount), [1, 1, 1, 1, 1], 'first deliveries, not counted from the lost ones');
  const warnings = logger.lines.filter((line) => line.event === AHEAD_EVENT);
  assert.equal(warnings.length, 1);
  assert.equal(warnings[0]!.level, 'warn');
  assert.deepEqual(
    { ...warnings[0]!.fields },
    {
      topic: 't',
      group: 'g',
      partition: 0,
      durability: 'interval',
      logEndOffset: 5,
      ackFloorBefore: 10,
      dispatchedEndBefore: 10,
      settledForgotten: 5,
      retriesDropped: 0,
      intentsDropped: 0,
    },
  );
  await after.broker.close();
});

test('group recovery - a retry of an offset past the recovered end is dropped: the new message there is delivered once, as new', async () => {
  const before = await groupAheadOfLog(8);
  const { fs, clock } = powerLoss(before);
  const logger = new RecordingLogger();
  const after = await openSimBroker(fs, clock, { logger });
  assert.equal(after.broker.describeGroup('t', 'g').pendingRedelivery, 0);
  const sink = new RecordingSink();
  await after.broker.subscribe('t', { group: 'g', credit: 100 }, sink);
  await after.clock.advanceAndSettle(1_000); // the retry would have come due: nothing to deliver, no loop
  assert.deepEqual(values(sink), []);
  await publishAndReceive(after, sink);
  await after.clock.advanceAndSettle(1_000);
  assert.deepEqual(values(sink), ['c0', 'c1', 'c2', 'c3', 'c4']);
  assert.deepEqual(sink.received.map((delivery) => delivery.deliveryCount), [1, 1, 1, 1, 1]);
  const [fields] = logger.events(AHEAD_EVENT);
  assert.equal(fields?.['ackFloorBefore'], 8);
  assert.equal(fields?.['settledForgotten'], 4, '5, 6, 7 below the floor and 9 above it');
  assert.equal(fields?.['retriesDropped'], 1);
  await after.broker.close();
});

test('group recovery - the cut state is persisted at once: a second power loss does not bring the old settlements back', async () => {
  const first = await groupAheadOfLog();
  const lost = powerLoss(first);
  const second = await openSimBroker(lost.fs, lost.clock);
  await second.broker.publish('t', messages('c'));
  // The new messages reach the disk; nothing of the group's journal written since the open does.
  await writeBack(second.fs, PARTITION_DIR);
  const { fs, clock } = powerLoss(second);
  const logger = new RecordingLogger();
  const third = await openSimBroker(fs, clock, { logger });
  assert.equal(third.broker.describeTopic('t').partitions[0]!.nextOffset, 10);
  assert.deepEqual(logger.events(AHEAD_EVENT), [], 'nothing left to cut');
  const sink = new RecordingSink();
  await third.broker.subscribe('t', { group: 'g', credit: 100 }, sink);
  await flush();
  assert.deepEqual(values(sink), ['c0', 'c1', 'c2', 'c3', 'c4']);
  await third.broker.close();
});

test('group recovery - always mode: settlements past a log that lost synced data are cut and logged as an error', async () => {
  const before = await openSimBroker();
  await before.broker.createTopic('t', { partitions: 1, durability: 'always' });
  await before.broker.publish('t', messages('a'));
  const syncedBytes = (await before.fs.stat(SEGMENT))!.size;
  await before.broker.publish('t', messages('b'));
  const sink = new RecordingSink();
  const subscription = await before.broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 100 }, sink);
  await flush();
  for (const delivery of sink.received) await subscription.ack(0, delivery.offset);
  await before.broker.close();
  // A disk that lied about a flush: synced, acknowledged bytes are gone.
  const handle = await before.fs.open(SEGMENT, 'readwrite');
  await handle.truncate(syncedBytes);
  await handle.datasync();
  await handle.close();
  const logger = new RecordingLogger();
  const after = await openSimBroker(before.fs, new SimClock(before.clock.nowMs() + 1), { logger });
  const lines = logger.lines.filter((line) => line.event === AHEAD_EVENT);
  assert.deepEqual(lines.map((line) => line.level), ['error']);
  assert.equal(lines[0]!.fields?.['settledForgotten'], 5);
  const received = await publishAndReceive(after);
  assert.deepEqual(values(received), ['c0', 'c1', 'c2', 'c3', 'c4']);
  await after.broker.close();
});

test('group recovery - always mode: a start position taken at the unsynced end is cut back too', async () => {
  const before = await openSimBroker();
  await before.broker.createTopic('t', { partitions: 1, durability: 'always' });
  await before.broker.publish('t', messages('a'));
  await before.broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 0 }, new RecordingSink());
  // b0 is written but its fdatasync fails: never confirmed, yet the log's end counts it.
  before.fs.failNext('datasync', 'EIO', 'partitions/0');
  await assert.rejects(before.broker.publish('t', 'b0'), (error: unknown) => isFerryError(error) && error.code === 'STORAGE_FAILED');
  await before.broker.resetGroup('t', 'g', { kind: 'latest' });
  assert.equal(before.broker.describeGroup('t', 'g').partitions[0]!.ackFloor, 6);
  const { fs, clock } = powerLoss(before);
  const logger = new RecordingLogger();
  const after = await openSimBroker(fs, clock, { logger });
  // Logged as an error like real damage: the state cannot tell the two apart.
  const [fields, ...more] = logger.events(AHEAD_EVENT);
  assert.equal(more.length, 0);
  assert.equal(fields?.['ackFloorBefore'], 6);
  assert.equal(after.broker.describeGroup('t', 'g').partitions[0]!.ackFloor, 5);
  const received = await publishAndReceive(after);
  assert.deepEqual(values(received), ['c0', 'c1', 'c2', 'c3', 'c4']);
  await after.broker.close();
});

test('group recovery - a group created after the logs opened is not cut to their recovered end', async () => {
  const before = await groupAheadOfLog();
  const { fs, clock } = powerLoss(before);
  const logger = new RecordingLogger();
  const after = await openSimBroker(fs, clock, { logger });
  await after.broker.publish('t', messages('c'));
  await after.broker.subscribe('t', { group: 'late', from: { kind: 'latest' }, credit: 100 }, new RecordingSink());
  assert.equal(after.broker.describeGroup('t', 'late').partitions[0]!.ackFloor, 10);
  assert.deepEqual(
    logger.events(AHEAD_EVENT).map((fields) => fields?.['group']),
    ['g'],
  );
  await after.broker.close();
});

test('group state - truncateAt forgets settlements, delivery reach, retries and intents at or past the end, and nothing below', () => {
  const state = new PartitionGroupState(new AckSet(4, [6, 9, 12]), 13);
  state.retries.set(5, { deliveries: 2, dueMs: 0 });
  state.retries.set(10, { deliveries: 1, dueMs: 0 });
  state.intents.set(7, { dlqOffsetHint: 0, reason: 'r' });
  state.intents.set(11, { dlqOffsetHint: 0, reason: 'r' });
  assert.equal(state.truncateAt(13), null, 'nothing at or past 13');
  const truncation = state.truncateAt(9);
  assert.deepEqual(truncation, {
    endOffset: 9,
    ackFloorBefore: 4,
    dispatchedEndBefore: 13,
    settledForgotten: 2,
    retriesDropped: 1,
    intentsDropped: 1,
  });
  assert.equal(state.acks.ackFloor, 4);
  assert.deepEqual(state.acks.settledAboveFloor(), [6]);
  assert.equal(state.dispatchedEnd, 9);
  assert.deepEqual([...state.retries.keys()], [5]);
  assert.deepEqual([...state.intents.keys()], [7]);
  assert.equal(state.truncateAt(9), null, 'idempotent');
});

test('group state - truncateAt below the floor lowers it and forgets everything above', () => {
  const state = new PartitionGroupState(new AckSet(10, [12]), 14);
  const truncation = state.truncateAt(6);
  assert.equal(truncation?.settledForgotten, 5, '6..9 and 12');
  assert.equal(state.acks.ackFloor, 6);
  assert.equal(state.acks.settledAboveCount, 0);
  assert.equal(state.dispatchedEnd, 6);
  assert.equal(state.acks.isSettled(5), true);
  assert.equal(state.acks.isSettled(6), false);
});

test('group store - a snapshot is synced whatever the mode: a power loss keeps it and what it covers; what comes after the restart is replayed by the next open', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const logger = new RecordingLogger();
  const open = () =>
    GroupStore.open({
      dir: `${SIM_DIR}/group`,
      group: 'g',
      fs,
      clock,
      logger,
      durability: 'interval',
      partitions: 1,
      openLog: (options) => Log.open(options),
      initial: async () => ({ config: { ackTimeoutMs: 30_000, backoffMs: [], deliveriesMax: 5, deadLetterTopic: 't.dlq' }, floors: [0] }),
    });
  const first = await open();
  for (let offset = 0; offset < 5; offset++) await first.settle(0, offset);
  // The clock never let the interval journal sync those settles; the snapshot syncs them all.
  await first.snapshot();
  fs.crash({ random: seededRandom(1) });
  const second = await open();
  assert.equal(second.state.partitions[0]!.acks.ackFloor, 5);
  await second.settle(0, 7);
  await second.close();
  const third = await open();
  assert.equal(third.state.partitions[0]!.acks.isSettled(7), true, 'the settle journaled after the restart is replayed');
  assert.equal(third.state.partitions[0]!.acks.ackFloor, 5);
  await third.close();
});

test('group store - a group whose snapshot is the legacy state.json opens, and moves its snapshot into the journal', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const dir = `${SIM_DIR}/legacy`;
  const config = { ackTimeoutMs: 30_000, backoffMs: [], deliveriesMax: 5, deadLetterTopic: 't.dlq' };
  // What an older version left: state.json covering journal records below 2, and a journal of 3 records.
  const journal = await Log.open({ dir: `${dir}/journal`, fs, clock, durability: 'always' });
  for (const offset of [0, 1, 9]) await journal.append([{ value: encodeGroupEvents([{ kind: GroupEventKind.settle, partition: 0, offset }]) }]);
  await journal.close();
  const legacy = { version: GROUP_SNAPSHOT_VERSION, group: 'g', createdAtMs: 1, config, journalOffset: 2, redeliveredTotal: 0, deadLetteredTotal: 0, partitions: [{ floor: 3, settled: [], dispatchedEnd: 3, retries: [], intents: [] }] };
  await writeFileAtomic(fs, `${dir}/state.json`, Buffer.from(JSON.stringify(legacy)));
  const options = { dir, group: 'g', fs, clock, logger: new RecordingLogger(), durability: 'always' as const, partitions: 1, openLog: (o: LogOptions) => Log.open(o), initial: async () => ({ config, floors: [0] }) };
  const store = await GroupStore.open(options);
  assert.equal(store.state.partitions[0]!.acks.ackFloor, 3, 'the legacy snapshot is the base');
  assert.equal(store.state.partitions[0]!.acks.isSettled(9), true, 'the journal after it is replayed');
  assert.equal(store.createdNow, false);
  await store.close();
  assert.equal(await fs.stat(`${dir}/state.json`), null, 'the file is gone: the journal holds the snapshot');
  const reopened = await GroupStore.open(options);
  assert.equal(reopened.state.partitions[0]!.acks.ackFloor, 3);
  assert.equal(reopened.state.partitions[0]!.acks.isSettled(9), true);
  assert.deepEqual(reopened.config, config);
  await reopened.close();
});

test('group store - a group directory whose first snapshot never reached the journal is an unfinished creation: removed at recovery', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const dir = `${SIM_DIR}/unfinished`;
  const journal = await Log.open({ dir: `${dir}/journal`, fs, clock, durability: 'always' });
  await journal.close();
  const logger = new RecordingLogger();
  const store = await GroupStore.open({ dir, group: 'g', fs, clock, logger, durability: 'always', partitions: 1, openLog: (o) => Log.open(o), initial: async () => assert.fail('not created'), existingOnly: true });
  assert.equal(store, null);
  assert.equal(await fs.stat(dir), null);
  assert.equal(logger.events('broker.group.incomplete_removed').length, 1);
});
