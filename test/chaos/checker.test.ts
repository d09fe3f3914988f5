/**
 * The history checker on hand-made histories, one anomaly each: if the checker misses an anomaly
 * here, a chaos run that produced it would pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check, type CheckOptions } from './checker.js';
import type { HistoryEvent } from './history.js';

const ALWAYS: CheckOptions = { durability: 'always', scanned: true };

/** A small DSL: times are explicit, so each test reads as a timeline. */
class Story {
  readonly events: HistoryEvent[] = [];

  start(t: number): this {
    this.events.push({ k: 'bs', t, recoveryMs: 1, openMs: 1 });
    return this;
  }
  kill(t: number): this {
    this.events.push({ k: 'bk', t });
    return this;
  }
  powerLoss(t: number, at: number, datasyncMsMax = 0): this {
    this.events.push({ k: 'pl', t, at, bytesCut: 1, filesTorn: 0, datasyncMsMax });
    return this;
  }
  publish(t: number, s: number, off: number, options: { p?: string; a?: number; d?: number; confirmAt?: number } = {}): this {
    const p = options.p ?? 'p0';
    const a = options.a ?? 1;
    this.events.push({ k: 'pi', t, p, s, a, ...(options.d === undefined ? {} : { d: options.d }) });
    this.events.push({ k: 'po', t: options.confirmAt ?? t + 1, p, s, a, part: 0, off });
    return this;
  }
  invoke(t: number, s: number, a = 1, p = 'p0'): this {
    this.events.push({ k: 'pi', t, p, s, a });
    return this;
  }
  reject(t: number, s: number, a = 1, p = 'p0'): this {
    this.events.push({ k: 'pf', t, p, s, a, code: 'DISK_FULL' });
    return this;
  }
  deliver(t: number, s: number, off: number, options: { c?: string; sub?: number; g?: number; a?: number; p?: string } = {}): this {
    this.events.push({
      k: 'd',
      t,
      kind: 'group',
      c: options.c ?? 'c0',
      sub: options.sub ?? 1,
      g: options.g ?? 0,
      part: 0,
      off,
      dc: 1,
      p: options.p ?? 'p0',
      s,
      a: options.a ?? 1,
    });
    return this;
  }
  ack(t: number, s: number, off: number, options: { c?: string; sub?: number; g?: number; dg?: number } = {}): this {
    const g = options.g ?? 0;
    this.events.push({ k: 'ak', t, c: options.c ?? 'c0', sub: options.sub ?? 1, dg: options.dg ?? g, g, part: 0, off, p: 'p0', s });
    return this;
  }
  barrier(t: number, options: { c?: string; sub?: number; g?: number } = {}): this {
    this.events.push({ k: 'bar', t, c: options.c ?? 'c0', sub: options.sub ?? 1, g: options.g ?? 0, ok: true });
    return this;
  }
  scan(t: number, s: number, off: number, p = 'p0'): this {
    this.events.push({ k: 'd', t, kind: 'scan', c: 'drain', sub: 0, g: 0, part: 0, off, dc: 1, p, s, a: 1 });
    return this;
  }
  deadLetter(t: number, s: number): this {
    this.events.push({ k: 'd', t, kind: 'dlq', c: 'drain', sub: 0, g: 0, part: 0, off: 0, dc: 1, p: 'p0', s, a: 1 });
    return this;
  }
  /** Publish, deliver, ack and scan message s at offset s, starting at time t. */
  clean(t: number, s: number): this {
    return this.publish(t, s, s).deliver(t + 2, s, s).ack(t + 3, s, s).scan(100_000 + t, s, s);
  }
  check(options: CheckOptions = ALWAYS) {
    return check([...this.events].sort((a, b) => a.t - b.t), options);
  }
}

test('checker - a clean history passes with exact figures', () => {
  const result = new Story().start(0).clean(10, 0).clean(20, 1).clean(30, 2).check();
  assert.deepEqual(result.failures, []);
  assert.equal(result.attempted, 3);
  assert.equal(result.confirmed, 3);
  assert.equal(result.delivered, 3);
  assert.equal(result.acked, 3);
  assert.equal(result.lost, 0);
  assert.equal(result.duplicates.total, 0);
});

test('checker - a confirmed message never delivered is lost', () => {
  const result = new Story().start(0).clean(10, 0).publish(20, 1, 1).scan(100_000, 1, 1).check();
  assert.equal(result.lost, 1);
  assert.equal(result.lostNeverDelivered, 1);
  assert.match(result.failures.join(), /1 lost/);
});

