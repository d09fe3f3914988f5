/**
 * How the client commands resolve the broker's address, the login and TLS from flags, the
 * environment and FERRY_URL (src/cli/connect-options.ts), in-process: the precedence rules and
 * the refusals, without a broker. The commands themselves are run in login-tls.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parse, UsageError } from '../../src/cli/args.js';
import { CONNECTION_FLAGS, connectOptions, parseFerryUrl, type ConnectionContext } from '../../src/cli/connect-options.js';
import { tempDir } from '../helpers.js';

const isUsage = (pattern: RegExp) => (error: unknown) => error instanceof UsageError && pattern.test(error.message);

test('cli connect options - FERRY_URL: old forms, ferrys:// for TLS, percent-encoded credentials, IPv6', () => {
  assert.deepEqual(parseFerryUrl('ferry://10.0.0.1:7701'), { tls: false, host: '10.0.0.1', port: 7701 });
  assert.deepEqual(parseFerryUrl('broker.internal:7702'), { tls: false, host: 'broker.internal', port: 7702 });
  assert.deepEqual(parseFerryUrl('ferrys://broker.internal'), { tls: true, host: 'broker.internal' });
  assert.deepEqual(parseFerryUrl('ferrys://al%40ice:p%3Ass%20w@[::1]:7700'), { tls: true, host: '::1', port: 7700, user: 'al@ice', password: 'p:ss w' });
  assert.throws(() => parseFerryUrl('ferryss://host:7700'), isUsage(/scheme must be ferry:\/\/ or ferrys:\/\//));
  assert.throws(() => parseFerryUrl('http://host:7700'), isUsage(/scheme/));
});

test('cli connect options - flags beat the environment, which beats FERRY_URL; defaults last', async () => {
  const context = (env: ConnectionContext['env']): ConnectionContext => ({ env, warn: () => assert.fail('no warning expected') });
  assert.deepEqual(await connectOptions({}, context({})), { host: '127.0.0.1', port: 7700, reconnect: false });
  const env = { FERRY_URL: 'ferry://url-user:url-pass@127.0.0.9:7001', FERRY_USER: 'env-user', FERRY_PASSWORD: 'env-pass' };
  assert.deepEqual(await connectOptions({}, context(env)), { host: '127.0.0.9', port: 7001, user: 'env-user', password: 'env-pass', reconnect: false });
  assert.deepEqual(await connectOptions({}, context({ FERRY_URL: env.FERRY_URL })), { host: '127.0.0.9', port: 7001, user: 'url-user', password: 'url-pass', reconnect: false });
  assert.deepEqual(await connectOptions({ host: 'localhost', port: '7002', user: 'flag-user' }, context(env)), {
    host: 'localhost',
    port: 7002,
    user: 'flag-user',
    password: 'env-pass',
    reconnect: false,
  });
});

test('cli connect options - --password-stdin takes the first line only; refused when stdin carries the messages', async () => {
  const stdin = Readable.from(['secret-pa', 'ssword\nmessage 1\nmessage 2\n']);
  const options = await connectOptions({ user: 'alice', 'password-stdin': true }, { env: {}, stdin });
  assert.equal(options.password, 'secret-password');
  await assert.rejects(connectOptions({ user: 'alice', 'password-stdin': true }, { env: {}, stdin: Readable.from(['\n']) }), isUsage(/first line is empty/));
  await assert.rejects(
    connectOptions({ user: 'alice', 'password-stdin': true }, { env: {}, stdin: Readable.from(['pw\n']), stdinCarriesMessages: true }),
    isUsage(/--password-file FILE or FERRY_PASSWORD/),
  );
});

test('cli connect options - files: first line, a warning when others may read them; TLS from any TLS setting', async () => {
  await using dir = await tempDir();
  const shared = join(dir.path, 'shared');
  writeFileSync(shared, 'from-file\r\nignored\n', { mode: 0o644 });
  const pem = join(dir.path, 'ca.pem');
  writeFileSync(pem, 'PEM');
  const warnings: string[] = [];
  const options = await connectOptions({ host: 'broker.example', user: 'alice', 'password-file': shared }, { env: {}, warn: (line) => warnings.push(line) });
  assert.equal(options.password, 'from-file');
  if (process.platform !== 'win32') assert.match(warnings.join('\n'), /can be read by other users; chmod 600/);
  assert.match(warnings.join('\n'), /sending credentials to broker\.example without TLS/);

  assert.deepEqual((await connectOptions({ tls: true }, { env: {} })).tls, {});
  assert.deepEqual((await connectOptions({}, { env: { FERRY_URL: 'ferrys://h:1' } })).tls, {});
  assert.deepEqual((await connectOptions({}, { env: { FERRY_CA: pem } })).tls, { ca: Buffer.from('PEM') });
  await assert.rejects(connectOptions({ 'tls-ca': join(dir.path, 'missing.pem') }, { env: {} }), isUsage(/cannot read --tls-ca/));
});

test('cli connect options - refusals: a password as a flag, a password without a user, a token with one', async () => {
  const flags = { ...CONNECTION_FLAGS };
  assert.throws(() => parse(['--password', 'hunter22'], flags, 0), isUsage(/--password is not accepted: .*\(ps\)/));
  assert.throws(() => parse(['--token=fry_x'], flags, 0), isUsage(/--token is not accepted/));
  assert.deepEqual(parse(['--', '--password'], flags, 1).positionals, ['--password'], 'after --, it is a value like any other');
  await assert.rejects(connectOptions({}, { env: { FERRY_PASSWORD: 'pw' } }), isUsage(/a password needs a user/));
  await assert.rejects(connectOptions({ user: 'alice' }, { env: { FERRY_PASSWORD: 'pw', FERRY_TOKEN: 'fry_t' } }), isUsage(/not both/));
  await assert.rejects(connectOptions({ user: 'alice' }, { env: {} }), isUsage(/needs a password/));
});

test('cli connect options - several servers: --server repeated or comma-separated, --url and FERRY_URL with a host list', async () => {
  const context = (env: ConnectionContext['env']): ConnectionContext => ({ env, warn: () => assert.fail('no warning expected') });
  assert.deepEqual(await connectOptions({ server: ['127.0.0.1:7701', '127.0.0.1:7702'] }, context({})), { servers: ['127.0.0.1:7701', '127.0.0.1:7702'], reconnect: false });
  assert.deepEqual(await connectOptions({ server: ['h1:7701,h2', '[::1]:7703'] }, context({})), { servers: ['h1:7701', 'h2:7700', '[::1]:7703'], reconnect: false });
  assert.deepEqual(await connectOptions({ server: ['h1:7701'] }, context({})), { host: 'h1', port: 7701, reconnect: false }, 'one server: as --host and --port');
  assert.deepEqual(parseFerryUrl('ferry://al%40ice:pw@h1:7701,[::1]:7702,h3'), { tls: false, user: 'al@ice', password: 'pw', servers: ['h1:7701', '[::1]:7702', 'h3:7700'] });
  assert.deepEqual(parseFerryUrl('h1:7701,h2:7702'), { tls: false, servers: ['h1:7701', 'h2:7702'] }, 'scheme optional, as for one host');
  assert.deepEqual(await connectOptions({}, context({ FERRY_URL: 'ferry://127.0.0.1:7701,127.0.0.1:7702' })), { servers: ['127.0.0.1:7701', '127.0.0.1:7702'], reconnect: false });
  // --url replaces FERRY_URL; --host or --server override the URL's address, keeping its login.
  const url = 'ferry://url-user:url-pass@127.0.0.1:7701,127.0.0.1:7702';
  assert.deepEqual(await connectOptions({ url }, context({ FERRY_URL: 'ferry://elsewhere:1' })), {
    servers: ['127.0.0.1:7701', '127.0.0.1:7702'],
    user: 'url-user',
    password: 'url-pass',
    reconnect: false,
  });
  assert.deepEqual(await connectOptions({ host: 'localhost' }, context({ FERRY_URL: url })), { host: 'localhost', port: 7700, user: 'url-user', password: 'url-pass', reconnect: false });
  assert.deepEqual((await connectOptions({ server: ['127.0.0.1:9'] }, context({ FERRY_URL: url }))).port, 9);
});

test('cli connect options - several servers: refusals and the plaintext warning for any remote host', async () => {
  await assert.rejects(connectOptions({ server: ['h:1'], host: 'h' }, { env: {} }), isUsage(/--server, or --host and --port, not both/));
  await assert.rejects(connectOptions({ server: ['h:1'], port: '2' }, { env: {} }), isUsage(/not both/));
  await assert.rejects(connectOptions({ server: ['h:notaport'] }, { env: {} }), isUsage(/--server 'h:notaport' is not host:port/));
  await assert.rejects(connectOptions({ port: '7701' }, { env: { FERRY_URL: 'ferry://a:1,b:2' } }), isUsage(/--port alone cannot apply to the several hosts of FERRY_URL/));
  assert.throws(() => parseFerryUrl('ferry://a:1,,b:2'), isUsage(/FERRY_URL lists an empty host/));
  assert.throws(() => parseFerryUrl('http://a:1,b:2', '--url'), isUsage(/--url scheme must be ferry/));
  const warnings: string[] = [];
  await connectOptions({ server: ['127.0.0.1:1', 'broker.example:2'] }, { env: { FERRY_USER: 'u', FERRY_PASSWORD: 'p' }, warn: (line) => warnings.push(line) });
  assert.match(warnings.join('\n'), /sending credentials to broker\.example without TLS/);
  assert.deepEqual({ ...parse(['--server', 'a:1', '--server', 'b:2', '--url', 'ferry://c'], CONNECTION_FLAGS, 0).values }, { server: ['a:1', 'b:2'], url: 'ferry://c' });
});
