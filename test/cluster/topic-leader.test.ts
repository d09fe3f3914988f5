/**
 * The leader's side of a topic (src/cluster/topic-leader.ts) on the simulated disk and clock: the
 * high watermark is the least durable end over the in-sync set, appends are confirmed only under
 * it, the in-sync set changes only through the compare-and-swap it is given, and a newer epoch
 * fences the leader at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Log } from '../../src/storage/log.js';
import { TopicLeader, type TopicLeaderOptions } from '../../src/cluster/topic-leader.js';
import { FerryError, isFerryError } from '../../src/errors.js';
import { silentLogger } from '../../src/platform/logger.js';
import type { ReplicaFetchRequest } from '../../src/protocol/codec-replication.js';
import { SimClock, settle } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { record } from '../storage/log-kit.js';

const LAG_MAX_MS = 10_000;

interface Fixture {
  clock: SimClock;
  log: Log;
  leader: TopicLeader;
  changes: string[][];
  fenced: string[];
  /** What the next compare-and-swap answers. */
  casOk: { value: boolean };
}

async function fixture(overrides: Partial<TopicLeaderOptions> = {}): Promise<Fixture> {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const log = await Log.open({ dir: '/t/p0', fs, clock, durability: 'always' });
  const changes: string[][] = [];
  const fenced: string[] = [];
  const casOk = { value: true };
  const leader = new TopicLeader({
    topic: 't',
    nodeId: 'n1',
    epoch: 3,
    inSync: ['n1', 'n2', 'n3'],
    replicas: ['n1', 'n2', 'n3'],
    minInSync: 2,
    replicaLagMaxMs: LAG_MAX_MS,
    knownHighWatermarks: new Map(),
    clock,
    logger: silentLogger,
    changeInSync: async (inSync) => {
      changes.push(inSync);
      return casOk.value;
    },
    onFenced: (reason) => fenced.push(reason),
    ...overrides,
  });
  await log.beginEpoch(3);
  leader.addLog('p0', log);
  return { clock, log, leader, changes, fenced, casOk };
}

function fetchRequest(replicaId: string, fetchOffset: number, syncedEnd: number, epoch = 3): ReplicaFetchRequest {
  return { topic: 't', replicaId, epoch, maxWaitMs: 0, bytesMax: 1 << 20, logs: [{ logId: 'p0', fetchOffset, syncedEnd }] };
}

/** Appends one record through the leader's commit rule; returns whether it is confirmed after `settle`. */
function appendCommitted(f: Fixture): { confirmed: () => boolean; done: Promise<void> } {
  let confirmed = false;
  const done = (async () => {
    f.leader.checkWritable();
    const result = await f.log.append([record(0)]);
    await f.leader.waitCommitted('p0', result.lastOffset);
    confirmed = true;
  })();
  return { confirmed: () => confirmed, done };
}

test('topic leader - an append is confirmed only once every in-sync replica has synced it', async () => {
  const f = await fixture();
  const append = appendCommitted(f);
  await settle();
  await f.log.sync();
  assert.equal(f.leader.highWatermark('p0'), 0, 'nobody but the leader has it');
  await f.leader.fetch(fetchRequest('n2', 1, 1));
  await settle();
  assert.equal(append.confirmed(), false, 'n3 has not synced it');
  assert.equal(f.log.visibleEndOffset, 0, 'consumers see nothing uncommitted');
  f.leader.progress({ topic: 't', replicaId: 'n3', epoch: 3, logs: [{ logId: 'p0', fetchOffset: 1, syncedEnd: 1 }] });
  await append.done;
  assert.equal(f.leader.highWatermark('p0'), 1);
  assert.equal(f.log.visibleEndOffset, 1);
});

test('topic leader - a follower written but not synced does not count for always', async () => {
  const f = await fixture();
  const append = appendCommitted(f);
  await settle();
  await f.log.sync();
  await f.leader.fetch(fetchRequest('n2', 1, 0));
  await f.leader.fetch(fetchRequest('n3', 1, 0));
  await settle();
  assert.equal(append.confirmed(), false);
  await f.leader.fetch(fetchRequest('n2', 1, 1));
  await f.leader.fetch(fetchRequest('n3', 1, 1));
  await append.done;
});

