/**
 * A broker with security on, as `ferry serve` wires it but in-process: a real Broker in a temp
 * directory, one Authenticator over a users file there, one AccessGuard, the TCP server and
 * (optionally) the admin HTTP port with its API, gRPC and Connect services — all on 127.0.0.1,
 * port 0. Users are written with a cheap scrypt cost so that tests stay fast.
 */
import { join } from 'node:path';
import { Broker } from '../../src/broker/broker.js';
import { AdminServer } from '../../src/admin/admin-server.js';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger, type Logger } from '../../src/platform/logger.js';
import { Authenticator } from '../../src/security/authenticator.js';
import { AccessGuard } from '../../src/security/guard.js';
import type { AuditLog } from '../../src/security/audit.js';
import { HttpSecurity } from '../../src/security/http-auth.js';
import { hashPassword, hashToken } from '../../src/security/password.js';
import { parseRule, type Action, type Rule } from '../../src/security/policy.js';
import { PublishQuota } from '../../src/security/quota.js';
import { Rejections } from '../../src/security/rejections.js';
import type { TlsMaterial } from '../../src/security/tls.js';
import { writeUsersFile, type UsersFile } from '../../src/security/users-file.js';
import { TcpServer, type TcpServerOptions } from '../../src/transport/tcp/server.js';
import { tempDir, type TempDir } from '../helpers.js';

/** scrypt cost for test users: 2^10 takes about a millisecond (the real default, 2^15, ~50 ms). */
export const TEST_SCRYPT_COST = 1 << 10;

export interface UserSpec {
  password?: string;
  /** A token in clear; the file keeps its hash. */
  token?: string;
  /** Rules as `action:topic` or `consume:topic:group`. */
  allow?: string[];
  deny?: string[];
  roles?: string[];
}

export function rule(text: string): Rule {
  const colon = text.indexOf(':');
  return parseRule(text.slice(0, colon) as Action, text.slice(colon + 1));
}

export async function usersFile(users: Record<string, UserSpec>, roles: Record<string, { allow?: string[]; deny?: string[] }> = {}): Promise<UsersFile> {
  const file: UsersFile = { version: 1, users: {}, roles: {} };
  for (const [name, spec] of Object.entries(roles)) file.roles[name] = { allow: (spec.allow ?? []).map(rule), deny: (spec.deny ?? []).map(rule) };
  for (const [name, spec] of Object.entries(users)) {
    file.users[name] = {
      ...(spec.password === undefined ? {} : { password: await hashPassword(spec.password, TEST_SCRYPT_COST) }),
      tokens: spec.token === undefined ? [] : [hashToken(spec.token)],
      roles: spec.roles ?? [],
      allow: (spec.allow ?? []).map(rule),
      deny: (spec.deny ?? []).map(rule),
    };
  }
  return file;
}

export interface SecureOptions {
  users: UsersFile;
  /** Authentication on even with no users (default: true, as `ferry serve --users`). */
  required?: boolean;
  tls?: { material: TlsMaterial; required?: boolean; handshakeTimeoutMs?: number };
  /** Also start the admin HTTP port (API, gRPC, Connect); over TLS when `tls` is given. */
  http?: boolean;
  quota?: { messagesPerSecond: number; burstMessages: number };
  tcp?: TcpServerOptions;
  logger?: Logger;
  /** Where security events go (src/security/audit.ts); default: nowhere. */
  audit?: AuditLog;
}

export interface SecureBroker {
  dir: TempDir;
  usersPath: string;
  broker: Broker;
  authenticator: Authenticator;
  guard: AccessGuard;
  rejections: Rejections;
  server: TcpServer;
  port: number;
  admin: AdminServer | null;
  httpPort: number;
  /** Rewrites the users file and reloads it (what the file watch or SIGHUP does). */
  replaceUsers(file: UsersFile): void;
  close(): Promise<void>;
}

export async function startSecure(options: SecureOptions): Promise<SecureBroker> {
  const dir = await tempDir('ferry-sec-');
  const clock = new SystemClock();
  const logger = options.logger ?? silentLogger;
  const usersPath = join(dir.path, 'users.json');
  writeUsersFile(usersPath, options.users);
  const broker = await Broker.open({ dir: join(dir.path, 'data'), logger });
  const authenticator = new Authenticator(usersPath, clock, logger, undefined, { required: options.required ?? true, ...(options.audit === undefined ? {} : { audit: options.audit }) });
  const quota = options.quota === undefined ? null : new PublishQuota(options.quota.messagesPerSecond, options.quota.burstMessages, clock);
  const guard = new AccessGuard(authenticator, { quota, logger });
  const rejections = new Rejections();
  const tls = options.tls;
  const server = new TcpServer(broker, {
    logger,
    clock,
    ...options.tcp,
    security: { authenticator, guard },
    rejections,
    tls: tls === undefined ? null : { ...tls.material, required: tls.required ?? false, ...(tls.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: tls.handshakeTimeoutMs }) },
  });
  const { port } = await server.listen(0, '127.0.0.1');
  let admin: AdminServer | null = null;
  if (options.http === true) {
    admin = await AdminServer.start({
      host: '127.0.0.1',
      port: 0,
      clock,
      logger,
      security: new HttpSecurity(authenticator, guard, rejections, logger),
      rejections,
      ...(tls === undefined ? {} : { tls: { ...tls.material, requestCert: tls.material.ca !== undefined, rejectUnauthorized: false } }),
    });
    admin.attach({ broker, connections: server, tcp: { host: '127.0.0.1', port } });
  }
  return {
    dir,
    usersPath,
    broker,
    authenticator,
    guard,
    rejections,
    server,
    port,
    admin,
    httpPort: admin?.port ?? 0,
    replaceUsers(file) {
      writeUsersFile(usersPath, file);
      authenticator.reload();
    },
    async close() {
      await admin?.close();
      await server.close();
      guard.close();
      authenticator.close();
      await broker.close();
      await dir.remove();
    },
  };
}

/** `Authorization: Basic` for a user and password. */
export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}
