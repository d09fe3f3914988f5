/**
 * Checks credentials against the current users file and answers permission questions for a
 * connected principal. Grants are looked up by name on every question, so a reloaded file takes
 * effect for existing connections at once. Failed logins are slowed per remote address and per
 * user (an exponential delay, capped), which makes brute force slow without locking anyone out.
 */
import { watchFile, unwatchFile } from 'node:fs';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { FerryError } from '../protocol/errors.js';
import { tokenMatches, verifyPassword } from './password.js';
import { isAllowed, type Action, type Resource } from './policy.js';
import { grantsOf, readUsersFile, type UsersFile } from './users-file.js';

/** First failure's delay; it doubles per failure up to the cap. */
export const LOGIN_FAILURE_DELAY_MS_MIN = 100;
export const LOGIN_FAILURE_DELAY_MS_MAX = 5_000;
/** A quiet period after which a source's failures are forgotten. */
export const LOGIN_FAILURE_MEMORY_MS = 60_000;
/** Failure counters kept (per address and per user); the oldest go first beyond it. */
const FAILURE_COUNTERS_MAX = 10_000;
/** How often the users file is checked for changes (a change takes effect within 1 s). */
export const USERS_FILE_POLL_MS = 250;

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
  private file: UsersFile;
  private readonly failures = new Map<string, FailureCount>();
  private watching = false;

  constructor(
    private readonly path: string | null,
    private readonly clock: Clock,
    private readonly logger: Logger,
    file?: UsersFile,
  ) {
    this.file = file ?? (path === null ? { version: 1, users: {}, roles: {} } : readUsersFile(path));
  }

  /** Whether any user is configured: if not, authentication is off (and the broker stays on loopback). */
  get enabled(): boolean {
    return Object.keys(this.file.users).length > 0;
  }

  get userCount(): number {
    return Object.keys(this.file.users).length;
  }

  /** Re-reads the users file; a broken file is reported and the previous one kept. */
  reload(): boolean {
    if (this.path === null) return false;
    try {
      this.file = readUsersFile(this.path);
      this.logger.info('security.users.reloaded', { path: this.path, users: this.userCount });
      return true;
    } catch (error) {
      this.logger.error('security.users.reload_failed', { path: this.path, error });
      return false;
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
  }

  /** Resolves with the principal, or rejects with AUTH_FAILED after a delay that grows with failures. */
  async authenticate(credentials: Credentials, remoteAddress: string): Promise<Principal> {
    const name = await this.check(credentials);
    if (name !== null) {
      this.failures.delete(`user:${credentials.user ?? ''}`);
      return { name };
    }
    const delayMs = Math.max(this.recordFailure(`addr:${remoteAddress}`), this.recordFailure(`user:${credentials.user ?? ''}`));
    this.logger.warn('security.login_failed', { user: credentials.user, address: remoteAddress, delayMs });
    await new Promise<void>((resolve) => this.clock.schedule(delayMs, resolve));
    throw new FerryError('AUTH_FAILED', 'authentication failed: unknown user, wrong password or token');
  }

  private async check(credentials: Credentials): Promise<string | null> {
    if (credentials.token !== undefined) {
      for (const [name, user] of Object.entries(this.file.users)) {
        if ((user.tokens ?? []).some((stored) => tokenMatches(credentials.token!, stored))) return name;
      }
      return null;
    }
    if (credentials.user === undefined || credentials.password === undefined) return null;
    const user = this.file.users[credentials.user];
    if (user?.password === undefined) return null;
    return (await verifyPassword(credentials.password, user.password)) ? credentials.user : null;
  }

  private recordFailure(key: string): number {
    const nowMs = this.clock.monotonicMs();
    const previous = this.failures.get(key);
    const failures = previous !== undefined && nowMs - previous.lastMs < LOGIN_FAILURE_MEMORY_MS ? previous.failures + 1 : 1;
    this.failures.delete(key);
    this.failures.set(key, { failures, lastMs: nowMs });
    if (this.failures.size > FAILURE_COUNTERS_MAX) this.failures.delete(this.failures.keys().next().value!);
    return Math.min(LOGIN_FAILURE_DELAY_MS_MAX, LOGIN_FAILURE_DELAY_MS_MIN * 2 ** (failures - 1));
  }

  /** Whether `principal` may do `action` on `resource`; with no users configured, everything is allowed. */
  allows(principal: Principal | null, action: Action, resource: Resource): boolean {
    if (!this.enabled) return true;
    if (principal === null) return false;
    return isAllowed(grantsOf(this.file, principal.name), action, resource);
  }

  /** Throws FORBIDDEN unless allowed. */
  authorize(principal: Principal | null, action: Action, resource: Resource): void {
    if (!this.allows(principal, action, resource)) {
      const what = resource.group === undefined ? resource.topic : `${resource.topic} (group ${resource.group})`;
      throw new FerryError('FORBIDDEN', `${principal?.name ?? 'anonymous'} may not ${action} ${what}`);
    }
  }
}
