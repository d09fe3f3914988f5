/** Round trips of every frame type through FrameWriter → FrameDecoder → payload decoder (fast-check). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ERROR_CODES, type ErrorCode } from '../../src/errors.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FRAME_TYPES, type Frame } from '../../src/protocol/frame.js';
import { FrameWriter } from '../../src/protocol/writer.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { decodeError, decodeGoodbye, decodeHello, decodeHelloOk, encodeError, encodeGoodbye, encodeHello, encodeHelloOk } from '../../src/protocol/codec-session.js';
import { decodeCreateTopic, decodeTopicInfo, decodeTopicList, decodeTopicName, encodeCreateTopic, encodeTopicInfo, encodeTopicList, encodeTopicName } from '../../src/protocol/codec-topics.js';
import { beginPublish, decodePublish, decodePublishOk, encodePublish, encodePublishOk, writePublishMessage } from '../../src/protocol/codec-publish.js';
import {
  appendAck,
  appendCredit,
  appendDelivery,
  appendNack,
  decodeAck,
  decodeCredit,
  decodeDeliver,
  decodeNack,
  decodeSubscribe,
  decodeSubscribed,
  decodeUnsubscribe,
  encodeDeliver,
  encodeSubscribe,
  encodeSubscribed,
  encodeUnsubscribe,
} from '../../src/protocol/codec-subscribe.js';
import type { PublishOk, WireTopicInfo } from '../../src/protocol/messages.js';

const RUNS = process.env.CI ? 500 : 100;
const reader = new PayloadReader();

/** Encodes with `encode`, decodes the bytes back into frames. */
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

const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u64 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
/** A synced offset is sent plus one (it is -1 when nothing is synced), so it stays one below the u64 limit. */
const syncedOffsetArb = fc.integer({ min: -1, max: Number.MAX_SAFE_INTEGER - 1 });
const name = fc.string({ minLength: 1, maxLength: 40 });
const bytes = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a));
const headers = fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 50 })), { maxLength: 5 });
const durability = fc.constantFrom('always' as const, 'interval' as const, 'never' as const);
const retention = fc.record({ ageMs: u64, bytesMax: u64, recordsMax: u64 }, { requiredKeys: [], noNullPrototype: true });
const codes = Object.keys(ERROR_CODES) as ErrorCode[];

const topicInfo: fc.Arbitrary<WireTopicInfo> = fc.record({
  name,
  config: fc.record({ partitions: u32, durability, syncIntervalMs: u32, retention, segmentBytes: u64 }, { noNullPrototype: true }),
  partitions: fc.array(fc.record({ partition: u32, startOffset: u64, nextOffset: u64, syncedOffset: syncedOffsetArb, segments: u32, bytes: u64 }, { noNullPrototype: true }), { maxLength: 4 }),
  groups: fc.array(name, { maxLength: 4 }),
}, { noNullPrototype: true });

const publishMessage = fc.record(
  { partition: u32, key: fc.option(bytes, { nil: null }), headers, value: bytes, id: fc.string({ maxLength: 30 }), delayMs: u32, deliverAtMs: u64 },
  { requiredKeys: ['value'], noNullPrototype: true },
);

test('codec - HELLO and HELLO_OK round trip', () => {
  fc.assert(
    fc.property(
      fc.record({ clientName: fc.string(), versions: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }), authToken: fc.string(), frameBytesMax: u32 }, { requiredKeys: ['clientName', 'versions'], noNullPrototype: true }),
      (hello) => assert.deepEqual(decodeHello(single((w) => encodeHello(w, 1, hello), FRAME_TYPES.HELLO)), hello),
    ),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(
      fc.record({ version: fc.integer({ min: 0, max: 255 }), serverName: fc.string(), frameBytesMax: u32, payloadBytesMax: u32, heartbeatIntervalMs: u32 }, { noNullPrototype: true }),
      (ok) => assert.deepEqual(decodeHelloOk(single((w) => encodeHelloOk(w, 1, ok), FRAME_TYPES.HELLO_OK)), ok),
    ),
    { numRuns: RUNS },
  );
});

test('codec - ERROR and GOODBYE round trip', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...codes),
      fc.string({ maxLength: 200 }),
      fc.option(fc.dictionary(fc.string({ maxLength: 10 }), fc.oneof(fc.string(), fc.integer(), fc.boolean()), { noNullPrototype: true }), { nil: undefined }),
      (code, message, detail) => {
        const reply = { code, message, ...(detail === undefined || Object.keys(detail).length === 0 ? {} : { detail }) };
        assert.deepEqual(decodeError(single((w) => encodeError(w, 9, reply), FRAME_TYPES.ERROR)), reply);
        assert.deepEqual(decodeGoodbye(single((w) => encodeGoodbye(w, 0, { code, message }), FRAME_TYPES.GOODBYE)), { code, message });
      },
    ),
    { numRuns: RUNS },
  );
});

