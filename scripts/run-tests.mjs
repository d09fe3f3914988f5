#!/usr/bin/env node
// Runs every test file under test/ with Node's own test runner, loading TypeScript through tsx.
// Node 20's `--test` does not expand globs, so the files are listed here.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const TEST_FILE_SUFFIX = '.test.ts';
/**
 * Default timeout of a test that sets none: the slowest test takes ~20 s on the CI machine, so a
 * test still running after this hangs, and fails instead of holding CI until its own limit.
 */
const TEST_TIMEOUT_MS = 180_000;
const filter = process.argv.slice(2);

function listTests(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...listTests(path));
    else if (name.endsWith(TEST_FILE_SUFFIX)) found.push(path);
  }
  return found;
}

const files = listTests('test').filter((f) => filter.length === 0 || filter.some((part) => f.includes(part)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', `--test-timeout=${TEST_TIMEOUT_MS}`, ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
