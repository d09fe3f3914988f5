/**
 * Queue groups on a leader of a replicated topic (sim-leader.ts: one real TopicLeader on the
 * simulated disk and clock), for three findings of the cluster chaos suite (docs/RELIABILITY.md,
 * "Found by the cluster suite"):
 *
 * - 4: a group whose creation was refused (the in-sync set below minInSync) had its directory
 *   removed under the replica log replication keeps open, and every later write to that log failed.
 * - 5: an ack whose journal write was refused for too few replicas in sync failed and put its
 *   message back for redelivery; now it waits until the journal takes it.
 * - 6: a new leader (its high watermark at the log start until its followers fetch) finishing an
 *   interrupted dead-lettering took the original for gone and settled it with no copy written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Broker } from '../../src/broker/broker.js';
import { DLQ_HEADERS } from '../../src/broker/delivery/dead-letter.js';
import { FerryError, isFerryError } from '../../src/errors.js';
import { Log } from '../../src/storage/log.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { RecordingSink } from '../broker/sim-broker.js';
import { FOLLOWER_IDS, LEADER_DATA_DIR, REPLICATED_TOPIC as T, SimLeader } from './sim-leader.js';

const GROUP_DIR = `${LEADER_DATA_DIR}/topics/${T}/groups/g`;
const ALL_IN_SYNC = ['n1', ...FOLLOWER_IDS];

/** Promise state, read without awaiting. */
function track<T>(promise: Promise<T>): { settled: 'pending' | 'resolved' | 'rejected'; error: unknown; promise: Promise<T> } {
  const state = { settled: 'pending' as 'pending' | 'resolved' | 'rejected', error: undefined as unknown, promise };
  promise.then(
    () => (state.settled = 'resolved'),
    (error: unknown) => {
      state.settled = 'rejected';
      state.error = error;
    },
  );
  return state;
}

async function publishAll(sim: SimLeader, broker: Broker, values: string[]): Promise<void> {
  await sim.untilSettled(broker.publish(T, values.map((value) => ({ value: Buffer.from(value) }))));
}

/** Followers stop reporting: the leader takes them out of the in-sync set (down to itself). */
async function followersGone(sim: SimLeader): Promise<void> {
  sim.reporting.clear();
  await sim.clock.advanceAndSettle(2_000);
  assert.deepEqual(sim.leader.inSync, ['n1'], 'the in-sync set shrank to the leader');
}

async function followersBack(sim: SimLeader): Promise<void> {
  for (const follower of FOLLOWER_IDS) sim.reporting.add(follower);
  await sim.clock.advanceAndSettle(1_000);
  assert.deepEqual([...sim.leader.inSync].sort(), ALL_IN_SYNC, 'the followers are back in sync');
}

/** Topic t on a leader alone in the in-sync set (minInSync 2), and a first subscribe of group g refused. */
async function refusedCreation(): Promise<{ sim: SimLeader; broker: Broker }> {
  const sim = new SimLeader(new SimFileSystem(), new SimClock(), { epoch: 1, inSync: ['n1'], minInSync: 2, reporting: [] });
  const broker = await sim.openBroker();
  await broker.createTopic(T);
  await assert.rejects(
    sim.untilSettled(broker.subscribe(T, { group: 'g', from: { kind: 'earliest' }, credit: 10 }, new RecordingSink())),
    (error: unknown) => isFerryError(error, 'NOT_ENOUGH_REPLICAS'),
  );
  return { sim, broker };
}

test('leader groups - a group creation refused for too few replicas in sync leaves its journal to replication: as a follower the broker still writes it', async () => {
  const { sim, broker } = await refusedCreation();
  assert.notEqual(await sim.fs.stat(`${GROUP_DIR}/journal`), null, 'the journal replication holds stays');
  // The leadership moves on: this broker follows epoch 2 and writes the new leader's batches into
  // its copy of the journal. Once the directory was removed from under the log this failed
  // (ENOENT on leader-epochs.tmp, then STORAGE_FAILED) and the replica never caught up again.
  sim.leader.stepDown(new FerryError('NOT_LEADER', 'epoch 2 began'));
  await sim.untilSettled(broker.closeTopic(T, 'leadership moved'));
  const newLeader = await Log.open({ dir: '/elsewhere/journal', fs: sim.fs, clock: sim.clock, durability: 'always' });
  await newLeader.beginEpoch(2);
  await sim.untilSettled(newLeader.append([{ value: Buffer.from('snapshot') }]));
  const batches = await newLeader.readBatches(0, { bytesMax: 1 << 20 });
  const journal = sim.logs.get('g/g')!;
  await sim.untilSettled(journal.appendBatches(Buffer.concat(batches)));
  assert.equal(journal.nextOffset, 1);
  assert.deepEqual(journal.epochs().map((entry) => entry.epoch).at(-1), 2);
  await newLeader.close();
  await sim.untilSettled(broker.close());
  await sim.close();
});

