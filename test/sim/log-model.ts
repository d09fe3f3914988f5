/**
 * The reference model the storage property test (test/storage/log-property.test.ts) runs the real
 * Log against. It remembers, for every offset, the record that was appended there: offsets are
 * predicted at call time (appends are assigned offsets in call order), so even records whose append
 * was still in flight at a crash can be recognised when recovery brings them back.
 *
 * Each "boot" is one process lifetime: a Log opened on a fresh session of the simulated disk with a
 * fresh clock. A crash kills the boot (its handles, session and timers are dead), and whatever its
 * promises do afterwards is ignored, as it would be for a killed process.
 */
import assert from 'node:assert/strict';
import { Log } from '../../src/storage/log.js';
import { isFerryError } from '../../src/protocol/errors.js';
import type { AppendResult, Durability, Header, LogOptions, LogRecord, RecordInput, RetentionPolicy } from '../../src/storage/types.js';
import { SimClock, settle } from './sim-clock.js';
import { SimFileSystem } from './sim-fs.js';
import { randomBytes, randomInt, seededRandom } from './random.js';

export interface RecordSpec {
  /** -1: no key. */
  keyBytes: number;
  headersCount: number;
  valueBytes: number;
  /** null: let the log stamp it; otherwise relative to the clock at append. */
  timestampDeltaMs: number | null;
}

export type Op =
  | { kind: 'append'; records: RecordSpec[]; wait: boolean }
  | { kind: 'settle' }
  | { kind: 'sync' }
  | { kind: 'advance'; ms: number }
  | { kind: 'jumpWall'; ms: number }
  | { kind: 'retention' }
  | { kind: 'deleteBefore'; fraction: number }
  | { kind: 'check' }
  /** The power goes after `macroTurns` event-loop turns and then `microTurns` promise turns of in-flight work. */
  /**
   * A power cut. `appends` are issued (not awaited) just before; with `cutAfterOps` the disk stops
   * after that many more operations while the log runs on for `runMs` of simulated time, so the
   * cut can land between any two I/O steps (of an append, a roll, a checkpoint, a sync timer).
   */
  | { kind: 'crash'; appends: RecordSpec[][]; cutAfterOps: number | null; runMs: number; tear: boolean; garbage: boolean }
  | { kind: 'reopen' };

export interface CaseConfig {
  seed: number;
  /** Whether the log directory exists (durably) before the first open, or Log.open creates it. */
  logDirExists: boolean;
  durability: Durability;
  segmentBytes: number;
  indexIntervalBytes: number;
  tailCacheBytes: number;
  syncIntervalMs: number;
  checkpointIntervalMs: number;
  segmentAgeMs: number | undefined;
  retention: RetentionPolicy | undefined;
  asyncTurnsMax: number;
  ops: Op[];
}

const LOG_DIR = '/data/log';
/** Every record carries its model id in its first header, so a misplaced record is recognisable. */
const ID_HEADER = 'sim-id';
/** Stamped on every batch; checked on every read. */
const LEADER_EPOCH = 7;
/** Simulated milliseconds pending appends get to finish (timers of a group commit) before we call it a hang. */
const SETTLE_MS_MAX = 2_000;
/** Characters for header names and values: ASCII plus 2-, 3- and 4-byte UTF-8. */
const TEXT_ALPHABET = ['a', 'b', 'z', '-', '_', '0', ' ', 'é', '日', '🙂'];
const READ_BYTES_CHOICES = [1, 100, 4_096, 1 << 20];
const TRACE_STEPS = 12;

interface Expected {
  id: number;
  input: RecordInput;
  key: Buffer | null;
  headers: Header[];
  /** The record's timestamp: given, or the wall clock at the append call. */
  timestampMs: number;
  /**
   * Defaulted timestamps may be stamped when the batch is encoded, a little after the call: any
   * wall time the clock showed from the call on is accepted (index into `wallTimes`; -1: given).
   */
  stampedFrom: number;
  /** Lost in a crash: must never be read again. */
  dead: boolean;
}

interface AppendCall {
  baseOffset: number;
  records: Expected[];
  resolved: boolean;
}

interface Boot {
  log: Log;
  clock: SimClock;
  alive: boolean;
  /** Offset the next append call will get, predicted from call order. */
  nextPredicted: number;
  /** One past the last offset of every append that resolved in this boot. */
  resolvedNext: number;
  inflight: Set<Promise<void>>;
}

