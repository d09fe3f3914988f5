/**
 * docs/CLUSTERING.md names flags, config keys and environment variables: each is held here against
 * what the broker really takes (`ferry <command> --help`, the configuration schema, `ferry serve`'s
 * flag-to-key map), so the document cannot drift from them.
 *
 * What counts as a name: every `code span` and every line of a code block. In them: a `ferry …`
 * command line's flags (checked against that command's, or its action's, usage), a flag anywhere
 * else (some ferry command's, or one of etcd's own), a `FERRY_*` variable, a dotted key of a config
 * section with two parts (three or more are log events, like `cluster.etcd.up`), a cluster setting
 * named without its section, and each row of the settings table (flag, key and variable agree).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { COMMANDS } from '../src/cli/main.js';
import { commandUsage } from '../src/cli/help.js';
import { CONNECTION_USAGE } from '../src/cli/connect-options.js';
import { FLAG_KEYS } from '../src/cli/serve.js';
import { envName, FIELDS } from '../src/config/schema.js';

/** etcd's own server flags, named where the document says how to start etcd for client certificates. */
const ETCD_FLAGS: ReadonlySet<string> = new Set(['client-cert-auth', 'trusted-ca-file', 'cert-file', 'key-file']);

const KEYS: ReadonlySet<string> = new Set(FIELDS.map((field) => field.path));
const SECTIONS: ReadonlySet<string> = new Set(FIELDS.filter((field) => field.path.includes('.')).map((field) => field.path.split('.')[0]!));
/** The settings of cluster mode: the top-level keys `ferry serve` has a cluster flag for, and every `cluster.*` key. */
const CLUSTER_KEYS: readonly string[] = FIELDS.map((field) => field.path).filter((path) => path.startsWith('cluster.') || ['nodeId', 'etcd', 'etcdCa', 'etcdCert', 'etcdKey', 'advertise'].includes(path));
const CLIENT_ENV: ReadonlySet<string> = new Set(CONNECTION_USAGE.match(/FERRY_[A-Z_]+/g) ?? []);
const ENV: ReadonlySet<string> = new Set([...FIELDS.map((field) => envName(field.path)), ...CLIENT_ENV]);
const ANY_FLAG: ReadonlySet<string> = new Set([...COMMANDS.flatMap((spec) => flagsIn(commandUsage(spec, undefined))), 'help']);

function flagsIn(text: string): string[] {
  return [...text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((match) => match[1]!);
}

/** Every code span (a span broken over lines joined with a space) and every code-block line (`\` continuations joined). */
export function codeSpans(markdown: string): string[] {
  const spans: string[] = [];
  const prose = markdown.replace(/^\s*```[^\n]*\n([\s\S]*?)^\s*```\s*$/gm, (_block, body: string) => {
    spans.push(...body.replace(/\s*\\\n\s*/g, ' ').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#')));
    return '';
  });
  for (const match of prose.matchAll(/`([^`]+)`/g)) spans.push(match[1]!.replace(/\s*\n\s*/g, ' ').trim());
  return spans;
}

/** What is wrong with the names in one span (empty: all true). */
function spanProblems(span: string): string[] {
  const problems: string[] = [];
  if (/^ferry\s/.test(span)) problems.push(...commandProblems(span));
  else if (!/^etcd(ctl)?\s/.test(span)) {
    for (const flag of flagsIn(span)) if (!ANY_FLAG.has(flag) && !ETCD_FLAGS.has(flag)) problems.push(`--${flag} (in \`${span}\`) is a flag of no ferry command`);
  }
  for (const name of span.match(/\bFERRY_[A-Z0-9_]+/g) ?? []) if (!ENV.has(name)) problems.push(`${name} is no config key's variable nor the client's`);
  if (/^[a-z][a-zA-Z0-9]*\.[a-z][a-zA-Z0-9]*$/.test(span) && SECTIONS.has(span.split('.')[0]!) && !KEYS.has(span)) {
    problems.push(`\`${span}\` is not a config key`);
  }
  const sectionless = CLUSTER_KEYS.find((key) => key.startsWith('cluster.') && key.slice('cluster.'.length) === span);
  if (sectionless !== undefined) problems.push(`\`${span}\` is the config key \`${sectionless}\`: name it whole`);
  return problems;
}

/** The flags of a `ferry <command> [action] …` line, held against that command's (action's) usage. */
function commandProblems(line: string): string[] {
  const words = line.split(/\s+/);
  const spec = COMMANDS.find((candidate) => candidate.name === words[1]);
  if (spec === undefined) return [`\`${line}\`: ferry has no command ${words[1]}`];
  const action = spec.actions.includes(words[2] ?? '') ? words[2] : undefined;
  const allowed = new Set([...flagsIn(commandUsage(spec, action)), 'help']);
  const problems = flagsIn(line)
    .filter((flag) => !allowed.has(flag))
    .map((flag) => `--${flag} (in \`${line}\`) is not in \`ferry ${spec.name}${action === undefined ? '' : ` ${action}`} --help\``);
  for (const match of line.matchAll(/--set\s+([^=\s]+)=/g)) if (!KEYS.has(match[1]!)) problems.push(`--set ${match[1]} (in \`${line}\`): not a config key`);
  return problems;
}

/** The rows of the settings table (header with "config key"): flag, key and variable must agree. */
function tableProblems(markdown: string): { problems: string[]; keys: string[] } {
  const problems: string[] = [];
  const keys: string[] = [];
  let inTable = false;
  for (const line of markdown.split('\n').map((text) => text.trim())) {
    if (!line.startsWith('|')) {
      inTable = false;
      continue;
    }
    if (/config key/.test(line)) inTable = true;
    const cells = line.split('|').slice(1, -1).map((cell) => cell.trim());
    const key = /^`([^`]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!inTable || key === undefined) continue;
    keys.push(key);
    if (!KEYS.has(key)) problems.push(`table: ${key} is not a config key`);
    const flag = /^`--([a-z-]+)(?:\s[^`]*)?`$/.exec(cells[0] ?? '')?.[1];
    const mapped = flag === 'set' ? /--set ([^=]+)=/.exec(cells[0]!)?.[1] : FLAG_KEYS[flag as keyof typeof FLAG_KEYS];
    if (mapped !== key) problems.push(`table: ${cells[0]} sets ${mapped ?? 'nothing'}, not ${key}`);
    if (cells[2] !== `\`${envName(key)}\``) problems.push(`table: the variable of ${key} is ${envName(key)}, not ${cells[2]}`);
  }
  return { problems, keys };
}