test('checker - a message delivered but never acked nor dead-lettered is lost', () => {
  const result = new Story().start(0).publish(10, 0, 0).deliver(12, 0, 0).scan(100_000, 0, 0).check();
  assert.equal(result.lost, 1);
  assert.equal(result.lostDeliveredNotSettled, 1);
});

test('checker - a dead-lettered message is settled, not lost', () => {
  const result = new Story().start(0).publish(10, 0, 0).deliver(12, 0, 0).deadLetter(90_000, 0).scan(100_000, 0, 0).check();
  assert.deepEqual(result.failures, []);
  assert.equal(result.deadLettered, 1);
});

test('checker - an ack sent after its connection was lost does not settle', () => {
  const result = new Story().start(0).publish(10, 0, 0).deliver(12, 0, 0, { g: 0 }).ack(13, 0, 0, { dg: 0, g: 1 }).scan(100_000, 0, 0).check();
  assert.equal(result.lost, 1);
});

test('checker - a confirmed message missing from the final scan fails in always mode', () => {
  const result = new Story().start(0).publish(10, 0, 0).deliver(12, 0, 0).ack(13, 0, 0).check();
  assert.equal(result.missingFromLog, 1);
  assert.match(result.failures.join(), /missing from the log/);
});

test('checker - below where the final scan found the log starting, a settled message was removed by retention, not missing; an unsettled one is lost', () => {
  const story = new Story().start(0).publish(10, 0, 0).publish(11, 1, 1).publish(12, 2, 2).deliver(20, 0, 0).ack(21, 0, 0);
  story.events.push({ k: 'ls', t: 99_000, part: 0, off: 2 });
  const result = story.scan(100_000, 2, 2).deliver(100_001, 2, 2).ack(100_002, 2, 2).check();
  assert.equal(result.missingFromLog, 0, 'offset 0 was acked, then removed by retention');
  assert.equal(result.lost, 1, 'offset 1 was removed before anyone took it');
  assert.match(result.failures.join(), /lost/);
});

test('checker - a delivery of a message never attempted is unexpected', () => {
  const story = new Story().start(0).clean(10, 0).deliver(20, 7, 1, { p: 'p9' });
  story.events.push({ k: 'd', t: 30, kind: 'group', c: 'c0', sub: 1, g: 0, part: 0, off: 2, dc: 1, bad: 'not JSON' });
  const result = story.check();
  assert.equal(result.unexpected, 2);
  assert.match(result.failures.join(), /2 unexpected/);
});

test('checker - a delivery of an attempt never invoked is unexpected', () => {
  const result = new Story().start(0).clean(10, 0).deliver(20, 0, 5, { a: 2 }).check();
  assert.equal(result.unexpected, 1);
});

test('checker - a stored copy of a rejected publish is a phantom', () => {
  const result = new Story().start(0).invoke(10, 0).reject(11, 0).deliver(12, 0, 0).ack(13, 0, 0).check();
  assert.equal(result.phantom, 1);
  assert.equal(result.rejectedByCode.DISK_FULL, 1);
});

test('checker - a redelivery of an unacked delivery is allowed', () => {
  const result = new Story().start(0).clean(10, 0).deliver(11, 0, 0, { c: 'c1' }).check();
  // clean() delivers at 12 and acks at 13: the one at 11 came first, so the one at 12 is the duplicate.
  assert.deepEqual(result.failures, []);
  assert.equal(result.duplicates.total, 1);
  assert.equal(result.duplicates.redeliveryUnacked, 1);
});

test('checker - a redelivery after an unconfirmed ack and a broker kill is allowed', () => {
  const result = new Story().start(0).clean(10, 0).kill(50).start(60).deliver(70, 0, 0, { g: 1 }).check();
  assert.deepEqual(result.failures, []);
  assert.equal(result.duplicates.redeliveryAfterUnconfirmedAck, 1);
});

test('checker - a delivery after a confirmed ack and a restart fails', () => {
  const result = new Story().start(0).clean(10, 0).barrier(20).kill(50).start(60).deliver(70, 0, 0, { g: 1 }).check();
  assert.equal(result.duplicates.afterConfirmedAck, 1);
  assert.match(result.failures.join(), /after a confirmed ack/);
});

test('checker - a delivery trailing a confirmed ack: a race if the ack timeout could have overtaken it, a failure beyond the tolerance', () => {
  const options: CheckOptions = { ...ALWAYS, ackTimeoutMs: 2_000 };
  // Delivered at 12, acked at 13, confirmed at 2_500; redelivered at 2_900: the timeout (2 s) may have run first.
  const near = new Story().start(0).clean(10, 0).barrier(2_500).deliver(2_900, 0, 0, { c: 'c1' }).check(options);
  assert.deepEqual(near.failures, []);
  assert.equal(near.duplicates.racesAllowed, 1);
  const far = new Story().start(0).clean(10, 0).barrier(20).deliver(5_000, 0, 0, { c: 'c1' }).check(options);
  assert.equal(far.duplicates.afterConfirmedAck, 1);
});

