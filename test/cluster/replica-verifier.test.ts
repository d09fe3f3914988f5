/**
 * Replica digests end to end on the simulated disk (storage/log-digest.ts, cluster/digest-answer.ts,
 * cluster/replica-verifier.ts): equal logs agree in one round trip whatever their segment files; a
 * record that differs is narrowed to a range of at most DIGEST_SPAN_MIN offsets holding it; a byte
 * flipped in a sealed segment while the replica was down is reported as damage with its batch's
 * range; after a cut there and a fetch from the leader the logs agree again; and kept leaf digests
 * follow truncations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Log } from '../../src/storage/log.js';
import type { LogOptions, RecordInput } from '../../src/storage/types.js';
import { DIGEST_FANOUT, DIGEST_LEAF_RECORDS, DIGEST_SPAN_MIN, pieces } from '../../src/storage/log-digest.js';
import { answerDigests } from '../../src/cluster/digest-answer.js';
import { compareLog, firstSpan, type AskDigests } from '../../src/cluster/replica-verifier.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { record } from '../storage/log-kit.js';

const LEADER_DIR = '/data/leader';
const FOLLOWER_DIR = '/data/follower';
/** Records per append (one batch each). */
const BATCH_RECORDS = 10;
const RECORDS = 5_000;

function world(): { fs: SimFileSystem; open(dir: string, options?: Partial<LogOptions>): Promise<Log> } {
  const fs = new SimFileSystem();
  // One clock, never advanced: both logs stamp the same times, so batches built apart are equal too.
  const clock = new SimClock();
  return { fs, open: (dir, options = {}) => Log.open({ dir, fs: fs.session(), clock, durability: 'never', segmentBytes: 64 * 1024, ...options }) };
}

async function fill(log: Log, count: number, recordAt: (i: number) => RecordInput = (i) => record(i)): Promise<void> {
  for (let i = log.nextOffset; i < count; i += BATCH_RECORDS) await log.append(Array.from({ length: BATCH_RECORDS }, (_, j) => recordAt(i + j)));
}

async function replicate(from: Log, to: Log): Promise<void> {
  while (to.nextOffset < from.writtenOffset + 1) await to.appendBatches(Buffer.concat(await from.readBatches(to.nextOffset, { bytesMax: 1 << 20 })));
}

function askOf(replica: Log, damaged: Array<{ fromOffset: number; toOffset: number }> = []): AskDigests {
  return async (logId, range) => {
    const answer = await answerDigests(() => replica, { topic: 't', replicaId: 'n1', epoch: 1, logs: [{ logId, ...range }] }, (_, damage) => damaged.push(damage));
    return answer.logs[0]!;
  };
}

const everything = (log: Log) => ({ highWatermark: () => log.writtenOffset + 1 });

test('replica digests - equal logs with different segment files agree in one round trip', async () => {
  const { open } = world();
  const leader = await open(LEADER_DIR);
  const follower = await open(FOLLOWER_DIR, { segmentBytes: 9_000 });
  await fill(leader, RECORDS);
  await replicate(leader, follower);
  const verdict = await compareLog(askOf(follower), everything(leader), 'p0', leader);
  assert.deepEqual(verdict, { logId: 'p0', status: 'ok', fromOffset: 0, toOffset: RECORDS, roundTrips: 1 });
  // Every span gives the same digests on both.
  for (const spanRecords of [DIGEST_LEAF_RECORDS * DIGEST_FANOUT, DIGEST_LEAF_RECORDS, DIGEST_SPAN_MIN, 7]) {
    const request = { fromOffset: 1_000, toOffset: 4_321, spanRecords: spanRecords === 7 ? 7 : spanRecords };
    assert.deepEqual(await follower.digests(request), await leader.digests(request), `span ${spanRecords}`);
  }
  await Promise.all([leader.close(), follower.close()]);
});

test('replica digests - a differing record is narrowed to a range of at most DIGEST_SPAN_MIN offsets', async () => {
  const { open } = world();
  const leader = await open(LEADER_DIR);
  const other = await open(FOLLOWER_DIR);
  const changed = 3_004;
  await fill(leader, RECORDS);
  await fill(other, RECORDS, (i) => (i === changed ? { ...record(i), value: Buffer.from('not the leader\'s') } : record(i)));
  const verdict = await compareLog(askOf(other), everything(leader), 'p0', leader);
  assert.equal(verdict.status, 'mismatch');
  const range = verdict.firstDifference!;
  // The range holds the start of the differing batch (3000..3009).
  assert.ok(range.fromOffset <= 3_000 && 3_000 < range.toOffset, JSON.stringify(range));
  assert.ok(range.toOffset - range.fromOffset <= DIGEST_SPAN_MIN);
  assert.equal(verdict.roundTrips, 2, 'one level of leaves, one below');
  await Promise.all([leader.close(), other.close()]);
});

