/**
 * An ACK from a subscriber that does not hold the delivery (issue 22, item 6). Bob joined ops'
 * group with credit 0 and acked offset 0, which ops held: the ack floor moved. NACK, REJECT and
 * TOUCH already checked the holder; ACK now does too, per entry (UNKNOWN_DELIVERY), on the broker's
 * core, so every transport (TCP ACK entries, gRPC Ack, the embedded iterator) is covered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../src/errors.js';
import { flush, openSimBroker, RecordingSink } from '../broker/sim-broker.js';

test('ack holder - an ack of a delivery held by another subscriber is refused, and the ack floor stays', async () => {
  const { broker } = await openSimBroker();
  await broker.createTopic('billing');
  await broker.publish('billing', [{ value: Buffer.from('m0') }, { value: Buffer.from('m1') }]);
  const opsSink = new RecordingSink();
  const ops = await broker.subscribe('billing', { group: 'ops', from: { kind: 'earliest' }, credit: 1 }, opsSink);
  await flush();
  const bob = await broker.subscribe('billing', { group: 'ops', credit: 0 }, new RecordingSink());
  await flush();
  assert.equal(opsSink.received.length, 1);
  const held = opsSink.received[0]!;
  await assert.rejects(bob.ack(held.partition, held.offset), (error: unknown) => error instanceof FerryError && error.code === 'UNKNOWN_DELIVERY');
  const info = broker.describeGroup('billing', 'ops');
  assert.equal(info.partitions[0]!.ackFloor, 0, 'the floor did not move');
  assert.equal(info.inFlight, 1, 'still held by ops');
  // The holder's own ack works, and its later deliveries are its own to settle.
  await ops.ack(held.partition, held.offset);
  await flush();
  assert.equal(broker.describeGroup('billing', 'ops').partitions[0]!.ackFloor, 1);
  await ops.close();
  await bob.close();
  await broker.close();
});

test('ack holder - a late ack of a message waiting for redelivery still settles it (any subscriber of the group)', async () => {
  const { broker, clock } = await openSimBroker();
  await broker.createTopic('jobs');
  await broker.publish('jobs', [{ value: Buffer.from('slow') }]);
  const sink = new RecordingSink();
  const slow = await broker.subscribe('jobs', { group: 'w', from: { kind: 'earliest' }, credit: 1, ackTimeoutMs: 1_000, backoffMs: [60_000] }, sink);
  await flush();
  await clock.advanceAndSettle(1_500);
  assert.equal(broker.describeGroup('jobs', 'w').pendingRedelivery, 1, 'timed out, waiting');
  await slow.ack(0, 0);
  await flush();
  assert.equal(broker.describeGroup('jobs', 'w').partitions[0]!.ackFloor, 1);
  await slow.close();
  await broker.close();
});
