/**
 * Data file permissions (issue 22, item 10): files were created 0644, so other local users could
 * read messages. The broker's files are now 0600 and its directories 0700 by default
 * (`storage.umask`, 077), through every path that creates them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Broker } from '../../src/broker/broker.js';
import { NodeFileSystem, parseUmask } from '../../src/platform/fs.js';
import { loadConfig } from '../../src/config/load.js';
import { tempDir } from '../helpers.js';

/** Every path under `dir` with its permission bits. */
function modes(dir: string): Array<[string, number, boolean]> {
  const out: Array<[string, number, boolean]> = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const info = statSync(path);
    out.push([path, info.mode & 0o777, info.isDirectory()]);
    if (info.isDirectory()) out.push(...modes(path));
  }
  return out;
}

test('fs modes - a broker\'s data directory holds only owner-only files (0600) and directories (0700) by default', async () => {
  await using dir = await tempDir('ferry-modes-');
  const data = join(dir.path, 'data');
  const broker = await Broker.open({ dir: data });
  await broker.createTopic('payroll', { partitions: 2 });
  await broker.publish('payroll', [{ value: Buffer.from('salary') }]);
  await (await broker.subscribe('payroll', { group: 'g' }, { deliver: () => undefined, writable: () => true })).close();
  await broker.close();
  assert.equal(statSync(data).mode & 0o777, 0o700);
  const found = modes(data);
  assert.ok(found.length > 5, `${found.length} entries`);
  for (const [path, mode] of found) assert.equal(mode & 0o077, 0, `${path} is ${mode.toString(8)}`);
  assert.ok(found.some(([, mode, isDir]) => !isDir && mode === 0o600));
});

test('fs modes - storage.umask 027 lets the group read: files 0640, directories 0750', async () => {
  await using dir = await tempDir('ferry-modes-');
  const previous = process.umask(0o022);
  try {
    const fs = new NodeFileSystem({ umask: parseUmask('027') });
    await fs.mkdir(join(dir.path, 'a', 'b'));
    const handle = await fs.open(join(dir.path, 'a', 'b', 'f'), 'create');
    await handle.close();
    assert.equal(statSync(join(dir.path, 'a')).mode & 0o777, 0o750);
    assert.equal(statSync(join(dir.path, 'a', 'b', 'f')).mode & 0o777, 0o640);
  } finally {
    process.umask(previous);
  }
});

test('fs modes - a umask is three octal digits; the configuration refuses anything else', () => {
  assert.equal(parseUmask('077'), 0o077);
  assert.equal(parseUmask('0027'), 0o027);
  for (const bad of ['77', '088', 'rwx', '0777x']) assert.throws(() => parseUmask(bad), /three octal digits/);
  assert.equal(loadConfig({ env: {} }).storage.umask, '077');
  assert.throws(() => loadConfig({ env: { FERRY_STORAGE_UMASK: '999' } }), /storage\.umask must be three octal digits/);
});
