import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, type ErrorCode } from '../src/errors.js';

test('errors - docs/ERRORS.md lists every code with its wire number and flags', () => {
  const doc = readFileSync(new URL('../docs/ERRORS.md', import.meta.url), 'utf8');
  const rows = new Map<string, string[]>();
  for (const line of doc.split('\n')) {
    const match = /^\| `([A-Z_]+)` \| (\d+) \| (yes|no) \| (yes|no) \|/.exec(line);
    if (match !== null) rows.set(match[1]!, match.slice(2));
  }
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
    const row = rows.get(code);
    assert.ok(row, `docs/ERRORS.md has no row for ${code}`);
    const spec = ERROR_CODES[code];
    assert.deepEqual(row, [String(spec.wire), spec.fatal ? 'yes' : 'no', spec.retryable ? 'yes' : 'no'], code);
  }
  for (const code of rows.keys()) assert.ok(code in ERROR_CODES, `docs/ERRORS.md lists unknown code ${code}`);
});

test('errors - wire numbers are unique', () => {
  const wires = Object.values(ERROR_CODES).map((spec) => spec.wire);
  assert.equal(new Set(wires).size, wires.length);
});