test('leader groups - after a refused group creation, the next subscribe once enough replicas are in sync creates the group in the journal left in place', async () => {
  const { sim, broker } = await refusedCreation();
  await followersBack(sim);
  await publishAll(sim, broker, ['a']);
  const sink = new RecordingSink();
  const subscription = await sim.untilSettled(broker.subscribe(T, { group: 'g', from: { kind: 'earliest' }, credit: 10 }, sink));
  await sim.clock.advanceAndSettle(50);
  assert.deepEqual(sink.received.map((delivery) => delivery.value.toString()), ['a']);
  await sim.untilSettled(subscription.ack(0, 0));
  assert.equal(broker.describeGroup(T, 'g').pending, 0);
  await sim.untilSettled(broker.close());
  await sim.close();
});

test('leader groups - on a single broker a refused group creation still leaves nothing behind', async () => {
  const sim = new SimLeader(new SimFileSystem(), new SimClock(), { epoch: 1, inSync: ['n1'], minInSync: 2, reporting: [] });
  const broker = await sim.openBroker({ replicated: false });
  await broker.createTopic(T);
  await assert.rejects(
    sim.untilSettled(broker.subscribe(T, { group: 'g', from: { kind: 'earliest' }, credit: 10 }, new RecordingSink())),
    (error: unknown) => isFerryError(error, 'NOT_ENOUGH_REPLICAS'),
  );
  assert.equal(await sim.fs.stat(GROUP_DIR), null);
  await sim.untilSettled(broker.close());
  await sim.close();
});

test('leader groups - acks while the in-sync set is below minInSync are applied once it recovers, and their messages are not delivered again', async () => {
  const sim = new SimLeader(new SimFileSystem(), new SimClock(), { epoch: 1, inSync: ALL_IN_SYNC, minInSync: 2, reporting: FOLLOWER_IDS });
  const broker = await sim.openBroker();
  await broker.createTopic(T);
  await publishAll(sim, broker, ['a0', 'a1', 'a2', 'a3', 'a4']);
  const sink = new RecordingSink();
  const subscription = await sim.untilSettled(broker.subscribe(T, { group: 'g', from: { kind: 'earliest' }, credit: 10, backoffMs: [50] }, sink));
  await sim.clock.advanceAndSettle(50);
  assert.equal(sink.received.length, 5);

  await followersGone(sim);
  const acks = sink.received.map((delivery) => track(subscription.ack(delivery.partition, delivery.offset)));
  await sim.clock.advanceAndSettle(3_000);
  assert.deepEqual(
    acks.map((ack) => (ack.settled === 'rejected' ? (ack.error as FerryError).code : ack.settled)),
    acks.map(() => 'pending'),
    'a refused journal write neither fails the acks nor confirms them',
  );
  assert.equal(sink.received.length, 5, 'and puts nothing back for redelivery');
  assert.ok(sim.logger.events('broker.group.journal_waiting').length > 0);

  await followersBack(sim);
  await sim.clock.advanceAndSettle(200);
  assert.deepEqual(acks.map((ack) => ack.settled), acks.map(() => 'resolved'), 'the acks are applied once the journal takes them');
  assert.equal(broker.describeGroup(T, 'g').pending, 0);
  await sim.clock.advanceAndSettle(60_000);
  assert.equal(sink.received.length, 5, 'no acked message is delivered again, ack timeouts included');
  await sim.untilSettled(broker.close());
  await sim.close();
});

