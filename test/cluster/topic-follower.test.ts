/**
 * A follower of a new epoch (src/cluster/topic-follower.ts) against a real TopicLeader over a
 * loopback connection, on the simulated disk and clock. A follower whose log ends where the new
 * leader's epoch starts records that start durably as soon as it follows, before the epoch's first
 * batch comes (so the first commit of a new leader waits for no sync of the follower's epoch list);
 * a follower still behind the leader's earlier epochs fetches them first and records the start with
 * the epoch's first batch, as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Log } from '../../src/storage/log.js';
import { EPOCH_FILE } from '../../src/storage/epoch-cache.js';
import { TopicLeader } from '../../src/cluster/topic-leader.js';
import { TopicFollower, type FollowerStop } from '../../src/cluster/topic-follower.js';
import { CatchUpRate } from '../../src/cluster/catch-up-rate.js';
import type { ClientConnection } from '../../src/client/connection.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FRAME_TYPES, type Frame } from '../../src/protocol/frame.js';
import { FrameWriter } from '../../src/protocol/writer.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { decodeEpochEnd, decodeReplicaFetch, decodeReplicaProgress, encodeEpochEndOk, encodeReplicaFetchOk } from '../../src/protocol/codec-replication.js';
import { silentLogger } from '../../src/platform/logger.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { record } from '../storage/log-kit.js';

const LEADER_DIR = '/n2/p0';
const FOLLOWER_DIR = '/n3/p0';
const STEP_MS = 5;
const STEPS_MAX = 400;

function framesOf(writer: FrameWriter): Frame[] {
  const frames: Frame[] = [];
  const taken = writer.take();
  if (taken === null) return frames;
  new FrameDecoder({ onFrames: (batch) => frames.push(...batch), onError: (error) => assert.fail(error) }).push(Buffer.from(taken));
  return frames;
}

/** A connection whose requests the leader answers in the same process, through the real codecs. */
function loopback(leader: TopicLeader): ClientConnection {
  const writer = new FrameWriter(256);
  const serve = async (frame: Frame): Promise<FrameWriter> => {
    const reply = new FrameWriter(256);
    const r = new PayloadReader().reset(frame.payload);
    if (frame.type === FRAME_TYPES.EPOCH_END) encodeEpochEndOk(reply, frame.requestId, leader.epochEnd(decodeEpochEnd(r)));
    else if (frame.type === FRAME_TYPES.REPLICA_FETCH) encodeReplicaFetchOk(reply, frame.requestId, await leader.fetch(decodeReplicaFetch(r)));
    else assert.fail(`unexpected frame ${frame.type}`);
    return reply;
  };
  return {
    isOpen: true,
    writer,
    scheduleFlush: () => {
      for (const frame of framesOf(writer)) if (frame.type === FRAME_TYPES.REPLICA_PROGRESS) leader.progress(decodeReplicaProgress(new PayloadReader().reset(frame.payload)));
    },
    recyclePayload: () => undefined,
    request: async <T>(encode: (w: FrameWriter, id: number) => void, replyType: number, decode: (r: PayloadReader) => T): Promise<T> => {
      const w = new FrameWriter(256);
      encode(w, 1);
      const [frame] = framesOf(w);
      const [reply] = framesOf(await serve(frame!));
      assert.equal(reply!.type, replyType);
      return decode(new PayloadReader().reset(reply!.payload));
    },
  } as unknown as ClientConnection;
}

/** The epochs of a log's epoch list as they would survive a crash now. */
function durableEpochs(fs: SimFileSystem, dir: string): number[][] {
  const bytes = fs.fileBytes(`${dir}/${EPOCH_FILE}`, 'durable');
  return bytes === null ? [] : (JSON.parse(bytes.toString('utf8')) as { epochs: number[][] }).epochs;
}

async function until(clock: SimClock, what: string, done: () => boolean): Promise<void> {
  for (let step = 0; step < STEPS_MAX && !done(); step++) await clock.advanceAndSettle(STEP_MS);
  assert.ok(done(), what);
}

/**
 * Epoch 1 wrote `written` records on the leader, of which the follower holds `held`; the leader
 * then took up epoch 2 (its start durable) and the follower follows it.
 */
