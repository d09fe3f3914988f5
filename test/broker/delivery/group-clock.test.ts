/**
 * Queue groups under wall-clock steps, on the simulated clock and disk: ack timeouts and retry
 * backoffs are measured on the monotonic clock, so a step in either direction neither redelivers
 * early (no mass redelivery after a forward step) nor holds a redelivery back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flush, openSimBroker, RecordingSink } from '../sim-broker.js';

const MINUTE_MS = 60_000;
const STEPS_MS = [10 * MINUTE_MS, -10 * MINUTE_MS];

for (const stepMs of STEPS_MS) {
  const direction = stepMs > 0 ? 'forward' : 'backward';

  test(`group clock - a ${direction} wall-clock step does not move ack timeouts`, async () => {
    const { broker, clock } = await openSimBroker();
    await broker.createTopic('jobs');
    for (let i = 0; i < 50; i++) await broker.publish('jobs', `early${i}`);
    const sink = new RecordingSink();
    await broker.subscribe('jobs', { group: 'w', from: { kind: 'earliest' }, credit: 200, ackTimeoutMs: 30_000, backoffMs: [0] }, sink);
    await flush();
    assert.equal(sink.received.length, 50);
    await clock.advanceAndSettle(10_000);
    for (let i = 0; i < 50; i++) await broker.publish('jobs', `late${i}`);
    await flush();
    assert.equal(sink.received.length, 100, 'a second wave, 10 s later');
    await clock.advanceAndSettle(5_000);
    clock.jumpWallClock(stepMs);
    await clock.advanceAndSettle(14_999);
    await flush();
    assert.equal(sink.received.length, 100, 'nothing timed out before ackTimeoutMs of monotonic time');
    await clock.advanceAndSettle(1);
    await flush();
    assert.equal(sink.received.length, 150, 'the first wave timed out at ackTimeoutMs, not later, and only it');
    await clock.advanceAndSettle(9_999);
    await flush();
    assert.equal(sink.received.length, 150);
    await clock.advanceAndSettle(1);
    await flush();
    assert.equal(sink.received.length, 200, 'the second wave at its own deadline');
    await broker.close();
  });

  test(`group clock - a ${direction} wall-clock step does not move retry backoffs`, async () => {
    const { broker, clock } = await openSimBroker();
    await broker.createTopic('jobs');
    await broker.publish('jobs', 'a');
    const sink = new RecordingSink();
    const subscription = await broker.subscribe('jobs', { group: 'w', from: { kind: 'earliest' }, credit: 10, backoffMs: [5000] }, sink);
    await flush();
    await subscription.nack(0, 0);
    clock.jumpWallClock(stepMs);
    await clock.advanceAndSettle(4999);
    await flush();
    assert.equal(sink.received.length, 1, 'not redelivered before its backoff');
    await clock.advanceAndSettle(1);
    await flush();
    assert.equal(sink.received.length, 2, 'redelivered after its backoff, not later');
    await broker.close();
  });
}
