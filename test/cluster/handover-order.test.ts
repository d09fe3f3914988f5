/**
 * The steps of a controlled handover (src/cluster/handover.ts) in their order, with fakes around a
 * real TopicLeader on the simulated disk and clock: consumers are drained while writes go on; then
 * writes stop (refused as `moving`, nothing stored) while the followers catch up; etcd names the
 * successor; and only after that does the topic's service close, so closing costs no time while
 * publishes wait.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Log } from '../../src/storage/log.js';
import { TopicLeader } from '../../src/cluster/topic-leader.js';
import { handOverTopic } from '../../src/cluster/handover.js';
import { LeadershipChanges } from '../../src/cluster/leadership-changes.js';
import type { ClusterStore, TopicState, VersionedState } from '../../src/cluster/cluster-store.js';
import type { LocalTopics } from '../../src/cluster/local-topics.js';
import { isFerryError } from '../../src/errors.js';
import { silentLogger } from '../../src/platform/logger.js';
import { SimClock, settle } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';

test('handover order - drain with writes open, then writes refused as moving until etcd names the successor, and the service closes only after that', async () => {
  const clock = new SimClock();
  const log = await Log.open({ dir: '/t/p0', fs: new SimFileSystem(), clock, durability: 'always' });
  const leader = new TopicLeader({
    topic: 't', nodeId: 'n1', epoch: 3, inSync: ['n1', 'n2', 'n3'], replicas: ['n1', 'n2', 'n3'], minInSync: 2, replicaLagMaxMs: 10_000,
    knownHighWatermarks: new Map(), clock, logger: silentLogger, changeInSync: async () => true, onFenced: () => undefined,
  });
  await log.beginEpoch(3);
  leader.addLog('p0', log);
  const steps: string[] = [];
  let writableWhileDraining: boolean | null = null;
  const local = {
    drain: async () => {
      writableWhileDraining = (() => {
        try {
          leader.checkWritable();
          return true;
        } catch {
          return false;
        }
      })();
      steps.push('drain');
    },
    close: async () => {
      steps.push('close');
    },
  } as unknown as LocalTopics;
  let current: VersionedState = { state: { leader: 'n1', epoch: 3, inSync: ['n1', 'n2', 'n3'] }, modRevision: 7 };
  let written: TopicState | null = null;
  const store = {
    casState: async (_topic: string, modRevision: number, next: TopicState) => {
      assert.equal(modRevision, 7);
      assert.throws(() => leader.checkWritable(), 'no write is taken while etcd is asked');
      steps.push('cas');
      written = next;
      return { ok: true, modRevision: 8 };
    },
  } as unknown as ClusterStore;
  const changes = new LeadershipChanges(clock);
  let serving = true;
  const handing = handOverTopic({
    topic: 't', nodeId: 'n1', leader, successors: ['n2', 'n3'], store, local, changes, clock, logger: silentLogger,
    brokerAddress: (nodeId) => `127.0.0.1:${nodeId === 'n2' ? 7702 : 7703}`,
    state: () => current,
    stopServing: () => {
      serving = false;
      steps.push('stop-serving');
    },
    swapped: (next) => {
      if (next !== null) current = next;
    },
  });
  await settle();
  assert.equal(writableWhileDraining, true, 'writes go on while consumers drain');
  assert.equal(serving, false);
  assert.ok(changes.changing, 'requests wait while the leadership moves');
  // A write now is refused as moving, and nothing of it is stored.
  assert.throws(() => leader.checkWritable(), (refused) => isFerryError(refused, 'NOT_LEADER') && refused.detail?.['moving'] === true);
  assert.deepEqual(steps, ['drain', 'stop-serving'], 'the service stays open while the followers catch up');
  // n3 catches up first (the log is empty: fetching from 0 holds it all).
  await leader.fetch({ topic: 't', replicaId: 'n3', epoch: 3, maxWaitMs: 0, bytesMax: 1 << 20, logs: [{ logId: 'p0', fetchOffset: 0, syncedEnd: 0 }] });
  await clock.advanceAndSettle(10);
  assert.equal(await handing, true);
  assert.deepEqual(steps, ['drain', 'stop-serving', 'cas', 'close'], 'the service closes after etcd names the successor');
  assert.deepEqual(written, { leader: 'n3', epoch: 4, inSync: ['n2', 'n3'] });
  assert.equal(current.modRevision, 8);
  assert.ok(!changes.changing, 'waiting requests are answered');
  assert.ok(!leader.active);
});
