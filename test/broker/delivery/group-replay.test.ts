/**
 * A group's replay of its journal can go on from where an earlier replay of the same journal
 * stopped (GroupReplay): a cluster follower replays the journals it copies as they come, and the
 * group's open as leader continues that replay instead of reading the journal from its start.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { GroupReplay, replayGroup, type ReplayedGroup } from '../../../src/broker/delivery/group-snapshots.js';
import { groupJournalOptions } from '../../../src/broker/delivery/group-store.js';
import { Log } from '../../../src/storage/log.js';
import type { LogFactory } from '../../../src/storage/types.js';
import { flush, openSimBroker, RecordingSink, SIM_DIR, values, type SimWorld } from '../sim-broker.js';

const GROUP_DIR = join(SIM_DIR, 'topics', 't', 'groups', 'g');

/** A closed broker whose group 'g' of topic 't' acked a and b of a, b, c, d (its journal: a snapshot, then events). */
async function ackedTwoOfFour(): Promise<SimWorld> {
  const world = await openSimBroker();
  await world.broker.createTopic('t', { partitions: 1, durability: 'always' });
  await world.broker.publish('t', ['a', 'b', 'c', 'd'].map((value) => ({ value: Buffer.from(value) })));
  const sink = new RecordingSink();
  const subscription = await world.broker.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 2 }, sink);
  await flush();
  for (const delivery of sink.received) await subscription.ack(delivery.partition, delivery.offset);
  await world.broker.close();
  return world;
}

/** Opens the group's journal of a closed broker, to replay it as a follower would. */
function openJournal(world: SimWorld): Promise<Log> {
  return Log.open(groupJournalOptions(GROUP_DIR, { fs: world.fs, clock: world.clock, logger: { debug() {}, info() {}, warn() {}, error() {} } as never, durability: 'always' }));
}

/** A replayed group's state, comparable. */
function stateOf(replayed: ReplayedGroup | null): unknown {
  assert.ok(replayed !== null, 'a snapshot was replayed');
  return replayed.state.toSnapshot({ group: 'g', createdAtMs: 0, config: replayed.snapshot.config, journalOffset: 0 });
}

test('group replay - continued in steps, it rebuilds what one replay of the whole journal does', async () => {
  const world = await ackedTwoOfFour();
  const journal = await openJournal(world);
  assert.ok(journal.nextOffset >= 2, 'the journal holds a snapshot and events');
  const whole = await replayGroup(journal, 1, null, GROUP_DIR);
  const steps = new GroupReplay(1, GROUP_DIR, journal.startOffset);
  for (let end = journal.startOffset + 1; end <= journal.nextOffset; end++) await steps.readTo(journal, end);
  assert.equal(steps.nextOffset, journal.nextOffset);
  assert.deepEqual(stateOf(steps.replayed), stateOf(whole));
  assert.equal(steps.replayed?.snapshotOffset, whole!.snapshotOffset);
  const half = new GroupReplay(1, GROUP_DIR, journal.startOffset);
  await half.readTo(journal, journal.startOffset + 1);
  const continued = await replayGroup(journal, 1, null, GROUP_DIR, half);
  assert.deepEqual(stateOf(continued), stateOf(whole));
  assert.equal(half.nextOffset, journal.nextOffset, 'replayGroup went on with the replay it was given');
  await journal.close();
});

test('group replay - a group opened with a warm replay reads its journal only past it, and serves as replayed', async () => {
  const world = await ackedTwoOfFour();
  const journal = await openJournal(world);
  const warm = new GroupReplay(1, GROUP_DIR, journal.startOffset);
  await warm.readTo(journal, journal.nextOffset);
  const warmEnd = warm.nextOffset;
  await journal.close();

  const reads: number[] = [];
  const openLog: LogFactory = async (options, role) => {
    const log = await Log.open(options);
    if (role.kind === 'group-journal') {
      const read = log.read.bind(log);
      log.read = (offset, readOptions) => {
        reads.push(offset);
        return read(offset, readOptions);
      };
    }
    return log;
  };
  let asked = 0;
  const after = await openSimBroker(world.fs, world.clock, {
    openLog,
    warmGroupReplay: async (topic, group) => {
      asked++;
      assert.deepEqual([topic, group], ['t', 'g']);
      return warm;
    },
  });
  assert.equal(asked, 1);
  assert.ok(reads.every((offset) => offset >= warmEnd), `no journal read below the warm replay's end ${warmEnd}: ${reads.join(', ')}`);
  const again = new RecordingSink();
  await after.broker.subscribe('t', { group: 'g', credit: 4 }, again);
  await flush();
  assert.deepEqual(values(again), ['c', 'd'], 'a and b stay acked');
  await after.broker.close();
});

test('group replay - a warm replay that does not fit the journal (past its end) is not used', async () => {
  const world = await ackedTwoOfFour();
  const stray = new GroupReplay(1, GROUP_DIR, 1_000_000);
  const after = await openSimBroker(world.fs, world.clock, { warmGroupReplay: async () => stray });
  const again = new RecordingSink();
  await after.broker.subscribe('t', { group: 'g', credit: 4 }, again);
  await flush();
  assert.deepEqual(values(again), ['c', 'd']);
  await after.broker.close();
});
