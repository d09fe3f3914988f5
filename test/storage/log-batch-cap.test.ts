import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSimLog, record, simEnv, assertRecord, readAll } from './log-kit.js';

test('log - batchBytesMax keeps concurrent appends in small batches; one large append stays one batch', async () => {
  const env = simEnv();
  const batches: number[] = [];
  const log = await openSimLog(env, {
    durability: 'always',
    batchBytesMax: 2048,
    observer: { fsyncCompleted() {}, batchWritten: (records) => batches.push(records) },
  });
  await Promise.all(Array.from({ length: 40 }, (_, i) => log.append([record(i)])));
  assert.ok(batches.length >= 3, `40 concurrent 100-byte appends under a 2 KiB cap make several batches (${batches.join(', ')})`);
  assert.ok(batches.every((records) => records <= 16), `each batch fits the cap (${batches.join(', ')})`);
  batches.length = 0;
  await log.append(Array.from({ length: 50 }, (_, i) => record(40 + i)));
  assert.deepEqual(batches, [50], 'one append is one batch, whatever its size');
  const all = await readAll(log);
  assert.equal(all.length, 90);
  all.forEach((found, i) => assertRecord(found, i));
  await log.close();
});
