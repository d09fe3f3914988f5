/**
 * A full disk is an operating condition, not a crash: appends fail with FerryError DISK_FULL (and
 * nothing else), every record acknowledged before stays readable, and once space is freed the same
 * Log instance appends again; a reopen then finds an intact log. The scenario runs on a real 2 MiB
 * tmpfs when the test runs as root, and always on the simulated disk with a capacity.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Log } from '../../src/storage/log.js';
import { NodeFileSystem, type FileSystem } from '../../src/platform/fs.js';
import { SystemClock, type Clock } from '../../src/platform/clock.js';
import { isFerryError } from '../../src/errors.js';
import type { AppendResult, LogOptions, RecordInput } from '../../src/storage/types.js';
import { checkRecord, makeRecord, type RecordId } from './fixtures/records.js';
import { tempDir } from '../helpers.js';
import { SimClock, settle } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { seededRandom } from '../sim/random.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Small enough to fill in well under a second, large enough for a few segments. */
const DISK_BYTES = 2 * MiB;
/** Space held by a file the test deletes to "free disk space". */
const FILLER_BYTES = 512 * KiB;
const SEGMENT_BYTES = 256 * KiB;
/** Appends past the first DISK_FULL: each must succeed or fail with DISK_FULL, nothing else. */
const APPENDS_AFTER_FULL = 20;
/** Far more appends than fit: the loop ends at DISK_FULL, this bounds a log that never reports it. */
const APPENDS_MAX = 20_000;
/** Simulated ms an append may wait for timers (group commit) before the sim counts it as hung. */
const SIM_DRIVE_MS_MAX = 10_000;

interface Env {
  fs: FileSystem;
  clock: Clock;
  root: string;
  /** Waits for an operation, moving simulated time if the log waits for a timer. */
  drive<T>(promise: Promise<T>): Promise<T>;
}

async function openLog(env: Env): Promise<Log> {
  const options: LogOptions = { dir: join(env.root, 'log'), fs: env.fs, clock: env.clock, durability: 'always', segmentBytes: SEGMENT_BYTES };
  return env.drive(Log.open(options));
}

async function writeFiller(env: Env): Promise<string> {
  const path = join(env.root, 'filler');
  const handle = await env.fs.open(path, 'create');
  await handle.write(Buffer.alloc(FILLER_BYTES, 0xf1), 0);
  await handle.datasync();
  await handle.close();
  await env.fs.syncDir(env.root);
  return path;
}

/** Appends one batch; resolves to its result, or to 'full' on DISK_FULL; any other error fails the test. */
async function appendOrFull(env: Env, log: Log, records: RecordInput[]): Promise<AppendResult | 'full'> {
  try {
    return await env.drive(log.append(records));
  } catch (error) {
    assert.ok(isFerryError(error, 'DISK_FULL'), `an append failed with something other than DISK_FULL: ${String(error)}`);
    return 'full';
  }
}

async function verifyAll(log: Log, acked: Map<number, RecordId>): Promise<void> {
  for (const [offset, id] of acked) {
    const [record] = await log.read(offset, { recordsMax: 1 });
    assert.ok(record !== undefined && record.offset === offset, `acknowledged offset ${offset} is not readable`);
    assert.deepEqual(checkRecord(record), id, `offset ${offset} holds another record`);
  }
  for (let offset = log.startOffset; offset < log.nextOffset; ) {
    const records = await log.read(offset);
    assert.ok(records.length > 0);
    for (const record of records) checkRecord(record);
    offset += records.length;
  }
}

async function diskFullScenario(env: Env): Promise<{ acked: number; fullAfterBytes: number }> {
  await env.fs.mkdir(join(env.root, 'log'));
  const filler = await writeFiller(env);
  let log = await openLog(env);
  const acked = new Map<number, RecordId>();
  let seq = 0;
  const batch = (count: number): { ids: RecordId[]; records: RecordInput[] } => {
    const ids = Array.from({ length: count }, () => ({ writer: 0, seq: seq++ }));
    return { ids, records: ids.map(makeRecord) };
  };
  const remember = (result: AppendResult, ids: RecordId[]): void => {
    assert.equal(result.durability, 'synced');
    assert.equal(result.lastOffset - result.baseOffset + 1, ids.length);
    ids.forEach((id, i) => acked.set(result.baseOffset + i, id));
  };

  // Fill the disk.
  let full = false;
  let appendedBytes = 0;
  for (let i = 0; i < APPENDS_MAX && !full; i++) {
    const { ids, records } = batch(1 + (i % 4));
    const result = await appendOrFull(env, log, records);
    if (result === 'full') full = true;
    else {
      remember(result, ids);
      appendedBytes += records.reduce((sum, r) => sum + r.value.length, 0);
    }
  }
  assert.ok(full, `no DISK_FULL after ${APPENDS_MAX} appends`);
  assert.ok(acked.size > 0);

  // Still full: single, concurrent and tiny appends either fit or fail with DISK_FULL.
  for (let i = 0; i < APPENDS_AFTER_FULL; i++) {
    const tries = [batch(1), batch(3), batch(1)];
    const results = await Promise.all(tries.map(({ records }) => appendOrFull(env, log, records)));
    results.forEach((result, j) => {
      if (result !== 'full') remember(result, tries[j]!.ids);
    });
  }
  await verifyAll(log, acked);

  // Free space: the same Log instance must append again.
  await env.fs.unlink(filler);
  for (let i = 0; i < 10; i++) {
    const { ids, records } = batch(2);
    const result = await appendOrFull(env, log, records);
    assert.notEqual(result, 'full', 'append still fails after space was freed');
    remember(result as AppendResult, ids);
  }
  await verifyAll(log, acked);
  await env.drive(log.close());

  log = await openLog(env);
  try {
    const { recovery } = log;
    assert.equal(recovery.truncatedBytes, 0, `recovery truncated a tail after a clean close: ${JSON.stringify(recovery)}`);
    assert.equal(recovery.truncatedRecords, 0);
    assert.equal(recovery.segmentsDropped, 0);
    assert.equal(log.nextOffset, Math.max(...acked.keys()) + 1);
    await verifyAll(log, acked);
    const { ids, records } = batch(1);
    const result = await appendOrFull(env, log, records);
    assert.notEqual(result, 'full');
    remember(result as AppendResult, ids);
  } finally {
    await env.drive(log.close());
  }
  return { acked: acked.size, fullAfterBytes: appendedBytes };
}