test('topic leader - a follower that is gone leaves the in-sync set through etcd, then confirms go on without it', async () => {
  const f = await fixture();
  const append = appendCommitted(f);
  await settle();
  await f.log.sync();
  // n2 keeps fetching and has everything; n3 is silent (and no connection holds a fetch of it).
  for (let i = 0; i < 12; i++) {
    await f.leader.fetch(fetchRequest('n2', 1, 1));
    await f.clock.advanceAndSettle(200);
  }
  assert.deepEqual(f.changes, [['n1', 'n2']], 'n3 was taken out');
  await append.done;
  assert.deepEqual(f.leader.inSync, ['n1', 'n2']);
  // n3 comes back and catches up: it is put back, counted from the moment it is proposed.
  await f.leader.fetch(fetchRequest('n3', 1, 1));
  await f.clock.advanceAndSettle(200);
  assert.deepEqual(f.changes.at(-1)?.sort(), ['n1', 'n2', 'n3']);
  assert.deepEqual([...f.leader.inSync].sort(), ['n1', 'n2', 'n3']);
});

test('topic leader - fewer in sync than minInSync: appends are refused with NOT_ENOUGH_REPLICAS, nothing is confirmed', async () => {
  const f = await fixture({ inSync: ['n1'], minInSync: 2 });
  assert.throws(() => f.leader.checkWritable(), (error) => isFerryError(error, 'NOT_ENOUGH_REPLICAS'));
});

test('topic leader - a failed compare-and-swap fences the leader; a newer epoch from a follower fences it; stepping down fails every waiter', async () => {
  const f = await fixture();
  f.casOk.value = false;
  const append = appendCommitted(f);
  const failed = append.done.then(
    () => null,
    (error: unknown) => error,
  );
  await settle();
  await f.log.sync();
  await f.clock.advanceAndSettle(LAG_MAX_MS + 1_000);
  assert.equal(f.fenced.length > 0, true, 'the refused change fenced the leader');
  await assert.rejects(f.leader.fetch(fetchRequest('n2', 0, 0, 2)), (error) => isFerryError(error, 'STALE_EPOCH'));
  await assert.rejects(f.leader.fetch(fetchRequest('n2', 0, 0, 4)), (error) => isFerryError(error, 'NOT_LEADER'));
  f.leader.stepDown(new FerryError('NOT_LEADER', 'moved'));
  assert.ok(isFerryError(await failed, 'NOT_LEADER'), 'the waiting append failed as NOT_LEADER');
  assert.equal(f.leader.active, false);
});

test('topic leader - a fetch with nothing new waits until an append, and carries the batches as written', async () => {
  const f = await fixture();
  await f.log.append([record(0)]);
  const first = await f.leader.fetch({ ...fetchRequest('n2', 0, 0), maxWaitMs: 0 });
  assert.equal(first.logs[0]!.batches.length, 1);
  let answered = false;
  const parked = f.leader.fetch({ ...fetchRequest('n2', 1, 1), maxWaitMs: 500 }).then((response) => {
    answered = true;
    return response;
  });
  await settle();
  assert.equal(answered, false, 'it waits');
  await f.log.append([record(1)]);
  const second = await parked;
  assert.equal(second.logs[0]!.batches.length, 1);
  assert.equal(second.logs[0]!.leaderEnd, 2);
});

test('topic leader - a follower told to cut back (a digest mismatch) leaves the in-sync set and rejoins only after its fetches show the cut and it caught up', async () => {
  const f = await fixture();
  for (let i = 0; i < 3; i++) {
    const append = appendCommitted(f);
    await settle();
    await f.log.sync();
    await f.leader.fetch(fetchRequest('n2', i + 1, i + 1));
    await f.leader.fetch(fetchRequest('n3', i + 1, i + 1));
    await append.done;
  }
  f.leader.holdOut('n3', new Map([['p0', 1]]));
  assert.equal(await f.leader.removeFromInSync(['n3'], 'n3 differs'), true);
  assert.deepEqual(f.changes.at(-1), ['n1', 'n2']);
  // A fetch sent before the cut still says n3 holds everything: it is not put back for that.
  await f.leader.fetch(fetchRequest('n3', 3, 3));
  await f.clock.advanceAndSettle(400);
  assert.deepEqual([...f.leader.inSync].sort(), ['n1', 'n2']);
  // The cut (to 1), then the re-fetch up to the end: now it is put back.
  await f.leader.fetch(fetchRequest('n3', 1, 1));
  await f.clock.advanceAndSettle(400);
  assert.deepEqual([...f.leader.inSync].sort(), ['n1', 'n2'], 'behind: not yet');
  await f.leader.fetch(fetchRequest('n3', 3, 3));
  await f.leader.fetch(fetchRequest('n2', 3, 3));
  await f.clock.advanceAndSettle(400);
  assert.deepEqual([...f.leader.inSync].sort(), ['n1', 'n2', 'n3']);
});

