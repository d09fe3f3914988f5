/** ObservedBroker: configured admission limits below the ceilings, and what passes through untouched. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Broker } from '../../src/broker/broker.js';
import { SystemClock } from '../../src/platform/clock.js';
import { isFerryError } from '../../src/errors.js';
import { ObservedBroker } from '../../src/admin/observed-broker.js';
import { ADMISSION_CEILINGS } from '../../src/broker/limits.js';
import { Traffic } from '../../src/admin/traffic.js';
import type { DeliverySink } from '../../src/broker/types.js';
import { tempDir } from '../helpers.js';

test('observed broker - configured limits refuse what the ceilings would accept, with the usual codes', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    const traffic = new Traffic();
    const limits = { recordBytesMax: 100, keyBytesMax: 8, headersCountMax: 2, headersBytesMax: 20, publishMessagesMax: 3 };
    const observed = new ObservedBroker(broker, traffic, new SystemClock(), limits);
    await observed.createTopic('t');
    const code = (error: unknown): string => (isFerryError(error) ? error.code : String(error));
    const rejects = async (messages: Parameters<ObservedBroker['publish']>[1], expected: string): Promise<void> => {
      await assert.rejects(observed.publish('t', messages), (error) => code(error) === expected && /limits\./.test((error as Error).message));
    };
    await rejects([{ value: Buffer.alloc(101) }], 'RECORD_TOO_LARGE');
    await rejects([{ value: Buffer.from('x'), key: Buffer.alloc(9) }], 'KEY_TOO_LARGE');
    await rejects([{ value: Buffer.from('x'), headers: [['a', '1'], ['b', '2'], ['c', '3']] }], 'HEADERS_TOO_LARGE');
    await rejects([{ value: Buffer.from('x'), headers: [['name', 'a value longer than twenty bytes']] }], 'HEADERS_TOO_LARGE');
    await rejects(Array.from({ length: 4 }, () => ({ value: Buffer.from('x') })), 'BATCH_TOO_LARGE');
    const results = await observed.publish('t', [{ value: Buffer.alloc(90), key: Buffer.from('k'), headers: [['a', 'b']] }]);
    assert.equal(results[0]!.offset, 0);
    assert.equal(traffic.topic('t').messagesIn, 1);
    assert.equal(broker.describeTopic('t').partitions[0]!.nextOffset, 1, 'refused publishes stored nothing');
  } finally {
    await broker.close();
  }
});

test('observed broker - at the ceilings nothing is checked here; duplicates are not counted as traffic', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    const traffic = new Traffic();
    const observed = new ObservedBroker(broker, traffic, new SystemClock(), ADMISSION_CEILINGS);
    await observed.createTopic('t');
    await observed.publish('t', [{ value: Buffer.from('abc'), id: 'm-1' }]);
    const [again] = await observed.publish('t', [{ value: Buffer.from('abc'), id: 'm-1' }]);
    assert.equal(again!.duplicate, true);
    assert.deepEqual([traffic.topic('t').messagesIn, traffic.topic('t').bytesIn], [1, 3]);
    await assert.rejects(observed.publish('t', [{ value: Buffer.from('x'), partition: 5 }]), (error) => isFerryError(error, 'INVALID_ARGUMENT'));
    assert.equal(traffic.topic('t').publishErrors.get('INVALID_ARGUMENT'), 1);
  } finally {
    await broker.close();
  }
});

test('observed broker - acks are counted once durable, acks of one tick together; a failed ack is not counted', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  try {
    const traffic = new Traffic();
    const observed = new ObservedBroker(broker, traffic, new SystemClock(), ADMISSION_CEILINGS);
    await observed.createTopic('t');
    await observed.publish('t', Array.from({ length: 5 }, (_, i) => ({ value: Buffer.from(String(i)) })));
    const delivered: number[] = [];
    let allDelivered!: () => void;
    const five = new Promise<void>((resolve) => (allDelivered = resolve));
    const sink: DeliverySink = {
      deliver: (delivery) => {
        delivered.push(delivery.offset);
        if (delivered.length === 5) allDelivered();
      },
      writable: () => true,
    };
    const subscription = await observed.subscribe('t', { group: 'g', from: { kind: 'earliest' }, credit: 10 }, sink);
    await five;
    const tick = [0, 1, 2].map((offset) => subscription.ack(0, offset));
    assert.equal(traffic.group('t', 'g').acked, 0, 'not counted before the ack is durable');
    await Promise.all(tick);
    assert.equal(traffic.group('t', 'g').acked, 3);
    await assert.rejects(subscription.ack(0, 99), (error) => isFerryError(error, 'UNKNOWN_DELIVERY'));
    await subscription.ack(0, 3);
    await subscription.ack(0, 4);
    assert.equal(traffic.group('t', 'g').acked, 5);
    await subscription.close();
  } finally {
    await broker.close();
  }
});
