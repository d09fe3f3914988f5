/**
 * Login timing (issue 22, item 8): an unknown user was answered in ~105 ms, a known one with a
 * wrong password in ~210 ms (the scrypt check), which told which names exist. Now a login for a
 * user without a password is checked against a decoy hash of the users' own cost: the same work,
 * counted here (timing is not asserted in tests).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { Authenticator } from '../../src/security/authenticator.js';
import { decoyHash } from '../../src/security/password.js';
import { isFerryError } from '../../src/errors.js';
import { TEST_SCRYPT_COST, usersFile } from './harness.js';

async function failedLogin(authenticator: Authenticator, user: string, password: string): Promise<number> {
  const before = authenticator.passwordChecksTotal;
  await assert.rejects(authenticator.authenticate({ user, password }, '127.0.0.9'), (error: unknown) => isFerryError(error, 'AUTH_FAILED'));
  return authenticator.passwordChecksTotal - before;
}

test('login timing - an unknown user, a user with only a token and a wrong password each cost one password check', async () => {
  const file = await usersFile({ alice: { password: 'right' }, service: { token: 'fry_service-token' } });
  const authenticator = new Authenticator(null, new SystemClock(), silentLogger, file, { required: true, failureDelayMsMin: 1, failureDelayMsMax: 1 });
  // The failure delay's timer does not hold the process open (SystemClock unrefs it): this does.
  const keepAlive = setInterval(() => undefined, 1000);
  try {
    assert.equal(await failedLogin(authenticator, 'alice', 'wrong'), 1, 'known user, wrong password');
    assert.equal(await failedLogin(authenticator, 'mallory', 'guess'), 1, 'unknown user: the same work');
    assert.equal(await failedLogin(authenticator, 'service', 'guess'), 1, 'a user without a password: the same work');
    const before = authenticator.passwordChecksTotal;
    assert.deepEqual(await authenticator.authenticate({ user: 'alice', password: 'right' }, '127.0.0.9'), { name: 'alice' });
    assert.equal(authenticator.passwordChecksTotal - before, 1);
  } finally {
    clearInterval(keepAlive);
    authenticator.close();
  }
});

test('login timing - the decoy costs what the users\' hashes cost, and matches no password', async () => {
  const file = await usersFile({ alice: { password: 'right' } });
  const decoy = decoyHash(file.users['alice']!.password);
  assert.equal(decoy.N, TEST_SCRYPT_COST);
  assert.equal(decoy.r, file.users['alice']!.password!.r);
  assert.notEqual(decoy.hash, file.users['alice']!.password!.hash);
});