test('leader groups - an ack timeout while the in-sync set is below minInSync redelivers without failing its journal record', async () => {
  const sim = new SimLeader(new SimFileSystem(), new SimClock(), { epoch: 1, inSync: ALL_IN_SYNC, minInSync: 2, reporting: FOLLOWER_IDS });
  const broker = await sim.openBroker();
  await broker.createTopic(T);
  await publishAll(sim, broker, ['a']);
  const sink = new RecordingSink();
  const subscription = await sim.untilSettled(broker.subscribe(T, { group: 'g', from: { kind: 'earliest' }, credit: 10, ackTimeoutMs: 3_000, backoffMs: [50] }, sink));
  await sim.clock.advanceAndSettle(50);
  await followersGone(sim);
  await sim.clock.advanceAndSettle(2_000);
  assert.equal(sink.received.length, 2, 'the timed-out delivery is delivered again');
  assert.equal(sink.received[1]!.deliveryCount, 2);
  assert.deepEqual(sim.logger.events('broker.group.redelivery_failed'), []);
  const ack = track(subscription.ack(0, 0));
  await followersBack(sim);
  await sim.clock.advanceAndSettle(200);
  assert.equal(ack.settled, 'resolved');
  await sim.clock.advanceAndSettle(10_000);
  assert.equal(sink.received.length, 2);
  assert.equal(broker.describeGroup(T, 'g').pending, 0);
  await sim.untilSettled(broker.close());
  await sim.close();
});

test('leader groups - acks waiting for replicas fail with NOT_LEADER when the leadership ends, and the close does not wait for them', async () => {
  const sim = new SimLeader(new SimFileSystem(), new SimClock(), { epoch: 1, inSync: ALL_IN_SYNC, minInSync: 2, reporting: FOLLOWER_IDS });
  const broker = await sim.openBroker();
  await broker.createTopic(T);
  await publishAll(sim, broker, ['a']);
  const sink = new RecordingSink();
  const subscription = await sim.untilSettled(broker.subscribe(T, { group: 'g', from: { kind: 'earliest' }, credit: 10 }, sink));
  await sim.clock.advanceAndSettle(50);
  await followersGone(sim);
  const ack = track(subscription.ack(0, 0));
  await sim.clock.advanceAndSettle(500);
  assert.equal(ack.settled, 'pending');
  sim.leader.stepDown(new FerryError('NOT_LEADER', 'fenced'));
  await sim.untilSettled(broker.closeTopic(T, 'leadership moved'));
  assert.equal(ack.settled, 'rejected');
  assert.ok(isFerryError(ack.error) && ack.error.retryable, `a retryable error, not ${String(ack.error)}`);
  await sim.untilSettled(broker.close());
  await sim.close();
});

test('leader groups - a new leader finishing an interrupted dead-lettering copies the original it holds past its high watermark', async () => {
  const fs = new SimFileSystem();
  const first = new SimLeader(fs, new SimClock(), { epoch: 1, inSync: ALL_IN_SYNC, minInSync: 2, reporting: FOLLOWER_IDS });
  const before = await first.openBroker();
  await before.createTopic(T);
  await before.createTopic('t.dlq');
  await publishAll(first, before, ['x']);
  const sink = new RecordingSink();
  const subscription = await first.untilSettled(before.subscribe(T, { group: 'g', from: { kind: 'earliest' }, credit: 10 }, sink));
  await first.clock.advanceAndSettle(50);
  assert.equal(sink.received.length, 1);
  // The move stops after its intent is journaled: the dead-letter topic's disk is full.
  fs.failNext('write', 'ENOSPC', 't.dlq');
  await assert.rejects(first.untilSettled(subscription.reject!(0, 0, 'poison')), (error: unknown) => isFerryError(error, 'DISK_FULL'));
  await first.untilSettled(before.close());
  await first.close();

  // The next leadership, in a new process: its high watermarks start at each log's start, and
  // its followers have not fetched yet when it opens the topic.
  const second = new SimLeader(fs, new SimClock(first.clock.nowMs() + 1), { epoch: 2, inSync: ALL_IN_SYNC, minInSync: 2, reporting: [] });
  const after = await second.openBroker({ topicsAtOpen: 'none' });
  assert.equal(await after.openTopic('t.dlq'), true);
  const opening = after.openTopic(T);
  await second.clock.advanceAndSettle(500);
  for (const follower of FOLLOWER_IDS) second.reporting.add(follower);
  assert.equal(await second.untilSettled(opening), true);
  assert.deepEqual(second.logger.events('broker.dead_letter.original_gone'), [], 'the original was there all along');
  const dlq = new RecordingSink();
  await after.subscribe('t.dlq', { from: { kind: 'earliest' }, credit: 10 }, dlq);
  await second.clock.advanceAndSettle(50);
  assert.deepEqual(dlq.received.map((delivery) => delivery.value.toString()), ['x'], 'the dead letter is in the dead-letter topic');
  assert.equal(new Map(dlq.received[0]!.headers).get(DLQ_HEADERS.offset), '0');
  assert.equal(after.describeGroup(T, 'g').pending, 0, 'and only there');
  await second.untilSettled(after.close());
  await second.close();
});
