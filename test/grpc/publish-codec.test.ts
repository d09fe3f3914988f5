/**
 * The hand-written Publish codec (issue 24, item 2) against protobuf-es, the general path: what it
 * decodes it decodes as fromBinary / fromJson do, what it encodes is byte for byte what toBinary /
 * toJsonString write, and what it cannot do exactly it declines (null), for connect to serve.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { create, fromBinary, fromJsonString, toBinary, toJsonString } from '@bufbuild/protobuf';
import { timestampFromMs } from '@bufbuild/protobuf/wkt';
import { PublishRequestSchema, PublishResponseSchema, type PublishMessage } from '../../src/generated/ferry/v1/messages_pb.js';
import { decodePublishBinary, decodePublishJson, encodePublishResponseBinary, encodePublishResponseJson, decodeStandardBase64 } from '../../src/transport/grpc/publish-codec.js';
import { publishResultToProto } from '../../src/transport/grpc/convert.js';
import type { PublishResult } from '../../src/broker/types.js';

/** The fields convert.ts reads, comparable across both decoders. */
function fields(message: PublishMessage): unknown {
  return {
    key: message.key === undefined ? undefined : Buffer.from(message.key).toString('hex'),
    headers: { ...message.headers },
    value: Buffer.from(message.value).toString('hex'),
    id: message.id,
    delayMs: message.delayMs,
    partition: message.partition,
    priority: message.priority,
  };
}

const messageArbitrary = fc.record(
  {
    key: fc.uint8Array({ maxLength: 16 }),
    headers: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
    value: fc.uint8Array({ maxLength: 64 }),
    id: fc.string({ maxLength: 10 }),
    delayMs: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    partition: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    priority: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  },
  { requiredKeys: ['value'] },
);

test('publish codec - protobuf requests decode as fromBinary decodes them', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), fc.array(messageArbitrary, { maxLength: 5 }), (topic, messages) => {
      const bytes = Buffer.from(toBinary(PublishRequestSchema, create(PublishRequestSchema, { topic, messages })));
      const fast = decodePublishBinary(bytes);
      const general = fromBinary(PublishRequestSchema, bytes);
      assert.ok(fast !== null);
      assert.equal(fast.topic, general.topic);
      assert.deepEqual(fast.messages.map(fields), general.messages.map(fields));
    }),
  );
});

test('publish codec - JSON requests in the plain form decode as fromJson decodes them', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), fc.array(messageArbitrary, { maxLength: 5 }), (topic, messages) => {
      const text = toJsonString(PublishRequestSchema, create(PublishRequestSchema, { topic, messages }));
      const fast = decodePublishJson(text);
      const general = fromJsonString(PublishRequestSchema, text);
      assert.ok(fast !== null, text);
      assert.equal(fast.topic, general.topic);
      assert.deepEqual(fast.messages.map(fields), general.messages.map(fields));
    }),
  );
});

test('publish codec - what it cannot read exactly is declined, for the general path', () => {
  const delayed = Buffer.from(toBinary(PublishRequestSchema, create(PublishRequestSchema, { topic: 't', messages: [{ value: new Uint8Array([1]), deliverAt: timestampFromMs(1) }] })));
  assert.equal(decodePublishBinary(delayed), null);
  assert.equal(decodePublishBinary(Buffer.from([0x0a, 0x05, 0x61])), null, 'truncated');
  assert.equal(decodePublishBinary(Buffer.from([0x0a, 0x02, 0xff, 0xfe])), null, 'a topic that is not UTF-8');
  assert.equal(decodePublishBinary(Buffer.from([0x0b])), null, 'a group');
  for (const text of [
    '{"topic":"t","messages":[{"value":"AAE"}]}', // unpadded base64
    '{"topic":"t","messages":[{"value":"AA-_"}]}', // URL-safe base64
    '{"topic":"t","messages":[{"delay_ms":5}]}', // the proto name
    '{"topic":"t","messages":[{"deliverAt":"2026-01-01T00:00:00Z"}]}',
    '{"topic":"t","messages":[{"partition":"3"}]}',
    '{"topic":"t","typo":1}',
    '{"topic":null}',
    'not json',
  ]) {
    assert.equal(decodePublishJson(text), null, text);
  }
});

test('publish codec - standard padded base64 is told from every other text as the strict pattern tells it, and decoded', () => {
  const strict = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
  // Mostly base64's own characters and '=', with the URL-safe ones, white space, a dot and a non-ASCII letter mixed in.
  const char = fc.constantFrom(...'AZaz09+/==-_ \n\t.é'.split(''));
  const text = fc.oneof(fc.array(char, { maxLength: 12 }).map((chars) => chars.join('')), fc.uint8Array({ maxLength: 12 }).map((bytes) => Buffer.from(bytes).toString('base64')));
  fc.assert(
    fc.property(text, (candidate) => {
      const decoded = decodeStandardBase64(candidate);
      assert.equal(decoded !== null, strict.test(candidate), JSON.stringify(candidate));
      if (decoded !== null) assert.deepEqual(decoded, Buffer.from(candidate, 'base64'));
    }),
    { numRuns: 5000 },
  );
});

test('publish codec - responses are byte for byte what protobuf-es writes', () => {
  const resultArbitrary = fc.record({
    partition: fc.integer({ min: 0, max: 1023 }),
    offset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    durability: fc.constantFrom('synced' as const, 'written' as const),
    duplicate: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(resultArbitrary, { maxLength: 20 }), fc.boolean(), (results: PublishResult[], synced) => {
      const message = create(PublishResponseSchema, { results: results.map(publishResultToProto), synced });
      assert.deepEqual(encodePublishResponseBinary(results, synced), Buffer.from(toBinary(PublishResponseSchema, message)));
      const enveloped = encodePublishResponseBinary(results, synced, 5)!;
      assert.deepEqual(enveloped.subarray(5), Buffer.from(toBinary(PublishResponseSchema, message)));
      assert.equal(encodePublishResponseJson(results, synced), toJsonString(PublishResponseSchema, message, { alwaysEmitImplicit: true }));
    }),
  );
  const delayed: PublishResult[] = [{ partition: 0, offset: 1, durability: 'synced', deliverAtMs: 5 }];
  assert.equal(encodePublishResponseBinary(delayed, true), null);
  assert.equal(encodePublishResponseJson(delayed, true), null);
});
