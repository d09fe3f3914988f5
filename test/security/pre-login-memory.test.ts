/**
 * Memory a client can make the broker set aside (issue 22, item 3). Before the login a TCP
 * connection's frames are limited to PRE_LOGIN_FRAME_BYTES_MAX, so a HELLO declaring 16 MiB is
 * refused at its header and nothing of it is kept; after the login a PUBLISH over the user's quota
 * is refused at its header and its payload dropped as it arrives, and a message over the record
 * limit at its length field, the rest of a large frame left unread. On the HTTP port an
 * unauthenticated gRPC/Connect call is refused before its body is read, and a declared length over
 * the limit is refused before any of the body is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as http2Connect } from 'node:http2';
import { FRAME_TYPES, writeFrameHeader } from '../../src/protocol/frame.js';
import { decodeError, encodeHello } from '../../src/protocol/codec-session.js';
import { encodePublish } from '../../src/protocol/codec-publish.js';
import { FRAME_BYTES_MAX_DEFAULT, FRAME_HEADER_BYTES, PRE_LOGIN_FRAME_BYTES_MAX, PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { KEY_BYTES_MAX, RECORD_BYTES_MAX } from '../../src/storage/limits.js';
import { FrameWriter } from '../../src/protocol/writer.js';
import { REFUSED_REST_READ_BYTES_MAX } from '../../src/transport/tcp/publish.js';
import { eventually } from '../helpers.js';
import { RawPeer } from '../transport/harness.js';
import { basic, startSecure, usersFile, type SecureBroker, type SecureOptions } from './harness.js';

const MiB = 1024 * 1024;
const PASSWORD = 'memory-password';
const USERS = { alice: { password: PASSWORD, allow: ['publish:orders.*', 'consume:orders.*'] } };
/** A HELLO one byte short of the default frame limit (16 MiB): what the attack declared. */
const HELLO_PAYLOAD_BYTES = FRAME_BYTES_MAX_DEFAULT - FRAME_HEADER_BYTES - 1;
/** Long enough that, without the limit, a half-sent frame would still be held when the test looks. */
const AUTH_TIMEOUT_MS = 30_000;

function header(type: number, requestId: number, payloadBytes: number): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_BYTES);
  writeFrameHeader(out, 0, PROTOCOL_VERSION, type, 0, requestId, payloadBytes);
  return out;
}

function errorOf(peer: RawPeer): { code: string; message: string; detail?: Record<string, unknown> } | undefined {
  const frame = peer.frames.find((f) => f.type === FRAME_TYPES.ERROR);
  return frame === undefined ? undefined : decodeError(new PayloadReader().reset(frame.payload));
}

async function withBroker(options: Partial<SecureOptions>, run: (running: SecureBroker) => Promise<void>): Promise<void> {
  const running = await startSecure({ users: await usersFile(USERS), tcp: { authTimeoutMs: AUTH_TIMEOUT_MS }, ...options });
  try {
    await run(running);
  } finally {
    await running.close();
  }
}

test('pre-login memory - a HELLO declaring 16 MiB is refused at its header with FRAME_TOO_LARGE and the socket closed', async () => {
  await withBroker({}, async (running) => {
    const peer = await RawPeer.connect(running.port);
    // The header and one byte short of nothing: the server must not wait for the rest.
    peer.send(Buffer.concat([header(FRAME_TYPES.HELLO, 1, HELLO_PAYLOAD_BYTES), Buffer.alloc(16)]));
    await eventually(() => assert.ok(errorOf(peer) !== undefined, 'an ERROR frame'), { timeoutMs: 5000 });
    const error = errorOf(peer)!;
    assert.equal(error.code, 'FRAME_TOO_LARGE');
    assert.match(error.message, /before login/);
    assert.equal(error.detail?.['frameBytesMax'], PRE_LOGIN_FRAME_BYTES_MAX);
    await peer.waitClosed(5000);
  });
});

test('pre-login memory - sockets declaring 16 MiB HELLOs do not grow the server\'s buffers by the declared size', async () => {
  const SOCKETS = 8;
  await withBroker({}, async (running) => {
    const before = process.memoryUsage().arrayBuffers;
    const peers: RawPeer[] = [];
    for (let i = 0; i < SOCKETS; i++) {
      const peer = await RawPeer.connect(running.port);
      peer.send(Buffer.concat([header(FRAME_TYPES.HELLO, 1, HELLO_PAYLOAD_BYTES), Buffer.alloc(1024)]));
      peers.push(peer);
    }
    // The server has read every socket's bytes (counted before they are decoded), closed or not.
    const sentBytes = SOCKETS * (FRAME_HEADER_BYTES + 1024);
    await eventually(() => assert.ok(running.server.stats().bytesIn >= sentBytes, `server read ${running.server.stats().bytesIn} of ${sentBytes} bytes`), { timeoutMs: 5000 });
    const grownBytes = process.memoryUsage().arrayBuffers - before;
    assert.ok(grownBytes < 16 * MiB, `array buffers grew by ${(grownBytes / MiB).toFixed(1)} MiB for ${SOCKETS} sockets`);
    await eventually(() => assert.deepEqual(peers.map((peer) => errorOf(peer)?.code), Array(SOCKETS).fill('FRAME_TOO_LARGE')), { timeoutMs: 5000 });
    for (const peer of peers) peer.destroy();
  });
});

