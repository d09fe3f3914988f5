import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readUsersFile } from '../../src/security/users-file.js';
import { verifyPassword, tokenMatches } from '../../src/security/password.js';
import { tempDir } from '../helpers.js';

const BIN = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));
const ferry = (args: string[], input = '') => spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', timeout: 20_000 });

test('cli - users add, passwd, token, list and remove edit the users file', async () => {
  await using dir = await tempDir();
  const file = join(dir.path, 'users.json');
  const added = ferry(['users', 'add', 'alice', '--file', file, '--publish', 'orders.*', '--consume', 'orders.*:billing', '--admin'], 'correct horse\n');
  assert.equal(added.status, 0, added.stderr);
  let users = readUsersFile(file);
  assert.equal(await verifyPassword('correct horse', users.users['alice']!.password!), true);
  assert.deepEqual(users.users['alice']!.allow, [
    { action: 'publish', topic: 'orders.*' },
    { action: 'consume', topic: 'orders.*', group: 'billing' },
    { action: 'admin', topic: '*' },
  ]);
  assert.equal(ferry(['users', 'add', 'alice', '--file', file], 'another pw\n').status, 2, 'no duplicate users');
  assert.equal(ferry(['users', 'add', 'bob', '--file', file], 'short\n').status, 2, 'short passwords are refused');

  assert.equal(ferry(['users', 'passwd', 'alice', '--file', file], 'battery staple\n').status, 0);
  users = readUsersFile(file);
  assert.equal(await verifyPassword('battery staple', users.users['alice']!.password!), true);

  const token = ferry(['users', 'token', 'alice', '--file', file]);
  assert.equal(token.status, 0, token.stderr);
  assert.ok(tokenMatches(token.stdout.trim(), readUsersFile(file).users['alice']!.tokens![0]!));

  const listed = ferry(['users', 'list', '--file', file]);
  assert.match(listed.stdout, /^alice +password, 1 tokens +publish:orders\.\*/m);
  assert.doesNotMatch(listed.stdout, /battery/);

  // The broker-to-broker user of a cluster: the replicate grant on every topic.
  const replicator = ferry(['users', 'add', 'replicator', '--file', file, '--replicate'], 'replica pass\n');
  assert.equal(replicator.status, 0, replicator.stderr);
  assert.deepEqual(readUsersFile(file).users['replicator']!.allow, [{ action: 'replicate', topic: '*' }]);
  assert.match(ferry(['users', 'list', '--file', file]).stdout, /^replicator +password, 0 tokens +replicate:\*$/m);
  assert.equal(ferry(['users', 'remove', 'replicator', '--file', file]).status, 0);

  // A Prometheus scraper: /metrics and nothing else.
  const scraper = ferry(['users', 'add', 'prometheus', '--file', file, '--metrics'], 'scrape pass\n');
  assert.equal(scraper.status, 0, scraper.stderr);
  assert.deepEqual(readUsersFile(file).users['prometheus']!.allow, [{ action: 'metrics', topic: '*' }]);
  assert.equal(ferry(['users', 'remove', 'prometheus', '--file', file]).status, 0);

  assert.equal(ferry(['users', 'remove', 'alice', '--file', file]).status, 0);
  assert.deepEqual(readUsersFile(file).users, {});
  assert.equal(ferry(['users', 'remove', 'alice', '--file', file]).status, 2);
});

test('cli - users list, remove, passwd and token on a missing file say so and exit 2; nothing is created', async () => {
  await using dir = await tempDir();
  const missing = join(dir.path, 'missing.json');
  for (const args of [['list'], ['remove', 'alice'], ['passwd', 'alice'], ['token', 'alice']]) {
    const run = ferry(['users', ...args, '--file', missing], 'correct horse\n');
    assert.equal(run.status, 2, `users ${args[0]}: ${run.stderr}`);
    assert.equal(run.stdout, '');
    assert.equal(run.stderr, `ferry users: the users file ${missing} does not exist ('ferry users add NAME --file ${missing}' creates it)\n`);
    assert.equal(existsSync(missing), false);
  }
});