test('codec - topic frames round trip', () => {
  fc.assert(
    fc.property(
      name,
      fc.record({ partitions: u32, durability, syncIntervalMs: u32, retention, segmentBytes: u64 }, { requiredKeys: [], noNullPrototype: true }),
      (topic, config) => {
        const decoded = decodeCreateTopic(single((w) => encodeCreateTopic(w, 1, { name: topic, config }), FRAME_TYPES.CREATE_TOPIC));
        const expected = { ...config };
        if (expected.retention !== undefined && Object.keys(expected.retention).length === 0) delete expected.retention;
        assert.deepEqual(decoded, { name: topic, config: expected });
        assert.equal(decodeTopicName(single((w) => encodeTopicName(w, FRAME_TYPES.DELETE_TOPIC, 2, topic), FRAME_TYPES.DELETE_TOPIC)), topic);
      },
    ),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.array(topicInfo, { maxLength: 3 }), (infos) => {
      for (const info of infos) assert.deepEqual(decodeTopicInfo(single((w) => encodeTopicInfo(w, 1, info), FRAME_TYPES.TOPIC_INFO)), info);
      assert.deepEqual(decodeTopicList(single((w) => encodeTopicList(w, 1, infos), FRAME_TYPES.TOPIC_LIST)), infos);
    }),
    { numRuns: RUNS },
  );
});

test('codec - PUBLISH and PUBLISH_OK round trip', () => {
  fc.assert(
    fc.property(name, fc.array(publishMessage, { maxLength: 10 }), (topic, messages) => {
      const decoded = decodePublish(single((w) => encodePublish(w, 5, { topic, messages }), FRAME_TYPES.PUBLISH));
      assert.equal(decoded.topic, topic);
      assert.equal(decoded.messages.length, messages.length);
      decoded.messages.forEach((m, i) => {
        const original = messages[i]!;
        assert.deepEqual(m.value, original.value);
        assert.deepEqual(m.key ?? null, original.key ?? null);
        assert.deepEqual(m.headers ?? [], original.headers ?? []);
        assert.equal(m.partition, original.partition);
        assert.equal(m.id, original.id);
        assert.equal(m.delayMs, original.delayMs);
        assert.equal(m.deliverAtMs, original.deliverAtMs);
      });
    }),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(u32, u64), { maxLength: 20 }), fc.constantFrom('synced' as const, 'written' as const), (results, reached) => {
      const ok: PublishOk = { durability: reached, partitions: results.map((r) => r[0]), offsets: results.map((r) => r[1]) };
      if (results.length > 1) {
        ok.duplicates = [0];
        ok.deliverAtMs = [[results.length - 1, results[0]![1]]];
      }
      assert.deepEqual(decodePublishOk(single((w) => encodePublishOk(w, 5, ok), FRAME_TYPES.PUBLISH_OK)), ok);
    }),
    { numRuns: RUNS },
  );
});

test('codec - SUBSCRIBE, SUBSCRIBED, UNSUBSCRIBE round trip', () => {
  const from = fc.oneof(
    fc.constant({ kind: 'earliest' as const }),
    fc.constant({ kind: 'latest' as const }),
    u64.map((offset) => ({ kind: 'offset' as const, offset })),
    u64.map((timestampMs) => ({ kind: 'timestamp' as const, timestampMs })),
  );
  fc.assert(
    fc.property(
      fc.record({ topic: name, group: name, from, credit: u32, resumeOffsets: fc.array(fc.tuple(u32, u64), { maxLength: 4 }), ackTimeoutMs: u32, backoffMs: fc.array(u32, { maxLength: 5 }), deliveriesMax: u32, deadLetterTopic: name }, { requiredKeys: ['topic', 'from', 'credit'], noNullPrototype: true }),
      (request) => {
        assert.deepEqual(decodeSubscribe(single((w) => encodeSubscribe(w, 3, request), FRAME_TYPES.SUBSCRIBE)), request);
      },
    ),
    { numRuns: RUNS },
  );
  fc.assert(
    fc.property(u32, (id) => {
      assert.deepEqual(decodeSubscribed(single((w) => encodeSubscribed(w, 3, { subscriptionId: id }), FRAME_TYPES.SUBSCRIBED)), { subscriptionId: id });
      assert.equal(decodeUnsubscribe(single((w) => encodeUnsubscribe(w, 3, id), FRAME_TYPES.UNSUBSCRIBE)), id);
    }),
    { numRuns: RUNS },
  );
});

test('codec - DELIVER round trip, appended deliveries share frames per subscription', () => {
  const delivery = fc.record({ partition: u32, offset: u64, timestampMs: u64, deliveryCount: u32, key: fc.option(bytes, { nil: null }), headers, value: bytes }, { noNullPrototype: true });
  fc.assert(
    fc.property(u32, name, fc.array(delivery, { maxLength: 10 }), (subscriptionId, topic, deliveries) => {
      const frames = roundTrip((w) => encodeDeliver(w, { subscriptionId, topic, deliveries }));
      const decoded = frames.flatMap((f) => decodeDeliver(reader.reset(f.payload)).deliveries);
      assert.deepEqual(decoded, deliveries);
    }),
    { numRuns: RUNS },
  );
  const d = { partition: 0, offset: 1, timestampMs: 2, deliveryCount: 1, key: null, headers: [], value: Buffer.from('x') };
  const frames = roundTrip((w) => {
    appendDelivery(w, 1, 't', d);
    appendDelivery(w, 1, 't', d);
    appendDelivery(w, 2, 't', d);
    appendDelivery(w, 1, 't', d);
  });
  assert.deepEqual(
    frames.map((f) => decodeDeliver(reader.reset(f.payload))).map((b) => [b.subscriptionId, b.deliveries.length]),
    [
      [1, 2],
      [2, 1],
      [1, 1],
    ],
  );
});

