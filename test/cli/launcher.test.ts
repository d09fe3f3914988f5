/**
 * The `ferry` launcher's Node flags: `npm start` passes the same ones as the bin's
 * `#!/usr/bin/env -S node …` line (so `npm start`, `npx ferry serve` and the benchmark run the
 * same broker), and this Node accepts every one of them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));
const PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));

function shebangFlags(): string[] {
  const first = readFileSync(BIN, 'utf8').split('\n', 1)[0]!;
  const match = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)$/.exec(first);
  assert.ok(match !== null, `bin/ferry.js starts with ${JSON.stringify(first)}`);
  return match[1]!.split(' ').filter((flag) => flag.length > 0);
}

test('launcher - npm start runs bin/ferry.js with the Node flags of its #! line', () => {
  const { scripts } = JSON.parse(readFileSync(PACKAGE, 'utf8')) as { scripts: Record<string, string> };
  const start = scripts['start']!.split(' ');
  assert.equal(start[0], 'node');
  const binAt = start.indexOf('bin/ferry.js');
  assert.ok(binAt > 0, scripts['start']);
  assert.deepEqual(start.slice(1, binAt), shebangFlags());
  assert.equal(start[binAt + 1], 'serve');
});

test('launcher - this Node accepts every flag of the #! line', () => {
  const flags = shebangFlags();
  assert.ok(flags.length > 0);
  const result = spawnSync(process.execPath, [...flags, '-e', '0'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '', 'no warning about an unknown flag');
});
