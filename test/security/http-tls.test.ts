/**
 * The HTTP port (admin API, gRPC, Connect) over TLS: HTTPS only once a certificate is configured,
 * Basic logins over it, and mutual TLS mapping the client certificate's CN to the user.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { tempDir } from '../helpers.js';
import { makeCertificates } from './certs.js';
import { basic, startSecure, usersFile } from './harness.js';

function get(port: number, path: string, options: RequestOptions): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path, method: 'GET', ...options }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('http tls - the admin port speaks HTTPS only; Basic and client-certificate logins both work', async () => {
  await using dir = await tempDir('ferry-https-');
  const certs = makeCertificates(dir.path);
  const running = await startSecure({
    users: await usersFile({
      alice: { password: 'alice-password', allow: ['admin:orders*'] },
      bob: { password: 'bob-password', allow: ['publish:audit'] },
    }),
    tls: { material: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca } },
    http: true,
  });
  try {
    await running.broker.createTopic('orders');
    await running.broker.createTopic('audit');
    const names = (body: string) => (JSON.parse(body) as Array<{ name: string }>).map((topic) => topic.name);

    const byPassword = await get(running.httpPort, '/api/topics', { ca: certs.ca, headers: { authorization: basic('alice', 'alice-password') } });
    assert.equal(byPassword.status, 200);
    assert.deepEqual(names(byPassword.body), ['orders']);

    const bob = certs.client('bob');
    const byCertificate = await get(running.httpPort, '/api/topics', { ca: certs.ca, cert: bob.cert, key: bob.key });
    assert.equal(byCertificate.status, 200);
    assert.deepEqual(names(byCertificate.body), ['audit']);

    const anonymous = await get(running.httpPort, '/api/topics', { ca: certs.ca });
    assert.equal(anonymous.status, 401);

    const rogue = certs.rogueClient('alice');
    const untrusted = await get(running.httpPort, '/api/topics', { ca: certs.ca, cert: rogue.cert, key: rogue.key });
    assert.equal(untrusted.status, 401);
    assert.match(untrusted.body, /not trusted/);

    await assert.rejects(get(running.httpPort, '/healthz', { ca: certs.rogueCa }), /certificate/);
    await assert.rejects(fetch(`http://127.0.0.1:${running.httpPort}/healthz`), 'plaintext HTTP is not served on a TLS port');
  } finally {
    await running.close();
  }
});
