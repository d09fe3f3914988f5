import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AckSet } from '../../../src/broker/delivery/ack-set.js';

test('ack set - the floor advances over contiguous settled offsets', () => {
  const acks = new AckSet(10);
  assert.equal(acks.settle(12), true);
  assert.equal(acks.ackFloor, 10);
  assert.equal(acks.settle(10), true);
  assert.equal(acks.ackFloor, 11);
  assert.equal(acks.settle(11), true);
  assert.equal(acks.ackFloor, 13);
  assert.equal(acks.settledAboveCount, 0);
  assert.equal(acks.settle(5), false);
});

test('ack set - agrees with a plain set model for any order of settlements', () => {
  fc.assert(
    fc.property(fc.nat(50), fc.array(fc.nat(200), { maxLength: 300 }), (floor, offsets) => {
      const acks = new AckSet(floor);
      const model = new Set<number>();
      for (const offset of offsets) {
        const expected = offset >= floor && !model.has(offset);
        assert.equal(acks.settle(offset), expected);
        if (offset >= floor) model.add(offset);
      }
      let expectedFloor = floor;
      while (model.has(expectedFloor)) expectedFloor++;
      assert.equal(acks.ackFloor, expectedFloor);
      for (let offset = 0; offset < 260; offset++) assert.equal(acks.isSettled(offset), offset < floor || model.has(offset));
      const restored = new AckSet(acks.ackFloor, acks.settledAboveFloor());
      for (let offset = 0; offset < 260; offset++) assert.equal(restored.isSettled(offset), acks.isSettled(offset));
    }),
    { numRuns: process.env['CI'] ? 500 : 100 },
  );
});

test('ack set - raising the floor drops settled offsets below it', () => {
  const acks = new AckSet(0, [5, 7]);
  acks.raiseFloor(6);
  assert.equal(acks.ackFloor, 6);
  assert.deepEqual(acks.settledAboveFloor(), [7]);
  acks.settle(6);
  assert.equal(acks.ackFloor, 8);
});

test('ack set - truncating at an end forgets exactly the settlements at or past it', () => {
  fc.assert(
    fc.property(fc.nat(50), fc.array(fc.nat(120), { maxLength: 100 }), fc.nat(150), (floor, offsets, endOffset) => {
      const acks = new AckSet(floor, offsets);
      const before = Array.from({ length: 160 }, (_, offset) => acks.isSettled(offset));
      const forgotten = acks.truncateAt(endOffset);
      assert.equal(forgotten, before.filter((settled, offset) => settled && offset >= endOffset).length);
      for (let offset = 0; offset < 160; offset++) assert.equal(acks.isSettled(offset), before[offset]! && offset < endOffset);
      assert.ok(acks.ackFloor <= endOffset || forgotten === 0);
      // Settling still works from the cut state: new messages at the forgotten offsets are settled anew.
      if (!acks.isSettled(endOffset)) assert.equal(acks.settle(endOffset), true);
    }),
    { numRuns: process.env['CI'] ? 500 : 100 },
  );
});
