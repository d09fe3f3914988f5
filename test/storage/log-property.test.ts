/**
 * Property test of the storage engine under crashes: random sequences of appends (single and
 * concurrent), syncs, segment rolls, retention, clock moves and power cuts (with and without a torn
 * last write) on the simulated disk, in every durability mode. After every recovery:
 *   (a) every append the log acknowledged as durable (always mode: every append; any mode: before a
 *       completed sync) is still there, byte for byte;
 *   (b) the log is a prefix of what was appended — same offsets, same content — except for records
 *       retention removed at the front;
 *   (c) every record a read returns is one that was appended (a record failing its CRC never is);
 *   (d) appends go on at the recovered next offset, with contiguous offsets.
 *
 * Replay a failure with FERRY_PROP_SEED=<seed> FERRY_PROP_PATH=<path> (both printed by fast-check).
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { SEGMENT_BYTES_MIN } from '../../src/storage/limits.js';
import { DURABILITY_MODES } from '../../src/storage/types.js';
import { coverage, LogModel, type CaseConfig, type Op, type RecordSpec } from '../sim/log-model.js';

/** CI affords the thorough run; locally a few seconds is enough to catch most regressions. */
const RUNS = process.env.CI ? 1_000 : 200;
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
      cutAfterOps: fc.option(fc.integer({ min: 0, max: 40 }), { nil: null, freq: 4 }),
      runMs: fc.integer({ min: 0, max: 1_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'reopen' as const }) },
);

const optional = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined, freq: 2 });

const caseConfig: fc.Arbitrary<CaseConfig> = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
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

test('log - recovers a durable prefix after any crash, in every durability mode', { timeout: 600_000 }, async () => {
  const replay = process.env.FERRY_PROP_SEED === undefined ? {} : { seed: Number(process.env.FERRY_PROP_SEED), path: process.env.FERRY_PROP_PATH };
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
    { numRuns: RUNS, timeout: CASE_TIMEOUT_MS, ...replay, verbose: 1 },
  );
  const elapsedMs = Math.round(performance.now() - started);
  console.log(`log property: ${RUNS} runs in ${elapsedMs} ms; exercised ${JSON.stringify(coverage)}`);
});
