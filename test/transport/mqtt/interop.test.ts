/**
 * `ferry serve --mqtt-port` as a process (bin/ferry.js over dist/, built first), with Debian's
 * mosquitto_pub and mosquitto_sub and with mqtt.js: QoS 0/1/2, wildcards, retained, a persistent
 * session whose QoS 1 messages survive both the client's absence and a SIGKILL of the broker, and
 * logins refused. The broker is stopped by its PID. Without mosquitto's tools those parts are
 * skipped, saying why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { connect } from '../../../src/client/index.js';
import { writeUsersFile } from '../../../src/security/users-file.js';
import { eventually, tempDir } from '../../helpers.js';
import { BIN, ferry } from '../../cli/run-ferry.js';
import { usersFile } from '../../security/harness.js';
import { client, clientNow, collect, subscribeCodes } from './harness.js';

const TEST_TIMEOUT_MS = 90_000;
const MOSQUITTO_PUB = '/usr/bin/mosquitto_pub';
const MOSQUITTO_SUB = '/usr/bin/mosquitto_sub';
const noMosquitto = existsSync(MOSQUITTO_PUB) && existsSync(MOSQUITTO_SUB) ? false : 'mosquitto_pub / mosquitto_sub are not installed (Debian package mosquitto-clients)';

interface Served {
  child: ChildProcess;
  mqttPort: number;
  ferryPort: number;
  /** The HTTP port's base URL, e.g. http://127.0.0.1:40123 */
  http: string;
}

async function serve(dir: string, extra: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--dir', dir, '--port', '0', '--mqtt-port', '0', '--log-format', 'json', ...extra], { env: { ...process.env, FERRY_URL: '' } });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const events = (): Array<Record<string, any>> => stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
  const listening = await eventually(() => events().find((line) => line['event'] === 'broker.listening') ?? false, { timeoutMs: 20_000 });
  const mqtt = await eventually(() => events().find((line) => line['event'] === 'mqtt.listening') ?? false, { timeoutMs: 20_000 });
  return { child, mqttPort: mqtt['port'], ferryPort: listening['port'], http: String(listening['http']).replace(/\/$/, '') };
}

async function stop(served: Served, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (served.child.exitCode !== null || served.child.signalCode !== null) return;
  const exited = once(served.child, 'exit');
  process.kill(served.child.pid!, signal);
  await exited;
}

