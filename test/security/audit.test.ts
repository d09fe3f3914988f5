/**
 * The audit log (issue 22, item 14): logins failed and succeeded, refusals, user changes and admin
 * actions (topic creation and deletion, group reset, redrive), each with who and from where, on a
 * logger of its own (`name: "ferry.audit"`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, isFerryError, type FerryClient } from '../../src/client/index.js';
import { createLogger } from '../../src/platform/logger.js';
import { SystemClock } from '../../src/platform/clock.js';
import { AUDIT_LOGGER_NAME, AuditLog } from '../../src/security/audit.js';
import { RecordingLogger } from '../storage/log-kit.js';
import { RecordingSink } from '../broker/sim-broker.js';
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
