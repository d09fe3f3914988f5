/**
 * The power-loss emulation: FaultFileSystem records what is durable, cutPower cuts a directory back
 * to it. If either is wrong, the power-loss scenarios test the wrong thing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NodeFileSystem } from '../../src/platform/fs.js';
import { FaultFileSystem, SyncLog } from '../../src/platform/fault-fs.js';
import { writeFileAtomic } from '../../src/platform/atomic-write.js';
import { tempDir } from '../helpers.js';
import { cutPower, readSyncLog } from './power-loss.js';

/** A "random" that always answers `value`: 0.99 takes no chance, 0 takes every one. */
const always = (value: number) => () => value;

async function setup() {
  const dir = await tempDir('ferry-power-loss-');
  const data = join(dir.path, 'data');
  const sidecar = join(dir.path, 'sync.log');
  const log = new SyncLog(sidecar);
  const fs = new FaultFileSystem(new NodeFileSystem(), log);
  await fs.mkdir(data);
  await fs.syncDir(dir.path);
  return { dir, data, sidecar, log, fs };
}

test('fault-fs - records synced lengths, creations, renames and directory syncs', async () => {
  const { dir, data, sidecar, log, fs } = await setup();
  try {
    const handle = await fs.open(join(data, 'a.log'), 'create');
    await handle.write(Buffer.alloc(100, 1), 0);
    await handle.datasync();
    await handle.write(Buffer.alloc(50, 2), 100);
    await handle.close();
    await fs.syncDir(data);
    await writeFileAtomic(fs, join(data, 'meta'), Buffer.from('{}'));
    log.close();
    const entries = readSyncLog(sidecar);
    const ops = entries.map((entry) => entry.op);
    assert.deepEqual(ops, ['mkdir', 'syncdir', 'create', 'datasync', 'syncdir', 'create', 'datasync', 'rename', 'syncdir']);
    const sync = entries.find((entry) => entry.op === 'datasync')!;
    assert.equal(sync.op === 'datasync' && sync.length, 100);
    const lastSync = entries[entries.length - 1]!;
    const rename = entries.find((entry) => entry.op === 'rename')!;
    assert.ok(lastSync.op === 'syncdir' && lastSync.since > rename.seq, 'the directory sync after the rename covers it');
  } finally {
    await dir.remove();
  }
});

test('power-loss - cuts to the synced length and keeps what a directory sync covered', async () => {
  const { dir, data, sidecar, log, fs } = await setup();
  try {
    const handle = await fs.open(join(data, 'a.log'), 'create');
    await handle.write(Buffer.alloc(100, 1), 0);
    await handle.datasync();
    await handle.write(Buffer.alloc(50, 2), 100);
    await fs.syncDir(data);
    await writeFileAtomic(fs, join(data, 'meta'), Buffer.from('{"v":1}'));
    await handle.close();
    log.close();
    const report = cutPower(data, sidecar, always(0.99));
    assert.equal(statSync(join(data, 'a.log')).size, 100);
    assert.equal(readFileSync(join(data, 'meta'), 'utf8'), '{"v":1}');
    assert.equal(report.bytesCut, 50);
    assert.deepEqual(report.filesLost, []);
  } finally {
    await dir.remove();
  }
});

test('power-loss - a torn write ends in garbage beyond the synced length; unsynced creations may vanish', async () => {
  const { dir, data, sidecar, log, fs } = await setup();
  try {
    const handle = await fs.open(join(data, 'a.log'), 'create');
    await fs.syncDir(data);
    await handle.write(Buffer.alloc(100, 1), 0);
    await handle.datasync();
    await handle.write(Buffer.alloc(50, 2), 100);
    await handle.close();
    // Created and written, never synced, its directory entry never synced either.
    const orphan = await fs.open(join(data, 'b.log'), 'create');
    await orphan.write(Buffer.alloc(10, 3), 0);
    await orphan.close();
    log.close();
    // random() = 0: keep a prefix of the unsynced bytes (of length 0), tear, lose every uncovered entry.
    const report = cutPower(data, sidecar, always(0));
    const bytes = readFileSync(join(data, 'a.log'));
    assert.equal(bytes.length, 101, 'the synced 100 bytes plus 1 byte of garbage');
    assert.ok(bytes.subarray(0, 100).every((byte) => byte === 1), 'the synced bytes are untouched');
    assert.equal(report.filesTorn, 1);
    assert.equal(existsSync(join(data, 'b.log')), false);
    assert.deepEqual(report.filesLost, ['b.log']);
  } finally {
    await dir.remove();
  }
});
