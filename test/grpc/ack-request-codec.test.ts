/**
 * The hand-written decoder of ack-only ConsumeRequests against protobuf-es: for any request of
 * acks, credit and a request id it reads what fromBinary reads; any other request (start, nacks,
 * rejects, touches, unknown fields, offsets past 2^53, truncated bytes) is declined (null).
 * And applyAcks settles like applySettles: one failure per ack of a run whose shared promise fails.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ConsumeRequestSchema, SettleAction } from '../../src/generated/ferry/v1/messages_pb.js';
import { decodeAckRequest } from '../../src/transport/grpc/ack-request-codec.js';
import { applyAcks } from '../../src/transport/grpc/settle.js';
import type { Subscription } from '../../src/broker/types.js';
import { silentLogger } from '../../src/platform/logger.js';
import { FerryError } from '../../src/errors.js';

const position = fc.record({ partition: fc.nat({ max: 0xffff_ffff }), offset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }).map(BigInt) });

test('ack request codec - reads what protobuf-es reads for any request of acks, credit and request id', () => {
  fc.assert(
    fc.property(fc.array(position, { maxLength: 20 }), fc.nat({ max: 0xffff_ffff }), fc.nat({ max: 0xffff_ffff }), (acks, credit, requestId) => {
      const bytes = Buffer.from(toBinary(ConsumeRequestSchema, create(ConsumeRequestSchema, { acks, credit, requestId })));
      const general = fromBinary(ConsumeRequestSchema, bytes);
      const fast = decodeAckRequest(bytes);
      assert.ok(fast !== null);
      assert.equal(fast.credit, general.credit);
      assert.equal(fast.requestId, general.requestId);
      assert.deepEqual(fast.partitions, general.acks.map((ack) => ack.partition));
      assert.deepEqual(fast.offsets, general.acks.map((ack) => Number(ack.offset)));
    }),
  );
});

test('ack request codec - every other request goes to protobuf-es', () => {
  const encode = (init: Parameters<typeof create<typeof ConsumeRequestSchema>>[1]): Buffer => Buffer.from(toBinary(ConsumeRequestSchema, create(ConsumeRequestSchema, init)));
  assert.equal(decodeAckRequest(encode({ start: { topic: 't' }, credit: 10 })), null);
  assert.equal(decodeAckRequest(encode({ nacks: [{ partition: 0, offset: 1n }] })), null);
  assert.equal(decodeAckRequest(encode({ rejects: [{ partition: 0, offset: 1n, reason: 'bad' }] })), null);
  assert.equal(decodeAckRequest(encode({ touches: [{ partition: 0, offset: 1n }] })), null);
  assert.equal(decodeAckRequest(encode({ acks: [{ partition: 0, offset: 2n ** 53n }] })), null);
  const acks = encode({ acks: [{ partition: 1, offset: 300n }], credit: 1 });
  assert.equal(decodeAckRequest(acks.subarray(0, acks.length - 1)), null);
  assert.equal(decodeAckRequest(Buffer.concat([acks, Buffer.from([0x48, 0x01])])), null, 'an unknown field 9');
  // An empty request is a request of no acks and no credit, as protobuf-es reads it.
  assert.deepEqual(decodeAckRequest(Buffer.alloc(0)), { kind: 'acks', credit: 0, requestId: 0, partitions: [], offsets: [] });
});

test('applyAcks - acks that share a promise settle together; a failed run fails each of its acks, a throwing ack alone', async () => {
  const shared = Promise.reject(new FerryError('UNKNOWN_DELIVERY', 'gone'));
  shared.catch(() => undefined);
  const calls: Array<[number, number]> = [];
  const subscription = {
    ack(partition: number, offset: number): Promise<void> {
      calls.push([partition, offset]);
      if (offset === 5) throw new FerryError('INVALID_ARGUMENT', 'thrown');
      return offset < 3 ? shared : Promise.resolve();
    },
  } as unknown as Subscription;
  const failures = await applyAcks(subscription, [0, 0, 1, 1, 1], [1, 2, 3, 4, 5], silentLogger);
  assert.deepEqual(calls, [[0, 1], [0, 2], [1, 3], [1, 4], [1, 5]]);
  const failed = failures.map((failure) => [failure.action, failure.partition, failure.offset, failure.message]).sort((a, b) => Number(a[2]) - Number(b[2]));
  assert.deepEqual(failed, [
    [SettleAction.ACK, 0, 1n, 'gone'],
    [SettleAction.ACK, 0, 2n, 'gone'],
    [SettleAction.ACK, 1, 5n, 'thrown'],
  ]);
  assert.deepEqual(await applyAcks(subscription, [], [], silentLogger), []);
});
