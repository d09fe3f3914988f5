import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Admission } from '../../src/broker/admission.js';
import { FerryError } from '../../src/errors.js';
import { silentLogger } from '../../src/platform/logger.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { flush, openSimBroker } from './sim-broker.js';

test('admission - memory above the high watermark refuses publishes with BROKER_BUSY until it falls', async () => {
  let resident = 100;
  const clock = new SimClock();
  const admission = new Admission(new SimFileSystem(), '/', clock, silentLogger, { memoryHighWatermarkBytes: 1000, diskFreeLowBytes: 0 }, () => resident);
  await admission.sample();
  admission.check();
  resident = 2000;
  await clock.advanceAndSettle(1000);
  assert.throws(() => admission.check(), (error: unknown) => error instanceof FerryError && error.code === 'BROKER_BUSY' && error.retryable);
  resident = 500;
  await clock.advanceAndSettle(1000);
  admission.check();
  admission.stop();
});

test('admission - free disk below the low watermark refuses publishes with DISK_FULL, and they resume', async () => {
  const fs = new SimFileSystem({ capacityBytes: 10 * 1024 * 1024 });
  const { broker, clock } = await openSimBroker(fs, new SimClock(), { admission: { diskFreeLowBytes: 1024 * 1024 } });
  await broker.createTopic('t');
  await broker.publish('t', 'ok');
  fs.setCapacity(fs.used + 512 * 1024);
  await clock.advanceAndSettle(1000);
  await flush();
  await assert.rejects(broker.publish('t', 'refused'), (error: unknown) => error instanceof FerryError && error.code === 'DISK_FULL');
  fs.setCapacity(fs.used + 8 * 1024 * 1024);
  await clock.advanceAndSettle(1000);
  await flush();
  await broker.publish('t', 'resumed');
  assert.equal(broker.describeTopic('t').partitions[0]!.nextOffset, 2);
  await broker.close();
});
