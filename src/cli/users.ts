/**
 * `ferry users add|remove|passwd|token`: edits the users file the broker reads (--users). Passwords
 * come from stdin (one line), never from the command line, where `ps` would show them.
 * `--replicate` makes the user the brokers of a cluster log in to each other as.
 */
import { existsSync } from 'node:fs';
import { hashPassword, newToken } from '../security/password.js';
import { parseRule, type Rule } from '../security/policy.js';
import { readUsersFile, writeUsersFile } from '../security/users-file.js';
import { parse, UsageError } from './args.js';

export const USERS_USAGE = `ferry users add <name> --file FILE [--publish PATTERN]... [--consume PATTERN[:GROUP]]... [--admin] [--replicate] [--metrics] [--role ROLE]...
ferry users remove <name> --file FILE
ferry users passwd <name> --file FILE          (password from stdin)
ferry users token <name> --file FILE           (prints a new service token, once)
ferry users list --file FILE`;

/** Shortest password accepted: anything shorter is guessable whatever the hash. */
export const PASSWORD_CHARS_MIN = 8;

async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('password: ');
  let input = '';
  for await (const chunk of process.stdin) input += String(chunk);
  const password = input.split(/\r?\n/)[0] ?? '';
  if (password.length < PASSWORD_CHARS_MIN) throw new UsageError(`the password must have at least ${PASSWORD_CHARS_MIN} characters`);
  return password;
}

export const USERS_ACTIONS = ['add', 'remove', 'passwd', 'token', 'list'] as const;

export const USERS_FLAGS = {
  file: { type: 'string' },
  publish: { type: 'string', multiple: true },
  consume: { type: 'string', multiple: true },
  admin: { type: 'boolean' },
  // The other brokers of a cluster log in as such a user (cluster.user, docs/CLUSTERING.md).
  replicate: { type: 'boolean' },
  // A Prometheus scraper: may read /metrics, nothing else (docs/SECURITY.md).
  metrics: { type: 'boolean' },
  role: { type: 'string', multiple: true },
} as const;

export async function users(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parse(rest, USERS_FLAGS, 1);
  const [name] = positionals;
  if (values.file === undefined || !(USERS_ACTIONS as readonly string[]).includes(action ?? '') || (action !== 'list' && name === undefined)) {
    throw new UsageError(`usage:\n${USERS_USAGE}`);
  }
  const path = values.file;
  // Only `add` starts a new file; the others would quietly find no users in a mistyped path.
  if (action !== 'add' && !existsSync(path)) throw new UsageError(`the users file ${path} does not exist ('ferry users add NAME --file ${path}' creates it)`);
  const file = readUsersFile(path);
  switch (action) {
    case 'list':
      for (const [user, entry] of Object.entries(file.users)) {
        const rules = (entry.allow ?? []).map((rule) => `${rule.action}:${rule.topic}${rule.group === undefined ? '' : ':' + rule.group}`);
        process.stdout.write(`${user}  ${entry.password ? 'password' : 'no password'}, ${entry.tokens?.length ?? 0} tokens  ${rules.join(' ')}\n`);
      }
      return 0;
    case 'add': {
      if (file.users[name!] !== undefined) throw new UsageError(`user ${name} exists; use 'ferry users passwd' or remove it first`);
      const allow: Rule[] = [
        ...(values.publish ?? []).map((pattern) => parseRule('publish', pattern)),
        ...(values.consume ?? []).map((pattern) => parseRule('consume', pattern)),
        ...(values.admin ? [parseRule('admin', '*')] : []),
        ...(values.replicate ? [parseRule('replicate', '*')] : []),
        ...(values.metrics ? [parseRule('metrics', '*')] : []),
      ];
      for (const role of values.role ?? []) if (!(role in file.roles)) throw new UsageError(`unknown role ${role}`);
      file.users[name!] = { password: await hashPassword(await readPassword()), tokens: [], roles: values.role ?? [], allow, deny: [] };
      writeUsersFile(path, file);
      process.stdout.write(`added ${name}\n`);
      return 0;
    }
    case 'remove':
      if (file.users[name!] === undefined) throw new UsageError(`no user ${name}`);
      delete file.users[name!];
      writeUsersFile(path, file);
      process.stdout.write(`removed ${name}\n`);
      return 0;
    case 'passwd':
      if (file.users[name!] === undefined) throw new UsageError(`no user ${name}`);
      file.users[name!]!.password = await hashPassword(await readPassword());
      writeUsersFile(path, file);
      process.stdout.write(`changed the password of ${name}\n`);
      return 0;
    default: {
      const entry = file.users[name!];
      if (entry === undefined) throw new UsageError(`no user ${name}`);
      const { token, stored } = newToken();
      entry.tokens = [...(entry.tokens ?? []), stored];
      writeUsersFile(path, file);
      process.stdout.write(`${token}\n`);
      return 0;
    }
  }
}