test('codec - ACK, NACK, CREDIT round trip and coalesce', () => {
  fc.assert(
    fc.property(u32, fc.array(fc.tuple(u32, u64, u32), { minLength: 1, maxLength: 30 }), (subscriptionId, entries) => {
      const frames = roundTrip((w) => {
        for (const [p, o] of entries) appendAck(w, subscriptionId, p, o);
        for (const [p, o, delay] of entries) appendNack(w, subscriptionId, p, o, delay);
        for (const [, , count] of entries) appendCredit(w, subscriptionId, count);
      });
      assert.deepEqual(frames.map((f) => f.type), [FRAME_TYPES.ACK, FRAME_TYPES.NACK, FRAME_TYPES.CREDIT]);
      assert.deepEqual(decodeAck(reader.reset(frames[0]!.payload)), {
        subscriptionId,
        partitions: entries.map((e) => e[0]),
        offsets: entries.map((e) => e[1]),
      });
      assert.deepEqual(decodeNack(reader.reset(frames[1]!.payload)), {
        subscriptionId,
        partitions: entries.map((e) => e[0]),
        offsets: entries.map((e) => e[1]),
        delaysMs: entries.map((e) => e[2]),
      });
      assert.deepEqual(decodeCredit(reader.reset(frames[2]!.payload)), entries.map((e) => ({ subscriptionId, count: e[2] })));
    }),
    { numRuns: RUNS },
  );
});

test('codec - publishes appended to an open PUBLISH frame share it; another frame closes it', () => {
  const frames = roundTrip((w) => {
    beginPublish(w, 1, 'a');
    writePublishMessage(w, { value: Buffer.from('1') });
    assert.ok(w.canAppend(FRAME_TYPES.PUBLISH, 'a'));
    assert.ok(!w.canAppend(FRAME_TYPES.PUBLISH, 'b'));
    writePublishMessage(w, { value: Buffer.from('2') });
    w.emptyFrame(FRAME_TYPES.PING, 0);
    assert.ok(!w.canAppend(FRAME_TYPES.PUBLISH, 'a'));
  });
  assert.deepEqual(frames.map((f) => f.type), [FRAME_TYPES.PUBLISH, FRAME_TYPES.PING]);
  assert.deepEqual(decodePublish(reader.reset(frames[0]!.payload)).messages.map((m) => m.value.toString()), ['1', '2']);
});

test('codec - unknown tagged fields are skipped, trailing bytes tolerated', () => {
  const w = new FrameWriter();
  w.beginFrame(FRAME_TYPES.SUBSCRIBED, 1);
  w.u32(42);
  const tagged = w.taggedBegin();
  w.tagU64(200, 7); // a tag from a future version
  w.tagString(201, 'hello');
  w.taggedEnd(tagged, 2);
  w.raw(Buffer.from('future fields'));
  w.endFrame();
  const payload = w.take()!.subarray(14);
  assert.deepEqual(decodeSubscribed(reader.reset(payload)), { subscriptionId: 42 });
});

test('codec - a frame over the peer limit is rolled back with FRAME_TOO_LARGE', () => {
  const w = new FrameWriter();
  w.frameBytesMax = 4096;
  w.emptyFrame(FRAME_TYPES.PING, 1);
  assert.throws(
    () => encodePublish(w, 2, { topic: 't', messages: [{ value: Buffer.alloc(5000) }] }),
    (error: { code?: string }) => error.code === 'FRAME_TOO_LARGE',
  );
  w.emptyFrame(FRAME_TYPES.PONG, 3);
  const frames: Frame[] = [];
  new FrameDecoder({ onFrames: (b) => frames.push(...b), onError: (e) => assert.fail(e) }).push(w.take()!);
  assert.deepEqual(frames.map((f) => f.type), [FRAME_TYPES.PING, FRAME_TYPES.PONG]);
});

test('codec - truncated payloads are MALFORMED_FRAME', () => {
  const frames = roundTrip((w) => encodePublish(w, 1, { topic: 'orders', messages: [{ key: Buffer.from('k'), headers: [['a', 'b']], value: Buffer.from('value') }] }));
  const payload = frames[0]!.payload;
  for (let cut = 0; cut < payload.length; cut++) {
    assert.throws(() => decodePublish(reader.reset(payload.subarray(0, cut))), (error: { code?: string }) => error.code === 'MALFORMED_FRAME', `cut at ${cut}`);
  }
});