test('checker - a redelivery after an ack, within the ack timeout and undisturbed, is an ignored ack', () => {
  const options: CheckOptions = { ...ALWAYS, ackTimeoutMs: 10_000 };
  const ignored = new Story().start(0).clean(10, 0).deliver(40, 0, 0, { c: 'c1' }).check(options);
  assert.equal(ignored.duplicates.ackIgnored, 1);
  assert.match(ignored.failures.join(), /ack ignored/);
  // A pause, the acker's lost connection or a kill in between excuse it.
  const paused = new Story().start(0).clean(10, 0).deliver(5_000, 0, 0, { c: 'c1' });
  paused.events.push({ k: 'pz', t: 5, ms: 3_000 });
  assert.deepEqual(paused.check(options).failures, []);
  const reconnected = new Story().start(0).clean(10, 0).deliver(5_000, 0, 0, { c: 'c1' });
  reconnected.events.push({ k: 'rc', t: 100, c: 'c0', g: 1 });
  assert.deepEqual(reconnected.check(options).failures, []);
  // Past the ack timeout the broker may have redelivered before the ack arrived.
  assert.deepEqual(new Story().start(0).clean(10, 0).deliver(12_000, 0, 0, { c: 'c1' }).check(options).failures, []);
});

test('checker - one publish stored twice fails', () => {
  const result = new Story().start(0).clean(10, 0).scan(100_001, 0, 1).check();
  assert.equal(result.duplicates.storedTwice, 1);
  assert.match(result.failures.join(), /extra stored copies/);
});

test('checker - delivered copies at two offsets fail in always mode (without a scan)', () => {
  const result = new Story().start(0).publish(10, 0, 0).deliver(12, 0, 0).deliver(14, 0, 3).ack(15, 0, 3).check({ durability: 'always' });
  assert.equal(result.duplicates.copyVanished, 1);
});

test('checker - a message stored before one confirmed ahead of its invocation is an order violation', () => {
  // s=1 was confirmed at t=21, s=2 first invoked at t=30, yet s=2 sits before s=1 in the log.
  const result = new Story()
    .start(0)
    .publish(20, 1, 5)
    .publish(30, 2, 4)
    .deliver(40, 1, 5)
    .ack(41, 1, 5)
    .deliver(42, 2, 4)
    .ack(43, 2, 4)
    .scan(100_000, 2, 4)
    .scan(100_001, 1, 5)
    .check();
  assert.equal(result.orderViolations, 1);
  // Concurrent publishes (the second invoked before the first was confirmed) may land in any order.
  const concurrent = new Story()
    .start(0)
    .publish(20, 1, 5, { confirmAt: 35 })
    .publish(30, 2, 4)
    .deliver(40, 1, 5)
    .ack(41, 1, 5)
    .deliver(42, 2, 4)
    .ack(43, 2, 4)
    .scan(100_000, 2, 4)
    .scan(100_001, 1, 5)
    .check();
  assert.equal(concurrent.orderViolations, 0);
});

test('checker - interval mode: a loss at a power loss within the window and as a suffix is allowed', () => {
  const interval: CheckOptions = { durability: 'interval', lossWindowMs: 50, scanned: true };
  const base = () => new Story().start(0).clean(10, 0).clean(20, 1).publish(960, 2, 2).publish(980, 3, 3).kill(1_000).powerLoss(1_001, 1_000).start(2_000);
  const allowed = base().check(interval);
  assert.deepEqual(allowed.failures, []);
  assert.equal(allowed.lostAllowed, 2);
  assert.equal(allowed.lossAgeMsMax, 39);

  const old = new Story().start(0).clean(10, 0).publish(500, 1, 1).kill(1_000).powerLoss(1_001, 1_000).start(2_000).check(interval);
  assert.equal(old.lossOutsideWindow, 1);

  const notSuffix = base().scan(100_000, 3, 3).deliver(1_500, 3, 3).ack(1_501, 3, 3).check(interval);
  assert.equal(notSuffix.lossNotSuffix, 1);

  const noPowerLoss = new Story().start(0).clean(10, 0).publish(980, 1, 1).kill(1_000).start(2_000).check(interval);
  assert.equal(noPowerLoss.missingFromLog, 1);
  assert.equal(noPowerLoss.lost, 1);
});

