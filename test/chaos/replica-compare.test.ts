/**
 * The offline replica comparison of the cluster chaos suite, on real logs written by the storage
 * layer: equal replicas agree on every position below the high watermark; a replica holding another
 * message at a position, or ending below the high watermark, is found; what lies above the high
 * watermark (an uncommitted tail) is not compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SystemClock } from '../../src/platform/clock.js';
import { NodeFileSystem } from '../../src/platform/fs.js';
import { Log } from '../../src/storage/log.js';
import { tempDir } from '../helpers.js';
import { encodeValue } from './history.js';
import { compareReplicas } from './replica-compare.js';

const TOPIC = 'chaos';

/** Writes partition 0 of `root`'s replica with messages p0:0.. (value of `s` replaced where `swap` says). */
async function writeReplica(root: string, count: number, swap: Record<number, number> = {}): Promise<void> {
  const log = await Log.open({ dir: join(root, 'topics', TOPIC, 'partitions', '0'), fs: new NodeFileSystem(), clock: new SystemClock(), durability: 'always' });
  try {
    for (let s = 0; s < count; s++) await log.append([{ value: encodeValue({ p: 'p0', s: swap[s] ?? s, a: 1 }, 64), timestampMs: 1_000 + s }]);
  } finally {
    await log.close();
  }
}

test('replica compare - equal replicas agree below the high watermark; a tail above it is not compared', async () => {
  await using dir = await tempDir();
  const dirs = { n1: join(dir.path, 'n1'), n2: join(dir.path, 'n2'), n3: join(dir.path, 'n3') };
  await writeReplica(dirs.n1, 5);
  await writeReplica(dirs.n2, 5);
  await writeReplica(dirs.n3, 7); // two uncommitted records past the high watermark
  const result = await compareReplicas(dirs, TOPIC, [5]);
  assert.equal(result.recordsCompared, 5);
  assert.equal(result.differing + result.missing + result.unreadable.length, 0);
  assert.equal(result.agreed.get('0:3'), 'p0:3:1');
});

test('replica compare - another message at a position, or a log that ends below the high watermark, is found', async () => {
  await using dir = await tempDir();
  const dirs = { n1: join(dir.path, 'n1'), n2: join(dir.path, 'n2'), n3: join(dir.path, 'n3') };
  await writeReplica(dirs.n1, 5);
  await writeReplica(dirs.n2, 5, { 2: 9 });
  await writeReplica(dirs.n3, 4);
  const result = await compareReplicas(dirs, TOPIC, [5]);
  assert.equal(result.differing, 1);
  assert.equal(result.missing, 1);
  assert.equal(result.agreed.has('0:2'), false, 'a position the replicas disagree on is agreed by none');
  assert.equal(result.agreed.has('0:4'), false, 'nor one a replica lacks');
});
