/**
 * The HTTP port's per-IP connection limit (src/transport/http/listener.ts), plaintext and TLS: past
 * it a connection from that address is closed at accept, others are served, and a slot freed is
 * taken again. Clients come from other loopback addresses (127.0.0.2 ...).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { silentLogger, type Logger } from '../../src/platform/logger.js';
import { listenMultiplexed, type HttpListener } from '../../src/transport/http/listener.js';
import { makeCertificates } from '../security/certs.js';
import { eventually, tempDir } from '../helpers.js';

const PER_IP_MAX = 2;

interface Logged {
  event: string;
  fields: Record<string, unknown> | undefined;
}

function recordingLogger(): { logger: Logger; warnings: Logged[] } {
  const warnings: Logged[] = [];
  return { logger: { ...silentLogger, warn: (event, fields) => warnings.push({ event, fields: fields as Record<string, unknown> | undefined }) }, warnings };
}

async function listen(logger: Logger, tls?: { cert: Buffer; key: Buffer }, onRefused?: () => void): Promise<HttpListener> {
  return listenMultiplexed(
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    },
    { port: 0, host: '127.0.0.1', logger, connectionsPerIpMax: PER_IP_MAX, ...(tls === undefined ? {} : { tls }), ...(onRefused === undefined ? {} : { onRefused }) },
  );
}

/** A GET from `localAddress`: the body, or the error's code when the connection was closed. */
function get(port: number, localAddress: string, ca?: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const options = { host: '127.0.0.1', port, path: '/', localAddress, agent: false as const, ...(ca === undefined ? {} : { ca }) };
    const req = (ca === undefined ? httpRequest : httpsRequest)(options, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
}

async function openSocket(port: number, localAddress: string): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port, localAddress });
  await once(socket, 'connect');
  return socket;
}

test('http limits - connections past the per-IP maximum are closed at accept; other addresses are served; a freed slot is taken again', async () => {
  const { logger, warnings } = recordingLogger();
  let refused = 0;
  const listener = await listen(logger, undefined, () => refused++);
  const held: Socket[] = [];
  try {
    for (let i = 0; i < PER_IP_MAX; i++) held.push(await openSocket(listener.port, '127.0.0.2'));
    assert.notEqual(await get(listener.port, '127.0.0.2'), 'ok', 'one past the maximum is refused');
    assert.equal(refused, 1, 'each refusal is reported (ferry_rejections_total)');
    assert.equal(await get(listener.port, '127.0.0.3'), 'ok', 'another address is served');
    assert.ok(warnings.some((w) => w.event === 'http.connection.rejected' && w.fields?.['address'] === '127.0.0.2'), JSON.stringify(warnings));

    held.shift()!.destroy();
    await eventually(async () => assert.equal(await get(listener.port, '127.0.0.2'), 'ok', 'the freed slot is taken'));
  } finally {
    for (const socket of held) socket.destroy();
    await listener.close();
  }
});

test('http limits - over TLS the refused connection gets no handshake; the limit counts until the socket closes', async () => {
  await using dir = await tempDir();
  const certs = makeCertificates(dir.path);
  const listener = await listen(silentLogger, { cert: certs.server.cert, key: certs.server.key });
  const held: Socket[] = [];
  try {
    for (let i = 0; i < PER_IP_MAX; i++) {
      const socket = tlsConnect({ socket: await openSocket(listener.port, '127.0.0.4'), host: '127.0.0.1', ca: certs.ca, ALPNProtocols: ['http/1.1'] });
      await once(socket, 'secureConnect');
      held.push(socket);
    }
    assert.notEqual(await get(listener.port, '127.0.0.4', certs.ca), 'ok');
    assert.equal(await get(listener.port, '127.0.0.5', certs.ca), 'ok');
    held.shift()!.destroy();
    await eventually(async () => assert.equal(await get(listener.port, '127.0.0.4', certs.ca), 'ok', 'the freed slot is taken'));
  } finally {
    for (const socket of held) socket.destroy();
    await listener.close();
  }
});