/** What the cases exercised, summed over a run: printed so a weak generator shows up. */
export const coverage = {
  cases: 0,
  appendCalls: 0,
  recordsAppended: 0,
  crashes: 0,
  crashesWithAppendsInFlight: 0,
  crashesMidOperation: 0,
  recoveriesThatCutATail: 0,
  recordsLostInCrashes: 0,
  segmentsRecoveredMax: 0,
  segmentsDeleted: 0,
  reopens: 0,
};

export class LogModel {
  private readonly fs: SimFileSystem;
  private readonly random: () => number;
  private boot!: Boot;
  /** What was appended at each offset (still believed to be in the log or its lost tail). */
  private readonly byOffset = new Map<number, Expected>();
  /** Every offset below this must survive any crash (unless retention removed it). */
  private durableNext = 0;
  private nextId = 0;
  /** Start offset may legitimately move past 0 (retention configured or segments deleted). */
  private frontDeletable: boolean;
  private failure: Error | null = null;
  private readonly steps: string[] = [];
  /** Wall-clock readings at both ends of every clock change, across boots. */
  private readonly wallTimes: number[] = [];

  private constructor(private readonly config: CaseConfig) {
    this.random = seededRandom(config.seed);
    this.fs = new SimFileSystem(config.asyncTurnsMax > 0 ? { random: seededRandom(config.seed ^ 0x5eed), asyncTurnsMax: config.asyncTurnsMax } : {});
    this.frontDeletable = config.retention !== undefined;
  }

  static async start(config: CaseConfig): Promise<LogModel> {
    const model = new LogModel(config);
    coverage.cases++;
    if (config.logDirExists) {
      await model.fs.mkdir(LOG_DIR);
      await model.fs.syncDir('/data');
      await model.fs.syncDir('/');
    }
    await model.openBoot(model.newClock());
    return model;
  }

  trace(): string {
    return `config ${JSON.stringify({ ...this.config, ops: undefined })}; last steps: ${this.steps.slice(-TRACE_STEPS).join(' | ')}`;
  }

  async apply(op: Op): Promise<void> {
    this.throwFailure();
    const { log } = this.boot;
    this.steps.push(`${describeOp(op)} @${log.startOffset}..${log.nextOffset}`);
    switch (op.kind) {
      case 'append':
        this.append(op.records);
        if (op.wait) await this.settlePending();
        break;
      case 'settle':
        await this.settlePending();
        break;
      case 'sync': {
        const target = this.boot.resolvedNext;
        await log.sync();
        this.raiseDurable(target);
        break;
      }
      case 'advance': {
        const target = this.boot.resolvedNext;
        await this.boot.clock.advanceAndSettle(op.ms);
        // Interval mode promises a sync at least every syncIntervalMs.
        if (this.config.durability === 'interval' && op.ms >= 2 * this.config.syncIntervalMs && this.boot.inflight.size === 0) {
          this.raiseDurable(target);
        }
        break;
      }
      case 'jumpWall':
        this.boot.clock.jumpWallClock(op.ms);
        break;
      case 'retention':
        await this.retention();
        break;
      case 'deleteBefore':
        await this.deleteBefore(op.fraction);
        break;
      case 'check':
        await this.readAndVerify(log.startOffset, log.visibleEndOffset);
        break;
      case 'crash':
        if (op.cutAfterOps !== null) this.fs.cutPowerAfter(op.cutAfterOps);
        for (const records of op.appends) this.append(records);
        if (op.cutAfterOps !== null) {
          await settle();
          await this.boot.clock.advanceAndSettle(op.runMs);
        }
        await this.crash(op.tear, op.garbage);
        break;
      case 'reopen':
        await this.reopen();
        break;
    }
    this.throwFailure();
  }

  /** Every case ends with a settled check, a torn crash and a final recovery check. */
  async finish(): Promise<void> {
    await this.settlePending();
    await this.readAndVerify(this.boot.log.startOffset, this.boot.log.visibleEndOffset);
    await this.crash(true, true);
    this.append([{ keyBytes: 3, headersCount: 1, valueBytes: 10, timestampDeltaMs: 0 }]);
    await this.settlePending();
    await this.readAndVerify(this.boot.log.startOffset, this.boot.log.nextOffset);
    await this.boot.log.close();
  }

  // ---- operations ---------------------------------------------------------------------------

