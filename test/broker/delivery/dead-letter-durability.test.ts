/**
 * Dead-lettering and redrive across power losses (issue 8, chaos `interval`): a message moves
 * between two logs synced independently (the group's journal and the dead-letter topic, or the
 * dead-letter topic's redrive group and the source topic), so the move must never settle the
 * original before the copy is durable, and recovery must find a copy wherever a power loss left
 * it. On the simulated disk: "write-back" of one file (the kernel flushes dirty pages in any order)
 * and a crash keep some files and cut others.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Broker } from '../../../src/broker/broker.js';
import { DLQ_HEADERS } from '../../../src/broker/delivery/dead-letter.js';
import { isFerryError } from '../../../src/errors.js';
import { SimClock } from '../../sim/sim-clock.js';
import { seededRandom } from '../../sim/random.js';
import { RecordingLogger } from '../../storage/log-kit.js';
import { flush, openSimBroker, RecordingSink, SIM_DIR, type SimWorld } from '../sim-broker.js';

const JOURNAL_DIR = `${SIM_DIR}/topics/t/groups/g/journal`;
const TOPIC_PARTITION_DIR = `${SIM_DIR}/topics/t/partitions/0`;
const DLQ_PARTITION_DIR = `${SIM_DIR}/topics/t.dlq/partitions/0`;
const INTERVAL = { partitions: 1, durability: 'interval', syncIntervalMs: 50 } as const;
/** Longer than syncIntervalMs: every interval log syncs on its own. */
const SYNC_TICK_MS = 100;

/** The kernel writes back one log's dirty pages and not another's: datasync every segment of `dir`. */
async function writeBack(world: SimWorld, dir: string): Promise<void> {
  for (const name of await world.fs.readdir(dir)) {
    if (!name.endsWith('.log')) continue;
    const handle = await world.fs.open(`${dir}/${name}`, 'readwrite');
    await handle.datasync();
    await handle.close();
  }
}

/** Power loss, then a new broker incarnation on what the disk kept. */
async function powerLoss(world: SimWorld, logger = new RecordingLogger()): Promise<SimWorld> {
  world.fs.crash({ random: seededRandom(1) });
  return openSimBroker(world.fs, new SimClock(world.clock.nowMs() + 1), { logger });
}

/** Every value stored in a topic, in offset order (a stream from the start). */
async function topicValues(broker: Broker, topic: string): Promise<string[]> {
  if (!broker.listTopics().some((info) => info.name === topic)) return [];
  const sink = new RecordingSink();
  const stream = await broker.subscribe(topic, { from: { kind: 'earliest' }, credit: 1_000 }, sink);
  await flush();
  await stream.close();
  return sink.received.map((delivery) => delivery.value.toString());
}

/** Topic `t` holds x (synced); group g has it in flight. */
async function xInFlight(world: SimWorld) {
  await world.broker.publish('t', 'x');
  await world.clock.advanceAndSettle(SYNC_TICK_MS);
  const sink = new RecordingSink();
  const subscription = await world.broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 10 }, sink);
  await flush();
  assert.deepEqual(sink.received.map((delivery) => delivery.offset), [0]);
  return subscription;
}

/**
 * t.dlq holds u0..u2 (synced when `synced`, else only written: its end is 3 either way); then x
 * is rejected while the dead-letter topic's disk is full, so the move stops after its intent.
 */
async function moveStoppedAfterIntent(world: SimWorld, synced: boolean): Promise<void> {
  const subscription = await xInFlight(world);
  await world.broker.publish('t.dlq', ['u0', 'u1', 'u2'].map((value) => ({ value: Buffer.from(value) })));
  if (synced) await world.clock.advanceAndSettle(SYNC_TICK_MS);
  world.fs.failNext('write', 'ENOSPC', 't.dlq');
  await assert.rejects(subscription.reject!(0, 0, 'poison'), (error: unknown) => isFerryError(error) && error.code === 'DISK_FULL');
}

test('dead letter - interval mode: the original is settled only once its copy is synced', async () => {
  const before = await openSimBroker();
  await before.broker.createTopic('t', INTERVAL);
  await before.broker.createTopic('t.dlq', INTERVAL);
  const subscription = await xInFlight(before);
  await subscription.reject!(0, 0, 'poison');
  // The group's journal (intent, settle) reaches the disk; nothing else is synced in between.
  await writeBack(before, JOURNAL_DIR);
  const after = await powerLoss(before);
  assert.deepEqual(await topicValues(after.broker, 't.dlq'), ['x'], 'x is in the dead-letter topic');
  assert.equal(after.broker.describeGroup('t', 'g').pending, 0, 'and only there');
  await after.broker.close();
});

