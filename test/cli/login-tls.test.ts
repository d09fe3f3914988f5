/**
 * The client commands against a broker with users and TLS, run as child processes (bin/ferry.js
 * over dist/): logging in with a password from a file, stdin, the environment or FERRY_URL, or
 * with a token or a client certificate; TLS with a private CA; and the messages and exit codes of
 * every way that fails. Certificates are made by the test (test/security/certs.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { newToken } from '../../src/security/password.js';
import { makeCertificates, type TestCertificates } from '../security/certs.js';
import { startSecure, usersFile, type SecureBroker } from '../security/harness.js';
import { tempDir, type TempDir } from '../helpers.js';
import { ferry, withBroker, type Run } from './run-ferry.js';

const PASSWORD = 'alice-password';
const EXIT_LOGIN_REFUSED = 3;
const EXIT_TLS = 4;

let dir: TempDir;
let certs: TestCertificates;
/** TLS optional (plaintext served too), client certificates from the test CA accepted. */
let server: SecureBroker;
let token: string;
let passwordFile: string;
let wrongPasswordFile: string;
let tokenFile: string;

/** A file only its owner may read, as a password file should be. */
function secretFile(name: string, text: string): string {
  const path = join(dir.path, name);
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

function ok(run: Run): Run {
  assert.equal(run.code, 0, `exit ${run.code}: ${run.stderr}`);
  return run;
}

function failed(run: Run, code: number, pattern: RegExp): void {
  assert.equal(run.code, code, `exit ${run.code}: ${run.stderr}`);
  assert.match(run.stderr, pattern);
  assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace for an expected failure');
}

before(async () => {
  dir = await tempDir('ferry-cli-login-');
  certs = makeCertificates(dir.path);
  token = newToken().token;
  server = await startSecure({
    users: await usersFile({
      alice: { password: PASSWORD, allow: ['admin:*', 'publish:*', 'consume:*'] },
      // Logs in by client certificate only (its CN).
      carol: { allow: ['admin:*'] },
      billing: { token, allow: ['admin:*'] },
    }),
    tls: { material: { cert: certs.server.cert, key: certs.server.key, ca: certs.ca } },
  });
  passwordFile = secretFile('password', `${PASSWORD}\n`);
  wrongPasswordFile = secretFile('wrong', 'not-the-password\n');
  tokenFile = secretFile('token', `${token}\n`);
});

after(async () => {
  await server?.close();
  await dir?.remove();
});

test('cli login - a password from a file, stdin, FERRY_USER/FERRY_PASSWORD or FERRY_URL; a token from a file', async () => {
  const port = String(server.port);
  ok(await ferry(['topics', 'create', 'orders', '--port', port, '--user', 'alice', '--password-file', passwordFile]));
  ok(await ferry(['pub', 'orders', 'hello', '--port', port, '--user', 'alice', '--password-stdin'], { input: `${PASSWORD}\n` }));
  // Without a value, pub publishes stdin's lines: the password then comes from a file.
  const lines = ok(await ferry(['pub', 'orders', '--port', port, '--user', 'alice', '--password-file', passwordFile], { input: 'a\nb\n' }));
  assert.match(lines.stderr, /published 2 messages/);
  const [fromEnv, fromUrl, userInUrl, withToken] = await Promise.all([
    ferry(['sub', 'orders', '--from', 'earliest', '--count', '3', '--port', port], { env: { FERRY_USER: 'alice', FERRY_PASSWORD: PASSWORD } }),
    ferry(['topics', 'list'], { env: { FERRY_URL: `ferry://alice:${encodeURIComponent(PASSWORD)}@127.0.0.1:${port}` } }),
    ferry(['groups', 'list', 'orders'], { env: { FERRY_URL: `127.0.0.1:${port}`, FERRY_USER: 'alice', FERRY_PASSWORD: PASSWORD } }),
    ferry(['topics', 'describe', 'orders', '--port', port, '--token-file', tokenFile]),
  ]);
  assert.deepEqual(ok(fromEnv).stdout.trim().split('\n'), ['hello', 'a', 'b']);
  assert.match(ok(fromUrl).stdout, /^orders /m);
  assert.match(ok(userInUrl).stdout, /orders has no groups/);
  assert.match(ok(withToken).stdout, /^orders /);
});

test('cli login - refused logins exit 3 naming AUTH_FAILED or AUTH_REQUIRED; a password is never a flag value', async () => {
  const port = String(server.port);
  const [wrong, none, noneDlq, wrongInUrl] = await Promise.all([
    ferry(['topics', 'list', '--port', port, '--user', 'alice', '--password-file', wrongPasswordFile]),
    ferry(['topics', 'list', '--port', port]),
    ferry(['dlq', 'redrive', 'orders.dlq', '--port', port]),
    ferry(['pub', 'orders', 'x'], { env: { FERRY_URL: `ferry://alice:guess@127.0.0.1:${port}` } }),
  ]);
  failed(wrong, EXIT_LOGIN_REFUSED, /login refused: .*\(AUTH_FAILED\)/);
  failed(none, EXIT_LOGIN_REFUSED, /AUTH_REQUIRED.*--user NAME and --password-file/);
  failed(noneDlq, EXIT_LOGIN_REFUSED, /AUTH_REQUIRED/);
  failed(wrongInUrl, EXIT_LOGIN_REFUSED, /AUTH_FAILED/);

  const [asFlag, asFlagEquals, tokenFlag, noPassword, stdinTaken, bothSources] = await Promise.all([
    ferry(['topics', 'list', '--port', port, '--user', 'alice', '--password', PASSWORD]),
    ferry(['topics', 'list', '--port', port, '--user', 'alice', `--password=${PASSWORD}`]),
    ferry(['topics', 'list', '--port', port, '--token', token]),
    ferry(['topics', 'list', '--port', port, '--user', 'alice']),
    ferry(['pub', 'orders', '--port', port, '--user', 'alice', '--password-stdin'], { input: `${PASSWORD}\nmessage\n` }),
    ferry(['topics', 'list', '--port', port, '--user', 'alice', '--password-stdin', '--password-file', passwordFile]),
  ]);
  failed(asFlag, 2, /--password is not accepted: .*\(ps\).*--password-stdin or FERRY_PASSWORD/);
  failed(asFlagEquals, 2, /--password is not accepted/);
  failed(tokenFlag, 2, /--token is not accepted: .*--token-file FILE or FERRY_TOKEN/);
  failed(noPassword, 2, /user alice needs a password/);
  failed(stdinTaken, 2, /reads its messages from stdin.*--password-file FILE or FERRY_PASSWORD/);
  failed(bothSources, 2, /not both/);
  for (const run of [asFlag, asFlagEquals, tokenFlag]) assert.doesNotMatch(run.stderr, new RegExp(PASSWORD), 'the refused secret is not echoed');
});

test('cli tls - a private CA with --tls-ca or FERRY_CA and ferrys://; mutual TLS logs in by certificate', async () => {
  const port = String(server.port);
  const carol = certs.client('carol');
  const [withCa, viaUrl, mutual] = await Promise.all([
    ferry(['topics', 'list', '--port', port, '--tls-ca', certs.caPath, '--user', 'alice', '--password-file', passwordFile]),
    ferry(['topics', 'list'], { env: { FERRY_URL: `ferrys://alice@127.0.0.1:${port}`, FERRY_PASSWORD: PASSWORD, FERRY_CA: certs.caPath } }),
    ferry(['topics', 'list', '--port', port, '--tls-ca', certs.caPath, '--tls-cert', carol.certPath, '--tls-key', carol.keyPath]),
  ]);
  ok(withCa);
  ok(viaUrl);
  ok(mutual);
});

test('cli tls - an unknown CA, a rogue client certificate, TLS to a plaintext port and plaintext to a TLS-only port', async () => {
  const port = String(server.port);
  const rogue = certs.rogueClient('carol');
  const [systemCas, rogueCert, certWithoutKey] = await Promise.all([
    // The test CA is not among the system's: --tls alone must refuse the server.
    ferry(['topics', 'list', '--port', port, '--tls', '--user', 'alice', '--password-file', passwordFile]),
    ferry(['topics', 'list', '--port', port, '--tls-ca', certs.caPath, '--tls-cert', rogue.certPath, '--tls-key', rogue.keyPath]),
    ferry(['topics', 'list', '--port', port, '--tls-cert', rogue.certPath]),
  ]);
  failed(systemCas, EXIT_TLS, /TLS failed: the server's certificate is signed by an unknown CA .*--tls-ca FILE/);
  failed(rogueCert, EXIT_LOGIN_REFUSED, /AUTH_FAILED/);
  failed(certWithoutKey, 2, /--tls-cert and --tls-key go together/);

  await withBroker(async (plainPort) => {
    failed(await ferry(['topics', 'list', '--port', plainPort, '--tls']), EXIT_TLS, /TLS failed: .*does the server have TLS on\?/);
  });

  const tlsOnly = await startSecure({
    users: await usersFile({ alice: { password: PASSWORD, allow: ['admin:*'] } }),
    tls: { material: { cert: certs.server.cert, key: certs.server.key }, required: true },
  });
  try {
    const plaintext = await ferry(['topics', 'list', '--port', String(tlsOnly.port), '--user', 'alice', '--password-file', passwordFile]);
    failed(plaintext, EXIT_LOGIN_REFUSED, /TLS connections only.*AUTH_REQUIRED.*--tls/);
    ok(await ferry(['topics', 'list', '--port', String(tlsOnly.port), '--tls-ca', certs.caPath, '--user', 'alice', '--password-file', passwordFile]));
  } finally {
    await tlsOnly.close();
  }
});