test('topic leader - a handover names the first follower holding every log to the end with everything committed, as soon as one does', async () => {
  const f = await fixture();
  const append = appendCommitted(f);
  await settle();
  await f.log.sync();
  let named: string | undefined | null = null;
  const choosing = f.leader.successorHoldingAll(['n2', 'n3'], 5_000).then((found) => (named = found));
  await f.clock.advanceAndSettle(20);
  assert.equal(named, null, 'nobody holds the record yet');
  await f.leader.fetch(fetchRequest('n3', 1, 1));
  await f.clock.advanceAndSettle(20);
  assert.equal(named, null, 'n3 holds it, but it is not committed: n2 has not synced it');
  f.leader.progress({ topic: 't', replicaId: 'n2', epoch: 3, logs: [{ logId: 'p0', fetchOffset: 1, syncedEnd: 0 }] });
  await f.clock.advanceAndSettle(20);
  assert.equal(named, null);
  f.leader.progress({ topic: 't', replicaId: 'n2', epoch: 3, logs: [{ logId: 'p0', fetchOffset: 1, syncedEnd: 1 }] });
  await f.clock.advanceAndSettle(5);
  await choosing;
  assert.equal(named, 'n2', 'the first candidate in order that holds everything');
  await append.done;
  const none = await Promise.all([f.leader.successorHoldingAll(['n4'], 100), f.clock.advanceAndSettle(100)]);
  assert.equal(none[0], undefined, 'none after the timeout');
});

test('topic leader - a commit wait ended by the end of the leadership says the write was appended; a refusal after it does not', async () => {
  const f = await fixture();
  // n2 and n3 hold nothing yet: the append waits for the high watermark.
  const append = appendCommitted(f);
  const failed = append.done.then(
    () => null,
    (error: unknown) => error,
  );
  await settle();
  const moved = new FerryError('NOT_LEADER', 'topic t is led by n2', { detail: { topic: 't', leader: 'n2', address: '127.0.0.1:7702', epoch: 4 } });
  f.leader.stepDown(moved);
  const error = await failed;
  assert.ok(isFerryError(error, 'NOT_LEADER'), String(error));
  assert.deepEqual(error.detail, { topic: 't', leader: 'n2', address: '127.0.0.1:7702', epoch: 4, appended: true }, 'the leader hint stays, with appended');
  // A wait begun after the end (the append finished just then) says the same.
  await assert.rejects(f.leader.waitCommitted('p0', 0), (late) => isFerryError(late, 'NOT_LEADER') && late.detail?.['appended'] === true);
  // Nothing is appended after the end: that refusal is a definite one.
  assert.throws(() => f.leader.checkWritable(), (refused) => isFerryError(refused, 'NOT_LEADER') && refused.detail?.['appended'] === undefined);
});

test('topic leader - a sealed leader (a handover under way) refuses every write as moving, yet serves fetches and commits what it appended', async () => {
  const f = await fixture();
  const append = appendCommitted(f);
  await settle();
  await f.log.sync();
  f.leader.seal(new FerryError('NOT_LEADER', 'topic t is moving to another broker', { detail: { topic: 't', leader: null, address: null, epoch: 3, moving: true } }));
  assert.throws(() => f.leader.checkWritable(), (refused) => isFerryError(refused, 'NOT_LEADER') && refused.detail?.['moving'] === true && refused.detail?.['appended'] === undefined);
  assert.ok(f.leader.active, 'sealed is not stepped down: the followers still fetch from it');
  let named: string | undefined | null = null;
  const choosing = f.leader.successorHoldingAll(['n2', 'n3'], 5_000).then((found) => (named = found));
  // The followers fetch the record appended before the seal, and sync it: it is committed.
  const fetched = await f.leader.fetch(fetchRequest('n2', 0, 0));
  assert.equal(fetched.logs[0]!.batches.length, 1, 'the record appended before the seal is served');
  f.leader.progress({ topic: 't', replicaId: 'n2', epoch: 3, logs: [{ logId: 'p0', fetchOffset: 1, syncedEnd: 1 }] });
  f.leader.progress({ topic: 't', replicaId: 'n3', epoch: 3, logs: [{ logId: 'p0', fetchOffset: 1, syncedEnd: 1 }] });
  await f.clock.advanceAndSettle(5);
  await append.done;
  assert.ok(append.confirmed(), 'what was appended before the seal is confirmed');
  await choosing;
  assert.equal(named, 'n2');
  assert.equal(f.log.nextOffset, 1, 'nothing was appended after the seal');
  // stepDown ends the seal: the refusal is the step-down's from then on.
  f.leader.stepDown(new FerryError('NOT_LEADER', 'topic t is moving to n2', { detail: { topic: 't', leader: 'n2', address: null, epoch: 4 } }));
  assert.throws(() => f.leader.checkWritable(), (refused) => isFerryError(refused, 'NOT_LEADER') && refused.detail?.['leader'] === 'n2');
});
