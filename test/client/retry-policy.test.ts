/**
 * Which routed requests are sent again after which failure (src/client/retry-policy.ts), the pause
 * before each try, and the deadline of a try; the address forms the client takes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError, isFerryError } from '../../src/errors.js';
import { mayHaveApplied, publishGiveUpError, routeBackoffMs, shouldRetry, withDeadline } from '../../src/client/retry-policy.js';
import { addressKey, parseServer, parseUrl } from '../../src/client/address.js';
import { resolveClientOptions } from '../../src/client/options.js';

const error = (code: ConstructorParameters<typeof FerryError>[0]): FerryError => new FerryError(code, code);

test('retry policy - publishes ride out leader changes, lost connections and a short in-sync set; one-shot requests only what did nothing', () => {
  for (const code of ['NOT_LEADER', 'NOT_ENOUGH_REPLICAS', 'CONNECTION_CLOSED', 'CONNECTION_REFUSED', 'TIMEOUT', 'BROKER_CLOSING', 'LOG_CLOSED'] as const) {
    assert.equal(shouldRetry('publish', error(code), true), true, code);
  }
  for (const code of ['UNKNOWN_TOPIC', 'FORBIDDEN', 'RECORD_TOO_LARGE', 'BROKER_BUSY', 'DISK_FULL', 'INTERNAL', 'MALFORMED_FRAME'] as const) {
    assert.equal(shouldRetry('publish', error(code), true), false, code);
  }
  assert.equal(shouldRetry('idempotent', error('NOT_ENOUGH_REPLICAS'), true), false);
  assert.equal(shouldRetry('idempotent', error('CONNECTION_CLOSED'), true), true);
  // Creating or deleting a topic again after a lost answer could report TOPIC_EXISTS for one's own create.
  assert.equal(shouldRetry('once', error('CONNECTION_CLOSED'), true), false);
  assert.equal(shouldRetry('once', error('TIMEOUT'), true), false);
  assert.equal(shouldRetry('once', error('NOT_LEADER'), true), true);
  assert.equal(shouldRetry('once', error('NOT_ENOUGH_REPLICAS'), true), false, 'more replicas than brokers is an answer');
  // Before anything was sent (connecting, no leader yet), every kind tries again.
  for (const kind of ['publish', 'idempotent', 'once', 'subscribe'] as const) {
    assert.equal(shouldRetry(kind, error('CONNECTION_REFUSED'), false), true);
    assert.equal(shouldRetry(kind, error('CONNECTION_CLOSED'), false), true);
    assert.equal(shouldRetry(kind, error('NOT_LEADER'), false), true);
    assert.equal(shouldRetry(kind, error('AUTH_FAILED'), false), false);
  }
  assert.equal(shouldRetry('publish', new Error('not a FerryError'), true), false);
});

test('retry policy - a publish that may have been stored gives up with TIMEOUT, outcome unknown; a refusal of one that cannot have been stays a refusal', () => {
  const appended = new FerryError('NOT_LEADER', 'led by nobody', { detail: { topic: 't', leader: null, address: null, epoch: 4, appended: true } });
  // The leader wrote it, then lost its leadership before committing it: tried again, and may be stored.
  assert.equal(shouldRetry('publish', appended, true), true);
  assert.equal(mayHaveApplied(appended), true);
  for (const code of ['CONNECTION_CLOSED', 'TIMEOUT', 'LOG_CLOSED'] as const) assert.equal(mayHaveApplied(error(code)), true, code);
  for (const code of ['NOT_LEADER', 'NOT_ENOUGH_REPLICAS', 'CONNECTION_REFUSED', 'BROKER_CLOSING', 'UNKNOWN_TOPIC'] as const) {
    assert.equal(mayHaveApplied(error(code)), false, code);
  }
  assert.equal(mayHaveApplied(new Error('not a FerryError')), false);

  // The last try was refused outright (no leader yet), but an earlier one may have been stored.
  const last = error('NOT_LEADER');
  const unknown = publishGiveUpError('t', last, true);
  assert.ok(isFerryError(unknown, 'TIMEOUT'), String(unknown));
  assert.deepEqual(unknown.detail, { outcome: 'unknown', lastCode: 'NOT_LEADER' });
  assert.equal(unknown.cause, last);
  assert.match(unknown.message, /outcome is unknown/);
  // No try can have stored it: the refusal is the answer.
  assert.equal(publishGiveUpError('t', last, false), last);
});

test('retry policy - pauses double from 10 ms up to 500 ms, without jitter', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 8, 100].map(routeBackoffMs), [10, 20, 40, 80, 160, 320, 500, 500, 500]);
});

test('retry policy - a try still waiting at the deadline fails with TIMEOUT; an answer in time passes through', async () => {
  const never = new Promise<never>(() => undefined);
  const startedMs = performance.now();
  await assert.rejects(withDeadline(never, performance.now() + 50, 'test'), (e: unknown) => isFerryError(e, 'TIMEOUT'));
  assert.ok(performance.now() - startedMs >= 45);
  assert.equal(await withDeadline(Promise.resolve(7), performance.now() + 50, 'test'), 7);
  await assert.rejects(withDeadline(Promise.reject(error('NOT_LEADER')), performance.now() + 50, 'test'), (e: unknown) => isFerryError(e, 'NOT_LEADER'));
  const attempt = Promise.resolve('own timeout');
  assert.equal(withDeadline(attempt, performance.now() + 1_000, 'test', 500), attempt, 'no timer when the request\'s own timeout comes first');
});

test('client addresses - host:port forms, URLs with several hosts, and the options that name servers', () => {
  assert.deepEqual(parseServer('h1:7701'), { host: 'h1', port: 7701 });
  assert.deepEqual(parseServer('h1'), { host: 'h1', port: 7700 });
  assert.deepEqual(parseServer('[::1]:7702'), { host: '::1', port: 7702 });
  assert.deepEqual(parseServer('::1'), { host: '::1', port: 7700 });
  assert.equal(addressKey({ host: '::1', port: 7702 }), '[::1]:7702');
  for (const bad of ['', ':7700', 'h:0', 'h:70000', 'h:x', 'a b:1', 'u@h:1']) assert.throws(() => parseServer(bad), (e: unknown) => isFerryError(e, 'INVALID_ARGUMENT'), bad);
  assert.deepEqual(parseUrl('ferry://h1:7701,h2:7702,[::1]'), [{ host: 'h1', port: 7701 }, { host: 'h2', port: 7702 }, { host: '::1', port: 7700 }]);
  assert.deepEqual(parseUrl('ferry://'), [{ host: '127.0.0.1', port: 7700 }]);
  assert.deepEqual(parseUrl('ferry://user:pw@h:1/'), [{ host: 'h', port: 1 }], 'credentials in the URL are not the address');
  assert.throws(() => parseUrl('http://h:1'), /scheme must be ferry/);

  assert.deepEqual(resolveClientOptions({ port: 7701 }).servers, [{ host: '127.0.0.1', port: 7701 }]);
  const several = resolveClientOptions({ servers: ['h1:7701', 'h2:7702', 'h1:7701'] });
  assert.deepEqual(several.servers, [{ host: 'h1', port: 7701 }, { host: 'h2', port: 7702 }], 'a server named twice is one');
  assert.equal(several.host, 'h1');
  assert.deepEqual(resolveClientOptions({ url: 'ferry://a:1,b:2', servers: ['c:3'] }).servers.map(addressKey), ['a:1', 'b:2'], 'the URL wins');
  assert.throws(() => resolveClientOptions({ servers: ['h:1'], port: 2 }), /servers, or host and port, not both/);
  assert.throws(() => resolveClientOptions({ servers: [] }), /at least one/);
  assert.throws(() => resolveClientOptions({ servers: Array.from({ length: 65 }, (_, i) => `h${i}:1`) }), /at most 64 servers/);
});