test('replica digests - a byte flipped in a sealed segment while down is damage with its range; a cut and a fetch repair it', async () => {
  const { fs, open } = world();
  const leader = await open(LEADER_DIR);
  let follower = await open(FOLLOWER_DIR, { segmentBytes: 16 * 1024 });
  await fill(leader, RECORDS);
  await replicate(leader, follower);
  await follower.sync();
  await follower.close();
  const segments = (await fs.session().readdir(FOLLOWER_DIR)).filter((file) => file.endsWith('.log')).sort();
  assert.ok(segments.length > 3, 'several segments');
  const victim = join(FOLLOWER_DIR, segments[2]!);
  const base = Number(segments[2]!.slice(0, 20));
  const bytes = fs.fileBytes(victim)!;
  fs.damage(victim, 160, Buffer.from([bytes[160]! ^ 0x04]));
  follower = await open(FOLLOWER_DIR, { segmentBytes: 16 * 1024 });
  const damaged: Array<{ fromOffset: number; toOffset: number }> = [];
  const verdict = await compareLog(askOf(follower, damaged), everything(leader), 'p0', leader);
  assert.equal(verdict.status, 'damaged');
  assert.deepEqual(verdict.firstDifference, { fromOffset: base, toOffset: base + BATCH_RECORDS });
  assert.deepEqual(damaged, [{ fromOffset: base, toOffset: base + BATCH_RECORDS - 1 }], 'the replica itself was told');
  // The repair: cut back to the damaged range and fetch again.
  await follower.truncateTo(verdict.firstDifference!.fromOffset);
  assert.equal(follower.nextOffset, base);
  await replicate(leader, follower);
  assert.equal((await compareLog(askOf(follower), everything(leader), 'p0', leader)).status, 'ok');
  await Promise.all([leader.close(), follower.close()]);
});

test('replica digests - kept leaf digests follow a truncation and a reset', async () => {
  const { open } = world();
  const log = await open(LEADER_DIR, { segmentBytes: 8 * 1024 });
  const twin = await open(FOLLOWER_DIR, { segmentBytes: 8 * 1024 });
  await fill(log, RECORDS);
  const all = { fromOffset: 0, toOffset: RECORDS, spanRecords: DIGEST_LEAF_RECORDS };
  await log.digests(all);
  // Cut into the kept leaves and write other records there; a log built directly must agree.
  await log.truncateTo(1_500);
  await fill(log, RECORDS, (i) => record(i + 100_000));
  await fill(twin, 1_500);
  await fill(twin, RECORDS, (i) => record(i + 100_000));
  assert.deepEqual(await log.digests(all), await twin.digests(all));
  await log.resetTo(2_000);
  await twin.resetTo(2_000);
  await fill(log, RECORDS);
  await fill(twin, RECORDS);
  const rest = { fromOffset: 2_000, toOffset: RECORDS, spanRecords: DIGEST_LEAF_RECORDS };
  assert.deepEqual(await log.digests(rest), await twin.digests(rest));
  await Promise.all([log.close(), twin.close()]);
});

test('replica digests - spans and pieces: at most DIGEST_FANOUT ranges, aligned at their span', () => {
  assert.equal(firstSpan(0), DIGEST_LEAF_RECORDS);
  assert.equal(firstSpan(DIGEST_LEAF_RECORDS * DIGEST_FANOUT), DIGEST_LEAF_RECORDS);
  assert.equal(firstSpan(DIGEST_LEAF_RECORDS * DIGEST_FANOUT + 1), DIGEST_LEAF_RECORDS * DIGEST_FANOUT);
  assert.deepEqual(pieces(1_000, 2_100, 1_024), [
    { fromOffset: 1_000, toOffset: 1_024 },
    { fromOffset: 1_024, toOffset: 2_048 },
    { fromOffset: 2_048, toOffset: 2_100 },
  ]);
});
