/**
 * Checks credentials against the current users file and answers permission questions for a
 * connected principal. Grants are looked up by name on every question, so a reloaded file takes
 * effect for existing connections at once; listeners (onChange) hear of every reload, so that
 * long-lived grants (subscriptions) can be checked again. Failed logins are slowed per remote
 * address and per user (an exponential delay, capped), which makes brute force slow without
 * locking anyone out.
 *
 * A password that verified is remembered (an HMAC of user and password under a per-process key,
 * never the password) until the file changes, so a client that logs in per request (HTTP Basic)
 * pays the deliberately slow scrypt once, not on every call.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { watchFile, unwatchFile } from 'node:fs';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { FerryError } from '../errors.js';
import { decoyHash, hashToken, verifyPassword, type PasswordHash } from './password.js';
import { PasswordThreads } from './password-threads.js';
import { isAllowed, isVisible, type Action, type Resource } from './policy.js';
import { grantsOf, readUsersFile, type UsersFile } from './users-file.js';
import { silentAudit, type AuditLog } from './audit.js';
import { certificateRefusal, type PresentedCertificate } from './tls.js';

/** First failure's delay; it doubles per failure up to the cap. */
export const LOGIN_FAILURE_DELAY_MS_MIN = 100;
export const LOGIN_FAILURE_DELAY_MS_MAX = 5_000;
/** A quiet period after which a source's failures are forgotten. */
export const LOGIN_FAILURE_MEMORY_MS = 60_000;
/** Failure counters kept (per address and per user); the oldest go first beyond it. */
const FAILURE_COUNTERS_MAX = 10_000;
/** How often the users file is checked for changes (a change takes effect within 1 s). */
export const USERS_FILE_POLL_MS = 250;
/** Verified passwords remembered: one per active HTTP user is plenty; beyond it the oldest are forgotten. */
const VERIFIED_CACHE_MAX = 1_000;
/**
 * scrypt runs on libuv's threadpool (4 threads by default), which the storage engine's file I/O
 * shares: a storm of logins must not take every thread, or publishes wait behind password hashes.
 * Two at a time leave the other threads to the disk.
 */
export const PASSWORD_CHECKS_CONCURRENT_MAX = 2;
/** Logins waiting for a password check at most; beyond it a login is refused BROKER_BUSY (retryable). */
export const PASSWORD_CHECKS_QUEUED_MAX = 1_000;
/** A failed login's user name is logged up to this length: it is whatever the client sent. */
const HELLO_USER_LOGGED_CHARS_MAX = 256;

export interface AuthenticatorOptions {
  /**
   * Authentication is required even while the file holds no users (deny by default: nobody can
   * connect until a user is added). `ferry serve --users FILE` sets it; without it, an empty file
   * means "authentication off".
   */
  required?: boolean;
  /** First failed login's delay, doubling per failure (default LOGIN_FAILURE_DELAY_MS_MIN). */
  failureDelayMsMin?: number;
  /** Cap of that delay (default LOGIN_FAILURE_DELAY_MS_MAX). */
  failureDelayMsMax?: number;
  /** Where logins and user changes are recorded (audit.ts); default: nowhere. */
  audit?: AuditLog;
}

export interface Credentials {
  user?: string;
  password?: string;
  token?: string;
}

export interface Principal {
  name: string;
}

interface FailureCount {
  failures: number;
  lastMs: number;
}

export class Authenticator {
  private file!: UsersFile;
  /** Stored token hash → user, rebuilt with every file. */
  private tokenOwners = new Map<string, string>();
  private readonly verified = new Map<string, string>();
  /** Key of the verified-password cache: random per process, so the cache is useless outside it. */
  private readonly cacheKey = randomBytes(32);
  private readonly failures = new Map<string, FailureCount>();
  private readonly listeners = new Set<() => void>();
  private passwordChecks = 0;
  /** Password checks run (scrypt derivations), decoys for unknown users included. */
  passwordChecksTotal = 0;
  /** What a login for a user without a password is checked against (password.ts decoyHash). */
  private decoy: PasswordHash = decoyHash();
  private readonly passwordCheckQueue: Array<() => void> = [];
  /** Where scrypt runs: threads at a lower priority than the broker's (password-threads.ts). */
  private readonly passwordThreads = new PasswordThreads();
  private readonly required: boolean;
  private readonly failureDelayMsMin: number;
  private readonly failureDelayMsMax: number;
  private watching = false;
  readonly audit: AuditLog;

