/**
 * The hand-written encoder of Consume deliveries (issue 24) against protobuf-es, the general path:
 * for any deliveries, what a decoder reads from encodeDeliveries is what it reads from toBinary of
 * `{ messages: deliveries.map(deliveryToProto) }`, byte for byte where the general path keeps the
 * headers' order; and a delivery only the general encoder can write is declined (null).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { create, equals, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ConsumeResponseSchema } from '../../src/generated/ferry/v1/messages_pb.js';
import type { Delivery } from '../../src/broker/types.js';
import { deliveryToProto } from '../../src/transport/grpc/convert.js';
import { encodeDeliveries } from '../../src/transport/grpc/consume-codec.js';

const header = fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 20 }));
const delivery: fc.Arbitrary<Delivery> = fc.record({
  topic: fc.constantFrom('orders', 'élan', 'sensors.kitchen', ''),
  partition: fc.nat({ max: 0xffff_ffff }),
  offset: fc.oneof(fc.constant(0), fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  timestampMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 4_102_444_800_000 })),
  key: fc.option(fc.uint8Array({ maxLength: 16 }).map((bytes) => Buffer.from(bytes)), { nil: null }),
  headers: fc.array(header, { maxLength: 4 }),
  value: fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
  deliveryCount: fc.nat({ max: 1000 }),
});

function general(deliveries: Delivery[]): Uint8Array {
  return toBinary(ConsumeResponseSchema, create(ConsumeResponseSchema, { messages: deliveries.map(deliveryToProto) }));
}

test('consume codec - deliveries decode as the general encoder\'s do, byte for byte where the general path keeps the headers\' order', () => {
  fc.assert(
    fc.property(fc.array(delivery, { maxLength: 8 }), (deliveries) => {
      const fast = encodeDeliveries(deliveries);
      assert.ok(fast !== null);
      const expected = general(deliveries);
      assert.ok(equals(ConsumeResponseSchema, fromBinary(ConsumeResponseSchema, fast), fromBinary(ConsumeResponseSchema, expected)));
      // Byte for byte when the general path keeps the record's header order: no name twice, and
      // no integer-like name (a JS object lists those first).
      const reordered = deliveries.some((entry) => new Set(entry.headers.map(([name]) => name)).size !== entry.headers.length || entry.headers.some(([name]) => /^(0|[1-9]\d*)$/.test(name)));
      if (!reordered) assert.deepEqual(Buffer.from(fast), Buffer.from(expected));
    }),
    { numRuns: 300 },
  );
});

test('consume codec - a repeated header name keeps its last value, as in the record', () => {
  const base: Delivery = { topic: 't', partition: 1, offset: 7, timestampMs: 1_700_000_000_123, key: null, headers: [['a', '1'], ['a', '2']], value: Buffer.from('v'), deliveryCount: 1 };
  const decoded = fromBinary(ConsumeResponseSchema, encodeDeliveries([base])!);
  assert.equal(decoded.messages[0]!.headers['a'], '2');
});

test('consume codec - a header named __proto__ reaches the general path as a header, as it does the fast one', () => {
  const base: Delivery = { topic: 'orders', partition: 0, offset: 0, timestampMs: 0, key: null, headers: [['__proto__', 'x']], value: Buffer.alloc(0), deliveryCount: 0 };
  assert.deepEqual(Buffer.from(encodeDeliveries([base])!), Buffer.from(general([base])));
});

test('consume codec - room is left for the gRPC envelope; a timestamp before 1970 is declined', () => {
  const base: Delivery = { topic: 't', partition: 0, offset: 0, timestampMs: 5, key: null, headers: [], value: Buffer.from('v'), deliveryCount: 1 };
  const framed = encodeDeliveries([base], 5)!;
  assert.deepEqual(Buffer.from(framed.subarray(5)), Buffer.from(encodeDeliveries([base])!));
  assert.equal(encodeDeliveries([{ ...base, timestampMs: -1 }]), null);
});
