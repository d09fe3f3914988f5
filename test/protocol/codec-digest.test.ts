/**
 * The digest frames (protocol/codec-digest.ts): REPLICA_DIGEST, REPLICA_DIGEST_OK, REPLICA_REPAIR,
 * TOPIC_VERIFY and TOPIC_VERIFY_OK decode to what was encoded, for any content; unknown statuses
 * and impossible counts are malformed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isFerryError } from '../../src/errors.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FRAME_TYPES, type Frame } from '../../src/protocol/frame.js';
import { FrameWriter } from '../../src/protocol/writer.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import {
  decodeReplicaDigest,
  decodeReplicaDigestOk,
  decodeReplicaRepair,
  decodeTopicVerify,
  decodeTopicVerifyOk,
  encodeReplicaDigest,
  encodeReplicaDigestOk,
  encodeReplicaRepair,
  encodeTopicVerify,
  encodeTopicVerifyOk,
  LOG_VERDICTS,
  REPLICA_VERDICTS,
  type DigestLogResponse,
  type TopicVerification,
} from '../../src/protocol/codec-digest.js';

const RUNS = process.env.CI ? 300 : 60;
/** fast-check's records have no prototype: compare the data only. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));
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

const offset = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const name = fc.string({ maxLength: 20 });
const digest = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => Buffer.from(bytes));

test('codec-digest - REPLICA_DIGEST and REPLICA_REPAIR round-trip', () => {
  const logs = fc.array(fc.record({ logId: name, fromOffset: offset, toOffset: offset, spanRecords: fc.integer({ min: 1, max: 2 ** 40 }) }), { maxLength: 5 });
  fc.assert(
    fc.property(name, name, fc.integer({ min: 0, max: 0xffff_ffff }), logs, (topic, replicaId, epoch, asked) => {
      const request = { topic, replicaId, epoch, logs: asked };
      assert.deepEqual(plain(decodeReplicaDigest(single((w) => encodeReplicaDigest(w, 7, request), FRAME_TYPES.REPLICA_DIGEST))), plain(request));
      const repair = { topic, replicaId, epoch, logs: asked.map(({ logId, fromOffset }) => ({ logId, fromOffset })) };
      assert.deepEqual(plain(decodeReplicaRepair(single((w) => encodeReplicaRepair(w, 8, repair), FRAME_TYPES.REPLICA_REPAIR))), plain(repair));
    }),
    { numRuns: RUNS },
  );
});

test('codec-digest - REPLICA_DIGEST_OK round-trips ranges, digests and damage', () => {
  const range = fc.record({ fromOffset: offset, toOffset: offset, digest });
  const log: fc.Arbitrary<DigestLogResponse> = fc.record({
    logId: name,
    present: fc.boolean(),
    startOffset: offset,
    endOffset: offset,
    fromOffset: offset,
    toOffset: offset,
    ranges: fc.array(range, { maxLength: 8 }),
    damage: fc.option(fc.record({ fromOffset: offset, toOffset: offset }), { nil: null }),
  });
  fc.assert(
    fc.property(fc.array(log, { maxLength: 4 }), (logs) => {
      assert.deepEqual(plain(decodeReplicaDigestOk(single((w) => encodeReplicaDigestOk(w, 9, { logs }), FRAME_TYPES.REPLICA_DIGEST_OK))), plain({ logs }));
    }),
    { numRuns: RUNS },
  );
});

test('codec-digest - TOPIC_VERIFY and TOPIC_VERIFY_OK round-trip; ok is every replica ok', () => {
  assert.deepEqual(decodeTopicVerify(single((w) => encodeTopicVerify(w, 3, 'orders'), FRAME_TYPES.TOPIC_VERIFY)), { topic: 'orders' });
  const logVerdict = fc.record(
    {
      logId: name,
      status: fc.constantFrom(...LOG_VERDICTS),
      fromOffset: offset,
      toOffset: offset,
      firstDifference: fc.record({ fromOffset: offset, toOffset: offset }),
      roundTrips: fc.integer({ min: 0, max: 0xffff_ffff }),
    },
    { requiredKeys: ['logId', 'status', 'fromOffset', 'toOffset', 'roundTrips'] },
  );
  const replica = fc.record(
    { nodeId: name, status: fc.constantFrom(...REPLICA_VERDICTS), error: fc.string({ minLength: 1, maxLength: 30 }), logs: fc.array(logVerdict, { maxLength: 3 }) },
    { requiredKeys: ['nodeId', 'status', 'logs'] },
  );
  fc.assert(
    fc.property(name, name, fc.integer({ min: 0, max: 0xffff_ffff }), fc.array(replica, { maxLength: 4 }), (topic, leader, epoch, replicas) => {
      const result: TopicVerification = { topic, leader, epoch, ok: replicas.every((r) => r.status === 'ok'), replicas };
      assert.deepEqual(plain(decodeTopicVerifyOk(single((w) => encodeTopicVerifyOk(w, 4, result), FRAME_TYPES.TOPIC_VERIFY_OK))), plain(result));
    }),
    { numRuns: RUNS },
  );
});

test('codec-digest - an unknown verdict or an impossible count is malformed', () => {
  const w = new FrameWriter(64);
  w.beginFrame(FRAME_TYPES.TOPIC_VERIFY_OK, 1);
  w.string16('t');
  w.string16('n1');
  w.u32(1);
  w.u32(1);
  w.string16('n2');
  w.u8(REPLICA_VERDICTS.length);
  w.string16('');
  w.u32(0);
  w.u8(0);
  w.endFrame();
  const frames: Frame[] = [];
  new FrameDecoder({ onFrames: (batch) => frames.push(...batch), onError: (e) => assert.fail(e) }).push(w.take()!);
  assert.throws(() => decodeTopicVerifyOk(reader.reset(frames[0]!.payload)), (error) => isFerryError(error));
  const big = new FrameWriter(64);
  big.beginFrame(FRAME_TYPES.REPLICA_DIGEST_OK, 1);
  big.u32(0xffff_ffff);
  big.endFrame();
  const more: Frame[] = [];
  new FrameDecoder({ onFrames: (batch) => more.push(...batch), onError: (e) => assert.fail(e) }).push(big.take()!);
  assert.throws(() => decodeReplicaDigestOk(reader.reset(more[0]!.payload)), (error) => isFerryError(error));
});