export function clusteringDocProblems(markdown: string): string[] {
  return [...codeSpans(markdown).flatMap(spanProblems), ...tableProblems(markdown).problems];
}

const DOC = readFileSync(new URL('../docs/CLUSTERING.md', import.meta.url), 'utf8');

test('clustering doc - every flag, config key and variable it names is one ferry takes', () => {
  assert.ok(codeSpans(DOC).length > 300, 'the scan found too few code spans: it is broken');
  assert.deepEqual(clusteringDocProblems(DOC), []);
});

test('clustering doc - the settings table lists every setting of cluster mode', () => {
  const { keys } = tableProblems(DOC);
  assert.deepEqual([...keys].sort(), [...CLUSTER_KEYS].sort());
});

test('clustering doc - the check refuses a wrong key, flag, variable and table row', () => {
  const wrong = [
    'joins (`cluster.nodeId`, `cluster.etcd` in the config file; `FERRY_CLUSTER_NODE_ID`); logs `cluster.etcd.up`.',
    '`ferry serve --node-id n1 --etcd-certs x`, `ferry topics create t --replace n2`, `--no-such-flag`, `replicaLagMaxMs`',
    '```sh',
    'ferry serve --node-id n1 \\',
    '  --set cluster.nodeId=n1',
    '```',
    '| flag | config key | environment |',
    '| --- | --- | --- |',
    '| `--etcd-ca FILE` | `etcdCert` | `FERRY_ETCD_CA` |',
  ].join('\n');
  assert.deepEqual(clusteringDocProblems(wrong), [
    '--set cluster.nodeId (in `ferry serve --node-id n1 --set cluster.nodeId=n1`): not a config key',
    '`cluster.nodeId` is not a config key',
    '`cluster.etcd` is not a config key',
    'FERRY_CLUSTER_NODE_ID is no config key\'s variable nor the client\'s',
    '--etcd-certs (in `ferry serve --node-id n1 --etcd-certs x`) is not in `ferry serve --help`',
    '--replace (in `ferry topics create t --replace n2`) is not in `ferry topics create --help`',
    '--no-such-flag (in `--no-such-flag`) is a flag of no ferry command',
    '`replicaLagMaxMs` is the config key `cluster.replicaLagMaxMs`: name it whole',
    'table: `--etcd-ca FILE` sets etcdCa, not etcdCert',
    'table: the variable of etcdCert is FERRY_ETCD_CERT, not `FERRY_ETCD_CA`',
  ]);
});
