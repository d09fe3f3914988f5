/**
 * Property test of the storage engine under crashes: random sequences of appends (single and
 * concurrent), syncs, segment rolls, retention, clock moves, a full disk, injected EIO, and power
 * cuts (between any two I/O steps, with and without a torn last write) on the simulated disk, in
 * every durability mode; the model is test/sim/log-model.ts. After every recovery:
 *   (a) every append the log acknowledged as durable (always mode: every append; any mode: before a
 *       completed sync) is still there, byte for byte;
 *   (b) the log is a prefix of what was appended — same offsets, same content — except for records
 *       retention removed at the front;
 *   (c) every record a read returns is one that was appended (a record failing its CRC never is);
 *   (d) appends go on at the recovered next offset, with contiguous offsets in call order.
 * A second property flips bits anywhere on disk and checks that reads return the right record or
 * CORRUPT_RANGE, never a wrong one.
 *
 * Replay a failure with FERRY_PROP_SEED=<seed> FERRY_PROP_PATH=<path> (bit rot: FERRY_ROT_SEED and
 * FERRY_ROT_PATH), both printed by fast-check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Log } from '../../src/storage/log.js';
import { isFerryError } from '../../src/errors.js';
import { SEGMENT_BYTES_MIN } from '../../src/storage/limits.js';
import { DURABILITY_MODES, type LogOptions } from '../../src/storage/types.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { checkRecord, makeRecord } from './fixtures/records.js';
import { coverage, LogModel, type CaseConfig, type Op, type RecordSpec } from '../sim/log-model.js';

/** CI affords the thorough run; locally a few seconds is enough to catch most regressions. */
const RUNS = process.env.CI ? 1_000 : 200;
/** Bit-rot cases are costlier per case (a full read back record by record) and need fewer runs. */
const ROT_RUNS = process.env.CI ? 300 : 60;
/** A case is a few dozen operations in memory; far longer means the log hangs. */
const CASE_TIMEOUT_MS = 10_000;
const OPS_MAX = 40;

const recordSpec: fc.Arbitrary<RecordSpec> = fc.record({
  keyBytes: fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 24 })),
  headersCount: fc.integer({ min: 0, max: 3 }),
  valueBytes: fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 0, max: 200 }) },
    { weight: 2, arbitrary: fc.integer({ min: 200, max: 3_000 }) },
    // Larger than the smallest segment: a record that cannot share a segment with anything.
    { weight: 1, arbitrary: fc.integer({ min: 3_000, max: 9_000 }) },
  ),
  timestampDeltaMs: fc.option(fc.integer({ min: -10_000, max: 10_000 }), { nil: null }),
});

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 12, arbitrary: fc.record({ kind: fc.constant('append' as const), records: fc.array(recordSpec, { minLength: 1, maxLength: 5 }), wait: fc.boolean() }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'settle' as const }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'sync' as const }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 5_000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('jumpWall' as const), ms: fc.integer({ min: -60_000, max: 600_000 }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'retention' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deleteBefore' as const), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.constant({ kind: 'check' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('crash' as const),
      appends: fc.array(fc.array(recordSpec, { minLength: 1, maxLength: 3 }), { maxLength: 3 }),
      tear: fc.boolean(),
      garbage: fc.boolean(),
      // The disk stops after this many more operations: a crash between any two I/O steps.
      cutAfterOps: fc.option(fc.integer({ min: 0, max: 15 }), { nil: null, freq: 4 }),
      runMs: fc.integer({ min: 0, max: 1_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('diskFull' as const), headroomBytes: fc.integer({ min: 0, max: 20_000 }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'freeSpace' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('ioError' as const), op: fc.constantFrom('write' as const, 'datasync' as const) }) },
);

const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined, freq: 2 });

const caseConfig: fc.Arbitrary<CaseConfig> = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  logDirExists: fc.boolean(),
  durability: fc.constantFrom(...DURABILITY_MODES),
  segmentBytes: fc.integer({ min: SEGMENT_BYTES_MIN, max: 4 * SEGMENT_BYTES_MIN }),
  indexIntervalBytes: fc.integer({ min: 64, max: 4_096 }),
  tailCacheBytes: fc.constantFrom(1_024, 16_384, 1 << 20),
  syncIntervalMs: fc.integer({ min: 5, max: 500 }),
  checkpointIntervalMs: fc.integer({ min: 10, max: 2_000 }),
  segmentAgeMs: optional(fc.integer({ min: 100, max: 100_000 })),
  retention: optional(
    fc.record({
      ageMs: optional(fc.integer({ min: 1_000, max: 100_000 })),
      bytesMax: optional(fc.integer({ min: 4_096, max: 65_536 })),
      recordsMax: optional(fc.integer({ min: 1, max: 200 })),
    }),
  ),
  asyncTurnsMax: fc.constantFrom(0, 0, 3),
  ops: fc.array(op, { minLength: 1, maxLength: OPS_MAX, size: 'max' }),
});

