/**
 * HttpSecurity hands every handler its caller on the request itself (admin API, gRPC, REST): no
 * async context, so no promise hooks for the process. It fails closed, and an HTTP/1.1 connection
 * keeps its caller's guarded broker for its next request.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { Authenticator } from '../../src/security/authenticator.js';
import { AccessGuard } from '../../src/security/guard.js';
import { HttpSecurity } from '../../src/security/http-auth.js';
import type { BrokerApi } from '../../src/broker/types.js';
import { writeUsersFile } from '../../src/security/users-file.js';
import { tempDir } from '../helpers.js';
import { usersFile } from './harness.js';

async function security(): Promise<{ http: HttpSecurity; close: () => Promise<void> }> {
  const dir = await tempDir('ferry-http-auth-');
  const usersPath = join(dir.path, 'users.json');
  writeUsersFile(usersPath, await usersFile({ alice: { token: 'alice-token', allow: ['publish:orders'] }, bob: { token: 'bob-token', allow: ['publish:orders'] } }));
  const authenticator = new Authenticator(usersPath, new SystemClock(), silentLogger, undefined, { required: true });
  const http = new HttpSecurity(authenticator, new AccessGuard(authenticator), null, silentLogger);
  return { http, close: () => dir.remove() };
}

const inner = { publish: () => Promise.resolve([]) } as unknown as BrokerApi;

function request(url: string, authorization?: string, socket: object = { remoteAddress: '127.0.0.1' }): IncomingMessage {
  return { url, method: 'POST', httpVersionMajor: 1, headers: authorization === undefined ? {} : { authorization }, socket } as unknown as IncomingMessage;
}

const run = promisify(execFile);
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));


test('http auth - every path gets its caller from the request', async () => {
  const { http, close } = await security();
  try {
    for (const path of ['/v1/topics/orders/messages', '/api/topics', '/ferry.v1.MessageService/Publish']) {
      let broker: BrokerApi | null = null;
      const handler = http.wrap((req) => {
        broker = http.brokerForRequest(inner, req);
        http.requireAuthenticated(req);
        assert.equal(http.seesBrokerWide(req), false, 'alice has no admin grant');
      });
      await handler(request(path, 'Bearer alice-token'), {} as ServerResponse);
      assert.ok(broker !== null, path);
    }
    // Without credentials the request's own failure is thrown.
    let refused: unknown = null;
    const anonymous = http.wrap((req) => {
      try {
        http.brokerForRequest(inner, req);
      } catch (error) {
        refused = error;
      }
    });
    await anonymous(request('/v1/topics/orders/messages'), {} as ServerResponse);
    assert.equal((refused as { code?: string }).code, 'AUTH_REQUIRED');
  } finally {
    await close();
  }
});

test('http auth - serving a request turns on no promise hooks (no AsyncLocalStorage)', async () => {
  // In a process of its own: the test runner's may have hooks on already.
  const script = [
    "import { executionAsyncId } from 'node:async_hooks';",
    `import { HttpSecurity } from ${JSON.stringify(new URL('../../src/security/http-auth.ts', import.meta.url).href)};`,
    'const ids = async () => { const seen = []; for (let i = 0; i < 2; i++) await Promise.resolve().then(() => seen.push(executionAsyncId())); return seen[0] === seen[1]; };',
    'const before = await ids();',
    "const http = new HttpSecurity({ enabled: false }, { for: () => ({}) }, null, { error() {} });",
    'const handler = http.wrap((req) => { try { http.brokerForRequest({}, req); } catch {} });',
    "for (const url of ['/api/topics', '/readyz', '/v1/topics/t/messages']) await handler({ url, method: 'GET', headers: {}, socket: {} }, {});",
    'process.stdout.write(JSON.stringify({ before, after: await ids() }));',
  ].join('\n');
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO_ROOT });
  assert.deepEqual(JSON.parse(stdout), { before: true, after: true }, 'a request turned promise hooks on');
});

test("http auth - an HTTP/1.1 connection keeps its caller's guarded broker for its next request", async () => {
  const { http, close } = await security();
  try {
    const brokers: BrokerApi[] = [];
    const handler = http.wrap((req) => void brokers.push(http.brokerForRequest(inner, req)));
    const connection = { remoteAddress: '127.0.0.1' };
    await handler(request('/v1/topics/orders/messages', 'Bearer alice-token', connection), {} as ServerResponse);
    await handler(request('/v1/topics/orders/messages', 'Bearer alice-token', connection), {} as ServerResponse);
    await handler(request('/v1/topics/orders/messages', 'Bearer bob-token', connection), {} as ServerResponse);
    await handler(request('/v1/topics/orders/messages', 'Bearer alice-token', { remoteAddress: '127.0.0.1' }), {} as ServerResponse);
    assert.equal(brokers[1], brokers[0], 'the same caller on the same connection: the same view');
    assert.notEqual(brokers[2], brokers[1], 'another caller: its own view');
    assert.notEqual(brokers[3], brokers[0], 'another connection: its own view');
  } finally {
    await close();
  }
});

test('http auth - a request the wrapper never saw fails closed', async () => {
  const { http, close } = await security();
  try {
    assert.throws(() => http.brokerForRequest(inner, request('/v1/topics/orders/messages', 'Bearer alice-token')), { code: 'AUTH_REQUIRED' });
  } finally {
    await close();
  }
});
