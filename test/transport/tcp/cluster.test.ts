/**
 * Cluster frames on a broker's connection (transport/tcp/cluster.ts): a follower's reports reach
 * the leader in the order they came. A REPLICA_FETCH and the REPLICA_PROGRESS the follower sent
 * after it (its sync of what the fetch before brought) often arrive in one read; the progress must
 * not be noted first and then overwritten by the fetch's older report, which nothing corrected
 * until the fetch's long poll ended (a handover's catch-up waited FETCH_WAIT_MS_MAX for it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder } from '../../../src/protocol/decoder.js';
import type { Frame } from '../../../src/protocol/frame.js';
import { FrameWriter } from '../../../src/protocol/writer.js';
import { PayloadReader } from '../../../src/protocol/reader.js';
import { encodeReplicaFetch, encodeReplicaProgress, type ReplicaFetchRequest, type ReplicaProgress } from '../../../src/protocol/codec-replication.js';
import { handleClusterFrame, type ClusterFrameContext } from '../../../src/transport/tcp/cluster.js';
import type { ClusterFrames } from '../../../src/transport/tcp/cluster-frames.js';

const SYNCED_BEFORE = 95;
const SYNCED_AFTER = 105;

/** One chunk holding a fetch (synced end 95 as it was sent) and then the progress after the sync (105). */
function fetchThenProgress(): Frame[] {
  const w = new FrameWriter(64);
  const logs = (syncedEnd: number) => [{ logId: 'p0', fetchOffset: SYNCED_AFTER, syncedEnd }];
  encodeReplicaFetch(w, 7, { topic: 't', replicaId: 'n3', epoch: 2, maxWaitMs: 500, bytesMax: 1024, logs: logs(SYNCED_BEFORE) });
  encodeReplicaProgress(w, { topic: 't', replicaId: 'n3', epoch: 2, logs: logs(SYNCED_AFTER) });
  const frames: Frame[] = [];
  const decoder = new FrameDecoder({ onFrames: (batch) => frames.push(...batch), onError: (error) => assert.fail(error) });
  decoder.push(w.take()!);
  assert.equal(frames.length, 2, 'both frames in one read');
  return frames;
}

test('cluster frames - a progress that came after a fetch is noted after it, so the newer synced end stands', async () => {
  // The leader's view of the follower: each report replaces the last (TopicLeader.note).
  const noted: Array<{ from: string; syncedEnd: number }> = [];
  const note = (from: string, logs: ReplicaFetchRequest['logs'] | ReplicaProgress['logs']): void => {
    noted.push({ from, syncedEnd: logs[0]!.syncedEnd });
  };
  const cluster = {
    nodeId: 'n2',
    fetch: (request: ReplicaFetchRequest) => {
      note('fetch', request.logs);
      return new Promise(() => {}); // parked: nothing new to send
    },
    progress: (message: ReplicaProgress) => note('progress', message.logs),
  } as unknown as ClusterFrames;
  const reader = new PayloadReader();
  const context = {
    peer: { socket: {} as never, principal: null, security: null, cluster },
    writer: new FrameWriter(64),
    reader,
    run: () => {},
    whenClosed: () => new Promise<void>(() => {}),
  } as unknown as ClusterFrameContext;
  for (const frame of fetchThenProgress()) handleClusterFrame(context, frame, reader.reset(frame.payload));
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.deepEqual(noted, [
    { from: 'fetch', syncedEnd: SYNCED_BEFORE },
    { from: 'progress', syncedEnd: SYNCED_AFTER },
  ]);
  assert.equal(noted.at(-1)!.syncedEnd, SYNCED_AFTER, 'the last report noted is the newest');
});
