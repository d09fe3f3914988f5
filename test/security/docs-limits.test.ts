/**
 * Docs and limits that disagreed with behaviour (issue 22, item 11): SECURITY.md's example gave
 * alice admin on every topic; 65 headers closed the connection with MALFORMED_FRAME where the docs
 * say HEADERS_TOO_LARGE; a 64 KiB client name was kept and logged whole; `broker.listening` named
 * `http://` when the admin port spoke HTTPS. (The silent plaintext socket on a TLS port is now
 * documented as it behaves: test/security/tls.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { connect, isFerryError, type FerryClient } from '../../src/client/index.js';
import { CLIENT_NAME_CHARS_MAX } from '../../src/protocol/codec-session.js';
import { HEADERS_COUNT_MAX } from '../../src/protocol/limits.js';
import { makeCertificates } from './certs.js';
import { startSecure, usersFile } from './harness.js';
import { tempDir } from '../helpers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PASSWORD = 'limits-password';
const USERS = { alice: { password: PASSWORD, allow: ['publish:orders.*', 'consume:orders.*'] } };

test('docs limits - SECURITY.md\'s example user alice holds no admin grant', () => {
  const doc = readFileSync(join(ROOT, 'docs/SECURITY.md'), 'utf8');
  const alice = doc.split('\n').filter((line) => line.startsWith('ferry users add alice'));
  assert.ok(alice.length > 0);
  for (const line of alice) assert.doesNotMatch(line, /--admin/);
});

test('docs limits - 65 headers are refused HEADERS_TOO_LARGE and the connection stays usable', async () => {
  const running = await startSecure({ users: await usersFile(USERS) });
  let alice: FerryClient | null = null;
  try {
    await running.broker.createTopic('orders.eu');
    alice = await connect({ port: running.port, user: 'alice', password: PASSWORD, reconnect: false });
    const headers = Object.fromEntries(Array.from({ length: HEADERS_COUNT_MAX + 1 }, (_, i) => [`h${i}`, 'v']));
    const error = await alice.publish('orders.eu', 'many', { headers }).then(
      () => null,
      (thrown: unknown) => thrown,
    );
    assert.ok(isFerryError(error, 'HEADERS_TOO_LARGE'), `got ${String(error)}`);
    const ok = await alice.publish('orders.eu', 'after', { headers: { h: 'v' } });
    assert.equal(ok.offset, 0, 'the same connection publishes on');
  } finally {
    await alice?.close();
    await running.close();
  }
});

test('docs limits - a 64 KiB client name is cut to CLIENT_NAME_CHARS_MAX characters', async () => {
  const running = await startSecure({ users: await usersFile(USERS) });
  let alice: FerryClient | null = null;
  try {
    alice = await connect({ port: running.port, user: 'alice', password: PASSWORD, reconnect: false, name: 'n'.repeat(60_000) });
    const [stats] = running.server.connectionStats();
    assert.equal(stats!.clientName.length, CLIENT_NAME_CHARS_MAX);
  } finally {
    await alice?.close();
    await running.close();
  }
});

test('docs limits - the admin port says https:// when it speaks TLS', async () => {
  await using dir = await tempDir('ferry-url-');
  const certs = makeCertificates(dir.path);
  const running = await startSecure({ users: await usersFile(USERS), http: true, tls: { material: { cert: certs.server.cert, key: certs.server.key } } });
  try {
    assert.match(running.admin!.url, /^https:\/\/127\.0\.0\.1:\d+\/$/);
  } finally {
    await running.close();
  }
});