/** Runs a mosquitto tool to its end (bounded), returning its exit code and output. */
function mosquitto(tool: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(tool, args);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

async function createTopics(ferryPort: number, names: string[], credentials: { user?: string; password?: string } = {}): Promise<void> {
  const native = await connect({ host: '127.0.0.1', port: ferryPort, reconnect: false, ...credentials });
  try {
    for (const name of names) await native.createTopic(name, { durability: 'always' });
  } finally {
    await native.close();
  }
}

test('mqtt interop - mosquitto_pub and mosquitto_sub: QoS 0/1/2, wildcards and retained', { timeout: TEST_TIMEOUT_MS, skip: noMosquitto }, async () => {
  await using dir = await tempDir();
  const served = await serve(dir.path);
  try {
    await createTopics(served.ferryPort, ['sensors']);
    const port = String(served.mqttPort);
    const subscriber = mosquitto(MOSQUITTO_SUB, ['-h', '127.0.0.1', '-p', port, '-t', 'sensors/+/temp', '-t', 'sensors/+/light', '-q', '2', '-v', '-C', '3', '-W', '15']);
    // mosquitto_sub has no "subscribed" signal: publish until it has what it needs.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const published = [
      ['sensors/kitchen/temp', '21', '0'],
      ['sensors/hall/temp', '19', '1'],
      ['sensors/hall/light', 'on', '2'],
    ];
    for (const [topic, message, qos] of published) {
      const run = await mosquitto(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', port, '-t', topic!, '-m', message!, '-q', qos!]);
      assert.equal(run.code, 0, run.stderr);
    }
    const result = await subscriber;
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(result.stdout.trim().split('\n').sort(), ['sensors/hall/light on', 'sensors/hall/temp 19', 'sensors/kitchen/temp 21']);
    const retained = await mosquitto(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', port, '-t', 'sensors/roof/wind', '-m', '7', '-q', '1', '-r', '-V', 'mqttv5']);
    assert.equal(retained.code, 0, retained.stderr);
    const late = await mosquitto(MOSQUITTO_SUB, ['-h', '127.0.0.1', '-p', port, '-t', 'sensors/#', '-C', '1', '-W', '10', '-v']);
    assert.equal(late.stdout.trim(), 'sensors/roof/wind 7');
  } finally {
    await stop(served);
  }
});

test('mqtt interop - a persistent session keeps QoS 1 messages across a client disconnect and a broker SIGKILL', { timeout: TEST_TIMEOUT_MS }, async () => {
  await using dir = await tempDir();
  let served = await serve(dir.path);
  try {
    await createTopics(served.ferryPort, ['jobs']);
    const session = { clientId: 'durable-1', clean: false, properties: { sessionExpiryInterval: 3600 } };
    const first = await client(`mqtt://127.0.0.1:${served.mqttPort}`, session);
    await first.subscribeAsync('jobs/#', { qos: 1 });
    await first.endAsync();
    if (noMosquitto === false) await mosquitto(MOSQUITTO_SUB, ['-h', '127.0.0.1', '-p', String(served.mqttPort), '-c', '-i', 'durable-2', '-q', '1', '-t', 'jobs/#', '-W', '1']);
    const publisher = await client(`mqtt://127.0.0.1:${served.mqttPort}`, { protocolVersion: 4 });
    for (const n of [1, 2]) await publisher.publishAsync(`jobs/${n}`, `job ${n}`, { qos: 1 });
    await publisher.endAsync();
    await stop(served, 'SIGKILL');
    served = await serve(dir.path);
    const after = await client(`mqtt://127.0.0.1:${served.mqttPort}`, { protocolVersion: 4 });
    await after.publishAsync('jobs/3', 'job 3', { qos: 1 });
    await after.endAsync();
    const back = clientNow(`mqtt://127.0.0.1:${served.mqttPort}`, session);
    const received = collect(back);
    await eventually(() => assert.deepEqual(received.map((one) => one.payload), ['job 1', 'job 2', 'job 3']), { timeoutMs: 10_000 });
    await back.endAsync();
    if (noMosquitto === false) {
      const resumed = await mosquitto(MOSQUITTO_SUB, ['-h', '127.0.0.1', '-p', String(served.mqttPort), '-c', '-i', 'durable-2', '-q', '1', '-t', 'jobs/#', '-C', '3', '-W', '10']);
      assert.deepEqual(resumed.stdout.trim().split('\n'), ['job 1', 'job 2', 'job 3'], resumed.stderr);
    }
  } finally {
    await stop(served);
  }
});

test('mqtt interop - logins are checked against the users file; the guard refuses what a user may not do', { timeout: TEST_TIMEOUT_MS }, async () => {
  await using dir = await tempDir();
  const usersPath = join(dir.path, 'users.json');
  writeUsersFile(usersPath, await usersFile({ admin: { password: 'root-pw', allow: ['admin:*', 'publish:*', 'consume:*'] }, device: { password: 'dev-pw', allow: ['publish:telemetry'] } }));
  const served = await serve(join(dir.path, 'data'), ['--users', usersPath]);
  try {
    await createTopics(served.ferryPort, ['telemetry', 'secret'], { user: 'admin', password: 'root-pw' });
    const url = `mqtt://127.0.0.1:${served.mqttPort}`;
    await assert.rejects(client(url, { username: 'device', password: 'wrong' }), (error: { code?: number }) => error.code === 0x86);
    await assert.rejects(client(url, { protocolVersion: 4 }), (error: { code?: number }) => error.code === 5);
    const device = await client(url, { username: 'device', password: 'dev-pw' });
    await device.publishAsync('telemetry/t1', '1', { qos: 1 });
    await assert.rejects(device.publishAsync('secret/x', '1', { qos: 1 }), (error: { code?: number }) => error.code === 0x87);
    assert.deepEqual(await subscribeCodes(device, { 'telemetry/#': { qos: 1 } }), [0x87]);
    await device.endAsync();
    if (noMosquitto === false) {
      const refused = await mosquitto(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(served.mqttPort), '-u', 'device', '-P', 'wrong', '-t', 'telemetry/x', '-m', '1']);
      assert.notEqual(refused.code, 0);
      const allowed = await mosquitto(MOSQUITTO_PUB, ['-h', '127.0.0.1', '-p', String(served.mqttPort), '-u', 'device', '-P', 'dev-pw', '-t', 'telemetry/x', '-m', '1', '-q', '1']);
      assert.equal(allowed.code, 0, allowed.stderr);
    }
  } finally {
    await stop(served);
  }
});

test('mqtt interop - the port comes from --mqtt-port or FERRY_MQTT_PORT and is off by default', async () => {
  const printed = async (args: string[], env: Record<string, string> = {}): Promise<any> => {
    const run = await ferry(['serve', '--print-config', ...args], { env });
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout).mqtt;
  };
  assert.equal((await printed([])).port, undefined);
  assert.equal((await printed(['--mqtt-port', '1883'])).port, 1883);
  assert.equal((await printed([], { FERRY_MQTT_PORT: '1884', FERRY_MQTT_INFLIGHT_MAX: '10' })).inflightMax, 10);
  assert.equal((await printed([], { FERRY_MQTT_PORT: '1884' })).port, 1884);
});

test('mqtt interop - MQTT over WebSocket at the HTTP port\'s /mqtt, both ways with the TCP port', { timeout: TEST_TIMEOUT_MS }, async () => {
  await using dir = await tempDir();
  const served = await serve(dir.path);
  try {
    await createTopics(served.ferryPort, ['chat']);
    const overWebSocket = await client(`${served.http.replace(/^http/, 'ws')}/mqtt`);
    const overTcp = await client(`mqtt://127.0.0.1:${served.mqttPort}`, { protocolVersion: 4 });
    const fromTcp = collect(overWebSocket);
    const fromWebSocket = collect(overTcp);
    await overWebSocket.subscribeAsync('chat/#', { qos: 1 });
    await overTcp.subscribeAsync('chat/#', { qos: 1 });
    await overTcp.publishAsync('chat/tcp', 'hello from tcp', { qos: 1 });
    await overWebSocket.publishAsync('chat/ws', 'hello from a browser', { qos: 2 });
    await eventually(() => assert.deepEqual(fromTcp.map((one) => one.payload).sort(), ['hello from a browser', 'hello from tcp']));
    await eventually(() => assert.deepEqual(fromWebSocket.map((one) => one.payload).sort(), ['hello from a browser', 'hello from tcp']));
    await Promise.all([overWebSocket.endAsync(), overTcp.endAsync()]);
  } finally {
    await stop(served);
  }
});