  private append(specs: RecordSpec[]): void {
    const boot = this.boot;
    const records = specs.map((spec) => this.makeRecord(spec, boot.clock));
    coverage.appendCalls++;
    coverage.recordsAppended += records.length;
    const call: AppendCall = { baseOffset: boot.nextPredicted, records, resolved: false };
    boot.nextPredicted += records.length;
    records.forEach((record, i) => this.byOffset.set(call.baseOffset + i, record));
    const promise = (async () => boot.log.append(records.map((r) => r.input)))().then(
      (result) => {
        if (boot.alive) this.onResolved(boot, call, result);
      },
      (error: unknown) => {
        if (boot.alive) this.fail(`append of ${records.length} at predicted offset ${call.baseOffset} failed: ${describe(error)}`, error);
      },
    );
    boot.inflight.add(promise);
    void promise.finally(() => boot.inflight.delete(promise));
  }

  private onResolved(boot: Boot, call: AppendCall, result: AppendResult): void {
    const count = call.records.length;
    if (result.baseOffset !== call.baseOffset || result.lastOffset !== call.baseOffset + count - 1) {
      this.fail(`(d) append of ${count} got offsets ${result.baseOffset}..${result.lastOffset}, call order predicts ${call.baseOffset}..${call.baseOffset + count - 1}`);
      return;
    }
    if (this.config.durability === 'always' && result.durability !== 'synced') {
      this.fail(`(a) always mode acknowledged ${result.baseOffset}..${result.lastOffset} as '${result.durability}'`);
      return;
    }
    call.resolved = true;
    boot.resolvedNext = Math.max(boot.resolvedNext, result.lastOffset + 1);
    if (result.durability === 'synced') this.raiseDurable(result.lastOffset + 1);
  }

  /** Lets in-flight appends finish, giving the log simulated time for timer-driven commits. */
  private async settlePending(): Promise<void> {
    const boot = this.boot;
    for (let waitedMs = 0; boot.inflight.size > 0; waitedMs++) {
      await settle(1);
      if (boot.inflight.size === 0) break;
      if (waitedMs >= SETTLE_MS_MAX) throw new Error(`${boot.inflight.size} appends still pending after ${SETTLE_MS_MAX} simulated ms`);
      await boot.clock.advanceAndSettle(1);
    }
    this.throwFailure();
    assert.equal(boot.log.nextOffset, boot.nextPredicted, '(d) nextOffset after all appends settled');
  }

  private async retention(): Promise<void> {
    const { log } = this.boot;
    const startBefore = log.startOffset;
    const report = await log.enforceRetention();
    coverage.segmentsDeleted += report.segmentsDeleted;
    assert.equal(report.startOffset, log.startOffset, 'retention report startOffset');
    assert.ok(log.startOffset >= startBefore, `retention moved startOffset back: ${startBefore} -> ${log.startOffset}`);
    assert.ok(log.startOffset <= log.nextOffset, 'retention deleted past the end');
    if (this.config.retention === undefined) assert.equal(report.segmentsDeleted, 0, 'retention without a policy deleted segments');
    await this.readAndVerify(log.startOffset, log.visibleEndOffset);
  }

  private async deleteBefore(fraction: number): Promise<void> {
    const { log } = this.boot;
    const target = log.startOffset + Math.floor(fraction * (log.nextOffset - log.startOffset));
    const startBefore = log.startOffset;
    coverage.segmentsDeleted += await log.deleteSegmentsBefore(target);
    this.frontDeletable = true;
    assert.ok(log.startOffset >= startBefore, 'deleteSegmentsBefore moved startOffset back');
    assert.ok(log.startOffset <= Math.max(target, startBefore), `deleteSegmentsBefore(${target}) deleted records at or past it: startOffset ${log.startOffset}`);
    await this.readAndVerify(log.startOffset, log.visibleEndOffset);
  }

  private async crash(tear: boolean, garbage: boolean): Promise<void> {
    this.throwFailure();
    const old = this.boot;
    old.alive = false;
    coverage.crashes++;
    if (old.inflight.size > 0) coverage.crashesWithAppendsInFlight++;
    const report = this.fs.crash({ tearLastWrite: tear, garbage, random: this.random });
    if (report.operationsCut > 0) coverage.crashesMidOperation++;
    await this.openBoot(this.newClock(old.clock.nowMs()));
    const { log } = this.boot;
    const next = log.nextOffset;
    assert.ok(
      next >= this.durableNext,
      `(a) acknowledged records lost: offsets below ${this.durableNext} were durable, recovered log ends at ${next} (recovery ${JSON.stringify(log.recovery)})`,
    );
    await this.verifyRecovered(old.nextPredicted);
    if (log.recovery.truncatedBytes > 0) coverage.recoveriesThatCutATail++;
    coverage.recordsLostInCrashes += old.nextPredicted - next;
    coverage.segmentsRecoveredMax = Math.max(coverage.segmentsRecoveredMax, log.recovery.segments);
    // What survived a crash is on the disk: a later crash cannot take it away.
    this.raiseDurable(next);
  }

