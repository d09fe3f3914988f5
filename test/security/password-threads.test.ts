/**
 * Password checks run on threads of their own at a lower CPU priority than the broker's (issue 22,
 * item 12: a password brute force took a core at the broker's priority through libuv's threadpool,
 * and slowed every established client). The nice value of each thread of this process is read
 * from /proc (Linux keeps one per thread).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { scryptSync } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { Authenticator } from '../../src/security/authenticator.js';
import { PASSWORD_THREAD_NICE, PasswordThreads } from '../../src/security/password-threads.js';
import { isFerryError } from '../../src/errors.js';
import { usersFile } from './harness.js';

const ON_LINUX = process.platform === 'linux';

/** The nice value of every thread of this process (field 19 of /proc/self/task/<tid>/stat). */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').flatMap((tid) => {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return [Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
    } catch {
      return [];
    }
  });
}

test('password threads - a failed login is checked at a lower CPU priority than the broker\'s thread', { skip: !ON_LINUX }, async () => {
  const file = await usersFile({ alice: { password: 'right' } });
  const authenticator = new Authenticator(null, new SystemClock(), silentLogger, file, { required: true, failureDelayMsMin: 1, failureDelayMsMax: 1 });
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    assert.ok(!threadNices().includes(PASSWORD_THREAD_NICE), 'no thread at the password threads\' priority yet');
    await assert.rejects(authenticator.authenticate({ user: 'alice', password: 'wrong' }, '127.0.0.9'), (error: unknown) => isFerryError(error, 'AUTH_FAILED'));
    await assert.rejects(authenticator.authenticate({ user: 'mallory', password: 'guess' }, '127.0.0.9'), (error: unknown) => isFerryError(error, 'AUTH_FAILED'));
    assert.deepEqual(await authenticator.authenticate({ user: 'alice', password: 'right' }, '127.0.0.10'), { name: 'alice' });
    const nices = threadNices();
    assert.equal(nices.filter((nice) => nice === PASSWORD_THREAD_NICE).length, 1, `one password thread (checks one at a time here); nices ${nices.join(' ')}`);
    assert.equal(nices[0], 0, 'the main thread keeps its priority');
  } finally {
    clearInterval(keepAlive);
    authenticator.close();
  }
});

test('password threads - a key is what scrypt gives, on a thread of its own, several at once', async () => {
  const threads = new PasswordThreads();
  try {
    const options = { N: 1024, r: 8, p: 1 };
    const salt = Buffer.from('salt-bytes-16-by');
    const keys = await Promise.all(['a', 'b', 'c'].map((password) => threads.derive(password, salt, 32, options)));
    assert.deepEqual(keys, ['a', 'b', 'c'].map((password) => scryptSync(password, salt, 32, options)));
    await assert.rejects(threads.derive('x', salt, 32, { N: 3 }), /scrypt/);
  } finally {
    threads.close();
  }
  // Closed: a check still works, on libuv's threadpool.
  assert.equal((await threads.derive('a', Buffer.alloc(16), 16, { N: 1024 })).length, 16);
});
