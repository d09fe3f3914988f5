/**
 * The users file: who may connect (password hashes, service-token hashes) and what each may do
 * (allow/deny rules, directly or through roles). `ferry users` edits it; the broker reads it at
 * start and again on SIGHUP or when the file changes.
 *
 * {
 *   "version": 1,
 *   "users": { "alice": { "password": {scrypt hash}, "tokens": ["<sha256>"], "roles": ["ops"],
 *                         "allow": [{"action":"publish","topic":"orders.*"}], "deny": [] } },
 *   "roles": { "ops": { "allow": [{"action":"admin","topic":"*"}], "deny": [] } }
 * }
 */
import { readFileSync, renameSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';
import { FerryError } from '../errors.js';
import { ACTIONS, type Grants, type Rule } from './policy.js';
import type { PasswordHash } from './password.js';

export const USERS_FILE_VERSION = 1;
/** Users in one file: the file is read whole into memory on every change. */
export const USERS_MAX = 10_000;
/** Rules per user or role. */
export const RULES_MAX = 1_000;

export interface UserEntry {
  password?: PasswordHash;
  tokens?: string[];
  roles?: string[];
  allow?: Rule[];
  deny?: Rule[];
}

export interface UsersFile {
  version: number;
  users: Record<string, UserEntry>;
  roles: Record<string, { allow?: Rule[]; deny?: Rule[] }>;
}

export function emptyUsersFile(): UsersFile {
  return { version: USERS_FILE_VERSION, users: {}, roles: {} };
}

function invalid(path: string, message: string): FerryError {
  return new FerryError('INVALID_ARGUMENT', `users file ${path}: ${message}`);
}

function checkRules(path: string, where: string, rules: unknown): Rule[] {
  if (rules === undefined) return [];
  if (!Array.isArray(rules) || rules.length > RULES_MAX) throw invalid(path, `${where} must be a list of at most ${RULES_MAX} rules`);
  return rules.map((rule, index) => {
    const { action, topic, group } = (rule ?? {}) as Record<string, unknown>;
    if (!ACTIONS.includes(action as Rule['action'])) throw invalid(path, `${where}[${index}].action must be one of ${ACTIONS.join(', ')}`);
    if (typeof topic !== 'string' || topic === '') throw invalid(path, `${where}[${index}].topic must be a pattern`);
    if (group !== undefined && typeof group !== 'string') throw invalid(path, `${where}[${index}].group must be a pattern`);
    return group === undefined ? { action: action as Rule['action'], topic } : { action: action as Rule['action'], topic, group };
  });
}

/** Parses and checks a users file; errors name the bad field. */
export function parseUsersFile(text: string, path: string): UsersFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new FerryError('INVALID_ARGUMENT', `users file ${path} is not valid JSON`, { cause });
  }
  const file = raw as Partial<UsersFile>;
  if (file.version !== USERS_FILE_VERSION) throw invalid(path, `version must be ${USERS_FILE_VERSION}`);
  const users = file.users ?? {};
  const roles = file.roles ?? {};
  if (typeof users !== 'object' || Object.keys(users).length > USERS_MAX) throw invalid(path, `users must be an object of at most ${USERS_MAX} users`);
  const parsed: UsersFile = { version: USERS_FILE_VERSION, users: {}, roles: {} };
  for (const [name, role] of Object.entries(roles)) {
    parsed.roles[name] = { allow: checkRules(path, `roles.${name}.allow`, role?.allow), deny: checkRules(path, `roles.${name}.deny`, role?.deny) };
  }
  for (const [name, user] of Object.entries(users)) {
    const entry: UserEntry = {
      allow: checkRules(path, `users.${name}.allow`, user?.allow),
      deny: checkRules(path, `users.${name}.deny`, user?.deny),
      roles: Array.isArray(user?.roles) ? user.roles.map(String) : [],
      tokens: Array.isArray(user?.tokens) ? user.tokens.map(String) : [],
    };
    for (const role of entry.roles!) if (!(role in parsed.roles)) throw invalid(path, `users.${name}.roles names unknown role ${role}`);
    if (user?.password !== undefined) {
      const { algorithm, N, r, p, salt, hash } = user.password;
      if (algorithm !== 'scrypt' || !Number.isInteger(N) || !Number.isInteger(r) || !Number.isInteger(p) || typeof salt !== 'string' || typeof hash !== 'string') {
        throw invalid(path, `users.${name}.password is not a scrypt hash`);
      }
      entry.password = { algorithm, N, r, p, salt, hash };
    }
    parsed.users[name] = entry;
  }
  return parsed;
}

export function readUsersFile(path: string): UsersFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyUsersFile();
    throw error;
  }
  return parseUsersFile(text, path);
}

/** Replaces the file atomically (temp, fsync, rename, fsync of the directory), mode 0600. */
export function writeUsersFile(path: string, file: UsersFile): void {
  const temp = `${path}.tmp`;
  writeFileSync(temp, JSON.stringify(file, null, 2) + '\n', { mode: 0o600 });
  const handle = openSync(temp, 'r');
  fsyncSync(handle);
  closeSync(handle);
  renameSync(temp, path);
  const dir = openSync(dirname(path), 'r');
  fsyncSync(dir);
  closeSync(dir);
}

/** A user's grants: its own rules and its roles'. */
export function grantsOf(file: UsersFile, user: string): Grants[] {
  const entry = file.users[user];
  if (entry === undefined) return [];
  const grants: Grants[] = [{ allow: entry.allow ?? [], deny: entry.deny ?? [] }];
  for (const role of entry.roles ?? []) {
    const rules = file.roles[role];
    if (rules !== undefined) grants.push({ allow: rules.allow ?? [], deny: rules.deny ?? [] });
  }
  return grants;
}
