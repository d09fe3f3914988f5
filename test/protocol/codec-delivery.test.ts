/** Round trips of the reliable-delivery frames: TOUCH, REJECT, SETTLED and the group frames (fast-check). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ERROR_CODES, isFerryError, type ErrorCode } from '../../src/errors.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FRAME_TYPES, type Frame } from '../../src/protocol/frame.js';
import { FrameWriter } from '../../src/protocol/writer.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { appendAck } from '../../src/protocol/codec-subscribe.js';
import { appendReject, appendTouch, decodeReject, decodeSettled, decodeTouch, encodeSettled, REJECT_REASON_CHARS_MAX } from '../../src/protocol/codec-settle.js';
import {
  decodeDescribeGroup,
  decodeGroupInfo,
  decodeGroupList,
  decodeListGroups,
  decodeRedrive,
  decodeRedriveOk,
  decodeResetGroup,
  encodeDescribeGroup,
  encodeGroupInfo,
  encodeGroupList,
  encodeListGroups,
  encodeRedrive,
  encodeRedriveOk,
  encodeResetGroup,
} from '../../src/protocol/codec-groups.js';
import { decodeCreateTopic, decodeTopicInfo, encodeCreateTopic, encodeTopicInfo } from '../../src/protocol/codec-topics.js';
import type { RedriveRequest, SettleOutcome, WireGroupInfo, WireStartPosition } from '../../src/protocol/messages.js';

const RUNS = process.env.CI ? 500 : 100;
const reader = new PayloadReader();

function roundTrip(encode: (w: FrameWriter) => void): Frame[] {
  const w = new FrameWriter(64);
  encode(w);
  const bytes = w.take();
  const frames: Frame[] = [];
  if (bytes === null) return frames;
  const decoder = new FrameDecoder({ onFrames: (batch) => frames.push(...batch), onError: (e) => assert.fail(e) });
  decoder.push(bytes);
  assert.equal(decoder.midFrame, false);
  return frames;
}

function single(encode: (w: FrameWriter) => void, type: number): PayloadReader {
  const frames = roundTrip(encode);
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.type, type);
  return reader.reset(frames[0]!.payload);
}

/** Every strict prefix of the payload fails to decode with MALFORMED_FRAME, never another exception. */
function assertTruncationsMalformed(encode: (w: FrameWriter) => void, decode: (r: PayloadReader) => unknown): void {
  const payload = roundTrip(encode)[0]!.payload;
  for (let length = 0; length < payload.length; length++) {
    assert.throws(() => decode(reader.reset(payload.subarray(0, length))), (e: unknown) => isFerryError(e, 'MALFORMED_FRAME'), `prefix ${length}`);
  }
}

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const name = fc.string({ minLength: 1, maxLength: 40 });
const codes = Object.keys(ERROR_CODES) as ErrorCode[];
const start: fc.Arbitrary<WireStartPosition> = fc.oneof(
  fc.constant({ kind: 'earliest' as const }),
  fc.constant({ kind: 'latest' as const }),
  u64.map((offset) => ({ kind: 'offset' as const, offset })),
  u64.map((timestampMs) => ({ kind: 'timestamp' as const, timestampMs })),
);
const groupInfo: fc.Arbitrary<WireGroupInfo> = fc.record(
  {
    topic: name,
    name,
    config: fc.record(
      { ackTimeoutMs: u32, backoffMs: fc.array(u64, { maxLength: 5 }), deliveriesMax: u32, deadLetterTopic: name },
      { noNullPrototype: true },
    ),
    subscribers: u32,
    inFlight: u64,
    pendingRedelivery: u64,
    pending: u64,
    redeliveredTotal: u64,
    deadLetteredTotal: u64,
    oldestUnackedAgeMs: u64,
    partitions: fc.array(fc.record({ partition: u32, ackFloor: u64, lag: u64 }, { noNullPrototype: true }), { maxLength: 4 }),
  },
  { noNullPrototype: true },
);

test('codec - TOUCH and REJECT append per subscription; frames with a reply never share with fire-and-forget ones', () => {
  fc.assert(
    fc.property(u32, fc.array(fc.tuple(u32, u64, fc.string({ maxLength: 40 })), { minLength: 1, maxLength: 20 }), (subscriptionId, entries) => {
      const frames = roundTrip((w) => {
        for (const [p, o] of entries) appendTouch(w, subscriptionId, p, o);
        for (const [p, o, reason] of entries) appendReject(w, subscriptionId, p, o, reason, 7);
        appendReject(w, subscriptionId, 1, 2, 'another request', 8);
        appendAck(w, subscriptionId, 3, 4);
      });
      assert.deepEqual(frames.map((f) => [f.type, f.requestId]), [
        [FRAME_TYPES.TOUCH, 0],
        [FRAME_TYPES.REJECT, 7],
        [FRAME_TYPES.REJECT, 8],
        [FRAME_TYPES.ACK, 0],
      ]);
      assert.deepEqual(decodeTouch(reader.reset(frames[0]!.payload)), {
        subscriptionId,
        partitions: entries.map((e) => e[0]),
        offsets: entries.map((e) => e[1]),
      });
      assert.deepEqual(decodeReject(reader.reset(frames[1]!.payload)), {
        subscriptionId,
        partitions: entries.map((e) => e[0]),
        offsets: entries.map((e) => e[1]),
        reasons: entries.map((e) => e[2]),
      });
    }),
    { numRuns: RUNS },
  );
});

