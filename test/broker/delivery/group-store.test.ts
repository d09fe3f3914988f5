/**
 * When a group journals its delivery counts (the `dispatched` event): in the next record of acks,
 * or on their own once DISPATCHED_FLUSH_DELAY_MS has passed without one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DISPATCHED_FLUSH_DELAY_MS } from '../../../src/broker/limits.js';
import { Log } from '../../../src/storage/log.js';
import { SimClock } from '../../sim/sim-clock.js';
import { seededRandom } from '../../sim/random.js';
import { flush, openSimBroker, RecordingSink, SIM_DIR, values, type SimWorld } from '../sim-broker.js';

const messages = ['a', 'b', 'c'].map((value) => ({ value: Buffer.from(value) }));

/** A broker whose group 'g' on topic 't' has delivered messages a, b and c, none acked. */
async function deliveredUnacked(): Promise<SimWorld> {
  const world = await openSimBroker();
  await world.broker.createTopic('t', { partitions: 1, durability: 'always' });
  await world.broker.publish('t', messages);
  const sink = new RecordingSink();
  await world.broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 3 }, sink);
  await flush();
  assert.deepEqual(values(sink), ['a', 'b', 'c']);
  return world;
}

/** The deliveries a reopened broker makes of group 'g': their delivery counts. */
async function deliveryCountsAfter(world: { fs: SimWorld['fs']; clock: SimClock }): Promise<number[]> {
  const after = await openSimBroker(world.fs, world.clock);
  const again = new RecordingSink();
  await after.broker.subscribe('t', { group: 'g', credit: 3 }, again);
  await flush();
  assert.deepEqual(values(again), ['a', 'b', 'c']);
  await after.broker.close();
  return again.received.map((delivery) => delivery.deliveryCount);
}

test('group store - delivery counts ride in the next record of acks: deliveries and their acks cost one journal sync', async () => {
  const { broker, fs } = await openSimBroker();
  await broker.createTopic('t', { partitions: 1, durability: 'always' });
  await broker.publish('t', messages);
  const sink = new RecordingSink();
  const subscription = await broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 0 }, sink);
  await flush();
  const syncsBefore = fs.counts.datasync;
  subscription.grantCredit(3);
  await flush();
  assert.deepEqual(values(sink), ['a', 'b', 'c']);
  assert.equal(fs.counts.datasync, syncsBefore, 'no journal sync for the deliveries alone');
  await Promise.all(sink.received.map((delivery) => subscription.ack(delivery.partition, delivery.offset)));
  assert.equal(fs.counts.datasync, syncsBefore + 1, 'one sync for the acks and the counts together');
  await broker.close();
});

test('group store - a delivery count with no ack is journaled after DISPATCHED_FLUSH_DELAY_MS, and survives a power loss', async () => {
  const world = await deliveredUnacked();
  await world.clock.advanceAndSettle(DISPATCHED_FLUSH_DELAY_MS);
  world.fs.crash({ random: seededRandom(3) });
  const counts = await deliveryCountsAfter({ fs: world.fs, clock: new SimClock(world.clock.nowMs() + 1) });
  assert.deepEqual(counts, [2, 2, 2], 'the delivery before the power loss is counted');
});

test('group store - a delivery count still waiting is journaled by a clean close', async () => {
  const world = await deliveredUnacked();
  await world.broker.close();
  assert.deepEqual(await deliveryCountsAfter(world), [2, 2, 2]);
});

test('group store - acks of the ticks that come while a journal record is being written share the next record', async () => {
  const world = await openSimBroker();
  await world.broker.createTopic('t', { partitions: 1, durability: 'always' });
  await world.broker.publish('t', messages);
  const sink = new RecordingSink();
  const subscription = await world.broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 3 }, sink);
  await flush();
  const [a, b, c] = sink.received;
  const nextTick = async (): Promise<void> => {
    for (let i = 0; i < 3; i++) await Promise.resolve();
  };
  // Three ticks, none waiting for the previous ack: the first record (a, and the delivery counts)
  // is still being written when b and c come, each in a tick of its own.
  const acked = [subscription.ack(a!.partition, a!.offset)];
  await nextTick();
  acked.push(subscription.ack(b!.partition, b!.offset));
  await nextTick();
  acked.push(subscription.ack(c!.partition, c!.offset));
  await Promise.all(acked);
  await world.broker.close();
  const journal = await Log.open({ dir: `${SIM_DIR}/topics/t/groups/g/journal`, fs: world.fs, clock: world.clock, durability: 'always' });
  assert.equal(journal.nextOffset, 3, 'the group\'s first snapshot; a; then b and c together');
  await journal.close();
  const after = await openSimBroker(world.fs, world.clock);
  assert.equal(after.broker.describeGroup('t', 'g').pending, 0, 'all three acks are durable');
  await after.broker.close();
});