async function newEpoch(written: number, held: number) {
  const clock = new SimClock();
  const fs = new SimFileSystem();
  const leaderLog = await Log.open({ dir: LEADER_DIR, fs, clock, durability: 'always' });
  const followerLog = await Log.open({ dir: FOLLOWER_DIR, fs, clock, durability: 'always' });
  await leaderLog.beginEpoch(1);
  for (let i = 0; i < written; i++) await Promise.all([leaderLog.append([record(i)]), leaderLog.sync()]);
  const batches = await leaderLog.readBatches(0, { bytesMax: 1 << 20, endOffset: held });
  await followerLog.appendBatches(Buffer.concat(batches));
  await followerLog.sync();
  assert.equal(followerLog.nextOffset, held);
  await leaderLog.beginEpoch(2);
  const leader = new TopicLeader({
    topic: 't', nodeId: 'n2', epoch: 2, inSync: ['n2', 'n3'], replicas: ['n2', 'n3'], minInSync: 2, replicaLagMaxMs: 10_000,
    knownHighWatermarks: new Map(), clock, logger: silentLogger, changeInSync: async () => true, onFenced: () => undefined,
  });
  leader.addLog('p0', leaderLog);
  const connection = loopback(leader);
  const stops: FollowerStop[] = [];
  const follower = new TopicFollower({
    topic: 't', nodeId: 'n3', leaderId: 'n2', epoch: 2,
    logs: { ids: () => ['p0'], get: (logId) => (logId === 'p0' ? followerLog : undefined), open: async () => followerLog },
    connect: async () => connection,
    clock, logger: silentLogger, highWatermarks: new Map(), catchUpRate: new CatchUpRate(undefined, clock),
    onStop: (stop) => stops.push(stop),
  });
  const end = async (): Promise<void> => {
    await follower.stop();
    leader.stepDown(new (await import('../../src/errors.js')).FerryError('NOT_LEADER', 'test over'));
    await clock.advanceAndSettle(STEP_MS);
    await follower.done;
  };
  return { clock, fs, leaderLog, followerLog, leader, stops, end };
}

test('topic follower - a log ending where the new epoch starts records the start durably before the epoch writes anything; the first commit then needs no epoch sync', async () => {
  const { clock, fs, leaderLog, followerLog, leader, stops, end } = await newEpoch(3, 3);
  await until(clock, 'the follower records epoch 2 at its end', () => followerLog.leaderEpoch === 2);
  assert.equal(leaderLog.nextOffset, 3, 'the leader has written nothing in epoch 2 yet');
  assert.deepEqual(followerLog.epochs(), [{ epoch: 1, startOffset: 0 }, { epoch: 2, startOffset: 3 }]);
  assert.deepEqual(durableEpochs(fs, FOLLOWER_DIR), [[1, 0], [2, 3]], 'the start is durable');
  const appended = leaderLog.append([record(3)]);
  await until(clock, 'the epoch\'s first record is committed', () => leader.highWatermark('p0') === 4);
  await appended;
  assert.deepEqual(followerLog.epochs(), [{ epoch: 1, startOffset: 0 }, { epoch: 2, startOffset: 3 }]);
  assert.deepEqual(stops, []);
  await end();
});

test('topic follower - a log behind the leader\'s earlier epoch fetches it first and records the new epoch with its first batch', async () => {
  const { clock, leaderLog, followerLog, leader, stops, end } = await newEpoch(5, 3);
  await until(clock, 'the follower fetches the rest of epoch 1', () => followerLog.nextOffset === 5);
  await clock.advanceAndSettle(STEP_MS * 4);
  assert.deepEqual(followerLog.epochs(), [{ epoch: 1, startOffset: 0 }], 'epoch 2 does not start at offset 3 of this log');
  const appended = leaderLog.append([record(5)]);
  await until(clock, 'the epoch\'s first record is committed', () => leader.highWatermark('p0') === 6);
  await appended;
  assert.deepEqual(followerLog.epochs(), [{ epoch: 1, startOffset: 0 }, { epoch: 2, startOffset: 5 }]);
  assert.equal(followerLog.nextOffset, 6);
  assert.deepEqual(stops, []);
  await end();
});
