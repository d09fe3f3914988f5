/**
 * `ferry serve` with security: it refuses a non-loopback address without users, checks the TLS
 * flags, and with --users and TLS serves logins over TLS only and picks up a changed users file
 * on SIGHUP. Runs the CLI from the sources in a child process (serve-entry.ts).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect, isFerryError } from '../../src/client/index.js';
import { writeUsersFile } from '../../src/security/users-file.js';
import { tempDir, type TempDir } from '../helpers.js';
import { makeCertificates, type TestCertificates } from './certs.js';
import { usersFile } from './harness.js';

const ENTRY = fileURLToPath(new URL('./serve-entry.ts', import.meta.url));
/** A serve that has not listened (or exited) by then is hung. */
const START_TIMEOUT_MS = 20_000;

let dir: TempDir;
let certs: TestCertificates;

before(async () => {
  dir = await tempDir('ferry-serve-sec-');
  certs = makeCertificates(dir.path);
});

after(async () => {
  await dir.remove();
});

interface Served {
  child: ChildProcessWithoutNullStreams;
  events: Array<Record<string, unknown>>;
  stderr: string;
  exited: Promise<number | null>;
  /** Resolves with the first log event of this name. */
  event(name: string): Promise<Record<string, unknown>>;
}

function serve(args: string[]): Served {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'serve', '--log-format', 'json', '--port', '0', ...args], {
    env: { ...process.env, FERRY_URL: '' },
    stdio: 'pipe',
  });
  const served: Served = {
    child,
    events: [],
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    event: (name) =>
      new Promise((resolve, reject) => {
        const found = served.events.find((event) => event['event'] === name);
        if (found !== undefined) return resolve(found);
        const timer = setTimeout(() => reject(new Error(`no ${name} within ${START_TIMEOUT_MS} ms; stderr: ${served.stderr}`)), START_TIMEOUT_MS);
        waiters.push({ name, resolve: (event) => (clearTimeout(timer), resolve(event)) });
      }),
  };
  const waiters: Array<{ name: string; resolve: (event: Record<string, unknown>) => void }> = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    served.stderr += line + '\n';
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    served.events.push(event);
    for (const waiter of waiters.filter((w) => w.name === event['event'])) {
      waiters.splice(waiters.indexOf(waiter), 1);
      waiter.resolve(event);
    }
  });
  child.stdout.resume();
  return served;
}

test('serve - without users it refuses to listen beyond loopback, and says how to fix it', async () => {
  const served = serve(['--dir', join(dir.path, 'open'), '--host', '0.0.0.0']);
  assert.equal(await served.exited, 2);
  assert.match(served.stderr, /refusing to listen on 0\.0\.0\.0 without users/);
  assert.match(served.stderr, /ferry users add/);
});

test('serve - TLS flags are checked before anything opens', async () => {
  const withoutKey = serve(['--dir', join(dir.path, 'bad'), '--tls-cert', certs.server.certPath]);
  assert.equal(await withoutKey.exited, 2);
  assert.match(withoutKey.stderr, /tls\.cert and tls\.key go together/);
  const missing = serve(['--dir', join(dir.path, 'bad'), '--tls-cert', join(dir.path, 'nope.crt'), '--tls-key', certs.server.keyPath]);
  assert.equal(await missing.exited, 2);
  assert.match(missing.stderr, /cannot read the TLS certificate file/);
});

test('serve - with --users and --tls-required: TLS logins only, and SIGHUP reloads the users', async () => {
  const usersPath = join(dir.path, 'users.json');
  writeUsersFile(usersPath, await usersFile({ alice: { password: 'alice-password', allow: ['admin:*', 'publish:*'] } }));
  const served = serve([
    '--dir', join(dir.path, 'secure'),
    '--users', usersPath,
    '--tls-cert', certs.server.certPath,
    '--tls-key', certs.server.keyPath,
    '--tls-required',
  ]);
  try {
    const listening = await served.event('broker.listening');
    const security = served.events.find((event) => event['event'] === 'security.auth.on');
    assert.equal(security?.['users'], 1);
    assert.equal(security?.['tlsRequired'], true);
    const port = listening['port'] as number;
    const tls = { ca: certs.ca };
    await assert.rejects(connect({ port, user: 'alice', password: 'alice-password', reconnect: false }), (error: unknown) => isFerryError(error, 'AUTH_REQUIRED'));
    const alice = await connect({ port, user: 'alice', password: 'alice-password', tls, reconnect: false });
    await alice.createTopic('orders');
    await alice.close();
    await assert.rejects(connect({ port, user: 'bob', password: 'bob-password', tls, reconnect: false }), (error: unknown) => isFerryError(error, 'AUTH_FAILED'));

    writeUsersFile(usersPath, await usersFile({ alice: { password: 'alice-password', allow: ['admin:*'] }, bob: { password: 'bob-password', allow: ['publish:orders'] } }));
    served.child.kill('SIGHUP');
    await served.event('security.users.reload_requested');
    const bob = await connect({ port, user: 'bob', password: 'bob-password', tls, reconnect: false });
    assert.equal((await bob.publish('orders', 'hello')).offset, 0);
    await bob.close();
  } finally {
    served.child.kill('SIGTERM');
    assert.equal(await served.exited, 0, served.stderr);
  }
});
