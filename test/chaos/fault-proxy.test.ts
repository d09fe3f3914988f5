/**
 * The cluster chaos suite's fault proxy, against real sockets on 127.0.0.1: it tells a broker's
 * connection from a client's by the HELLO, passes bytes intact, and does what each link fault says
 * (a blackhole holds the bytes and lets them through, intact, once healed; a drop resets; one-way
 * passes one direction; slow delays), and a destination that is down refuses connections.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { FrameWriter } from '../../src/protocol/writer.js';
import { encodeHello } from '../../src/protocol/codec-session.js';
import { CLIENT_SOURCE, FaultNetwork, sourceOf } from './fault-proxy.js';
import { eventually } from '../helpers.js';

/** An echo server: what the proxy is in front of. */
let echo: Server;
let echoPort: number;
let network: FaultNetwork;
let proxyPort: number;

before(async () => {
  echo = createServer((socket) => {
    socket.on('error', () => undefined); // reset by the proxy on a drop
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  echoPort = (echo.address() as { port: number }).port;
  network = new FaultNetwork();
  proxyPort = await network.brokerProxy('n1', echoPort);
});

after(async () => {
  await network.close();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
});

function hello(name: string): Buffer {
  const writer = new FrameWriter();
  encodeHello(writer, 1, { clientName: name, versions: [1] });
  return writer.take()!;
}

/** A connection through the proxy that says it is `name`, collecting what comes back. */
async function dial(name: string): Promise<{ socket: Socket; received: () => Buffer; closed: () => boolean; sent: Buffer }> {
  const socket = connect({ host: '127.0.0.1', port: proxyPort });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  const chunks: Buffer[] = [];
  let closed = false;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('close', () => (closed = true));
  const sent = hello(name);
  socket.write(sent);
  return { socket, received: () => Buffer.concat(chunks), closed: () => closed, sent };
}

test('fault proxy - a broker is told by the client name in its HELLO; anything else is a client', () => {
  assert.equal(sourceOf(hello('ferry-broker n2')), 'n2');
  assert.equal(sourceOf(hello('p0')), CLIENT_SOURCE);
  assert.equal(sourceOf(Buffer.from('GET / HTTP/1.1\r\n')), CLIENT_SOURCE);
  assert.equal(sourceOf(hello('ferry-broker n2').subarray(0, 15)), null, 'more bytes needed');
});

test('fault proxy - bytes pass intact; a blackhole holds them and lets them through once healed', async () => {
  const peer = await dial('ferry-broker n2');
  await eventually(() => peer.received().equals(peer.sent), { timeoutMs: 5_000 });
  network.set('n2', 'n1', { kind: 'blackhole' });
  const more = Buffer.from('held back, not lost');
  peer.socket.write(more);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(peer.received().length, peer.sent.length, 'nothing passes a blackhole');
  assert.equal(peer.closed(), false, 'and nothing is closed');
  // A client's connection to the same broker is never faulted.
  const client = await dial('p0');
  await eventually(() => client.received().equals(client.sent), { timeoutMs: 5_000 });
  network.set('n2', 'n1', { kind: 'ok' });
  await eventually(() => peer.received().equals(Buffer.concat([peer.sent, more])), { timeoutMs: 5_000 });
  peer.socket.destroy();
  client.socket.destroy();
});

test('fault proxy - a drop resets the link\'s connections and new ones; other sources pass', async () => {
  const peer = await dial('ferry-broker n3');
  await eventually(() => peer.received().length > 0, { timeoutMs: 5_000 });
  network.set('n3', 'n1', { kind: 'drop' });
  await eventually(() => peer.closed(), { timeoutMs: 5_000 });
  const again = await dial('ferry-broker n3');
  await eventually(() => again.closed(), { timeoutMs: 5_000 });
  assert.equal(again.received().length, 0);
  const other = await dial('ferry-broker n2');
  await eventually(() => other.received().equals(other.sent), { timeoutMs: 5_000 });
  network.healAll();
  other.socket.destroy();
});

test('fault proxy - one-way passes requests only; slow delays every chunk', async () => {
  network.set('n2', 'n1', { kind: 'one-way', passes: 'request' });
  const peer = await dial('ferry-broker n2');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(peer.received().length, 0, 'the echo never comes back');
  network.set('n2', 'n1', { kind: 'slow', delayMs: 400 });
  await eventually(() => peer.received().equals(peer.sent), { timeoutMs: 5_000 });
  const startedMs = performance.now();
  peer.socket.write(Buffer.from('x'));
  await eventually(() => peer.received().length === peer.sent.length + 1, { timeoutMs: 5_000 });
  // Both directions are slowed: the echo takes two delays.
  assert.ok(performance.now() - startedMs >= 700, `came back after ${performance.now() - startedMs} ms`);
  network.healAll();
  peer.socket.destroy();
});

test('fault proxy - a destination that is down refuses connections, and accepts again when it is up', async () => {
  await network.destinationDown('n1', true);
  const refused = await new Promise<string>((resolve) => {
    const socket = connect({ host: '127.0.0.1', port: proxyPort });
    socket.once('connect', () => resolve('connected'));
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
  assert.equal(refused, 'ECONNREFUSED');
  await network.destinationDown('n1', false);
  const peer = await dial('ferry-broker n2');
  await eventually(() => peer.received().equals(peer.sent), { timeoutMs: 5_000 });
  peer.socket.destroy();
});
