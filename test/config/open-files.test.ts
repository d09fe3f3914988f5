/** The open-files check at start: reading the limit, and the warning with the `ulimit -n` to set. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LogFields, Logger } from '../../src/platform/logger.js';
import { checkOpenFiles, openFilesNeeded, readOpenFilesLimit } from '../../src/config/open-files.js';
import { tempDir } from '../helpers.js';

function recordingLogger(): Logger & { lines: Array<[string, string, LogFields | undefined]> } {
  const lines: Array<[string, string, LogFields | undefined]> = [];
  return {
    lines,
    debug: (event, fields) => void lines.push(['debug', event, fields]),
    info: (event, fields) => void lines.push(['info', event, fields]),
    warn: (event, fields) => void lines.push(['warn', event, fields]),
    error: (event, fields) => void lines.push(['error', event, fields]),
  };
}

test('open files - the soft limit is read from /proc/self/limits, or the shell', async () => {
  await using dir = await tempDir();
  const file = join(dir.path, 'limits');
  writeFileSync(file, 'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 1048576              files\n');
  assert.equal(readOpenFilesLimit(file), 1024);
  writeFileSync(file, 'Max open files            unlimited            unlimited            files\n');
  assert.equal(readOpenFilesLimit(file), Infinity);
  const fromShell = readOpenFilesLimit(join(dir.path, 'missing'));
  assert.ok(fromShell === null || fromShell === Infinity || (Number.isInteger(fromShell) && fromShell > 0));
  const real = readOpenFilesLimit();
  assert.ok(real === null || real > 0);
});

test('open files - a limit below connections plus segments is a warning that says what to set', () => {
  const demand = { maxConnections: 10_000, segments: 500, partitions: 20, groups: 5 };
  assert.equal(openFilesNeeded(demand), 10_000 + 500 + 40 + 10 + 256);
  const logger = recordingLogger();
  assert.equal(checkOpenFiles(logger, demand, 1024), false);
  const [[level, event, fields]] = logger.lines as [[string, string, LogFields]];
  assert.deepEqual([level, event], ['warn', 'broker.open_files.low']);
  assert.equal(fields['limit'], 1024);
  assert.equal(fields['fix'], 'ulimit -n 10806');
  const quiet = recordingLogger();
  assert.equal(checkOpenFiles(quiet, demand, 1_048_576), true);
  assert.equal(checkOpenFiles(quiet, demand, Infinity), true);
  assert.deepEqual(quiet.lines, []);
});
