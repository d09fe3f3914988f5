import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WRITE_BUFFER_BYTES_MAX, WRITE_BUFFER_BYTES_MIN, WriteBufferPool } from '../../src/storage/write-buffers.js';
import { appendSequential, assertRecord, openSimLog, readAll, simEnv } from './log-kit.js';

test('write buffers - a buffer given back is handed out again; the smallest that fits is chosen', () => {
  const pool = new WriteBufferPool();
  const small = pool.take(100);
  assert.equal(small.length, WRITE_BUFFER_BYTES_MIN, 'small batches get the smallest capacity');
  const large = pool.take(WRITE_BUFFER_BYTES_MIN * 3);
  assert.equal(large.length, WRITE_BUFFER_BYTES_MIN * 4, 'capacities are powers of two');
  pool.give(large);
  pool.give(small);
  assert.equal(pool.freeBytes, WRITE_BUFFER_BYTES_MIN * 5);
  assert.equal(pool.take(10), small, 'the smallest free buffer that fits');
  assert.equal(pool.take(10), large, 'a larger one when no smaller is free');
  assert.equal(pool.freeBytes, 0);
  assert.notEqual(pool.take(10), small, 'a buffer in use is never handed out twice');
});

test('write buffers - the pool keeps no more than its bound, and no oversized buffer', () => {
  const pool = new WriteBufferPool(WRITE_BUFFER_BYTES_MIN * 2);
  const buffers = [pool.take(1), pool.take(1), pool.take(1)];
  for (const buffer of buffers) pool.give(buffer);
  assert.equal(pool.freeBytes, WRITE_BUFFER_BYTES_MIN * 2, 'the third buffer is left to the garbage collector');
  const huge = new WriteBufferPool(WRITE_BUFFER_BYTES_MAX * 4).take(WRITE_BUFFER_BYTES_MAX + 1);
  assert.equal(huge.length, WRITE_BUFFER_BYTES_MAX + 1, 'an oversized batch gets a buffer of its exact size');
  const roomy = new WriteBufferPool(WRITE_BUFFER_BYTES_MAX * 4);
  roomy.give(huge);
  assert.equal(roomy.freeBytes, 0, 'and it is not kept');
  assert.throws(() => {
    const twice = roomy.take(1);
    roomy.give(twice);
    roomy.give(twice);
  }, /given back once/);
});

test('write buffers - logs sharing one pool write every batch intact, with writes in flight and after failed writes', async () => {
  const env = simEnv();
  const pool = new WriteBufferPool();
  const a = await openSimLog(env, { dir: '/data/a', writeBuffers: pool, durability: 'never', tailCacheBytes: 0 });
  const b = await openSimLog(env, { dir: '/data/b', writeBuffers: pool, durability: 'never', tailCacheBytes: 0 });
  try {
    // Two logs, many small appends each: up to two writes in flight per log, all from one pool.
    await Promise.all([appendSequential(a, 0, 300), appendSequential(b, 0, 300)]);
    env.fs.failNext('write', 'ENOSPC');
    await assert.rejects(a.append([{ value: Buffer.alloc(50, 1) }]), { code: 'DISK_FULL' });
    await appendSequential(a, 300, 50);
    await Promise.all([a.sync(), b.sync()]);
    assert.ok(pool.freeBytes > 0 && pool.freeBytes <= pool.bytesMax, 'settled writes gave their buffers back');
    const [fromA, fromB] = [await readAll(a, 64), await readAll(b, 64)];
    assert.deepEqual([fromA.length, fromB.length], [350, 300], 'no gap where the failed write was');
    fromA.forEach((found, i) => assertRecord(found, i));
    fromB.forEach((found, i) => assertRecord(found, i));
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
