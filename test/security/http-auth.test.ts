/**
 * HttpSecurity's two ways to hand a handler its caller: the async context (admin API, gRPC) and,
 * for paths served outside it (the REST endpoints), the request itself. Both fail closed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
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
  writeUsersFile(usersPath, await usersFile({ alice: { token: 'alice-token', allow: ['publish:orders'] } }));
  const authenticator = new Authenticator(usersPath, new SystemClock(), silentLogger, undefined, { required: true });
  const http = new HttpSecurity(authenticator, new AccessGuard(authenticator), null, silentLogger);
  return { http, close: () => dir.remove() };
}

const inner = { publish: () => Promise.resolve([]) } as unknown as BrokerApi;

function request(url: string, authorization?: string): IncomingMessage {
  return { url, method: 'POST', headers: authorization === undefined ? {} : { authorization }, socket: { remoteAddress: '127.0.0.1' } } as unknown as IncomingMessage;
}

test('http auth - a path served from the request gets its caller from the request, not the async context', async () => {
  const { http, close } = await security();
  try {
    let fromRequest: BrokerApi | null = null;
    let fromContext: unknown = null;
    const handler = http.wrap((req) => {
      fromRequest = http.brokerForRequest(inner, req);
      try {
        http.brokerFor(inner);
      } catch (error) {
        fromContext = error;
      }
    }, (path) => path.startsWith('/v1/'));
    await handler(request('/v1/topics/orders/messages', 'Bearer alice-token'), {} as ServerResponse);
    assert.ok(fromRequest !== null);
    assert.equal((fromContext as { code?: string }).code, 'AUTH_REQUIRED');
    // Without credentials the request's own failure is thrown.
    let refused: unknown = null;
    const anonymous = http.wrap((req) => {
      try {
        http.brokerForRequest(inner, req);
      } catch (error) {
        refused = error;
      }
    }, () => true);
    await anonymous(request('/v1/topics/orders/messages'), {} as ServerResponse);
    assert.equal((refused as { code?: string }).code, 'AUTH_REQUIRED');
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
