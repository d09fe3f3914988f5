/**
 * Crashes of the simulated disk in the middle of acks, nacks, dead-lettering and redrive: after
 * every recovery nothing confirmed to a producer is lost, nothing is both in the dead-letter topic
 * and pending in the group, and a final drain leaves every message acked or dead-lettered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DLQ_HEADERS } from '../../src/broker/delivery/dead-letter.js';
import type { Broker } from '../../src/broker/broker.js';
import type { Group } from '../../src/broker/delivery/group.js';
import type { Topic } from '../../src/broker/topic.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { randomInt, seededRandom } from '../sim/random.js';
import { flush, openSimBroker, RecordingSink } from './sim-broker.js';

const SEEDS = process.env['CI'] ? 40 : 12;
const INCARNATIONS = 4;
const STEPS_PER_INCARNATION = 40;

interface Ledger {
  confirmed: Set<string>;
  acked: Set<string>;
}

async function deadLetters(broker: Broker): Promise<Map<string, number>> {
  const copies = new Map<string, number>();
  if (!broker.listTopics().some((topic) => topic.name === 'jobs.dlq')) return copies;
  const sink = new RecordingSink();
  const stream = await broker.subscribe('jobs.dlq', { from: { kind: 'earliest' }, credit: 100_000 }, sink);
  await flush();
  for (const delivery of sink.received) {
    const offset = Number(delivery.headers.find(([name]) => name === DLQ_HEADERS.offset)![1]);
    copies.set(delivery.value.toString(), offset);
  }
  await stream.close();
  return copies;
}

async function incarnation(broker: Broker, clock: SimClock, random: () => number, ledger: Ledger, prefix: string): Promise<void> {
  const published = Array.from({ length: randomInt(random, 1, 8) }, (_, i) => `${prefix}-${i}`);
  void broker.publish('jobs', published.map((value) => ({ value: Buffer.from(value) }))).then(
    () => published.forEach((value) => ledger.confirmed.add(value)),
    () => undefined,
  );
  const sink = new RecordingSink();
  const subscription = await broker.subscribe('jobs', { group: 'w', from: { kind: 'earliest' }, credit: 20, backoffMs: [5], deliveriesMax: 3 }, sink);
  let handled = 0;
  for (let step = 0; step < STEPS_PER_INCARNATION; step++) {
    await clock.advanceAndSettle(randomInt(random, 0, 6));
    while (handled < sink.received.length) {
      const delivery = sink.received[handled++]!;
      const value = delivery.value.toString();
      const roll = random();
      subscription.grantCredit(1);
      if (roll < 0.5) void subscription.ack(delivery.partition, delivery.offset).then(() => ledger.acked.add(value), () => undefined);
      else if (roll < 0.8) void subscription.nack(delivery.partition, delivery.offset).catch(() => undefined);
      else if (roll < 0.9) void subscription.reject!(delivery.partition, delivery.offset, 'test').catch(() => undefined);
    }
    if (random() < 0.05) void broker.redrive('jobs.dlq', { limit: 1 }).catch(() => undefined);
  }
}

test('delivery crash - after random crashes every message is acked, pending or dead-lettered, never two of these', async (t) => {
  const stats = { deadLetters: 0, confirmed: 0, acked: 0 };
  for (let seed = 1; seed <= SEEDS; seed++) {
    const random = seededRandom(seed);
    let fs = new SimFileSystem({ random });
    let clock = new SimClock();
    const ledger: Ledger = { confirmed: new Set(), acked: new Set() };
    for (let life = 0; life < INCARNATIONS; life++) {
      const { broker } = await openSimBroker(fs, clock);
      if (!broker.listTopics().some((topic) => topic.name === 'jobs')) await broker.createTopic('jobs');
      // Recovery invariant: a dead letter's original is settled in the group.
      const copies = await deadLetters(broker);
      const group = groupOf(broker);
      if (group !== undefined) {
        for (const [value, offset] of copies) {
          assert.ok(group.isSettled(0, offset), `seed ${seed}: ${value} is both dead-lettered and pending`);
        }
      }
      stats.deadLetters += copies.size;
      await incarnation(broker, clock, random, ledger, `s${seed}-l${life}`);
      fs.crash({ tearLastWrite: random() < 0.5, garbage: random() < 0.3, random });
      clock = new SimClock(clock.nowMs() + 1);
      void fs;
    }
    // Final drain: ack everything that is still pending.
    const { broker, clock: drainClock } = await openSimBroker(fs, clock);
    const sink = new RecordingSink();
    const subscription = await broker.subscribe('jobs', { group: 'w', credit: 100_000 }, sink);
    for (let round = 0; round < 20; round++) {
      await drainClock.advanceAndSettle(10);
      for (const delivery of sink.received.splice(0)) {
        await subscription.ack(delivery.partition, delivery.offset);
        ledger.acked.add(delivery.value.toString());
      }
    }
    const copies = await deadLetters(broker);
    for (const value of ledger.confirmed) {
      assert.ok(ledger.acked.has(value) || copies.has(value), `seed ${seed}: confirmed message ${value} was lost`);
    }
    assert.equal(broker.describeGroup('jobs', 'w').pending, 0, `seed ${seed}: drained`);
    stats.confirmed += ledger.confirmed.size;
    stats.acked += ledger.acked.size;
    await broker.close();
    fs = new SimFileSystem();
  }
  t.diagnostic(`seeds ${SEEDS}: ${stats.confirmed} confirmed, ${stats.acked} acked, ${stats.deadLetters} dead letters seen at recoveries`);
  assert.ok(stats.deadLetters > 0, 'the scenario dead-letters something');
});

/** The group object itself: the test checks its settled set directly. */
function groupOf(broker: Broker): Group | undefined {
  const topics = (broker as unknown as { topics: Map<string, Topic> }).topics;
  return topics.get('jobs')?.group('w');
}
