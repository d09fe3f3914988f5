import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { Authenticator } from '../../src/security/authenticator.js';
import { hashPassword, newToken, tokenMatches, verifyPassword } from '../../src/security/password.js';
import { matches } from '../../src/security/patterns.js';
import { isAllowed, parseRule } from '../../src/security/policy.js';
import { emptyUsersFile, parseUsersFile, readUsersFile, writeUsersFile, type UsersFile } from '../../src/security/users-file.js';
import { FerryError } from '../../src/errors.js';
import { silentLogger } from '../../src/platform/logger.js';
import { SimClock } from '../sim/sim-clock.js';
import { eventually, tempDir } from '../helpers.js';

/** Tests use a cheap scrypt cost; the real default is tested once for its round trip. */
const TEST_COST = 1 << 10;

test('password - scrypt hashes verify, wrong passwords do not, and salts differ', async () => {
  const first = await hashPassword('correct horse');
  assert.equal(first.N, 1 << 15);
  assert.equal(await verifyPassword('correct horse', first), true);
  assert.equal(await verifyPassword('correct hors', first), false);
  const second = await hashPassword('correct horse', TEST_COST);
  assert.notEqual(second.salt, first.salt);
  assert.equal(await verifyPassword('correct horse', second), true);
});

test('password - tokens are random, stored hashed, and matched exactly', () => {
  const { token, stored } = newToken();
  assert.match(token, /^fry_[A-Za-z0-9_-]{43}$/);
  assert.ok(!stored.includes(token));
  assert.equal(tokenMatches(token, stored), true);
  assert.equal(tokenMatches(token + 'x', stored), false);
  assert.notEqual(newToken().token, token);
});

test('patterns - * spans any run of characters, ? one, the rest is literal', () => {
  assert.equal(matches('orders.*', 'orders.eu'), true);
  assert.equal(matches('orders.*', 'orders.eu.dlq'), true);
  assert.equal(matches('orders.*', 'ordersXeu'), false);
  assert.equal(matches('*', 'anything'), true);
  assert.equal(matches('job?', 'jobs'), true);
  assert.equal(matches('job?', 'job'), false);
  assert.equal(matches('a+b', 'a+b'), true);
  assert.equal(matches('a+b', 'aab'), false);
});

test('policy - deny by default, deny wins over allow, group patterns for consume', () => {
  const grants = [
    { allow: [parseRule('publish', 'orders.*'), parseRule('consume', 'orders.*:billing-*'), parseRule('admin', 'orders.eu')], deny: [parseRule('publish', 'orders.secret')] },
  ];
  assert.equal(isAllowed(grants, 'publish', { topic: 'orders.eu' }), true);
  assert.equal(isAllowed(grants, 'publish', { topic: 'orders.secret' }), false);
  assert.equal(isAllowed(grants, 'publish', { topic: 'payments' }), false);
  assert.equal(isAllowed(grants, 'consume', { topic: 'orders.eu', group: 'billing-1' }), true);
  assert.equal(isAllowed(grants, 'consume', { topic: 'orders.eu', group: 'audit' }), false);
  assert.equal(isAllowed(grants, 'consume', { topic: 'orders.eu' }), false, 'a group rule does not cover streams');
  assert.equal(isAllowed(grants, 'admin', { topic: 'orders.eu' }), true);
  assert.equal(isAllowed(grants, 'admin', { topic: 'orders.us' }), false);
  assert.equal(isAllowed([], 'publish', { topic: 'x' }), false);
});

test('policy - a matching deny anywhere always wins (property)', () => {
  const name = fc.stringMatching(/^[a-c.]{1,6}$/);
  const pattern = fc.stringMatching(/^[a-c.*?]{1,6}$/);
  const action = fc.constantFrom('publish' as const, 'consume' as const, 'admin' as const);
  fc.assert(
    fc.property(fc.array(fc.record({ allow: fc.array(fc.tuple(action, pattern)), deny: fc.array(fc.tuple(action, pattern)) }), { maxLength: 3 }), action, name, (raw, act, topic) => {
      const grants = raw.map((grant) => ({
        allow: grant.allow.map(([a, p]) => parseRule(a, p)),
        deny: grant.deny.map(([a, p]) => parseRule(a, p)),
      }));
      const denied = grants.some((grant) => grant.deny.some((rule) => rule.action === act && matches(rule.topic, topic)));
      const allowed = grants.some((grant) => grant.allow.some((rule) => rule.action === act && matches(rule.topic, topic)));
      assert.equal(isAllowed(grants, act, { topic }), allowed && !denied);
    }),
    { numRuns: process.env['CI'] ? 2000 : 300 },
  );
});

