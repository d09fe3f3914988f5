/**
 * The 5.0 will delay interval with mqtt.js: a will waits out its delay; a client that resumes its
 * session within the delay drops it; a session that expires before the delay sends it at expiry;
 * a client that starts its session afresh ends the old one, so the will goes out then.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MqttClient } from 'mqtt';
import { eventually } from '../../helpers.js';
import { client, collect, startMqtt, type MqttHarness, type Received } from './harness.js';

const TEST_TIMEOUT_MS = 30_000;

async function watching(harness: MqttHarness): Promise<{ watcher: MqttClient; received: Received[] }> {
  const watcher = await client(harness.url);
  const received = collect(watcher);
  await watcher.subscribeAsync('status/#', { qos: 1 });
  return { watcher, received };
}

/** A client whose will waits `delaySeconds`, in a session that outlives it by `expirySeconds`. */
function willing(harness: MqttHarness, clientId: string, delaySeconds: number, expirySeconds: number): Promise<MqttClient> {
  return client(harness.url, {
    clientId,
    clean: false,
    properties: { sessionExpiryInterval: expirySeconds },
    will: { topic: `status/${clientId}`, payload: Buffer.from('gone'), qos: 1, retain: false, properties: { willDelayInterval: delaySeconds } },
  });
}

test('mqtt wills - a will with a delay is published once the delay has passed, not at once', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['status'] });
  const { watcher, received } = await watching(harness);
  try {
    const vanishing = await willing(harness, 'delayed', 1, 60);
    const lostAt = Date.now();
    vanishing.stream.destroy();
    await sleep(500);
    assert.equal(received.length, 0, 'not within the delay');
    await eventually(() => assert.deepEqual(received.map((one) => one.topic), ['status/delayed']));
    assert.ok(Date.now() - lostAt >= 950, 'after the delay');
    vanishing.end(true);
  } finally {
    await watcher.endAsync();
    await harness.close();
  }
});

test('mqtt wills - a client that resumes its session within the delay drops its will', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['status'] });
  const { watcher, received } = await watching(harness);
  try {
    const vanishing = await willing(harness, 'back', 1, 60);
    vanishing.stream.destroy();
    vanishing.end(true);
    await sleep(200);
    const back = await willing(harness, 'back', 1, 60);
    await sleep(1500);
    assert.equal(received.length, 0, 'the session resumed: no will');
    await back.endAsync();
  } finally {
    await watcher.endAsync();
    await harness.close();
  }
});

test('mqtt wills - a session that expires before the delay sends the will at expiry; a clean start sends a pending one at once', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['status'] });
  const { watcher, received } = await watching(harness);
  try {
    const expiring = await willing(harness, 'expiring', 30, 1);
    const restarting = await willing(harness, 'restarting', 30, 60);
    const lostAt = Date.now();
    expiring.stream.destroy();
    restarting.stream.destroy();
    await sleep(200);
    assert.equal(received.length, 0);
    const fresh = await client(harness.url, { clientId: 'restarting', clean: true });
    await eventually(() => assert.deepEqual(received.map((one) => one.topic), ['status/restarting']));
    await eventually(() => assert.deepEqual(received.map((one) => one.topic), ['status/restarting', 'status/expiring']));
    assert.ok(Date.now() - lostAt < 10_000, 'at the session expiry (1 s), not the delay (30 s)');
    await fresh.endAsync();
    expiring.end(true);
    restarting.end(true);
  } finally {
    await watcher.endAsync();
    await harness.close();
  }
});