test('pre-login memory - after the login, a PUBLISH over the quota is refused at its header and its payload dropped as it arrives', async () => {
  await withBroker({ quota: { messagesPerSecond: 1, burstMessages: 1 } }, async (running) => {
    await running.broker.createTopic('orders.eu', { durability: 'never' });
    const peer = await RawPeer.connect(running.port);
    encodeHello(peer.writer, 1, { clientName: 'quota', versions: [PROTOCOL_VERSION], user: 'alice', password: PASSWORD });
    peer.flush();
    await peer.reply(1, FRAME_TYPES.HELLO_OK);
    // Spend the quota and more: ten messages at 1/s leave a debt of about nine seconds.
    encodePublish(peer.writer, 2, { topic: 'orders.eu', messages: Array.from({ length: 10 }, () => ({ value: Buffer.from('x'), key: null, headers: [] })) });
    peer.flush();
    await peer.reply(2, FRAME_TYPES.PUBLISH_OK);
    // A 4 MiB PUBLISH, of which only the header and 64 KiB are sent: refused without waiting for the rest.
    peer.send(Buffer.concat([header(FRAME_TYPES.PUBLISH, 3, 4 * MiB), Buffer.alloc(64 * 1024)]));
    const refused = await peer.reply(3, FRAME_TYPES.ERROR);
    assert.equal(decodeError(new PayloadReader().reset(refused.payload)).code, 'RATE_LIMITED');
    // The rest of the payload is dropped as it arrives, and the connection keeps its framing.
    peer.send(Buffer.alloc(4 * MiB - 64 * 1024));
    peer.writer.emptyFrame(FRAME_TYPES.PING, 4);
    peer.flush();
    await peer.reply(4, FRAME_TYPES.PONG);
    assert.equal(peer.closed, false);
    peer.destroy();
  });
});

/**
 * The first bytes of a PUBLISH frame to `topic` whose one message declares a value of `valueBytes`:
 * the frame header (its length counting the whole value) and the payload up to the value's length field.
 */
function publishPrefix(requestId: number, topic: string, valueBytes: number): { prefix: Buffer; rest: number } {
  const fields = Buffer.alloc(2 + topic.length + 1 + 4 + 1 + 2 + 4);
  let at = fields.writeUInt16BE(topic.length, 0);
  at += fields.write(topic, at, 'latin1');
  at = fields.writeUInt8(0, at); // request tags
  at = fields.writeUInt32BE(1, at); // messages
  at = fields.writeUInt8(0, at); // flags: no partition, no key
  at = fields.writeUInt16BE(0, at); // headers
  fields.writeUInt32BE(valueBytes, at);
  const payloadBytes = fields.length + valueBytes + 1; // the message's tagged section
  return { prefix: Buffer.concat([header(FRAME_TYPES.PUBLISH, requestId, payloadBytes), fields]), rest: valueBytes + 1 };
}

test('pre-login memory - after the login, a message declaring more than the record limit is refused at its length field, and the rest of its frame is not read', async () => {
  await withBroker({}, async (running) => {
    await running.broker.createTopic('orders.eu', { durability: 'never' });
    const peer = await RawPeer.connect(running.port);
    encodeHello(peer.writer, 1, { clientName: 'oversized', versions: [PROTOCOL_VERSION], user: 'alice', password: PASSWORD });
    peer.flush();
    await peer.reply(1, FRAME_TYPES.HELLO_OK);
    // An 8 MiB + 1 value, legal for the frame limit (16 MiB): only the bytes up to its length are sent.
    const { prefix, rest } = publishPrefix(2, 'orders.eu', RECORD_BYTES_MAX + 1);
    peer.send(prefix);
    const refused = await peer.reply(2, FRAME_TYPES.ERROR);
    const error = decodeError(new PayloadReader().reset(refused.payload));
    assert.equal(error.code, 'RECORD_TOO_LARGE');
    assert.ok(running.server.stats().bytesIn < 64 * 1024, 'refused before the value was sent');
    // The rest (8 MiB) is more than REFUSED_REST_READ_BYTES_MAX: the server closes instead of reading it to drop it.
    assert.ok(rest > REFUSED_REST_READ_BYTES_MAX);
    for (let sent = 0; sent < rest; sent += MiB) peer.send(Buffer.alloc(Math.min(MiB, rest - sent)));
    await peer.waitClosed(5000);
    assert.deepEqual(peer.errorCodes(), ['RECORD_TOO_LARGE'], 'the refusal, then the close: no error of its own');
    assert.ok(running.server.stats().bytesIn < REFUSED_REST_READ_BYTES_MAX, `the server read ${running.server.stats().bytesIn} bytes of the ${rest} sent after the refusal`);
    // The user is not shut out: a new connection publishes.
    const again = await RawPeer.connect(running.port);
    encodeHello(again.writer, 1, { clientName: 'again', versions: [PROTOCOL_VERSION], user: 'alice', password: PASSWORD });
    encodePublish(again.writer, 2, { topic: 'orders.eu', messages: [{ value: Buffer.from('after'), key: null, headers: [] }] });
    again.flush();
    await again.reply(2, FRAME_TYPES.PUBLISH_OK);
    again.destroy();
  });
});