test('codec - a long reject reason is cut to its limit', () => {
  const r = single((w) => appendReject(w, 1, 0, 5, 'x'.repeat(REJECT_REASON_CHARS_MAX + 50), 3), FRAME_TYPES.REJECT);
  assert.equal(decodeReject(r).reasons[0]!.length, REJECT_REASON_CHARS_MAX);
});

test('codec - SETTLED round trip: one outcome per entry, in order', () => {
  const outcome: fc.Arbitrary<SettleOutcome> = fc.oneof(
    fc.constant({ code: null, message: '' }),
    fc.record({ code: fc.constantFrom(...codes), message: fc.string({ maxLength: 100 }) }, { noNullPrototype: true }),
  );
  fc.assert(
    fc.property(u32.filter((id) => id > 0), fc.array(outcome, { maxLength: 30 }), (id, outcomes) => {
      const r = single((w) => encodeSettled(w, id, outcomes), FRAME_TYPES.SETTLED);
      assert.deepEqual(decodeSettled(r), outcomes);
    }),
    { numRuns: RUNS },
  );
});

test('codec - group requests and replies round trip', () => {
  fc.assert(
    fc.property(name, name, start, groupInfo, fc.array(groupInfo, { maxLength: 3 }), u64, (topic, group, to, info, list, moved) => {
      assert.equal(decodeListGroups(single((w) => encodeListGroups(w, 1, topic), FRAME_TYPES.LIST_GROUPS)), topic);
      assert.deepEqual(decodeDescribeGroup(single((w) => encodeDescribeGroup(w, 2, { topic, group }), FRAME_TYPES.DESCRIBE_GROUP)), { topic, group });
      assert.deepEqual(decodeResetGroup(single((w) => encodeResetGroup(w, 3, { topic, group, to }), FRAME_TYPES.RESET_GROUP)), { topic, group, to });
      assert.deepEqual(decodeGroupInfo(single((w) => encodeGroupInfo(w, 4, info), FRAME_TYPES.GROUP_INFO)), info);
      assert.deepEqual(decodeGroupList(single((w) => encodeGroupList(w, 5, list), FRAME_TYPES.GROUP_LIST)), list);
      assert.deepEqual(decodeRedriveOk(single((w) => encodeRedriveOk(w, 6, { moved }), FRAME_TYPES.REDRIVE_OK)), { moved });
    }),
    { numRuns: RUNS },
  );
});

test('codec - REDRIVE carries each filter only when given', () => {
  const request: fc.Arbitrary<RedriveRequest> = fc.record(
    { topic: name, limit: u64, fromOffset: u64, toOffset: u64, header: fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 40 })) },
    { requiredKeys: ['topic'], noNullPrototype: true },
  );
  fc.assert(
    fc.property(request, (given) => {
      assert.deepEqual(decodeRedrive(single((w) => encodeRedrive(w, 9, given), FRAME_TYPES.REDRIVE)), given);
    }),
    { numRuns: RUNS },
  );
});

test('codec - the dedup window travels in CREATE_TOPIC and TOPIC_INFO', () => {
  const created = decodeCreateTopic(single((w) => encodeCreateTopic(w, 1, { name: 't', config: { dedupWindowMs: 60_000 } }), FRAME_TYPES.CREATE_TOPIC));
  assert.deepEqual(created, { name: 't', config: { dedupWindowMs: 60_000 } });
  const info = {
    name: 't',
    config: { partitions: 1, durability: 'always' as const, syncIntervalMs: 50, retention: {}, segmentBytes: 1 << 20, dedupWindowMs: 5_000 },
    partitions: [],
    groups: ['g'],
  };
  assert.deepEqual(decodeTopicInfo(single((w) => encodeTopicInfo(w, 2, info), FRAME_TYPES.TOPIC_INFO)), info);
});

test('codec - truncated reliable-delivery payloads are MALFORMED_FRAME', () => {
  const info: WireGroupInfo = {
    topic: 'jobs',
    name: 'w',
    config: { ackTimeoutMs: 30_000, backoffMs: [1000, 2000], deliveriesMax: 16, deadLetterTopic: 'jobs.dlq' },
    subscribers: 2,
    inFlight: 3,
    pendingRedelivery: 1,
    pending: 10,
    redeliveredTotal: 4,
    deadLetteredTotal: 1,
    oldestUnackedAgeMs: 1234,
    partitions: [{ partition: 0, ackFloor: 7, lag: 10 }],
  };
  assertTruncationsMalformed((w) => appendReject(w, 1, 0, 5, 'bad', 3), decodeReject);
  assertTruncationsMalformed((w) => appendTouch(w, 1, 0, 5), decodeTouch);
  assertTruncationsMalformed((w) => encodeSettled(w, 1, [{ code: null, message: '' }, { code: 'UNKNOWN_DELIVERY', message: 'gone' }]), decodeSettled);
  assertTruncationsMalformed((w) => encodeGroupInfo(w, 1, info), decodeGroupInfo);
  assertTruncationsMalformed((w) => encodeGroupList(w, 1, [info]), decodeGroupList);
  assertTruncationsMalformed((w) => encodeResetGroup(w, 1, { topic: 'jobs', group: 'w', to: { kind: 'offset', offset: 3 } }), decodeResetGroup);
  assertTruncationsMalformed((w) => encodeRedrive(w, 1, { topic: 'jobs.dlq', limit: 5, header: ['a', 'b'] }), decodeRedrive);
  assertTruncationsMalformed((w) => encodeRedriveOk(w, 1, { moved: 5 }), decodeRedriveOk);
});
