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
import { shebangNodeFlags } from '../../bench/checkout.js';

const PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));

test('launcher - npm start runs bin/ferry.js with the Node flags of its #! line', () => {
  const { scripts } = JSON.parse(readFileSync(PACKAGE, 'utf8')) as { scripts: Record<string, string> };
  const start = scripts['start']!.split(' ');
  assert.equal(start[0], 'node');
  const binAt = start.indexOf('bin/ferry.js');
  assert.ok(binAt > 0, scripts['start']);
  assert.deepEqual(start.slice(1, binAt), shebangNodeFlags());
  assert.equal(start[binAt + 1], 'serve');
});

test('launcher - this Node accepts every flag of the #! line', () => {
  const flags = shebangNodeFlags();
  assert.ok(flags.length > 0);
  const result = spawnSync(process.execPath, [...flags, '-e', '0'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '', 'no warning about an unknown flag');
});