test('dead letter - a hint taken at the unsynced end of the dead-letter topic: after two power losses there is one copy', async () => {
  const first = await openSimBroker();
  await first.broker.createTopic('t', INTERVAL);
  await first.broker.createTopic('t.dlq', INTERVAL);
  await moveStoppedAfterIntent(first, false);
  await writeBack(first, JOURNAL_DIR);
  // u0..u2 are gone; the intent survives. Recovery writes x's copy at offset 0.
  const second = await powerLoss(first);
  assert.deepEqual(await topicValues(second.broker, 't.dlq'), ['x']);
  // The copy reaches the disk, the settle in the journal does not: recovery runs again.
  await writeBack(second, DLQ_PARTITION_DIR);
  const third = await powerLoss(second);
  assert.deepEqual(await topicValues(third.broker, 't.dlq'), ['x'], 'the copy below the old end is found, not written again');
  assert.equal(third.broker.describeGroup('t', 'g').pending, 0);
  await third.broker.close();
});

test('dead letter - a hint past the end of the dead-letter topic (deleted and created again) is not trusted', async () => {
  const first = await openSimBroker();
  await first.broker.createTopic('t', INTERVAL);
  await first.broker.createTopic('t.dlq', INTERVAL);
  await moveStoppedAfterIntent(first, true);
  await first.clock.advanceAndSettle(SYNC_TICK_MS); // the intent (hint 3) is synced
  await first.broker.deleteTopic('t.dlq');
  await first.broker.close();
  // Recovery finds the intent pointing past the end of a topic that no longer exists.
  const logger = new RecordingLogger();
  const second = await openSimBroker(first.fs, new SimClock(first.clock.nowMs() + 1), { logger });
  assert.deepEqual(await topicValues(second.broker, 't.dlq'), ['x']);
  // The copy is durable (synced before the settle); the journal's records since the open are not.
  const third = await powerLoss(second);
  assert.deepEqual(await topicValues(third.broker, 't.dlq'), ['x'], 'found below the stale hint, not written again');
  assert.equal(third.broker.describeGroup('t', 'g').pending, 0);
  assert.deepEqual(
    logger.events('broker.dead_letter.hint_past_end').map((fields) => fields?.['dlqOffsetHint']),
    [3],
    'the stale hint was reported',
  );
  await third.broker.close();
});

test('redrive - interval mode: a dead letter is settled only once its republished copy is synced', async () => {
  const before = await openSimBroker();
  await before.broker.createTopic('t', INTERVAL);
  const subscription = await xInFlight(before);
  await subscription.reject!(0, 0, 'poison'); // t.dlq is created with the defaults: `always`
  await before.clock.advanceAndSettle(SYNC_TICK_MS);
  assert.deepEqual(await before.broker.redrive('t.dlq'), { moved: 1 });
  const after = await powerLoss(before);
  // The redrive group's settle was fsynced (`always`): the republished x must have been too.
  assert.deepEqual(await after.broker.redrive('t.dlq'), { moved: 0 });
  assert.deepEqual(await topicValues(after.broker, 't'), ['x', 'x'], 'x is back in t after its original');
  await after.broker.close();
});

test('redrive - a dead-letter offset reused after a power loss is redriven: the new dead letter is no duplicate of the lost one', async () => {
  const first = await openSimBroker();
  await first.broker.createTopic('t', INTERVAL);
  await first.broker.createTopic('t.dlq', INTERVAL);
  await first.broker.publish('t', 'x');
  // A dead letter of t's group g, written by the broker (written, not synced), is redriven into t, which keeps it.
  await (await first.broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 0 }, new RecordingSink())).close();
  await first.broker.publishAsBroker('t.dlq', [{ value: Buffer.from('a'), key: null, headers: [[DLQ_HEADERS.topic, 't'], [DLQ_HEADERS.group, 'g']] }]);
  assert.deepEqual(await first.broker.redrive('t.dlq'), { moved: 1 });
  await writeBack(first, TOPIC_PARTITION_DIR);
  const second = await powerLoss(first);
  assert.deepEqual(await topicValues(second.broker, 't'), ['x', 'a']);
  assert.deepEqual(await topicValues(second.broker, 't.dlq'), [], 'a was lost from the dead-letter topic');
  // x is dead-lettered: its copy gets offset 0 of t.dlq, the offset a had.
  const sink = new RecordingSink();
  const subscription = await second.broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 10 }, sink);
  await flush();
  await subscription.reject!(0, 0, 'poison');
  assert.deepEqual(await second.broker.redrive('t.dlq'), { moved: 1 });
  assert.deepEqual(await topicValues(second.broker, 't'), ['x', 'a', 'x'], 'x was republished, not dropped as a repeat of a');
  await second.broker.close();
});
