/**
 * The cluster fields of the client-facing frames: HELLO_OK's clusterNodeId (tag 1), CREATE_TOPIC's
 * replicas and minInSync (tags 9 and 10), TOPIC_INFO's replication state (topic tag 2, JSON).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FRAME_TYPES, type Frame } from '../../src/protocol/frame.js';
import { FrameWriter } from '../../src/protocol/writer.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { decodeHelloOk, encodeHelloOk } from '../../src/protocol/codec-session.js';
import { decodeCreateTopic, decodeTopicInfo, decodeTopicList, encodeCreateTopic, encodeTopicInfo, encodeTopicList } from '../../src/protocol/codec-topics.js';
import type { WirePartitionInfo, WireTopicInfo } from '../../src/protocol/messages.js';

const RUNS = process.env.CI ? 300 : 60;
const reader = new PayloadReader();

function single(encode: (w: FrameWriter) => void, type: number): PayloadReader {
  const w = new FrameWriter(64);
  encode(w);
  const frames: Frame[] = [];
  const decoder = new FrameDecoder({ onFrames: (batch) => frames.push(...batch), onError: (e) => assert.fail(e) });
  decoder.push(w.take()!);
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.type, type);
  return reader.reset(frames[0]!.payload);
}

const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const nodeId = fc.string({ minLength: 1, maxLength: 12 });

function topic(partitions: WirePartitionInfo[]): WireTopicInfo {
  return {
    name: 'orders',
    config: { partitions: partitions.length, durability: 'always', syncIntervalMs: 50, retention: {}, segmentBytes: 1 << 20 },
    partitions,
    groups: [],
  };
}

const basePartition = (partition: number): WirePartitionInfo => ({ partition, startOffset: 0, nextOffset: 10, syncedOffset: 9, segments: 1, bytes: 100 });

test('codec cluster fields - HELLO_OK carries clusterNodeId only when set', () => {
  const base = { version: 1, serverName: 'ferry', frameBytesMax: 1 << 20, payloadBytesMax: (1 << 20) - 14, heartbeatIntervalMs: 5000 };
  assert.deepEqual(decodeHelloOk(single((w) => encodeHelloOk(w, 1, base), FRAME_TYPES.HELLO_OK)), base);
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (id) => {
      const ok = { ...base, clusterNodeId: id };
      assert.deepEqual(decodeHelloOk(single((w) => encodeHelloOk(w, 1, ok), FRAME_TYPES.HELLO_OK)), ok);
    }),
    { numRuns: RUNS },
  );
});

test('codec cluster fields - CREATE_TOPIC carries replicas and minInSync', () => {
  const config = { partitions: 3, replicas: 3, minInSync: 2 };
  assert.deepEqual(decodeCreateTopic(single((w) => encodeCreateTopic(w, 1, { name: 't', config }), FRAME_TYPES.CREATE_TOPIC)), { name: 't', config });
  const only = { replicas: 1 };
  assert.deepEqual(decodeCreateTopic(single((w) => encodeCreateTopic(w, 1, { name: 't', config: only }), FRAME_TYPES.CREATE_TOPIC)).config, only);
});

test('codec cluster fields - TOPIC_INFO and TOPIC_LIST carry each partition\'s replication state; a single broker sends none', () => {
  const plain = topic([basePartition(0), basePartition(1)]);
  assert.deepEqual(decodeTopicInfo(single((w) => encodeTopicInfo(w, 1, plain), FRAME_TYPES.TOPIC_INFO)), plain);
  const replication = fc.record(
    {
      leader: fc.oneof(nodeId, fc.constant('')),
      epoch: fc.integer({ min: 0, max: 0xffff_ffff }),
      replicas: fc.array(nodeId, { maxLength: 5 }),
      inSync: fc.array(nodeId, { maxLength: 5 }),
      highWatermark: u64,
      replicaOffsets: fc.array(fc.record({ nodeId, endOffset: u64, lag: u64 }, { noNullPrototype: true }), { maxLength: 5 }),
    },
    { noNullPrototype: true },
  );
  fc.assert(
    fc.property(fc.array(fc.option(replication, { nil: undefined }), { minLength: 1, maxLength: 4 }), (states) => {
      const info = topic(states.map((state, i) => ({ ...basePartition(i), ...state })));
      assert.deepEqual(decodeTopicInfo(single((w) => encodeTopicInfo(w, 1, info), FRAME_TYPES.TOPIC_INFO)), info);
      assert.deepEqual(decodeTopicList(single((w) => encodeTopicList(w, 1, [info, plain]), FRAME_TYPES.TOPIC_LIST)), [info, plain]);
    }),
    { numRuns: RUNS },
  );
});

test('codec cluster fields - a malformed replication state is MALFORMED_FRAME', () => {
  const withCluster = (json: string): PayloadReader =>
    single((w) => {
      // A topic whose tag 2 carries `json`: written by hand, as a faulty or hostile broker could.
      w.beginFrame(FRAME_TYPES.TOPIC_INFO, 1);
      w.string16('t');
      w.u32(1);
      w.u8(0);
      w.u32(50);
      w.u64(1 << 20);
      w.u8(0);
      w.u32(1);
      w.u32(0);
      w.u64(0);
      w.u64(0);
      w.u64(0);
      w.u32(1);
      w.u64(0);
      w.u32(0);
      const tagged = w.taggedBegin();
      w.tagString(2, json);
      w.taggedEnd(tagged, 1);
      w.endFrame();
    }, FRAME_TYPES.TOPIC_INFO);
  const good = { partition: 0, leader: 'n1', epoch: 3, replicas: ['n1', 'n2'], inSync: ['n1'], highWatermark: 7, replicaOffsets: [{ nodeId: 'n2', endOffset: 5, lag: 2 }] };
  assert.equal(decodeTopicInfo(withCluster(JSON.stringify([good]))).partitions[0]!.leader, 'n1');
  assert.equal(decodeTopicInfo(withCluster(JSON.stringify([{ ...good, leader: null }]))).partitions[0]!.leader, '', 'null: no leader yet');
  assert.equal(decodeTopicInfo(withCluster(JSON.stringify([{ ...good, partition: 9 }]))).partitions[0]!.leader, undefined, 'another partition: ignored');
  for (const bad of ['{', '{}', JSON.stringify([{ ...good, epoch: -1 }]), JSON.stringify([{ ...good, replicas: [1] }]), JSON.stringify([{ ...good, highWatermark: '7' }]), JSON.stringify([{ ...good, replicaOffsets: [{ nodeId: 'n2', endOffset: 1.5, lag: 0 }] }])]) {
    assert.throws(() => decodeTopicInfo(withCluster(bad)), (e: unknown) => isFerryError(e, 'MALFORMED_FRAME'), bad);
  }
});