  private async reopen(): Promise<void> {
    await this.settlePending();
    coverage.reopens++;
    const old = this.boot;
    const { startOffset, nextOffset } = old.log;
    await old.log.close();
    old.alive = false;
    await assertRejectsWith(old.log.append([{ value: Buffer.from('late') }]), 'LOG_CLOSED');
    await this.openBoot(this.newClock(old.clock.nowMs()));
    assert.equal(this.boot.log.nextOffset, nextOffset, 'a clean close and reopen keeps every record');
    if (this.config.retention === undefined) assert.equal(this.boot.log.startOffset, startOffset, 'reopen moved startOffset');
    await this.verifyRecovered(old.nextPredicted);
  }

  // ---- checks -------------------------------------------------------------------------------

  private async openBoot(clock: SimClock): Promise<void> {
    const options: LogOptions = {
      dir: LOG_DIR,
      fs: this.fs.session(),
      clock,
      durability: this.config.durability,
      syncIntervalMs: this.config.syncIntervalMs,
      segmentBytes: this.config.segmentBytes,
      indexIntervalBytes: this.config.indexIntervalBytes,
      tailCacheBytes: this.config.tailCacheBytes,
      checkpointIntervalMs: this.config.checkpointIntervalMs,
      leaderEpoch: LEADER_EPOCH,
      ...(this.config.segmentAgeMs === undefined ? {} : { segmentAgeMs: this.config.segmentAgeMs }),
      ...(this.config.retention === undefined ? {} : { retention: this.config.retention }),
    };
    const log = await Log.open(options);
    this.boot = { log, clock, alive: true, nextPredicted: log.nextOffset, resolvedNext: log.nextOffset, inflight: new Set() };
  }

  /** (b) and (c) after a recovery: a readable, intact prefix; records past its end are gone for good. */
  private async verifyRecovered(predictedEnd: number): Promise<void> {
    const { log } = this.boot;
    const start = log.startOffset;
    const next = log.nextOffset;
    assert.equal(log.recovery.nextOffset, next, 'recovery report nextOffset');
    assert.equal(log.recovery.startOffset, start, 'recovery report startOffset');
    assert.ok(start <= next, `startOffset ${start} > nextOffset ${next}`);
    assert.ok(next <= predictedEnd, `(b) recovered log ends at ${next}, past anything appended (${predictedEnd})`);
    if (!this.frontDeletable) assert.equal(start, 0, `(b) startOffset ${start} without retention`);
    assert.equal(log.visibleEndOffset, next, 'after recovery every record is visible');
    await this.readAndVerify(start, next);
    for (const [offset, record] of this.byOffset) {
      if (offset < next) continue;
      record.dead = true;
      this.byOffset.delete(offset);
    }
  }

  /** Reads [from, to) in chunks of random size; every record must be the one appended at its offset. */
  private async readAndVerify(from: number, to: number): Promise<void> {
    const { log } = this.boot;
    let offset = from;
    while (offset < to) {
      const bytesMax = READ_BYTES_CHOICES[randomInt(this.random, 0, READ_BYTES_CHOICES.length - 1)]!;
      const recordsMax = randomInt(this.random, 1, 50);
      const records = await log.read(offset, { bytesMax, recordsMax, endOffset: to });
      assert.ok(records.length > 0, `read(${offset}) returned nothing below ${to}`);
      assert.ok(records.length <= recordsMax, `read returned ${records.length} > recordsMax ${recordsMax}`);
      for (const record of records) {
        assert.equal(record.offset, offset, `(b) read returned offset ${record.offset} where ${offset} was due`);
        this.verifyRecord(record);
        offset++;
      }
    }
    assert.equal(offset, to);
  }

