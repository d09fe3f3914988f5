/**
 * `ferry serve --udp-port` as a process (over dist/, built by `npm test`): a plain-text datagram as
 * `nc -u` sends it is stored, a forbidden and a malformed one are dropped, and /metrics counts each
 * outcome; the port is on loopback, and comes from the flag or FERRY_UDP_PORT (off by default).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { connect } from '../../src/client/index.js';
import { eventually, tempDir } from '../helpers.js';
import { BIN, ferry } from './run-ferry.js';

/** Start, a few datagrams, reads and shutdown: seconds even on a loaded machine. */
const TEST_TIMEOUT_MS = 60_000;

interface Served {
  child: ChildProcess;
  events(): Array<Record<string, any>>;
  tcpPort: number;
  udpPort: number;
  http: string;
}

async function serveWithUdp(dir: string, extra: string[] = []): Promise<Served> {
  const child = spawn(process.execPath, [BIN, 'serve', '--dir', dir, '--port', '0', '--udp-port', '0', '--log-format', 'json', ...extra], { env: { ...process.env, FERRY_URL: '' } });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const events = (): Array<Record<string, any>> => stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
  const listening = await eventually(() => events().find((line) => line['event'] === 'broker.listening') ?? false, { timeoutMs: 20_000 });
  const udp = await eventually(() => events().find((line) => line['event'] === 'udp.listening') ?? false, { timeoutMs: 20_000 });
  return { child, events, tcpPort: listening['port'], udpPort: udp['port'], http: String(listening['http']).replace(/\/$/, '') };
}

async function stop(served: Served): Promise<void> {
  if (served.child.exitCode !== null) return;
  served.child.kill('SIGTERM');
  const [code] = await once(served.child, 'exit');
  assert.equal(code, 0);
}

test('serve udp - ferry serve --udp-port stores what nc -u sends, drops the rest, and counts each outcome in /metrics', { timeout: TEST_TIMEOUT_MS }, async () => {
  await using dir = await tempDir();
  const served = await serveWithUdp(dir.path, ['--set', 'udp.topics=metrics,logs.*']);
  try {
    assert.equal(served.events().find((line) => line['event'] === 'udp.listening')?.['host'], '127.0.0.1', 'loopback unless configured');
    const client = await connect({ host: '127.0.0.1', port: served.tcpPort, reconnect: false });
    try {
      await client.createTopic('metrics');
      await client.createTopic('secret');
      // What `echo "metrics cpu=0.5" | nc -u -w0 127.0.0.1 7701` sends, then a forbidden and a malformed one.
      const socket = createSocket('udp4');
      for (const text of ['metrics cpu=0.5\n', 'secret x', 'no-value'])
        await new Promise((resolve) => socket.send(Buffer.from(text), served.udpPort, '127.0.0.1', resolve));
      socket.close();
      const subscription = await client.subscribe('metrics', { from: 'earliest' });
      const seen: string[] = [];
      void (async () => {
        for await (const message of subscription) seen.push(message.value.toString());
      })();
      await eventually(() => assert.deepEqual(seen, ['cpu=0.5']));
      const counted = async (): Promise<Record<string, number>> => {
        const text = await (await fetch(`${served.http}/metrics`)).text();
        return Object.fromEntries([...text.matchAll(/^ferry_udp_datagrams_total\{outcome="(\w+)"\} (\d+)$/gm)].map((match) => [match[1]!, Number(match[2])]));
      };
      await eventually(async () => assert.deepEqual(await counted(), { stored: 1, malformed: 1, oversized: 0, forbidden: 1, rate_limited: 0, overloaded: 0, unknown_topic: 0, failed: 0 }));
      assert.equal((await client.describeTopic('secret')).partitions[0]!.nextOffset, 0);
      // What the kernel granted the socket, as logged at start and as the gauge shows it.
      const metrics = await (await fetch(`${served.http}/metrics`)).text();
      const granted = served.events().find((line) => line['event'] === 'udp.listening')?.['receiveBufferBytes'];
      assert.ok(granted > 0);
      assert.match(metrics, new RegExp(`^ferry_udp_receive_buffer_bytes ${granted}$`, 'm'));
      assert.match(metrics, /^ferry_udp_in_flight_bytes \d+$/m);
      assert.match(metrics, /^ferry_udp_receiver_restarts_total 0$/m);
    } finally {
      await client.close();
    }
  } finally {
    await stop(served);
  }
});

test('serve udp - the port comes from --udp-port or FERRY_UDP_PORT and is off by default', async () => {
  const printed = async (args: string[], env: Record<string, string> = {}): Promise<any> => {
    const run = await ferry(['serve', '--print-config', ...args], { env });
    assert.equal(run.code, 0, run.stderr);
    return JSON.parse(run.stdout).udp;
  };
  assert.equal((await printed([])).port, undefined);
  assert.deepEqual(await printed(['--udp-port', '7701', '--set', 'udp.topics=metrics, logs.*']), {
    port: 7701,
    host: '127.0.0.1',
    topics: ['metrics', 'logs.*'],
    sourceMessagesPerSecond: 100_000,
    sourceBurstMessages: 0,
    datagramBytesMax: 65_507,
    receiveBufferBytes: 8 * 1024 * 1024,
  });
  assert.equal((await printed([], { FERRY_UDP_PORT: '7711' })).port, 7711);
  const bad = await ferry(['serve', '--print-config', '--set', 'udp.topics=metrics,a/b']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /udp\.topics .*topic patterns/);
});

