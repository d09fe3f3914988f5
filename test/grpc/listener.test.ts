/**
 * The multiplexed HTTP listener (src/transport/http/listener.ts): plaintext connections are routed
 * by HTTP/2's preface even when it arrives in pieces, HTTP/1.1 by its first bytes, and with TLS
 * ALPN picks h2 or http/1.1 (gRPC included) on the same port.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as http2Connect, constants as http2Constants } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { tempDir } from '../helpers.js';
import { HTTP2_PREFACE } from '../../src/transport/http/listener.js';
import { CreateTopicRequest, TopicServiceClient } from './generated/ferry/v1/topics.js';
import { FALLBACK_BODY, startGrpc } from './harness.js';

const OPENSSL = spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).status === 0;
const SKIP_TLS = OPENSSL ? false : 'openssl is not installed: no certificate for the TLS test';
if (SKIP_TLS !== false) console.log(`# skipping the TLS listener test: ${SKIP_TLS}`);

/** An empty SETTINGS frame: length 0, type 4, flags 0, stream 0. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
const FRAME_TYPE_SETTINGS = 4;

/** Connects, writes `pieces` one event-loop turn apart, and resolves with the first `bytes` bytes answered. */
function exchange(port: number, pieces: Buffer[], bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= bytes) {
        socket.destroy();
        resolve(received);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`closed after ${received.length} bytes: ${received.toString('latin1')}`)));
    socket.on('connect', async () => {
      for (const piece of pieces) {
        socket.write(piece);
        await new Promise((done) => setTimeout(done, 5));
      }
    });
  });
}

test('http listener - an HTTP/2 preface split over several packets still reaches the HTTP/2 server', async () => {
  const fixture = await startGrpc();
  try {
    const pieces = [HTTP2_PREFACE.subarray(0, 3), HTTP2_PREFACE.subarray(3, 10), HTTP2_PREFACE.subarray(10), EMPTY_SETTINGS];
    const answer = await exchange(fixture.port, pieces, 9);
    assert.equal(answer[3], FRAME_TYPE_SETTINGS, 'the server answers with its SETTINGS frame');
  } finally {
    await fixture.close();
  }
});

test('http listener - HTTP/1.1 sent a byte at a time, and one that starts like the preface, go to the HTTP/1.1 server', async () => {
  const fixture = await startGrpc();
  try {
    const get = Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    const answer = await exchange(fixture.port, [...get].map((byte) => Buffer.from([byte])).slice(0, 5).concat(get.subarray(5)), 12);
    assert.equal(answer.subarray(0, 12).toString('latin1'), 'HTTP/1.1 200');
    // "P" matches the preface's first byte; "O" does not.
    const post = Buffer.from('POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    const posted = await exchange(fixture.port, [post.subarray(0, 1), post.subarray(1)], 12);
    assert.equal(posted.subarray(0, 12).toString('latin1'), 'HTTP/1.1 200');
  } finally {
    await fixture.close();
  }
});

test('http listener - with TLS, ALPN serves HTTP/1.1, HTTP/2 and gRPC on one port', { skip: SKIP_TLS }, async () => {
  const dir = await tempDir('ferry-tls-');
  try {
    const keyPath = join(dir.path, 'key.pem');
    const certPath = join(dir.path, 'cert.pem');
    const made = spawnSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
      { encoding: 'utf8' },
    );
    assert.equal(made.status, 0, made.stderr);
    const key = readFileSync(keyPath);
    const cert = readFileSync(certPath);
    const fixture = await startGrpc({ tls: { key, cert } });
    try {
      const http1 = await new Promise<{ status: number; version: string; body: string }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port: fixture.port, path: '/healthz', ca: cert, servername: 'localhost' }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, version: res.httpVersion, body }));
        });
        req.on('error', reject);
        req.end();
      });
      assert.deepEqual(http1, { status: 200, version: '1.1', body: FALLBACK_BODY });

      const session = http2Connect(`https://127.0.0.1:${fixture.port}`, { ca: cert, servername: 'localhost' });
      const h2 = await new Promise<{ version: string | undefined; alpn: string | undefined }>((resolve, reject) => {
        const stream = session.request({ [http2Constants.HTTP2_HEADER_PATH]: '/healthz' });
        stream.on('response', (headers) => {
          resolve({ version: headers['x-http-version'] as string | undefined, alpn: session.alpnProtocol });
          stream.resume();
        });
        stream.on('error', reject);
        stream.end();
      });
      session.close();
      assert.deepEqual(h2, { version: '2.0', alpn: 'h2' });

      const client = new TopicServiceClient(`127.0.0.1:${fixture.port}`, credentials.createSsl(cert), { 'grpc.ssl_target_name_override': 'localhost' });
      try {
        const created = await new Promise<string | undefined>((resolve, reject) =>
          client.createTopic(CreateTopicRequest.fromPartial({ name: 'secure' }), (error, response) => (error === null ? resolve(response.topic?.name) : reject(error))),
        );
        assert.equal(created, 'secure');
      } finally {
        client.close();
      }
    } finally {
      await fixture.close();
    }
  } finally {
    await dir.remove();
  }
});
