/**
 * Help on every command and action (`--help`, `-h`, `ferry help <command>`), the version, and the
 * shell completion scripts, run as the `ferry` command (bin/ferry.js over the build).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../../src/cli/main.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { tempDir } from '../helpers.js';
import { ferry, ferryAll } from './run-ferry.js';

test('help - --help on every command and action prints its usage, with every flag it takes, and exits 0', async () => {
  const cases: Array<{ args: string[]; expect: string; flags: string[] }> = [];
  for (const spec of COMMANDS) {
    const flags = Object.keys(spec.flags).map((flag) => `--${flag}`);
    cases.push({ args: [spec.name, '--help'], expect: `ferry ${spec.name}`, flags });
    if (spec.name === 'pub' || spec.name === 'topics') {
      cases.push({ args: [spec.name, '-h'], expect: `ferry ${spec.name}`, flags });
      cases.push({ args: ['help', spec.name], expect: `ferry ${spec.name}`, flags });
    }
    for (const action of spec.actions) cases.push({ args: [spec.name, action, '--help'], expect: `ferry ${spec.name} ${action}`, flags: [] });
  }
  const runs = await ferryAll(cases.map((c) => c.args));
  cases.forEach(({ args, expect, flags }, i) => {
    const run = runs[i]!;
    const what = `ferry ${args.join(' ')}`;
    assert.equal(run.code, 0, `${what}: ${run.stderr}`);
    assert.equal(run.stderr, '', what);
    assert.match(run.stdout, /^usage:/, what);
    assert.ok(run.stdout.includes(expect), `${what} shows ${expect}:\n${run.stdout}`);
    for (const flag of flags) assert.ok(run.stdout.includes(flag), `${what} lists ${flag}:\n${run.stdout}`);
  });
  // An action's help is about that action only.
  const create = runs[cases.findIndex((c) => c.args.join(' ') === 'topics create --help')]!;
  assert.doesNotMatch(create.stdout, /ferry topics delete/);
});

test('help - ferry --help and ferry help exit 0; a bare ferry is a usage error', async () => {
  const [long, short, word, bare] = await ferryAll([['--help'], ['-h'], ['help'], []]);
  for (const run of [long!, short!, word!]) {
    assert.equal(run.code, 0);
    for (const spec of COMMANDS) assert.ok(run.stdout.includes(`ferry ${spec.name}`), spec.name);
  }
  assert.equal(bare!.code, 2);
});

test('help - an unknown flag is a usage error that points at --help, with balanced quotes', async () => {
  const run = await ferry(['pub', 'orders', '--nosuch']);
  assert.equal(run.code, 2);
  assert.equal(run.stderr, "ferry pub: unknown option '--nosuch' (--help lists the flags)\n");
});

test('help - --version and version print the package and protocol versions', async () => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const run of await ferryAll([['--version'], ['version']])) {
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `ferry ${version} (protocol ${PROTOCOL_VERSION}, node ${process.version})\n`);
  }
});

/** What bash offers for the words typed so far (the last one being completed). */
function bashCompletes(script: string, words: string[]): string[] {
  const program = `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _ferry; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const result = spawnSync('bash', ['-c', program, 'bash', script, ...words], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  return result.stdout.split('\n').filter((line) => line !== '');
}

test('help - ferry completion bash completes commands, actions and each command\'s flags', async () => {
  const run = await ferry(['completion', 'bash']);
  assert.equal(run.code, 0, run.stderr);
  await using dir = await tempDir();
  const script = join(dir.path, 'ferry.bash');
  writeFileSync(script, run.stdout);
  assert.deepEqual(bashCompletes(script, ['ferry', 'to']), ['topics']);
  assert.deepEqual(bashCompletes(script, ['ferry', 'topics', 'cr']), ['create']);
  assert.deepEqual(bashCompletes(script, ['ferry', 'users', '']).sort(), ['add', 'list', 'passwd', 'remove', 'token']);
  assert.deepEqual(bashCompletes(script, ['ferry', 'sub', 'orders', '--gr']), ['--group']);
  for (const spec of COMMANDS) {
    const offered = bashCompletes(script, ['ferry', spec.name, '--']);
    assert.deepEqual(offered.sort(), [...Object.keys(spec.flags).map((flag) => `--${flag}`), '--help'].sort(), spec.name);
  }
});

test('help - ferry completion zsh names every command and flag, and is valid zsh where zsh is installed', async () => {
  const run = await ferry(['completion', 'zsh']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /^#compdef ferry\n/);
  assert.match(run.stdout, /compdef _ferry ferry\n$/);
  for (const spec of COMMANDS) {
    const line = run.stdout.split('\n').find((text) => text.trimStart().startsWith(`${spec.name})`));
    assert.ok(line !== undefined, spec.name);
    for (const flag of Object.keys(spec.flags)) assert.ok(line.includes(`--${flag}`), `${spec.name} --${flag}`);
  }
  const zsh = spawnSync('zsh', ['-n'], { input: run.stdout, encoding: 'utf8' });
  if (zsh.error === undefined) assert.equal(zsh.status, 0, zsh.stderr);
  const bad = await ferry(['completion', 'fish']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /ferry completion bash/);
});
