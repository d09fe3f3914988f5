/**
 * The MQTT port's per-source-address limits, applied at accept before any TLS or CONNECT work (the
 * Ferry port's accept gate): the accept rate and burst per address, and the open connections per
 * address; refused sockets are closed at once and counted by reason. Clients are mqtt.js.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MqttClient } from 'mqtt';
import { BrokerMetrics } from '../../../src/admin/metrics.js';
import { client, clientNow, startMqtt } from './harness.js';

const TEST_TIMEOUT_MS = 30_000;

/** An mqtt.js client that is refused: closed before any CONNACK. */
function refused(url: string): Promise<void> {
  const mqttClient: MqttClient = clientNow(url);
  return new Promise<void>((resolve, reject) => {
    mqttClient.once('connect', () => reject(new Error('connected, but should have been refused')));
    mqttClient.once('close', () => {
      mqttClient.end(true);
      resolve();
    });
  });
}

test('mqtt accept - an address past its accept rate and burst is closed at accept and counted', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['sensors'], perAddress: { acceptsPerSecond: 0.001, acceptBurst: 2, connectionsMax: 100 } });
  const opened: MqttClient[] = [];
  try {
    opened.push(await client(harness.url), await client(harness.url));
    await refused(harness.url);
    await refused(harness.url);
    assert.deepEqual(harness.server.refusedCounts(), { accept_rate: 2, per_ip: 0, total: 0 });
    const metrics = new BrokerMetrics({ broker: () => null, ready: () => true, version: 'test', mqtt: () => harness.server });
    assert.match(await metrics.render(), /^ferry_connections_refused_total\{reason="mqtt_accept_rate"\} 2$/m);
  } finally {
    await Promise.all(opened.map((one) => one.endAsync()));
    await harness.close();
  }
});

test('mqtt accept - an address at its connection limit is closed at accept until one of its connections ends', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['sensors'], perAddress: { acceptsPerSecond: 0, acceptBurst: 1, connectionsMax: 2 } });
  const first = await client(harness.url);
  const second = await client(harness.url);
  try {
    await refused(harness.url);
    assert.deepEqual(harness.server.refusedCounts(), { accept_rate: 0, per_ip: 1, total: 0 });
    await first.endAsync();
    const closedOnServer = Date.now();
    let third: MqttClient | null = null;
    while (third === null && Date.now() - closedOnServer < 5_000) {
      third = await client(harness.url).catch(() => null);
    }
    assert.ok(third !== null, 'a slot is free again once a connection ended');
    await third.endAsync();
  } finally {
    await second.endAsync();
    await harness.close();
  }
});
