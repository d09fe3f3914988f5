/**
 * Enhanced authentication (5.0 AUTH) is not offered, explicitly: a CONNECT naming an
 * authentication method gets CONNACK 0x8C Bad authentication method (mqtt.js and
 * mosquitto_pub), and an AUTH packet on an open connection is a protocol error (DISCONNECT 0x82).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import mqttPacket, { type IDisconnectPacket } from 'mqtt-packet';
import { client, startMqtt } from './harness.js';

const TEST_TIMEOUT_MS = 30_000;
const run = promisify(execFile);

async function hasMosquittoPub(): Promise<boolean> {
  try {
    await run('mosquitto_pub', ['--help']);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code !== 'ENOENT';
  }
}

test('mqtt connect - a CONNECT with an authentication method is refused with 0x8C Bad authentication method', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['sensors'] });
  try {
    await assert.rejects(client(harness.url, { properties: { authenticationMethod: 'SCRAM-SHA-256', authenticationData: Buffer.from('client-first') } }), (error: { code?: number }) => error.code === 0x8c);
    const plain = await client(harness.url);
    await plain.endAsync();
  } finally {
    await harness.close();
  }
});

test('mqtt connect - mosquitto_pub with an authentication method is refused', { timeout: TEST_TIMEOUT_MS, skip: !(await hasMosquittoPub()) }, async () => {
  const harness = await startMqtt({ topics: ['sensors'] });
  try {
    const port = new URL(harness.url).port;
    const refused = run('mosquitto_pub', ['-h', '127.0.0.1', '-p', port, '-V', 'mqttv5', '-D', 'connect', 'authentication-method', 'SCRAM-SHA-256', '-t', 'sensors/x', '-m', 'x', '-q', '1']);
    await assert.rejects(refused, (error: { stderr?: string }) => /bad authentication method/i.test(error.stderr ?? ''));
    assert.equal(harness.broker.describeTopic('sensors').partitions[0]!.nextOffset, 0);
  } finally {
    await harness.close();
  }
});

test('mqtt connect - an AUTH packet on an open connection is a protocol error: DISCONNECT 0x82, then closed', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['sensors'] });
  const mqttClient = await client(harness.url);
  try {
    const disconnected = new Promise<IDisconnectPacket>((resolve) => mqttClient.once('disconnect', resolve));
    const closed = new Promise<void>((resolve) => mqttClient.once('close', () => resolve()));
    mqttClient.stream.write(mqttPacket.generate({ cmd: 'auth', reasonCode: 0x18, properties: { authenticationMethod: 'SCRAM-SHA-256' } }, { protocolVersion: 5 }));
    assert.equal((await disconnected).reasonCode, 0x82);
    await closed;
  } finally {
    mqttClient.end(true);
    await harness.close();
  }
});
