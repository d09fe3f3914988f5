/**
 * TLS on the TCP port: a TLS-only listener refuses plaintext, TLS and plaintext share a port when
 * TLS is optional (told apart by the first byte), a client that does not trust the server's CA
 * refuses it, the server refuses a client certificate from an unknown CA, mutual TLS maps the
 * certificate's CN to the user, and a stalled handshake is dropped.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { connect, isFerryError } from '../../src/client/index.js';
import { tempDir, type TempDir } from '../helpers.js';
import { RawPeer } from '../transport/harness.js';
import { makeCertificates, type TestCertificates } from './certs.js';
import { startSecure, usersFile } from './harness.js';

let dir: TempDir;
let certs: TestCertificates;

before(async () => {
  dir = await tempDir('ferry-certs-');
  certs = makeCertificates(dir.path);
});

after(async () => {
  await dir.remove();
});

function material(withCa = true) {
  return { cert: certs.server.cert, key: certs.server.key, ...(withCa ? { ca: certs.ca } : {}) };
}

const users = () =>
  usersFile({
    alice: { password: 'alice-password', allow: ['publish:orders', 'admin:*'] },
    bob: { password: 'bob-password', allow: ['publish:audit'] },
  });

async function failsWith(promise: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isFerryError(error) && error.code === code && (message === undefined || message.test(error.message)));
}

test('tls - a TLS-only listener refuses plaintext with AUTH_REQUIRED and serves TLS clients', async () => {
  const running = await startSecure({ users: await users(), tls: { material: material(false), required: true } });
  try {
    await failsWith(connect({ port: running.port, user: 'alice', password: 'alice-password', reconnect: false }), 'AUTH_REQUIRED', /TLS/);
    const client = await connect({ port: running.port, user: 'alice', password: 'alice-password', tls: { ca: certs.ca }, reconnect: false });
    await client.createTopic('orders');
    assert.equal((await client.publish('orders', 'over tls')).offset, 0);
    assert.deepEqual(running.server.connectionStats().map((c) => [c.user, c.tls]), [['alice', true]]);
    await client.close();
  } finally {
    await running.close();
  }
});

test('tls - with TLS optional, TLS and plaintext clients share the port', async () => {
  const running = await startSecure({ users: await users(), tls: { material: material(false) } });
  try {
    const secure = await connect({ port: running.port, user: 'alice', password: 'alice-password', tls: { ca: certs.ca }, reconnect: false });
    const plain = await connect({ port: running.port, user: 'bob', password: 'bob-password', reconnect: false });
    assert.deepEqual(
      running.server.connectionStats().map((c) => `${c.user}:${c.tls}`).sort(),
      ['alice:true', 'bob:false'],
    );
    await secure.close();
    await plain.close();
  } finally {
    await running.close();
  }
});

test('tls - a client that does not trust the server certificate refuses the connection', async () => {
  const running = await startSecure({ users: await users(), tls: { material: material(false), required: true } });
  try {
    await failsWith(connect({ port: running.port, user: 'alice', password: 'alice-password', tls: { ca: certs.rogueCa }, reconnect: false }), 'CONNECTION_REFUSED', /certificate/);
    await failsWith(connect({ port: running.port, user: 'alice', password: 'alice-password', tls: true, reconnect: false }), 'CONNECTION_REFUSED', /certificate/);
  } finally {
    await running.close();
  }
});

test('tls - mutual TLS maps the certificate CN to its user; unknown CAs and unknown users are refused', async () => {
  const running = await startSecure({ users: await users(), tls: { material: material(true), required: true } });
  try {
    await running.broker.createTopic('orders');
    await running.broker.createTopic('audit');
    const alice = certs.client('alice');
    const asAlice = await connect({ port: running.port, tls: { ca: certs.ca, cert: alice.cert, key: alice.key }, reconnect: false });
    assert.equal((await asAlice.publish('orders', 'by certificate')).offset, 0);
    await failsWith(asAlice.publish('audit', 'not alice'), 'FORBIDDEN');
    const bob = certs.client('bob');
    const asBob = await connect({ port: running.port, tls: { ca: certs.ca, cert: bob.cert, key: bob.key }, reconnect: false });
    await failsWith(asBob.publish('orders', 'not bob'), 'FORBIDDEN');
    assert.equal((await asBob.publish('audit', 'bob')).offset, 0);
    assert.deepEqual(running.server.connectionStats().map((c) => c.user).sort(), ['alice', 'bob']);

    const rogue = certs.rogueClient('alice');
    await failsWith(connect({ port: running.port, tls: { ca: certs.ca, cert: rogue.cert, key: rogue.key }, reconnect: false }), 'AUTH_FAILED', /not trusted/);
    const stranger = certs.client('mallory');
    await failsWith(connect({ port: running.port, tls: { ca: certs.ca, cert: stranger.cert, key: stranger.key }, reconnect: false }), 'AUTH_FAILED', /mallory/);
    // Without a certificate, a password still works on a mutual-TLS port.
    const byPassword = await connect({ port: running.port, user: 'bob', password: 'bob-password', tls: { ca: certs.ca }, reconnect: false });
    await byPassword.close();
    await asAlice.close();
    await asBob.close();
  } finally {
    await running.close();
  }
});

test('tls - a handshake that stalls is dropped after handshakeTimeoutMs', async () => {
  const running = await startSecure({ users: await users(), tls: { material: material(false), handshakeTimeoutMs: 200 } });
  try {
    const started = performance.now();
    // A TLS record header, then nothing: the server waits for the rest of the ClientHello.
    const stalled = await RawPeer.connect(running.port);
    stalled.send(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40]));
    await stalled.waitClosed(3000);
    const stalledMs = performance.now() - started;
    assert.ok(stalledMs >= 190 && stalledMs < 2000, `dropped after ${Math.round(stalledMs)} ms`);
    // A socket that sends nothing at all is dropped the same way.
    const silentClosed = new Promise<number>((resolve) => {
      const at = performance.now();
      const socket = netConnect({ port: running.port, host: '127.0.0.1' });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(performance.now() - at));
    });
    const silentMs = await silentClosed;
    assert.ok(silentMs < 2000, `silent socket dropped after ${Math.round(silentMs)} ms`);
    assert.ok(running.server.stats().handshakesFailed >= 2, 'both counted as failed handshakes');
  } finally {
    await running.close();
  }
});

test('tls - a TLS client past the connection limit is closed at accept, before any handshake work (issue 22, item 12)', async () => {
  const running = await startSecure({ users: await users(), tls: { material: material(false), required: true }, tcp: { maxConnectionsPerIp: 1 } });
  try {
    const first = await connect({ port: running.port, user: 'alice', password: 'alice-password', tls: { ca: certs.ca }, reconnect: false });
    const refused = await connect({ port: running.port, user: 'alice', password: 'alice-password', tls: { ca: certs.ca }, reconnect: false }).then(
      (client) => client.close().then(() => null),
      (error: unknown) => error,
    );
    assert.ok(isFerryError(refused) && refused.retryable, `refused (retryable), got ${String(refused)}`);
    assert.equal(running.rejections.of('TOO_MANY_CONNECTIONS', 'tcp'), 1);
    const stats = running.server.stats();
    assert.equal(stats.refusedByReason.per_ip, 1);
    assert.equal(stats.handshakesFailed, 0, 'no handshake was started for it');
    await first.close();
  } finally {
    await running.close();
  }
});
