/**
 * The audit log (issue 22, item 14): logins failed and succeeded, refusals, user changes and admin
 * actions (topic creation and deletion, group reset, redrive), each with who and from where, on a
 * logger of its own (`name: "ferry.audit"`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { connect, isFerryError, type FerryClient } from '../../src/client/index.js';
import { createLogger } from '../../src/platform/logger.js';
import { SystemClock } from '../../src/platform/clock.js';
import { AUDIT_LOGGER_NAME, AuditLog } from '../../src/security/audit.js';
import { RecordingLogger } from '../storage/log-kit.js';
import { RecordingSink } from '../broker/sim-broker.js';
import { tempDir } from '../helpers.js';
import { makeCertificates, type KeyPair } from './certs.js';
import { basic, startSecure, usersFile } from './harness.js';

const PASSWORD = 'audit-password';
const USERS = {
  alice: { password: PASSWORD, allow: ['publish:orders.*', 'consume:orders.*'] },
  ops: { password: PASSWORD, allow: ['admin:*', 'publish:*', 'consume:*'] },
};

test('audit - logins, refusals, admin actions and user changes are recorded with user and address', async () => {
  const lines = new RecordingLogger();
  const running = await startSecure({ users: await usersFile(USERS), http: true, audit: new AuditLog(lines, new SystemClock()) });
  const clients: FerryClient[] = [];
  try {
    await running.broker.createTopic('orders.eu');
    await assert.rejects(connect({ port: running.port, user: 'alice', password: 'wrong', reconnect: false }), (error: unknown) => isFerryError(error, 'AUTH_FAILED'));
    const alice = await connect({ port: running.port, user: 'alice', password: PASSWORD, reconnect: false });
    const ops = await connect({ port: running.port, user: 'ops', password: PASSWORD, reconnect: false });
    clients.push(alice, ops);
    await assert.rejects(alice.deleteTopic('orders.eu'), (error: unknown) => isFerryError(error, 'FORBIDDEN'));
    await assert.rejects(alice.deleteTopic('orders.eu'), (error: unknown) => isFerryError(error, 'FORBIDDEN'));
    await ops.createTopic('orders.us');
    await (await running.broker.subscribe('orders.us', { group: 'g' }, new RecordingSink())).close();
    await ops.resetGroup('orders.us', 'g', 'earliest');
    await ops.deleteTopic('orders.us');
    const api = await fetch(`http://127.0.0.1:${running.httpPort}/api/connections`, { headers: { authorization: basic('alice', PASSWORD) } });
    assert.equal(api.status, 403);
    running.replaceUsers(await usersFile({ ...USERS, carol: { password: PASSWORD } }));

    const events = (name: string) => lines.events(`audit.${name}`) as Array<Record<string, unknown>>;
    assert.deepEqual(events('login.failed').map((e) => [e['user'], e['address'], e['method']]), [['alice', '127.0.0.1', 'password']]);
    assert.deepEqual(events('login.succeeded').map((e) => e['user']).sort(), ['alice', 'ops']);
    const refused = events('refused');
    assert.equal(refused.filter((e) => e['user'] === 'alice' && e['code'] === 'FORBIDDEN' && /orders\.eu/.test(String(e['reason']))).length, 1, 'a repeated refusal is recorded once');
    assert.ok(refused.some((e) => /\/api\/connections/.test(String(e['reason']))), 'HTTP refusals too');
    assert.deepEqual(events('topic.created').map((e) => [e['user'], e['topic']]), [['ops', 'orders.us']]);
    assert.deepEqual(events('group.reset').map((e) => [e['user'], e['topic'], e['group']]), [['ops', 'orders.us', 'g']]);
    assert.deepEqual(events('topic.deleted').map((e) => [e['user'], e['topic'], e['address']]), [['ops', 'orders.us', '127.0.0.1']]);
    assert.deepEqual(events('users.changed').map((e) => e['added']), [['carol']]);
    assert.ok(lines.lines.filter((line) => line.event === 'audit.refused').every((line) => line.level === 'warn'));
  } finally {
    for (const client of clients) await client.close();
    await running.close();
  }
});

test('audit - its lines carry their own logger name', () => {
  const written: string[] = [];
  const audit = new AuditLog(createLogger({ format: 'json', out: { write: (line: string) => written.push(line) }, base: { name: AUDIT_LOGGER_NAME } }));
  audit.record('redrive', { user: 'ops', topic: 'orders.eu.dlq' });
  const line = JSON.parse(written[0]!) as Record<string, unknown>;
  assert.equal(line['name'], 'ferry.audit');
  assert.equal(line['event'], 'audit.redrive');
  assert.equal(line['user'], 'ops');
});

/** GET over HTTPS with a client certificate; resolves with the status. */
function getWithCertificate(port: number, path: string, ca: Buffer, pair: KeyPair): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, method: 'GET', ca, cert: pair.cert, key: pair.key, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

