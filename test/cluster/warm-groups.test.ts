/**
 * A follower replays the group journals it copies as they come (cluster/warm-groups.ts), so that a
 * promotion's open of the groups continues that replay instead of reading each journal from its
 * start while publishes wait (a handover's pause).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { replayGroup } from '../../src/broker/delivery/group-snapshots.js';
import { groupJournalOptions } from '../../src/broker/delivery/group-store.js';
import { Log } from '../../src/storage/log.js';
import { partitionsOf, WarmGroups } from '../../src/cluster/warm-groups.js';
import { flush, openSimBroker, RecordingSink, SIM_DIR, type SimWorld } from '../broker/sim-broker.js';

const GROUP_DIR = join(SIM_DIR, 'topics', 't', 'groups', 'g');
const LOG_ID = 'g/g';
const quiet = { debug() {}, info() {}, warn() {}, error() {} } as never;

/** A closed broker whose group 'g' of topic 't' acked a and b; and its journal, open as a follower's local log. */
async function journalOfAckedGroup(): Promise<{ world: SimWorld; journal: Log }> {
  const world = await openSimBroker();
  await world.broker.createTopic('t', { partitions: 1, durability: 'always' });
  await world.broker.publish('t', ['a', 'b', 'c'].map((value) => ({ value: Buffer.from(value) })));
  const sink = new RecordingSink();
  const subscription = await world.broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 2 }, sink);
  await flush();
  for (const delivery of sink.received) await subscription.ack(delivery.partition, delivery.offset);
  await world.broker.close();
  const journal = await Log.open(groupJournalOptions(GROUP_DIR, { fs: world.fs, clock: world.clock, logger: quiet, durability: 'always' }));
  return { world, journal };
}

const appended = (from: number) => ({ kind: 'appended' as const, bytes: Buffer.alloc(0), from });

test('warm groups - a promotion takes a replay of the journal the follower copied, as far as it was read, once', async () => {
  const { journal } = await journalOfAckedGroup();
  const warm = new WarmGroups(() => 1, (logId) => (logId === LOG_ID ? journal : undefined));
  warm.change(LOG_ID, appended(0));
  warm.change('p0', appended(0));
  await flush();
  warm.beginPromotion();
  const replay = await warm.take('g');
  assert.ok(replay !== null, 'the journal was replayed while following');
  assert.equal(replay.nextOffset, journal.nextOffset, 'up to the journal end');
  const whole = await replayGroup(journal, 1, null, GROUP_DIR);
  const snapshotOf = (state: NonNullable<typeof whole>['state']): unknown => state.toSnapshot({ group: 'g', createdAtMs: 0, config: whole!.snapshot.config, journalOffset: 0 });
  assert.deepEqual(snapshotOf(replay.replayed!.state), snapshotOf(whole!.state));
  assert.equal(await warm.take('g'), null, 'given once');
  assert.equal(await warm.take('other'), null);
  warm.endPromotion();
  await journal.close();
});

test('warm groups - a cut or reset of the journal drops its replay; so does a topic whose partitions are unknown', async () => {
  const { journal } = await journalOfAckedGroup();
  const warm = new WarmGroups(() => 1, () => journal);
  warm.change(LOG_ID, appended(0));
  await flush();
  warm.change(LOG_ID, { kind: 'cut', end: 1 });
  warm.beginPromotion();
  assert.equal(await warm.take('g'), null, 'cut: the replay read records the log no longer holds');
  warm.endPromotion();
  warm.change(LOG_ID, appended(0));
  await flush();
  warm.change(LOG_ID, { kind: 'reset', start: 0 });
  warm.beginPromotion();
  assert.equal(await warm.take('g'), null, 'reset');
  warm.endPromotion();

  const unknown = new WarmGroups(() => partitionsOf({}), () => journal);
  unknown.change(LOG_ID, appended(0));
  await flush();
  unknown.beginPromotion();
  assert.equal(await unknown.take('g'), null);
  assert.equal(partitionsOf({ partitions: 3 }), 3);
  await journal.close();
});

test('warm groups - nothing is taken outside a promotion, and the end of one drops what was not taken', async () => {
  const { journal } = await journalOfAckedGroup();
  const warm = new WarmGroups(() => 1, () => journal);
  warm.change(LOG_ID, appended(0));
  await flush();
  assert.equal(await warm.take('g'), null, 'not promoting');
  warm.beginPromotion();
  warm.endPromotion();
  warm.beginPromotion();
  assert.equal(await warm.take('g'), null, 'the leader appended its own since: the replay is gone');
  warm.endPromotion();
  await journal.close();
});