test('users file - round trip, and errors that name the bad field', async () => {
  await using dir = await tempDir();
  const path = join(dir.path, 'users.json');
  assert.deepEqual(readUsersFile(path), emptyUsersFile(), 'a missing file means no users');
  const file: UsersFile = {
    version: 1,
    users: { alice: { password: await hashPassword('pw', TEST_COST), roles: ['ops'], allow: [parseRule('publish', 'a*')], deny: [] } },
    roles: { ops: { allow: [parseRule('admin', '*')], deny: [] } },
  };
  writeUsersFile(path, file);
  assert.deepEqual(readUsersFile(path).users['alice']!.allow, [{ action: 'publish', topic: 'a*' }]);
  const bad = (text: string, pattern: RegExp) =>
    assert.throws(() => parseUsersFile(text, 'u.json'), (error: unknown) => error instanceof FerryError && pattern.test(error.message));
  bad('{', /not valid JSON/);
  bad('{"version":2}', /version must be 1/);
  bad('{"version":1,"users":{"bob":{"allow":[{"action":"eat","topic":"x"}]}}}', /users\.bob\.allow\[0\]\.action/);
  bad('{"version":1,"users":{"bob":{"roles":["nope"]}}}', /unknown role nope/);
  bad('{"version":1,"users":{"bob":{"password":{"algorithm":"md5"}}}}', /users\.bob\.password/);
});

test('authenticator - passwords and tokens log in; failures are slowed more each time', async () => {
  const { token, stored } = newToken();
  const file: UsersFile = {
    version: 1,
    users: {
      alice: { password: await hashPassword('secret', TEST_COST), allow: [parseRule('publish', 'orders')], deny: [] },
      svc: { tokens: [stored], allow: [parseRule('consume', '*')], deny: [] },
    },
    roles: {},
  };
  const clock = new SimClock();
  const auth = new Authenticator(null, clock, silentLogger, file);
  assert.equal(auth.enabled, true);
  assert.deepEqual(await auth.authenticate({ user: 'alice', password: 'secret' }, '127.0.0.1'), { name: 'alice' });
  assert.deepEqual(await auth.authenticate({ token }, '127.0.0.1'), { name: 'svc' });
  const delays: number[] = [];
  for (let attempt = 0; attempt < 4; attempt++) {
    const failing = auth.authenticate({ user: 'alice', password: 'wrong' }, '10.0.0.9');
    let settledAtMs = -1;
    const outcome = failing.catch((error: unknown) => {
      settledAtMs = clock.monotonicMs();
      return error;
    });
    const startMs = clock.monotonicMs();
    // The password check runs on the threadpool in real time; the delay that follows is a timer on
    // the simulated clock: advance it only once that timer exists.
    // (A message on every assert that is polled: without one, node:assert parses the source to make one, which is slow.)
    await eventually(() => assert.ok(clock.pendingTimers() > 0, 'the failure delay is scheduled'));
    for (let step = 0; step < 100 && settledAtMs < 0; step++) await clock.advanceAndSettle(50);
    const error = await outcome;
    assert.ok(error instanceof FerryError && error.code === 'AUTH_FAILED');
    delays.push(settledAtMs - startMs);
  }
  assert.ok(delays[0]! >= 100 && delays[3]! >= 800, `growing delays: ${delays.join(', ')}`);
  assert.equal(auth.allows({ name: 'alice' }, 'publish', { topic: 'orders' }), true);
  assert.equal(auth.allows({ name: 'alice' }, 'consume', { topic: 'orders' }), false);
  assert.throws(() => auth.authorize({ name: 'svc' }, 'publish', { topic: 'orders' }), (error: unknown) => error instanceof FerryError && error.code === 'FORBIDDEN');
  assert.equal(auth.allows(null, 'publish', { topic: 'orders' }), false);
});

test('authenticator - with no users everything is allowed; a reloaded file applies at once', async () => {
  await using dir = await tempDir();
  const path = join(dir.path, 'users.json');
  const auth = new Authenticator(path, new SimClock(), silentLogger);
  assert.equal(auth.enabled, false);
  assert.equal(auth.allows(null, 'admin', { topic: 'x' }), true);
  const file: UsersFile = { version: 1, users: { bob: { allow: [parseRule('publish', 'x')], deny: [] } }, roles: {} };
  writeUsersFile(path, file);
  assert.equal(auth.reload(), true);
  assert.equal(auth.allows({ name: 'bob' }, 'publish', { topic: 'x' }), true);
  file.users['bob']!.deny = [parseRule('publish', 'x')];
  writeUsersFile(path, file);
  auth.reload();
  assert.equal(auth.allows({ name: 'bob' }, 'publish', { topic: 'x' }), false, 'the change applies to a principal already logged in');
  writeFileSync(path, '{ broken');
  assert.equal(auth.reload(), false, 'a broken file keeps the previous one');
  assert.equal(auth.allows({ name: 'bob' }, 'publish', { topic: 'x' }), false);
});
