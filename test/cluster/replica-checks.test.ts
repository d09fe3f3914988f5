/**
 * A leader's background checks of its followers (src/cluster/replica-checks.ts) on the simulated
 * clock: one follower per interval, and none while a follower copies the leader's segments
 * (CATCH_UP_QUIET_MS), so a first check's hashing of whole logs never lands on a catch-up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Log } from '../../src/storage/log.js';
import { TopicLeader } from '../../src/cluster/topic-leader.js';
import { ReplicaChecks } from '../../src/cluster/replica-checks.js';
import { CATCH_UP_QUIET_MS } from '../../src/cluster/limits.js';
import { FerryError } from '../../src/errors.js';
import { silentLogger } from '../../src/platform/logger.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { record } from '../storage/log-kit.js';

const INTERVAL_MS = 1_000;

test('replica checks - no background check while a follower copies the leader\'s segments, then they go on', async () => {
  const clock = new SimClock();
  const log = await Log.open({ dir: '/t/p0', fs: new SimFileSystem(), clock, durability: 'never', segmentBytes: 4096 });
  await log.beginEpoch(3);
  for (let i = 0; i < 200; i++) await log.append([record(i)]);
  const leader = new TopicLeader({
    topic: 't', nodeId: 'n1', epoch: 3, inSync: ['n1', 'n2'], replicas: ['n1', 'n2', 'n3'], minInSync: 1, replicaLagMaxMs: 60_000,
    knownHighWatermarks: new Map(), clock, logger: silentLogger, changeInSync: async () => true, onFenced: () => undefined,
  });
  leader.addLog('p0', log);
  const asked: string[] = [];
  const checks = new ReplicaChecks({
    topic: 't', nodeId: 'n1', leader, clock, logger: silentLogger, intervalMs: INTERVAL_MS, onMismatch: () => undefined,
    connect: async (nodeId) => {
      asked.push(nodeId);
      throw new FerryError('CONNECTION_REFUSED', `${nodeId} is not there in this test`);
    },
  });
  checks.start();
  // n3 copies the leader's segments, a chunk per interval.
  for (let i = 0; i < 4; i++) {
    assert.ok((await leader.catchUpChunk({ topic: 't', replicaId: 'n3', epoch: 3, logId: 'p0', fromOffset: 0, bytesMax: 1024 })).batches.length > 0);
    assert.equal(leader.servingCatchUp, true);
    await clock.advanceAndSettle(INTERVAL_MS);
  }
  assert.deepEqual(asked, [], 'no check while the copy goes on');
  await clock.advanceAndSettle(CATCH_UP_QUIET_MS);
  assert.equal(leader.servingCatchUp, false);
  await clock.advanceAndSettle(INTERVAL_MS);
  assert.ok(asked.length > 0, 'the checks go on once the copy stopped');
  checks.stop();
  leader.stepDown(new FerryError('NOT_LEADER', 'test over'));
  await log.close();
});