function simEnv(capacityBytes: number): Env & { sim: SimFileSystem; simClock: SimClock } {
  const sim = new SimFileSystem({ capacityBytes });
  const simClock = new SimClock();
  const drive = async <T>(promise: Promise<T>): Promise<T> => {
    let done = false;
    const settled = promise.finally(() => (done = true));
    settled.catch(() => {});
    for (let waitedMs = 0; !done; waitedMs++) {
      await settle(1);
      if (done) break;
      assert.ok(waitedMs < SIM_DRIVE_MS_MAX, 'operation still pending after 10 s of simulated time');
      await simClock.advanceAndSettle(1);
    }
    return settled;
  };
  return { fs: sim, clock: simClock, root: '/disk', drive, sim, simClock };
}

test('log - disk full on the simulated disk: DISK_FULL, acknowledged records kept, appends resume after freeing space', async () => {
  const env = simEnv(DISK_BYTES);
  await env.sim.mkdir('/disk');
  const { acked } = await diskFullScenario(env);
  assert.ok(acked > 100, `only ${acked} records fit in ${DISK_BYTES} bytes`);
});

test('log - disk full at every tight capacity: each acknowledged record survives a power cut after DISK_FULL', async () => {
  // Capacities that put the ENOSPC at different points: mid-record, mid-index, at a segment roll.
  for (let capacityBytes = 40 * KiB; capacityBytes < 600 * KiB; capacityBytes += 37 * KiB + 123) {
    const env = simEnv(capacityBytes);
    await env.sim.mkdir('/disk/log');
    await env.sim.syncDir('/disk');
    await env.sim.syncDir('/');
    const log = await openLog({ ...env, fs: env.sim.session() });
    const acked = new Map<number, RecordId>();
    let seq = 0;
    for (let i = 0; i < APPENDS_MAX; i++) {
      const ids = Array.from({ length: 1 + (i % 3) }, () => ({ writer: 1, seq: seq++ }));
      const result = await appendOrFull(env, log, ids.map(makeRecord));
      if (result === 'full') break;
      ids.forEach((id, j) => acked.set(result.baseOffset + j, id));
    }
    env.sim.crash({ tearLastWrite: true, garbage: true, random: seededRandom(capacityBytes) });
    const reopened = await openLog({ ...env, fs: env.sim.session() });
    try {
      const at = `capacity ${capacityBytes}`;
      assert.ok(acked.size > 0, `${at}: nothing fit`);
      assert.ok(reopened.nextOffset >= Math.max(...acked.keys()) + 1, `${at}: acknowledged records lost (${JSON.stringify(reopened.recovery)})`);
      await verifyAll(reopened, acked);
    } finally {
      await env.drive(reopened.close());
    }
  }
});

test('log - disk full on a real 2 MiB tmpfs: DISK_FULL, acknowledged records kept, appends resume after freeing space', async (t: TestContext) => {
  if (process.getuid?.() !== 0) {
    t.skip('needs root to mount a tmpfs (not running as uid 0)');
    return;
  }
  const dir = await tempDir('ferry-enospc-');
  try {
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_BYTES}`, 'tmpfs', dir.path], { encoding: 'utf8' });
    if (mount.status !== 0) {
      t.skip(`mount -t tmpfs failed (${mount.error?.message ?? mount.stderr.trim()}); no real ENOSPC test on this machine`);
      return;
    }
    try {
      const env: Env = { fs: new NodeFileSystem(), clock: new SystemClock(), root: dir.path, drive: (promise) => promise };
      const { acked, fullAfterBytes } = await diskFullScenario(env);
      t.diagnostic(`${acked} records acknowledged; DISK_FULL after ${fullAfterBytes} value bytes`);
    } finally {
      const umount = spawnSync('umount', [dir.path], { encoding: 'utf8' });
      assert.equal(umount.status, 0, `umount ${dir.path} failed: ${umount.stderr}`);
    }
  } finally {
    await dir.remove();
  }
});
