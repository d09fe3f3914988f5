/**
 * Publishing over UDP: `ferry pub --udp` and the client's publishUdp reach a `ferry serve
 * --udp-port` process (over dist/, built by `npm test`) with key and headers; `ferry pub --udp`
 * refuses what UDP cannot carry and says when nothing listens; publishUdp refuses bad input at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { connect, isFerryError } from '../../src/client/index.js';
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

test('pub udp - ferry pub --udp and publishUdp store key, headers and value', { timeout: TEST_TIMEOUT_MS }, async () => {
  await using dir = await tempDir();
  const served = await serveWithUdp(dir.path, ['--set', 'udp.topics=metrics,logs.*']);
  try {
    const client = await connect({ host: '127.0.0.1', port: served.tcpPort, reconnect: false, udpPort: served.udpPort });
    try {
      await client.createTopic('metrics');
      await client.createTopic('logs.app');
      const pub = await ferry(['pub', 'logs.app', 'started', '--udp', '--udp-port', String(served.udpPort), '--key', 'web-1', '--header', 'level=info']);
      assert.equal(pub.code, 0, pub.stderr);
      assert.match(pub.stdout, /sent 1 datagram .*not confirmed/);
      assert.equal(client.publishUdp('metrics', 'mem=0.7', { headers: { host: 'a' } }), true);
      const code = (fn: () => unknown, expected: string): void => assert.throws(fn, (error: unknown) => isFerryError(error, expected as never));
      code(() => client.publishUdp('metrics', 'v', { headers: { 'ferry-id': 'x' } }), 'INVALID_ARGUMENT');
      code(() => client.publishUdp('metrics', Buffer.alloc(70_000)), 'RECORD_TOO_LARGE');

      const seen: Array<{ topic: string; value: string; key: string | undefined; headers: Record<string, string> }> = [];
      for (const topic of ['metrics', 'logs.app']) {
        const subscription = await client.subscribe(topic, { from: 'earliest' });
        void (async () => {
          for await (const message of subscription) seen.push({ topic, value: message.value.toString(), key: message.key?.toString(), headers: { ...message.headers } });
        })();
      }
      await eventually(() => assert.equal(seen.length, 2));
      assert.deepEqual(
        seen.sort((a, b) => a.value.localeCompare(b.value)),
        [
          { topic: 'metrics', value: 'mem=0.7', key: undefined, headers: { host: 'a' } },
          { topic: 'logs.app', value: 'started', key: 'web-1', headers: { level: 'info' } },
        ],
      );
    } finally {
      await client.close();
    }
  } finally {
    await stop(served);
  }
});

test('pub udp - ferry pub --udp refuses what UDP cannot carry, and says when nothing listens', async () => {
  const refused = await ferry(['pub', 't', 'v', '--udp', '--id', 'x']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /--udp carries no --id/);
  // A port nothing listens on: the kernel answers "port unreachable" and the command says so.
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const port = socket.address().port;
  socket.close();
  const lost = await ferry(['pub', 't', '--udp', '--udp-port', String(port), '--count', '3']);
  assert.equal(lost.code, 1, lost.stdout + lost.stderr);
  assert.match(lost.stderr, /refused or dropped/);
});