  constructor(
    private readonly path: string | null,
    private readonly clock: Clock,
    private readonly logger: Logger,
    file?: UsersFile,
    options: AuthenticatorOptions = {},
  ) {
    this.required = options.required ?? false;
    this.failureDelayMsMin = options.failureDelayMsMin ?? LOGIN_FAILURE_DELAY_MS_MIN;
    this.failureDelayMsMax = options.failureDelayMsMax ?? LOGIN_FAILURE_DELAY_MS_MAX;
    this.audit = options.audit ?? silentAudit;
    this.install(file ?? (path === null ? { version: 1, users: {}, roles: {} } : readUsersFile(path)));
  }

  /**
   * Whether authentication is on: some user is configured, or it was required from the start.
   * Off, every client may do everything (and `ferry serve` stays on loopback).
   */
  get enabled(): boolean {
    return this.required || this.userCount > 0;
  }

  get userCount(): number {
    return Object.keys(this.file.users).length;
  }

  /** Calls `listener` after every change of the users (reload or replace); returns an unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Re-reads the users file; a broken file is reported and the previous one kept. */
  reload(): boolean {
    if (this.path === null) return false;
    try {
      this.install(readUsersFile(this.path));
      this.logger.info('security.users.reloaded', { path: this.path, users: this.userCount });
    } catch (error) {
      this.logger.error('security.users.reload_failed', { path: this.path, error });
      return false;
    }
    this.notify();
    return true;
  }

  /** Uses `file` from now on (embedding and tests; the broker process reloads from its path). */
  replace(file: UsersFile): void {
    this.install(file);
    this.notify();
  }

  private install(file: UsersFile): void {
    if (this.file !== undefined) this.auditChanges(this.file, file);
    const owners = new Map<string, string>();
    for (const [name, user] of Object.entries(file.users)) for (const stored of user.tokens ?? []) owners.set(stored, name);
    this.file = file;
    this.tokenOwners = owners;
    // The decoy costs what the users' own hashes cost (the first one found; they share one cost).
    this.decoy = decoyHash(Object.values(file.users).find((user) => user.password !== undefined)?.password);
    // A changed or removed password must not keep working from the cache.
    this.verified.clear();
  }

  /** Records who was added, removed or changed (grants, password, tokens) between two files. */
  private auditChanges(before: UsersFile, after: UsersFile): void {
    const names = new Set([...Object.keys(before.users), ...Object.keys(after.users)]);
    const added: string[] = [];
    const removed: string[] = [];
    const changed: string[] = [];
    for (const name of names) {
      const old = before.users[name];
      const now = after.users[name];
      if (old === undefined) added.push(name);
      else if (now === undefined) removed.push(name);
      else if (JSON.stringify(old) !== JSON.stringify(now)) changed.push(name);
    }
    const rolesChanged = JSON.stringify(before.roles) !== JSON.stringify(after.roles);
    if (added.length + removed.length + changed.length === 0 && !rolesChanged) return;
    this.audit.record('users.changed', { path: this.path, added, removed, changed, rolesChanged });
  }