test('checker - always mode allows no loss at a power loss', () => {
  const result = new Story().start(0).clean(10, 0).publish(990, 1, 1).kill(1_000).powerLoss(1_001, 1_000).start(2_000).check();
  assert.equal(result.lost, 1);
  assert.equal(result.missingFromLog, 1);
});

test('checker - a delayed message delivered before its delay is early', () => {
  const early = new Story().start(0).publish(10, 0, 0, { d: 5_000 }).deliver(3_000, 0, 0).ack(3_001, 0, 0).scan(100_000, 0, 0).check();
  assert.equal(early.earlyDeliveries, 1);
  const onTime = new Story().start(0).publish(10, 0, 0, { d: 5_000 }).deliver(5_020, 0, 0).ack(5_021, 0, 0).scan(100_000, 0, 0).check();
  assert.deepEqual(onTime.failures, []);
});

test('checker - interval mode: the loss window is two fdatasyncs back to back when one takes longer than syncIntervalMs', () => {
  const interval: CheckOptions = { durability: 'interval', lossWindowMs: 50, scanned: true };
  // fdatasyncs of up to 80 ms: a write just after a sync started waits for it (80) and the next (80).
  const story = (confirmedMsBeforeKill: number) =>
    new Story()
      .start(0)
      .clean(10, 0)
      .publish(1_000 - confirmedMsBeforeKill - 1, 1, 1)
      .kill(1_000)
      .powerLoss(1_001, 1_000, 80)
      .start(2_000)
      .check(interval);
  // 150 ms: beyond syncIntervalMs + one fdatasync (130 ms), within max(50, 80) + 80 = 160 ms.
  const slowSyncs = story(150);
  assert.deepEqual(slowSyncs.failures, []);
  assert.equal(slowSyncs.lostAllowed, 1);
  assert.equal(slowSyncs.lossAgeMsMax, 150);
  // Well beyond two fdatasyncs and any timer lateness: a failure.
  const old = story(400);
  assert.equal(old.lossOutsideWindow, 1);
  assert.match(old.failures.join(), /outside the interval window/);
});

test('checker - interval mode: an ack confirmed just before a power loss may be undone, even if its barrier is recorded after the kill', () => {
  const interval: CheckOptions = { durability: 'interval', lossWindowMs: 50, scanned: true, ackTimeoutMs: 10_000 };
  // Delivered at 962, acked at 963 (sent 37 ms before the kill at 1_000); the consumer records the
  // barrier's answer at 1_008, after the harness recorded the kill: the answer left the broker before.
  const story = (barrierT: number, durability: CheckOptions = interval) =>
    new Story()
      .start(0)
      .clean(960, 0)
      .barrier(barrierT)
      .kill(1_000)
      .powerLoss(1_001, 1_000, 20)
      .start(2_000)
      .deliver(2_100, 0, 0, { c: 'c1', g: 1 })
      .ack(2_101, 0, 0, { c: 'c1', g: 1 })
      .check(durability);
  const skewed = story(1_008);
  assert.deepEqual(skewed.failures, []);
  assert.equal(skewed.duplicates.redeliveryAfterUnconfirmedAck, 1);
  // In `always` mode a confirmed ack is fsynced: no power loss excuses the redelivery.
  const always = story(1_008, { ...ALWAYS, ackTimeoutMs: 10_000 });
  assert.equal(always.duplicates.afterConfirmedAck, 1);
  // An answer recorded after the next start came from that incarnation: the earlier loss excuses nothing.
  const nextIncarnation = new Story()
    .start(0)
    .clean(960, 0)
    .kill(1_000)
    .powerLoss(1_001, 1_000, 20)
    .start(1_300)
    .barrier(1_500)
    .deliver(3_000, 0, 0, { c: 'c1', g: 1 })
    .ack(3_001, 0, 0, { c: 'c1', g: 1 })
    .check(interval);
  assert.equal(nextIncarnation.duplicates.afterConfirmedAck, 1);
});

test('checker - interval mode: an ack confirmed well before a power loss was synced: its redelivery fails', () => {
  const interval: CheckOptions = { durability: 'interval', lossWindowMs: 50, scanned: true, ackTimeoutMs: 10_000 };
  // Confirmed at 20, power loss at 1_000: the ack's journal record was synced long before.
  const result = new Story()
    .start(0)
    .clean(10, 0)
    .barrier(20)
    .kill(1_000)
    .powerLoss(1_001, 1_000, 20)
    .start(2_000)
    .deliver(2_100, 0, 0, { c: 'c1', g: 1 })
    .ack(2_101, 0, 0, { c: 'c1', g: 1 })
    .check(interval);
  assert.equal(result.duplicates.afterConfirmedAck, 1);
  assert.match(result.failures.join(), /after a confirmed ack/);
});