/** fast-check options that replay a reported failure when its seed and path are in the environment. */
function replayFrom(seedVariable: string, pathVariable: string): { seed?: number; path?: string } {
  const seed = process.env[seedVariable];
  return seed === undefined ? {} : { seed: Number(seed), path: process.env[pathVariable] };
}

/** Passing runs take seconds; the bound leaves room for shrinking a failure on a slow machine. */
const PROPERTY_TIMEOUT_MS = 300_000;

test('log - recovers a durable prefix after any crash, in every durability mode', { timeout: PROPERTY_TIMEOUT_MS }, async () => {
  const replay = replayFrom('FERRY_PROP_SEED', 'FERRY_PROP_PATH');
  const started = performance.now();
  await fc.assert(
    fc.asyncProperty(caseConfig, async (config) => {
      const model = await LogModel.start(config);
      try {
        for (const step of config.ops) await model.apply(step);
        await model.finish();
      } catch (error) {
        throw new Error(`${(error as Error).message}\n  after steps: ${model.trace()}`, { cause: error });
      }
    }),
    { numRuns: RUNS, timeout: CASE_TIMEOUT_MS, ...replay },
  );
  const elapsedMs = Math.round(performance.now() - started);
  console.log(`log property: ${RUNS} runs in ${elapsedMs} ms; exercised ${JSON.stringify(coverage)}`);
});

const rotCase = fc.record({
  records: fc.integer({ min: 1, max: 150 }),
  segmentBytes: fc.integer({ min: SEGMENT_BYTES_MIN, max: 4 * SEGMENT_BYTES_MIN }),
  indexIntervalBytes: fc.integer({ min: 64, max: 2_048 }),
  // Which file (by position in the sorted listing), where in it, and which bits flip.
  flips: fc.array(fc.record({ file: fc.nat(), at: fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), xor: fc.integer({ min: 1, max: 255 }) }), {
    minLength: 1,
    maxLength: 3,
  }),
});

test('log - bit rot in any file never makes a read return a wrong record', { timeout: PROPERTY_TIMEOUT_MS }, async () => {
  await fc.assert(
    fc.asyncProperty(rotCase, async ({ records, segmentBytes, indexIntervalBytes, flips }) => {
      const fs = new SimFileSystem();
      await fs.mkdir('/log');
      const options: LogOptions = { dir: '/log', fs, clock: new SimClock(), durability: 'always', segmentBytes, indexIntervalBytes };
      const log = await Log.open(options);
      for (let seq = 0; seq < records; ) {
        const count = Math.min(1 + (seq % 4), records - seq);
        const result = await log.append(Array.from({ length: count }, (_, i) => makeRecord({ writer: 0, seq: seq + i })));
        assert.equal(result.baseOffset, seq);
        seq += count;
      }
      await log.close();
      const files = (await fs.readdir('/log')).sort();
      const damaged: string[] = [];
      for (const flip of flips) {
        const name = files[flip.file % files.length]!;
        const bytes = fs.fileBytes(`/log/${name}`)!;
        if (bytes.length === 0) continue;
        const position = Math.floor(flip.at * bytes.length);
        fs.damage(`/log/${name}`, position, Buffer.from([bytes[position]! ^ flip.xor]));
        damaged.push(`${name}@${position}^${flip.xor}`);
      }
      const reopened = await Log.open(options);
      try {
        // Read every offset on its own: each is the record appended there, or CORRUPT_RANGE.
        for (let offset = reopened.startOffset; offset < reopened.nextOffset; offset++) {
          let got;
          try {
            got = await reopened.read(offset, { recordsMax: 1 });
          } catch (error) {
            assert.ok(isFerryError(error, 'CORRUPT_RANGE'), `read(${offset}) after ${damaged.join(', ')}: ${String(error)}`);
            continue;
          }
          assert.equal(got.length, 1, `read(${offset}) returned ${got.length} records`);
          assert.equal(got[0]!.offset, offset);
          assert.deepEqual(checkRecord(got[0]!), { writer: 0, seq: offset }, `offset ${offset} after ${damaged.join(', ')}`);
        }
        assert.ok(reopened.nextOffset <= records, 'recovery invented records');
        const next = reopened.nextOffset;
        const result = await reopened.append([makeRecord({ writer: 1, seq: 0 })]);
        assert.equal(result.baseOffset, next, 'appends go on at the recovered end');
      } finally {
        await reopened.close();
      }
    }),
    { numRuns: ROT_RUNS, ...replayFrom('FERRY_ROT_SEED', 'FERRY_ROT_PATH') },
  );
});
