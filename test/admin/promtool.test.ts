/**
 * Prometheus's own linter on /metrics: `promtool check metrics` (Debian's `prometheus` package;
 * .ci/run installs it) over a broker with topics, a group, a dead letter, a connection and a
 * logged warning, so every family has samples. In CI it must run; elsewhere, without promtool, the
 * test is skipped and says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { Delivery } from '../../src/broker/types.js';
import { connect } from '../../src/client/index.js';
import { FerryError } from '../../src/errors.js';
import { eventually } from '../helpers.js';
import { startAdmin } from './harness.js';

const promtoolMissing = spawnSync('promtool', ['--version']).error !== undefined;
const skip = promtoolMissing && process.env['CI'] !== 'true' ? 'promtool is not installed (apt-get install prometheus); CI installs it' : false;

test('metrics - /metrics passes promtool check metrics', { skip }, async () => {
  const fixture = await startAdmin({ tcp: true });
  const { observed, broker, log, tcpPort } = fixture;
  const client = await connect({ host: '127.0.0.1', port: tcpPort, name: 'promtool-test', reconnect: false });
  try {
    await observed.createTopic('orders', { partitions: 2 });
    for (let i = 0; i < 4; i++) await client.publish('orders', Buffer.from('aaaa'), { key: `k${i}` });
    await client.publish('orders', Buffer.from('later'), { delayMs: 60_000 });
    const deliveries: Delivery[] = [];
    const subscription = await observed.subscribe(
      'orders',
      { group: 'billing', from: { kind: 'earliest' }, deliveriesMax: 1 },
      { deliver: (delivery) => void deliveries.push(delivery), writable: () => true },
    );
    await eventually(() => deliveries.length === 4);
    for (const delivery of deliveries.slice(1)) await subscription.ack(delivery.partition, delivery.offset);
    await subscription.nack(deliveries[0]!.partition, deliveries[0]!.offset, { delayMs: 0 });
    await eventually(() => broker.describeGroup('orders', 'billing').deadLetteredTotal === 1);
    log.warn('test.warned', { error: new FerryError('DISK_FULL', 'no space left') });

    const text = await (await fetch(`${fixture.base}/metrics`)).text();
    assert.match(text, /^ferry_group_dead_lettered_total\{.*\} 1$/m, 'the families under test have samples');
    const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(run.error, undefined, 'promtool runs');
    assert.equal(run.status, 0, `promtool check metrics:\n${run.stdout}${run.stderr}`);
    assert.equal(run.stdout + run.stderr, '', 'no lint findings');
  } finally {
    await client.close();
    await fixture.close();
  }
});
