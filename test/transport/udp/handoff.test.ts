/**
 * The batch format between the receiver thread and the broker's (src/transport/udp/handoff.ts):
 * datagrams come out as they went in, with their sources, one batch at a time; a full batch says
 * so; and the handoff budget refuses what does not fit until bytes are released.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchPacker, HandoffBudget, unpackBatch, UDP_BATCH_BYTES, UDP_ENTRY_HEADER_BYTES, type DatagramBatch } from '../../../src/transport/udp/handoff.js';
import { UDP_DATAGRAM_BYTES_MAX } from '../../../src/protocol/udp-datagram.js';

function unpacked(batch: DatagramBatch): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  unpackBatch(batch, (datagram, source) => out.push([datagram.toString(), source]));
  return out;
}

test('udp handoff - a batch gives back each datagram with its source, in order, and the packer starts over empty', () => {
  const packer = new BatchPacker();
  assert.equal(packer.take(), null);
  packer.add(Buffer.from('metrics a'), '127.0.0.1');
  packer.add(Buffer.from(''), '::1');
  packer.add(Buffer.from('metrics c'), '127.0.0.1');
  const batch = packer.take()!;
  assert.deepEqual(batch.sources, ['127.0.0.1', '::1']);
  assert.equal(batch.bytes.byteLength, 3 * UDP_ENTRY_HEADER_BYTES + 18);
  assert.deepEqual(unpacked(batch), [['metrics a', '127.0.0.1'], ['', '::1'], ['metrics c', '127.0.0.1']]);
  assert.ok(packer.empty);
  packer.add(Buffer.from('logs x'), '10.0.0.9');
  const next = packer.take()!;
  assert.deepEqual(unpacked(next), [['logs x', '10.0.0.9']]);
  // The first batch is its own memory: packing the next did not overwrite it.
  assert.deepEqual(unpacked(batch)[0], ['metrics a', '127.0.0.1']);
});

test('udp handoff - the largest datagram fits an empty batch, and a full batch refuses the next', () => {
  const packer = new BatchPacker();
  const largest = Buffer.alloc(UDP_DATAGRAM_BYTES_MAX, 7);
  let packed = 0;
  while (packer.fits(largest.length)) {
    packer.add(largest, '127.0.0.1');
    packed += 1;
  }
  assert.equal(packed, Math.floor(UDP_BATCH_BYTES / (UDP_ENTRY_HEADER_BYTES + UDP_DATAGRAM_BYTES_MAX)));
  const lengths: number[] = [];
  unpackBatch(packer.take()!, (datagram) => lengths.push(datagram.length));
  assert.deepEqual(lengths, Array(packed).fill(UDP_DATAGRAM_BYTES_MAX));
  assert.ok(packer.fits(largest.length));
});

test('udp handoff - a broken batch is refused, not read past its end', () => {
  const bytes = new ArrayBuffer(6);
  new DataView(bytes).setUint16(2, 100);
  assert.throws(() => unpackBatch({ bytes, sources: ['127.0.0.1'] }, () => {}), RangeError);
  assert.throws(() => unpackBatch({ bytes: new ArrayBuffer(4), sources: [] }, () => {}), RangeError);
});

test('udp handoff - the budget refuses bytes past its limit until some are released, and another thread sees the same count', () => {
  const budget = new HandoffBudget(1000);
  assert.ok(budget.reserve(600));
  assert.ok(budget.reserve(400));
  assert.equal(budget.reserve(1), false);
  const seenElsewhere = new HandoffBudget(1000, budget.buffer);
  assert.equal(seenElsewhere.used, 1000);
  seenElsewhere.release(600);
  assert.equal(budget.used, 400);
  assert.equal(budget.reserve(601), false);
  assert.ok(budget.reserve(600));
});
