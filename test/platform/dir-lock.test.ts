/**
 * One process per data directory (src/platform/dir-lock.ts): the lock holds across processes, is
 * freed on release and by the operating system when its holder dies, and a refused opener learns
 * who holds it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { lockDir } from '../../src/platform/dir-lock.js';
import { FerryError, isFerryError } from '../../src/errors.js';
import { tempDir } from '../helpers.js';

const DIR_LOCK_MODULE = fileURLToPath(new URL('../../src/platform/dir-lock.ts', import.meta.url));
/** A child that has not taken the lock by then has failed to start. */
const CHILD_READY_TIMEOUT_MS = 20_000;

function assertLocked(error: unknown, pid: number): true {
  assert.ok(isFerryError(error, 'DATA_DIR_LOCKED'), `expected DATA_DIR_LOCKED, got ${String(error)}`);
  assert.equal((error as FerryError).detail?.pid, pid);
  assert.equal((error as FerryError).detail?.host, hostname());
  assert.match((error as FerryError).message, new RegExp(`process ${pid} on `));
  return true;
}

/** A separate Node process that takes the lock on `dir`, says "locked" and then waits to be killed. */
async function holdInChild(dir: string): Promise<{ pid: number; kill: () => Promise<void> }> {
  const script = `const { lockDir } = await import(${JSON.stringify(DIR_LOCK_MODULE)}); await lockDir(${JSON.stringify(dir)}); process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_READY_TIMEOUT_MS);
  let out = '';
  for await (const chunk of child.stdout) {
    out += String(chunk);
    if (out.includes('locked')) break;
  }
  clearTimeout(timer);
  assert.ok(out.includes('locked'), 'the child did not take the lock');
  return {
    pid: child.pid!,
    kill: async () => {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}

test('dir lock - a second lock in the same process is refused with the holder named; release frees it', async () => {
  await using dir = await tempDir();
  const first = await lockDir(dir.path);
  assert.equal(first.holder.pid, process.pid);
  await assert.rejects(lockDir(dir.path), (error) => assertLocked(error, process.pid));
  await first.release();
  await first.release();
  const again = await lockDir(dir.path);
  await again.release();
});

test('dir lock - two directories lock independently', async () => {
  await using a = await tempDir();
  await using b = await tempDir();
  const lockA = await lockDir(a.path);
  const lockB = await lockDir(b.path);
  await lockA.release();
  await lockB.release();
});

test('dir lock - held across processes, and freed at once when the holder is SIGKILLed', async () => {
  await using dir = await tempDir();
  const child = await holdInChild(dir.path);
  try {
    await assert.rejects(lockDir(dir.path), (error) => assertLocked(error, child.pid));
  } finally {
    await child.kill();
  }
  const lock = await lockDir(dir.path);
  await lock.release();
});

test('dir lock - another path to the same directory is the same lock', async () => {
  await using dir = await tempDir();
  const lock = await lockDir(dir.path);
  try {
    await assert.rejects(lockDir(`${dir.path}/./`), (error) => isFerryError(error, 'DATA_DIR_LOCKED'));
  } finally {
    await lock.release();
  }
});

test('dir lock - a missing directory is an error of its own, not a lock', async () => {
  await using dir = await tempDir();
  await assert.rejects(lockDir(`${dir.path}/missing`), (error: NodeJS.ErrnoException) => error.code === 'ENOENT');
});
