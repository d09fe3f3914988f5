/**
 * The log a leader's broker appends through (src/cluster/replicated-log.ts), on the simulated disk
 * and clock: while a new leadership's epoch start is still being made durable, the topic's service
 * may open and read, but no record is appended before it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Log } from '../../src/storage/log.js';
import { ReplicatedLog } from '../../src/cluster/replicated-log.js';
import { TopicLeader } from '../../src/cluster/topic-leader.js';
import { FerryError, isFerryError } from '../../src/errors.js';
import { silentLogger } from '../../src/platform/logger.js';
import { SimClock, settle } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { record } from '../storage/log-kit.js';

/** A log on the simulated disk led alone by n1 in epoch 2 (the epoch its appends wait to begin). */
async function soleLeader(): Promise<{ log: Log; leader: TopicLeader }> {
  const clock = new SimClock();
  const log = await Log.open({ dir: '/t/p0', fs: new SimFileSystem(), clock, durability: 'always' });
  const leader = new TopicLeader({
    topic: 't', nodeId: 'n1', epoch: 2, inSync: ['n1'], replicas: ['n1'], minInSync: 1, replicaLagMaxMs: 10_000,
    knownHighWatermarks: new Map(), clock, logger: silentLogger, changeInSync: async () => true, onFenced: () => undefined,
  });
  leader.addLog('p0', log);
  return { log, leader };
}

test('replicated log - the first append waits for the epoch start to be durable; reads do not', async () => {
  const { log, leader } = await soleLeader();
  let begin!: () => void;
  const epochBegun = new Promise<void>((resolve) => (begin = resolve)).then(() => log.beginEpoch(2));
  const replicated = new ReplicatedLog('p0', log, leader, null, epochBegun);
  assert.deepEqual(await replicated.read(0), [], 'reads go on while the epoch begins');
  let appended = false;
  const appending = replicated.append([record(0)]).then(() => (appended = true));
  await settle();
  assert.equal(log.nextOffset, 0, 'nothing is appended before the epoch start is durable');
  begin();
  await settle();
  await log.sync();
  await settle();
  await appending;
  assert.ok(appended);
  assert.equal(log.leaderEpoch, 2);
  assert.equal(log.epochEnd(1).endOffset, 0, 'the record is in epoch 2: epoch 1 ends before it');
});

test('replicated log - an epoch start that fails refuses the append as NOT_LEADER and stores nothing', async () => {
  const { log, leader } = await soleLeader();
  const failed = Promise.reject(new FerryError('STORAGE_FAILED', 'the epoch list could not be written'));
  failed.catch(() => undefined);
  const replicated = new ReplicatedLog('p0', log, leader, null, failed);
  await assert.rejects(replicated.append([record(0)]), (error) => isFerryError(error, 'NOT_LEADER'));
  assert.equal(log.nextOffset, 0, 'nothing is stored');
});