  private verifyRecord(record: LogRecord): void {
    const at = `offset ${record.offset}`;
    const expected = this.byOffset.get(record.offset);
    assert.ok(expected !== undefined, `(c) ${at}: a record where nothing was appended`);
    assert.ok(!expected.dead, `(b) ${at}: a record lost in an earlier crash came back`);
    const idHeader = record.headers[0];
    assert.ok(idHeader !== undefined && idHeader[0] === ID_HEADER, `(c) ${at}: not a record we appended`);
    assert.equal(Number(idHeader[1]), expected.id, `(b) ${at}: holds record #${idHeader[1]}, #${expected.id} was appended there`);
    assert.deepEqual(record.key, expected.key, `(c) ${at}: key differs`);
    assert.deepEqual(record.headers.map(([name, value]) => [name, value]), expected.headers.map(([name, value]) => [name, value]), `(c) ${at}: headers differ`);
    assert.ok(record.value.equals(expected.input.value), `(c) ${at}: value differs (${record.value.length} bytes, ${expected.input.value.length} appended)`);
    if (expected.stampedFrom < 0) {
      assert.equal(record.timestampMs, expected.timestampMs, `(c) ${at}: timestamp`);
    } else {
      const shown = [expected.timestampMs, ...this.wallTimes.slice(expected.stampedFrom), this.boot.clock.nowMs()];
      const ok = record.timestampMs >= Math.min(...shown) && record.timestampMs <= Math.max(...shown);
      assert.ok(ok, `(c) ${at}: stamped ${record.timestampMs}, the clock showed ${Math.min(...shown)}..${Math.max(...shown)} since the append`);
    }
    assert.equal(record.leaderEpoch, LEADER_EPOCH, `(c) ${at}: leader epoch`);
  }

  // ---- helpers ------------------------------------------------------------------------------

  private makeRecord(spec: RecordSpec, clock: SimClock): Expected {
    const id = this.nextId++;
    const random = seededRandom(this.config.seed ^ Math.imul(id + 1, 0x9e3779b1));
    const text = (length: number): string => Array.from({ length }, () => TEXT_ALPHABET[randomInt(random, 0, TEXT_ALPHABET.length - 1)]).join('');
    const key = spec.keyBytes < 0 ? null : randomBytes(random, spec.keyBytes);
    const headers: Header[] = [[ID_HEADER, String(id)]];
    for (let i = 0; i < spec.headersCount; i++) headers.push([text(randomInt(random, 1, 8)), text(randomInt(random, 0, 12))]);
    const timestampMs = clock.nowMs() + (spec.timestampDeltaMs ?? 0);
    const input: RecordInput = { value: randomBytes(random, spec.valueBytes), headers };
    // Both spellings of "no key" are exercised.
    if (key !== null || id % 2 === 0) input.key = key;
    if (spec.timestampDeltaMs !== null) input.timestampMs = timestampMs;
    const stampedFrom = spec.timestampDeltaMs === null ? this.wallTimes.length : -1;
    return { id, input, key, headers, timestampMs, stampedFrom, dead: false };
  }

  private newClock(startMs?: number): SimClock {
    return new WallTrackingClock(startMs, this.wallTimes);
  }

  private raiseDurable(offset: number): void {
    this.durableNext = Math.max(this.durableNext, offset);
  }

  private fail(message: string, cause?: unknown): void {
    this.failure ??= new Error(message, { cause });
  }

  private throwFailure(): void {
    if (this.failure !== null) throw this.failure;
  }
}

/** A SimClock that notes the wall time around every change, so stamped times can be checked. */
class WallTrackingClock extends SimClock {
  constructor(
    startMs: number | undefined,
    private readonly seen: number[],
  ) {
    super(startMs);
    seen.push(this.nowMs());
  }

  override advance(ms: number): void {
    this.seen.push(this.nowMs());
    super.advance(ms);
    this.seen.push(this.nowMs());
  }

  override async advanceAndSettle(ms: number): Promise<void> {
    this.seen.push(this.nowMs());
    await super.advanceAndSettle(ms);
    this.seen.push(this.nowMs());
  }

  override jumpWallClock(ms: number): void {
    super.jumpWallClock(ms);
    this.seen.push(this.nowMs());
  }
}

/** An op in a line: record specs shortened to counts. */
function describeOp(op: Op): string {
  if (op.kind === 'append') return JSON.stringify({ ...op, records: op.records.length });
  if (op.kind === 'crash') return JSON.stringify({ ...op, appends: op.appends.map((records) => records.length) });
  return JSON.stringify(op);
}

async function assertRejectsWith(promise: Promise<unknown>, code: 'LOG_CLOSED'): Promise<void> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isFerryError(error, code), `expected FerryError ${code}, got ${describe(error)}`);
    return;
  }
  assert.fail(`expected FerryError ${code}, the call succeeded`);
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name} ${(error as { code?: string }).code ?? ''}: ${error.message}`;
  return String(error);
}
