/**
 * Passwords are stored only as salted, slow hashes (scrypt, from node:crypto) and compared in
 * constant time. Service tokens are long random secrets, so a fast hash (SHA-256) is enough for
 * them: there is nothing to guess.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** scrypt cost: 2^15 iterations with r=8 takes ~50-100 ms and 32 MiB — slow for an attacker, fine for a login. */
export const SCRYPT_COST = 1 << 15;
export const SCRYPT_BLOCK_SIZE = 8;
export const SCRYPT_PARALLELISM = 1;
/** scrypt needs 128 * N * r bytes; Node's default cap (32 MiB) is exactly that, so raise it a little. */
const SCRYPT_MEMORY_MAX = 64 * 1024 * 1024;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Tokens: 32 random bytes, shown once, base64url. */
const TOKEN_BYTES = 32;
export const TOKEN_PREFIX = 'fry_';

export interface PasswordHash {
  algorithm: 'scrypt';
  N: number;
  r: number;
  p: number;
  salt: string;
  hash: string;
}

/** Where a scrypt key is computed: libuv's threadpool by default; the broker's password threads (password-threads.ts). */
export type ScryptDerivation = (password: string, salt: Buffer, keyBytes: number, options: ScryptOptions) => Promise<Buffer>;

/** scrypt on libuv's threadpool, at the process's priority. */
export const deriveOnThreadpool: ScryptDerivation = (password, salt, keyBytes, options) =>
  new Promise((resolve, reject) => scrypt(password, salt, keyBytes, options, (error, key) => (error ? reject(error) : resolve(key))));

function derive(password: string, salt: Buffer, N: number, r: number, p: number, derivation: ScryptDerivation = deriveOnThreadpool): Promise<Buffer> {
  return derivation(password.normalize('NFC'), salt, HASH_BYTES, { N, r, p, maxmem: SCRYPT_MEMORY_MAX });
}

export async function hashPassword(password: string, cost: number = SCRYPT_COST): Promise<PasswordHash> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(password, salt, cost, SCRYPT_BLOCK_SIZE, SCRYPT_PARALLELISM);
  return { algorithm: 'scrypt', N: cost, r: SCRYPT_BLOCK_SIZE, p: SCRYPT_PARALLELISM, salt: salt.toString('base64'), hash: hash.toString('base64') };
}

export async function verifyPassword(password: string, stored: PasswordHash, derivation?: ScryptDerivation): Promise<boolean> {
  const expected = Buffer.from(stored.hash, 'base64');
  const actual = await derive(password, Buffer.from(stored.salt, 'base64'), stored.N, stored.r, stored.p, derivation);
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/** A new service token: the secret (shown once) and what the users file keeps. */
export function newToken(): { token: string; stored: string } {
  const token = TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url');
  return { token, stored: hashToken(token) };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('base64');
}

export function tokenMatches(token: string, stored: string): boolean {
  const actual = Buffer.from(hashToken(token), 'base64');
  const expected = Buffer.from(stored, 'base64');
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

/**
 * A hash no password matches, at the cost of `like` (or the default): checking a login for an
 * unknown user against it takes as long as a wrong password for a known one, so the time of the
 * answer does not tell which user names exist.
 */
export function decoyHash(like?: PasswordHash): PasswordHash {
  return {
    algorithm: 'scrypt',
    N: like?.N ?? SCRYPT_COST,
    r: like?.r ?? SCRYPT_BLOCK_SIZE,
    p: like?.p ?? SCRYPT_PARALLELISM,
    salt: randomBytes(SALT_BYTES).toString('base64'),
    hash: randomBytes(HASH_BYTES).toString('base64'),
  };
}