  private notify(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.logger.error('security.users.listener_failed', { error });
      }
    }
  }

  /** Reloads whenever the file changes (polled: works on every filesystem). */
  watch(): void {
    if (this.path === null || this.watching) return;
    this.watching = true;
    watchFile(this.path, { interval: USERS_FILE_POLL_MS, persistent: false }, (current, previous) => {
      if (current.mtimeMs !== previous.mtimeMs || current.size !== previous.size) this.reload();
    });
  }

  close(): void {
    if (this.path !== null && this.watching) unwatchFile(this.path);
    this.watching = false;
    this.passwordThreads.close();
  }

  /** Resolves with the principal, or rejects with AUTH_FAILED after a delay that grows with failures. */
  async authenticate(credentials: Credentials, remoteAddress: string): Promise<Principal> {
    const name = await this.check(credentials);
    const method = credentials.token !== undefined ? 'token' : 'password';
    if (name !== null) {
      this.failures.delete(`user:${credentials.user ?? ''}`);
      this.audit.loginSucceeded(name, remoteAddress, method);
      return { name };
    }
    const delayMs = Math.max(this.recordFailure(`addr:${remoteAddress}`), this.recordFailure(`user:${credentials.user ?? ''}`));
    this.logger.warn('security.login_failed', { user: credentials.user, address: remoteAddress, delayMs });
    this.audit.record('login.failed', { user: credentials.user?.slice(0, HELLO_USER_LOGGED_CHARS_MAX) ?? null, address: remoteAddress, method, delayMs });
    await new Promise<void>((resolve) => this.clock.schedule(delayMs, resolve));
    throw new FerryError('AUTH_FAILED', 'authentication failed: unknown user, wrong password or token');
  }

  private async check(credentials: Credentials): Promise<string | null> {
    if (credentials.token !== undefined) {
      // Tokens are 256-bit random secrets: looking up their hash reveals nothing worth timing.
      const name = this.tokenOwners.get(hashToken(credentials.token));
      return name !== undefined && this.file.users[name] !== undefined ? name : null;
    }
    if (credentials.user === undefined || credentials.password === undefined) return null;
    const name = credentials.user;
    const user = this.file.users[name];
    if (user?.password === undefined) {
      // As much work as a wrong password for a known user: the answer's time must not tell the names apart.
      const decoy = this.decoy;
      await this.throttled(() => verifyPassword(credentials.password!, decoy, this.passwordThreads.derive));
      return null;
    }
    const cacheKey = createHmac('sha256', this.cacheKey).update(name).update('\0').update(credentials.password).digest('base64');
    if (this.verified.get(cacheKey) === name) return name;
    const file = this.file;
    if (!(await this.throttled(() => verifyPassword(credentials.password!, user.password!, this.passwordThreads.derive)))) return null;
    // Remember it only if the file did not change while scrypt ran.
    if (this.file === file) {
      if (this.verified.size >= VERIFIED_CACHE_MAX) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(cacheKey, name);
    }
    return name;
  }

  /** Runs a password check when fewer than PASSWORD_CHECKS_CONCURRENT_MAX run, else queues it. */
  private async throttled<T>(check: () => Promise<T>): Promise<T> {
    if (this.passwordChecks >= PASSWORD_CHECKS_CONCURRENT_MAX) {
      if (this.passwordCheckQueue.length >= PASSWORD_CHECKS_QUEUED_MAX) {
        throw new FerryError('BROKER_BUSY', `${PASSWORD_CHECKS_QUEUED_MAX} logins are waiting to be checked; try again shortly`);
      }
      await new Promise<void>((resolve) => this.passwordCheckQueue.push(resolve));
    } else {
      this.passwordChecks++;
    }
    try {
      this.passwordChecksTotal += 1;
      return await check();
    } finally {
      // Hand the slot to the next waiter, or give it back.
      const next = this.passwordCheckQueue.shift();
      if (next !== undefined) next();
      else this.passwordChecks--;
    }
  }

  /**
   * The login of a client certificate presented over mutual TLS: it must verify against the CA and
   * its subject CN name a configured user (the certificate replaces the password; the user's rules
   * still apply). Recorded like a password login, with the certificate's subject and fingerprint:
   * `audit.login.succeeded`, or `audit.login.failed` before AUTH_FAILED is thrown.
   */
  certificateLogin(certificate: PresentedCertificate, address: string): Principal {
    const details = { subject: certificate.subject, fingerprint: certificate.fingerprint };
    const name = certificate.commonName;
    const refusal =
      certificateRefusal(certificate) ??
      (this.file.users[name!] === undefined ? new FerryError('AUTH_FAILED', `the client certificate's subject CN=${name} is not a configured user`) : null);
    if (refusal !== null) {
      this.audit.certificateRefused(name?.slice(0, HELLO_USER_LOGGED_CHARS_MAX) ?? null, address, refusal.message, details);
      throw refusal;
    }
    this.audit.loginSucceeded(name!, address, 'certificate', details);
    return { name: name! };
  }

  /** Whether `name` is a configured user now (a removed user's connections lose every grant). */
  hasUser(name: string): boolean {
    return this.file.users[name] !== undefined;
  }

  private recordFailure(key: string): number {
    const nowMs = this.clock.monotonicMs();
    const previous = this.failures.get(key);
    const failures = previous !== undefined && nowMs - previous.lastMs < LOGIN_FAILURE_MEMORY_MS ? previous.failures + 1 : 1;
    this.failures.delete(key);
    this.failures.set(key, { failures, lastMs: nowMs });
    if (this.failures.size > FAILURE_COUNTERS_MAX) this.failures.delete(this.failures.keys().next().value!);
    return Math.min(this.failureDelayMsMax, this.failureDelayMsMin * 2 ** Math.min(failures - 1, 30));
  }

  /** Whether `principal` may do `action` on `resource`; with no users configured, everything is allowed. */
  allows(principal: Principal | null, action: Action, resource: Resource): boolean {
    if (!this.enabled) return true;
    if (principal === null) return false;
    return isAllowed(grantsOf(this.file, principal.name), action, resource);
  }

  /** Whether `principal` may see `topic` at all (some action on it is allowed); everything, with authentication off. */
  sees(principal: Principal | null, topic: string): boolean {
    if (!this.enabled) return true;
    if (principal === null) return false;
    return isVisible(grantsOf(this.file, principal.name), topic);
  }

  /** Throws FORBIDDEN unless allowed. */
  authorize(principal: Principal | null, action: Action, resource: Resource): void {
    if (!this.allows(principal, action, resource)) {
      const what = resource.group === undefined ? resource.topic : `${resource.topic} (group ${resource.group})`;
      throw new FerryError('FORBIDDEN', `${principal?.name ?? 'anonymous'} may not ${action} ${what}`);
    }
  }
}