test('pre-login memory - a message refused with at most REFUSED_REST_READ_BYTES_MAX of its frame to come is skipped as it arrives, and the connection kept', async () => {
  await withBroker({}, async (running) => {
    await running.broker.createTopic('orders.eu', { durability: 'never' });
    const peer = await RawPeer.connect(running.port);
    encodeHello(peer.writer, 1, { clientName: 'oversized-key', versions: [PROTOCOL_VERSION], user: 'alice', password: PASSWORD });
    peer.flush();
    await peer.reply(1, FRAME_TYPES.HELLO_OK);
    // A frame over the record limit (so it is scanned): a legal message, then one whose key is over
    // its limit, refused at the key's length with the key and a 512 KiB value still to come.
    const frame = new FrameWriter(RECORD_BYTES_MAX + 2 * MiB);
    encodePublish(frame, 2, {
      topic: 'orders.eu',
      messages: [
        { value: Buffer.alloc(RECORD_BYTES_MAX - 64 * 1024), key: null, headers: [] },
        { value: Buffer.alloc(512 * 1024), key: Buffer.alloc(KEY_BYTES_MAX + 1), headers: [] },
      ],
    });
    const bytes = frame.take()!;
    assert.ok(bytes.length > RECORD_BYTES_MAX + FRAME_HEADER_BYTES, 'a scanned frame');
    peer.send(bytes);
    encodePublish(peer.writer, 3, { topic: 'orders.eu', messages: [{ value: Buffer.from('after'), key: null, headers: [] }] });
    peer.flush();
    await peer.reply(3, FRAME_TYPES.PUBLISH_OK);
    assert.deepEqual(peer.errorCodes(), ['KEY_TOO_LARGE']);
    assert.equal(peer.closed, false);
    peer.destroy();
  });
});

/** Sends an HTTP/1.1 request's head and `bodyBytes` of its body, and waits for the status line (the body is never finished). */
async function statusBeforeBody(port: number, head: string, bodyBytes: number): Promise<{ status: number; text: string; socket: Socket }> {
  const socket = netConnect({ port, host: '127.0.0.1' });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.write(head);
  socket.write(Buffer.alloc(bodyBytes, 0x20));
  await eventually(() => assert.match(received, /\r\n\r\n/), { timeoutMs: 5000 });
  return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(received)?.[1]), text: received, socket };
}

test('pre-login memory - an unauthenticated 15 MiB Connect Publish is refused before its body is read (HTTP/1.1 and HTTP/2)', async () => {
  await withBroker({ http: true }, async (running) => {
    const length = 15 * MiB;
    const head = `POST /ferry.v1.MessageService/Publish HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${length}\r\n\r\n`;
    const answer = await statusBeforeBody(running.httpPort, head, 64 * 1024);
    assert.equal(answer.status, 401, answer.text.slice(0, 300));
    assert.match(answer.text, /"code":"unauthenticated"/);
    answer.socket.destroy();

    // HTTP/2 (h2c): the stream is answered while the client still holds most of its body.
    const session = http2Connect(`http://127.0.0.1:${running.httpPort}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/ferry.v1.MessageService/Publish', 'content-type': 'application/json', 'content-length': String(length) });
      stream.write(Buffer.alloc(64 * 1024, 0x20));
      const status = await new Promise<number>((resolve, reject) => {
        stream.once('response', (headers) => resolve(Number(headers[':status'])));
        stream.once('error', reject);
      });
      assert.equal(status, 401);
      stream.destroy();
    } finally {
      session.destroy();
    }
  });
});

test('pre-login memory - a declared length over the body limit is refused before the body is sent: 413 on the admin API, resource_exhausted on Connect', async () => {
  await withBroker({ http: true }, async (running) => {
    await running.broker.createTopic('orders.eu');
    const auth = basic('alice', PASSWORD);
    const api = await statusBeforeBody(
      running.httpPort,
      `POST /api/topics/orders.eu/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${auth}\r\ncontent-type: application/json\r\ncontent-length: ${13 * MiB}\r\n\r\n`,
      1024,
    );
    assert.equal(api.status, 413, api.text.slice(0, 300));
    api.socket.destroy();
    const connect = await statusBeforeBody(
      running.httpPort,
      `POST /ferry.v1.MessageService/Publish HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${auth}\r\ncontent-type: application/json\r\ncontent-length: ${17 * MiB}\r\n\r\n`,
      1024,
    );
    assert.equal(connect.status, 429, connect.text.slice(0, 300));
    assert.match(connect.text, /"code":"resource_exhausted"/);
    connect.socket.destroy();
  });
});