test('audit - client-certificate logins on TCP and HTTP are recorded like password logins, with the certificate\'s subject and fingerprint', async () => {
  await using dir = await tempDir('ferry-audit-certs-');
  const certs = makeCertificates(dir.path);
  const lines = new RecordingLogger();
  const running = await startSecure({
    users: await usersFile({ bob: { allow: ['publish:orders.*'] }, carol: { allow: ['admin:*'] } }),
    tls: { material: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca } },
    http: true,
    audit: new AuditLog(lines, new SystemClock()),
  });
  const fingerprint = (pair: KeyPair) => new X509Certificate(pair.cert).fingerprint256;
  const events = (name: string) => lines.events(`audit.${name}`) as Array<Record<string, unknown>>;
  try {
    const bob = certs.client('bob');
    const client = await connect({ port: running.port, tls: { ca: certs.ca, cert: bob.cert, key: bob.key }, reconnect: false });
    await client.close();
    const rogue = certs.rogueClient('bob');
    await assert.rejects(connect({ port: running.port, tls: { ca: certs.ca, cert: rogue.cert, key: rogue.key }, reconnect: false }), (error: unknown) => isFerryError(error, 'AUTH_FAILED'));
    const mallory = certs.client('mallory');
    await assert.rejects(connect({ port: running.port, tls: { ca: certs.ca, cert: mallory.cert, key: mallory.key }, reconnect: false }), (error: unknown) => isFerryError(error, 'AUTH_FAILED'));

    const carol = certs.client('carol');
    assert.equal(await getWithCertificate(running.httpPort, '/api/topics', certs.ca, carol), 200);
    assert.equal(await getWithCertificate(running.httpPort, '/api/topics', certs.ca, carol), 200);
    const eve = certs.rogueClient('eve');
    assert.equal(await getWithCertificate(running.httpPort, '/api/topics', certs.ca, eve), 401);
    assert.equal(await getWithCertificate(running.httpPort, '/api/topics', certs.ca, eve), 401);

    const succeeded = events('login.succeeded').map((e) => [e['user'], e['method'], e['subject'], e['fingerprint'], e['address']]);
    assert.deepEqual(succeeded, [
      ['bob', 'certificate', 'CN=bob', fingerprint(bob), '127.0.0.1'],
      ['carol', 'certificate', 'CN=carol', fingerprint(carol), '127.0.0.1'],
    ], 'one line per login over TCP; the HTTP client logging in on every request is recorded once');
    const failed = events('login.failed');
    assert.deepEqual(failed.map((e) => [e['user'], e['method'], e['subject'], e['fingerprint']]), [
      ['bob', 'certificate', 'CN=bob', fingerprint(rogue)],
      ['mallory', 'certificate', 'CN=mallory', fingerprint(mallory)],
      ['eve', 'certificate', 'CN=eve', fingerprint(eve)],
    ], 'an untrusted certificate and one naming no user, on TCP and HTTP (a repeated one once)');
    assert.match(String(failed[0]!['reason']), /not trusted/);
    assert.match(String(failed[1]!['reason']), /not a configured user/);
    assert.ok(lines.lines.filter((line) => line.event === 'audit.login.failed').every((line) => line.level === 'warn'));
  } finally {
    await running.close();
  }
});
