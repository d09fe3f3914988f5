/**
 * The audit log: security events on a logger of their own (`name: "ferry.audit"` on every line), so
 * an operator can keep them apart from the broker's other events, ship them elsewhere, and keep them
 * longer. Events (docs/SECURITY.md, "Audit log"): `audit.login.succeeded` / `audit.login.failed`
 * (passwords, tokens and client certificates alike),
 * `audit.refused` (FORBIDDEN, RATE_LIMITED, a 401 on the HTTP port), `audit.users.changed` (who was
 * added, removed or changed when the users file was read again), and the admin actions
 * `audit.topic.created`, `audit.topic.deleted`, `audit.group.reset`, `audit.redrive`.
 */
import type { Clock } from '../platform/clock.js';
import { silentLogger, type LogFields, type Logger } from '../platform/logger.js';

/** The logger name audit lines carry. */
export const AUDIT_LOGGER_NAME = 'ferry.audit';
/**
 * A successful login is recorded once per user and address in this window (HTTP clients log in on
 * every request, and the audit log must not become a request log), a refusal once per caller and
 * reason.
 */
export const AUDIT_LOGIN_REPEAT_MS = 60_000;
/** Users and addresses remembered for that window, at most; past it the memory starts again. */
const AUDIT_LOGINS_REMEMBERED_MAX = 10_000;

/** Which client certificate a login used: its subject and SHA-256 fingerprint. */
export interface CertificateDetails {
  subject: string;
  fingerprint: string;
}

export type AuditEvent = 'login.succeeded' | 'login.failed' | 'refused' | 'users.changed' | 'topic.created' | 'topic.deleted' | 'group.reset' | 'redrive';

/** Events that mean someone was kept out: logged at warn. */
const WARN_EVENTS: ReadonlySet<AuditEvent> = new Set(['login.failed', 'refused']);

export class AuditLog {
  /** When each repeated event (a login, a refusal) was last recorded. */
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly logger: Logger,
    private readonly clock: Clock | null = null,
  ) {}

  record(event: AuditEvent, fields: LogFields): void {
    if (WARN_EVENTS.has(event)) this.logger.warn(`audit.${event}`, fields);
    else this.logger.info(`audit.${event}`, fields);
  }

  /**
   * A successful login, recorded at most once per user and address per AUDIT_LOGIN_REPEAT_MS (per
   * certificate too, for a certificate login: `details` has its subject and fingerprint).
   */
  loginSucceeded(user: string, address: string, method: string, details: CertificateDetails | null = null): void {
    this.recordOnce(`login\0${user}\0${address}\0${details?.fingerprint ?? ''}`, 'login.succeeded', { user, address, method, ...details });
  }

  /**
   * A client certificate refused (not trusted, no CN, or a CN naming no user). Such a refusal is not
   * slowed as a wrong password is (nothing is guessed), and an HTTP client repeats it on every
   * request, so it is recorded once per certificate, address and reason per AUDIT_LOGIN_REPEAT_MS.
   */
  certificateRefused(user: string | null, address: string, reason: string, details: CertificateDetails): void {
    this.recordOnce(`certificate\0${details.fingerprint}\0${address}\0${reason}`, 'login.failed', { user, address, method: 'certificate', reason, ...details });
  }

  /** A refusal, recorded at most once per caller and reason per AUDIT_LOGIN_REPEAT_MS (a client repeating one is not a log storm). */
  refused(user: string | null, address: string, code: string, reason: string): void {
    // Numbers in a reason (a quota's retry time) would make every repeat look new.
    this.recordOnce(`refused\0${user ?? ''}\0${address}\0${code}\0${reason.replace(/\d+/g, '#')}`, 'refused', { user, address, code, reason });
  }

  private recordOnce(key: string, event: AuditEvent, fields: LogFields): void {
    const nowMs = this.clock?.monotonicMs() ?? 0;
    const last = this.recent.get(key);
    if (this.clock !== null && last !== undefined && nowMs - last < AUDIT_LOGIN_REPEAT_MS) return;
    if (this.recent.size >= AUDIT_LOGINS_REMEMBERED_MAX) this.recent.clear();
    this.recent.set(key, nowMs);
    this.record(event, fields);
  }
}

/** Records nothing (embedding and tests that do not look). */
export const silentAudit = new AuditLog(silentLogger);
