/**
 * The reference model the storage property test (test/storage/log-property.test.ts) runs the real
 * Log against. Every record carries its model id in its first header, so whatever a read returns
 * can be traced to the append call that made it — including records of appends that were still in
 * flight at a crash, or that failed in a way that leaves their fate open.
 *
 * A record is, in the model:
 *   pending  — its append has not settled;
 *   acked    — its append resolved: it sits at the offset the result named;
 *   limbo    — its append failed with STORAGE_FAILED, or the process died first: it may or may not
 *              be in the log, and the next recovery decides;
 *   dead     — its append was refused with DISK_FULL, or a recovery did not bring it back: it must
 *              never be read again.
 * A record is "placed" at an offset once a result or a read shows it there; it may never move.
 *
 * Each "boot" is one process lifetime: a Log opened on a fresh session of the simulated disk with a
 * fresh clock. A crash kills the boot (its handles, session and timers are dead), and whatever its
 * promises do afterwards is ignored, as it would be for a killed process.
 */
import assert from 'node:assert/strict';
import { Log } from '../../src/storage/log.js';
import { isFerryError, type ErrorCode } from '../../src/errors.js';
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
  /**
   * A power cut. `appends` are issued (not awaited) just before; with `cutAfterOps` the disk stops
   * after that many more operations while the log runs on for `runMs` of simulated time, so the
   * cut can land between any two I/O steps (of an append, a roll, a checkpoint, a sync timer).
   */
  | { kind: 'crash'; appends: RecordSpec[][]; cutAfterOps: number | null; runMs: number; tear: boolean; garbage: boolean }
  | { kind: 'reopen' }
  /** The disk fills up: only `headroomBytes` more fit. */
  | { kind: 'diskFull'; headroomBytes: number }
  | { kind: 'freeSpace' }
  /** The next write or datasync of a segment file fails with EIO. */
  | { kind: 'ioError'; op: 'write' | 'datasync' };

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
/** A segment file, as named by the log; faults aimed at it spare the index and checkpoint files. */
const SEGMENT_FILE_SUFFIX = '.log';

type RecordState = 'pending' | 'acked' | 'limbo' | 'dead';

interface Expected {
  id: number;
  call: AppendCall;
  /** Position in its append call: records of one call sit at consecutive offsets. */
  index: number;
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
  state: RecordState;
  offset: number | null;
}

interface AppendCall {
  records: Expected[];
  result: AppendResult | null;
}

interface Boot {
  log: Log;
  clock: SimClock;
  alive: boolean;
  /** The log failed with STORAGE_FAILED (an injected EIO): it must be reopened. */
  failed: boolean;
  inflight: Set<Promise<void>>;
  /** Append calls since the last settle, in call order: their results must tile the offsets. */
  unsettled: AppendCall[];
  /** nextOffset as of the last settle. */
  settledNext: number;
  /** One past the last offset of every append that resolved in this boot. */
  resolvedNext: number;
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
  appendsRefusedDiskFull: 0,
  appendsFailedStorage: 0,
  opensRetried: 0,
};

export class LogModel {
  private readonly fs: SimFileSystem;
  private readonly random: () => number;
  private boot!: Boot;
  private readonly byId = new Map<number, Expected>();
  /** Records placed at an offset that is still part of the log (or of its not-yet-recovered tail). */
  private readonly atOffset = new Map<number, Expected>();
  /** Every offset below this must survive any crash (unless retention removed it). */
  private durableNext = 0;
  private nextId = 0;
  /** Start offset may legitimately move past 0 (retention configured or segments deleted). */
  private frontDeletable: boolean;
  /** DISK_FULL is an expected answer (the disk was limited since the last settle with space). */
  private diskFullPossible = false;
  /** STORAGE_FAILED is an expected answer (an EIO was injected and may not have fired yet). */
  private ioErrorPossible = false;
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
    if (this.boot.failed) await this.reopen();
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
        if (await this.tolerate(log.sync())) this.raiseDurable(target);
        break;
      }
      case 'advance': {
        const target = this.boot.resolvedNext;
        await this.boot.clock.advanceAndSettle(op.ms);
        // Interval mode promises a sync at least every syncIntervalMs.
        const idle = this.boot.inflight.size === 0 && !this.boot.failed;
        if (this.config.durability === 'interval' && op.ms >= 2 * this.config.syncIntervalMs && idle && !this.ioErrorPossible) {
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
        await this.tolerate(this.readAndVerify(log.startOffset, log.visibleEndOffset));
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
      case 'diskFull':
        this.fs.setCapacity(this.fs.used + op.headroomBytes);
        this.diskFullPossible = true;
        break;
      case 'freeSpace':
        this.fs.setCapacity(Infinity);
        break;
      case 'ioError':
        this.fs.failNext(op.op, 'EIO', SEGMENT_FILE_SUFFIX);
        this.ioErrorPossible = true;
        break;
    }
    this.throwFailure();
  }

  /** Every case ends with space, a settled check, a torn crash and a final recovery check. */
  async finish(): Promise<void> {
    this.fs.setCapacity(Infinity);
    await this.settlePending();
    if (this.boot.failed) await this.reopen();
    await this.tolerate(this.readAndVerify(this.boot.log.startOffset, this.boot.log.visibleEndOffset));
    await this.crash(true, true);
    if (this.boot.failed) await this.reopen();
    this.append([{ keyBytes: 3, headersCount: 1, valueBytes: 10, timestampDeltaMs: 0 }]);
    await this.settlePending();
    if (!this.boot.failed) await this.readAndVerify(this.boot.log.startOffset, this.boot.log.nextOffset);
    await this.tolerate(this.boot.log.close());
  }

  // ---- operations ---------------------------------------------------------------------------

  private append(specs: RecordSpec[]): void {
    const boot = this.boot;
    const call: AppendCall = { records: [], result: null };
    call.records = specs.map((spec, index) => this.makeRecord(spec, index, call, boot.clock));
    boot.unsettled.push(call);
    coverage.appendCalls++;
    coverage.recordsAppended += specs.length;
    const promise = (async () => boot.log.append(call.records.map((r) => r.input)))().then(
      (result) => {
        if (boot.alive) this.onResolved(boot, call, result);
      },
      (error: unknown) => {
        if (boot.alive) this.onRejected(boot, call, error);
      },
    );
    boot.inflight.add(promise);
    void promise.finally(() => boot.inflight.delete(promise));
  }

  private onResolved(boot: Boot, call: AppendCall, result: AppendResult): void {
    const count = call.records.length;
    if (result.lastOffset - result.baseOffset + 1 !== count) {
      this.fail(`(d) append of ${count} got offsets ${result.baseOffset}..${result.lastOffset}`);
      return;
    }
    if (this.config.durability === 'always' && result.durability !== 'synced') {
      this.fail(`(a) always mode acknowledged ${result.baseOffset}..${result.lastOffset} as '${result.durability}'`);
      return;
    }
    call.result = result;
    try {
      call.records.forEach((record, i) => this.place(record, result.baseOffset + i, 'append result'));
    } catch (error) {
      this.fail((error as Error).message, error);
      return;
    }
    for (const record of call.records) record.state = 'acked';
    boot.resolvedNext = Math.max(boot.resolvedNext, result.lastOffset + 1);
    if (result.durability === 'synced') this.raiseDurable(result.lastOffset + 1);
  }

  private onRejected(boot: Boot, call: AppendCall, error: unknown): void {
    if (isFerryError(error, 'DISK_FULL') && this.diskFullPossible) {
      // Refused: the log cut the batch back, so these records must never show up.
      coverage.appendsRefusedDiskFull++;
      for (const record of call.records) record.state = 'dead';
      return;
    }
    if (isFerryError(error, 'STORAGE_FAILED') && this.ioErrorPossible) {
      // Unknown fate (the bytes may be in the page cache); the log must be reopened.
      coverage.appendsFailedStorage++;
      for (const record of call.records) record.state = 'limbo';
      boot.failed = true;
      return;
    }
    this.fail(`append of ${call.records.length} failed: ${describe(error)}`, error);
  }

  /**
   * Lets in-flight appends finish (giving the log simulated time for timer-driven commits), then
   * checks (d): the appends that succeeded, in call order, hold consecutive offsets from where the
   * last settle ended — refused ones gave theirs back.
   */
  private async settlePending(): Promise<void> {
    const boot = this.boot;
    for (let waitedMs = 0; boot.inflight.size > 0; waitedMs++) {
      await settle(1);
      if (boot.inflight.size === 0) break;
      if (waitedMs >= SETTLE_MS_MAX) throw new Error(`${boot.inflight.size} appends still pending after ${SETTLE_MS_MAX} simulated ms`);
      await boot.clock.advanceAndSettle(1);
    }
    this.throwFailure();
    // Every refusal of the full-disk period has arrived: from here on DISK_FULL needs a full disk.
    this.diskFullPossible = this.fs.capacity !== Infinity;
    if (boot.failed) return;
    let next = boot.settledNext;
    for (const call of boot.unsettled) {
      if (call.result === null) continue;
      assert.equal(call.result.baseOffset, next, `(d) appends got offsets out of call order: ${call.result.baseOffset} where ${next} was due`);
      next = call.result.lastOffset + 1;
    }
    assert.equal(boot.log.nextOffset, next, '(d) nextOffset after all appends settled');
    boot.unsettled = [];
    boot.settledNext = next;
  }

  private async retention(): Promise<void> {
    const { log } = this.boot;
    const startBefore = log.startOffset;
    const report = await this.tolerate(log.enforceRetention());
    if (report === null) return;
    coverage.segmentsDeleted += report.segmentsDeleted;
    assert.equal(report.startOffset, log.startOffset, 'retention report startOffset');
    assert.ok(log.startOffset >= startBefore, `retention moved startOffset back: ${startBefore} -> ${log.startOffset}`);
    assert.ok(log.startOffset <= log.nextOffset, 'retention deleted past the end');
    if (this.config.retention === undefined) assert.equal(report.segmentsDeleted, 0, 'retention without a policy deleted segments');
    await this.tolerate(this.readAndVerify(log.startOffset, log.visibleEndOffset));
  }

  private async deleteBefore(fraction: number): Promise<void> {
    const { log } = this.boot;
    const target = log.startOffset + Math.floor(fraction * (log.nextOffset - log.startOffset));
    const startBefore = log.startOffset;
    const deleted = await this.tolerate(log.deleteSegmentsBefore(target));
    if (deleted === null) return;
    coverage.segmentsDeleted += deleted;
    this.frontDeletable = true;
    assert.ok(log.startOffset >= startBefore, 'deleteSegmentsBefore moved startOffset back');
    assert.ok(log.startOffset <= Math.max(target, startBefore), `deleteSegmentsBefore(${target}) deleted records at or past it: startOffset ${log.startOffset}`);
    await this.tolerate(this.readAndVerify(log.startOffset, log.visibleEndOffset));
  }

  private async crash(tear: boolean, garbage: boolean): Promise<void> {
    this.throwFailure();
    const old = this.boot;
    old.alive = false;
    coverage.crashes++;
    if (old.inflight.size > 0) coverage.crashesWithAppendsInFlight++;
    const report = this.fs.crash({ tearLastWrite: tear, garbage, random: this.random });
    if (report.operationsCut > 0) coverage.crashesMidOperation++;
    const placedBefore = this.atOffset.size;
    await this.openBoot(this.newClock(old.clock.nowMs()));
    const { log } = this.boot;
    const next = log.nextOffset;
    assert.ok(
      next >= this.durableNext,
      `(a) acknowledged records lost: offsets below ${this.durableNext} were durable, recovered log ends at ${next} (recovery ${JSON.stringify(log.recovery)})`,
    );
    await this.verifyRecovered();
    if (log.recovery.truncatedBytes > 0) coverage.recoveriesThatCutATail++;
    coverage.recordsLostInCrashes += Math.max(0, placedBefore - this.atOffset.size);
    coverage.segmentsRecoveredMax = Math.max(coverage.segmentsRecoveredMax, log.recovery.segments);
    // What survived a crash is on the disk: a later crash cannot take it away.
    this.raiseDurable(next);
  }

  /** A clean close (tolerating the errors a full disk or a failed log may give) and a reopen. */
  private async reopen(): Promise<void> {
    await this.settlePending();
    coverage.reopens++;
    const old = this.boot;
    const { startOffset, nextOffset } = old.log;
    const wasFailed = old.failed;
    await this.tolerate(old.log.close(), ['DISK_FULL', 'STORAGE_FAILED']);
    old.alive = false;
    await assertRejectsWith(old.log.append([{ value: Buffer.from('late') }]), 'LOG_CLOSED');
    await this.openBoot(this.newClock(old.clock.nowMs()));
    if (!wasFailed) {
      assert.equal(this.boot.log.nextOffset, nextOffset, 'a clean close and reopen keeps every record');
      if (this.config.retention === undefined) assert.equal(this.boot.log.startOffset, startOffset, 'reopen moved startOffset');
    }
    await this.verifyRecovered();
  }

  // ---- checks -------------------------------------------------------------------------------

  /** Opens the next boot; a full disk or a pending injected EIO may refuse once, then space is freed. */
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
    let log: Log | null = null;
    // Each refusal uses up a fault (a queued EIO, or the full disk, which is then freed), so the
    // faults queued before the first attempt (plus the full disk) bound the refusals.
    const refusalsMax = this.fs.faultsPending() + 1;
    for (let attempt = 0; log === null; attempt++) {
      try {
        log = await Log.open({ ...options, fs: this.fs.session() });
      } catch (error) {
        const expected = (isFerryError(error, 'DISK_FULL') && this.diskFullPossible) || (isFerryError(error, 'STORAGE_FAILED') && this.ioErrorPossible);
        if (!expected || attempt >= refusalsMax) throw new Error(`Log.open failed: ${describe(error)}`, { cause: error });
        coverage.opensRetried++;
        this.fs.setCapacity(Infinity);
      }
    }
    // An injected EIO that has fired was answered by the reopen; one still queued may fire later.
    this.ioErrorPossible = this.fs.faultsPending() > 0;
    this.boot = {
      log,
      clock,
      alive: true,
      failed: false,
      inflight: new Set(),
      unsettled: [],
      settledNext: log.nextOffset,
      resolvedNext: log.nextOffset,
    };
  }

  /** (b) and (c) after a recovery: a readable, intact prefix; whatever it did not bring back is gone for good. */
  private async verifyRecovered(): Promise<void> {
    const { log } = this.boot;
    const start = log.startOffset;
    const next = log.nextOffset;
    assert.equal(log.recovery.nextOffset, next, 'recovery report nextOffset');
    assert.equal(log.recovery.startOffset, start, 'recovery report startOffset');
    assert.ok(start <= next, `startOffset ${start} > nextOffset ${next}`);
    if (!this.frontDeletable) assert.equal(start, 0, `(b) startOffset ${start} without retention`);
    assert.equal(log.visibleEndOffset, next, 'after recovery every record is visible');
    await this.readAndVerify(start, next);
    for (const [offset, record] of this.atOffset) {
      if (offset < next) continue;
      record.state = 'dead';
      this.atOffset.delete(offset);
    }
    for (const record of this.byId.values()) {
      if ((record.state === 'pending' || record.state === 'limbo') && record.offset === null) record.state = 'dead';
      else if (record.state === 'pending' || record.state === 'limbo') record.state = 'acked';
    }
  }

  /** Reads [from, to) in chunks of random size; every record must be one appended, at its one offset. */
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
    const idHeader = record.headers[0];
    assert.ok(idHeader !== undefined && idHeader[0] === ID_HEADER, `(c) ${at}: not a record we appended`);
    const expected = this.byId.get(Number(idHeader[1]));
    assert.ok(expected !== undefined, `(c) ${at}: record #${idHeader[1]} was never appended`);
    assert.notEqual(expected.state, 'dead', `(b) ${at}: record #${expected.id} was refused or lost, yet it is there`);
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
    this.place(expected, record.offset, 'read');
  }

  /** Records the offset a record sits at; it may never move, nor share it, nor split from its batch. */
  private place(record: Expected, offset: number, source: string): void {
    if (record.offset !== null) {
      assert.equal(offset, record.offset, `(b) ${source}: record #${record.id} at ${offset}, earlier seen at ${record.offset}`);
      return;
    }
    const other = this.atOffset.get(offset);
    assert.ok(other === undefined, `(b) ${source}: record #${record.id} at ${offset}, where #${other?.id} sits`);
    const previous = record.call.records[record.index - 1];
    if (previous !== undefined && previous.offset !== null) {
      assert.equal(previous.offset, offset - 1, `(b) ${source}: record #${record.id} at ${offset} is not next to #${previous.id} of its append`);
    }
    record.offset = offset;
    this.atOffset.set(offset, record);
  }

  // ---- helpers ------------------------------------------------------------------------------

  /**
   * Awaits an operation; the errors an injected fault explains (STORAGE_FAILED after EIO, DISK_FULL
   * on a full disk) give null and mark the boot failed where the log says so; any other error fails.
   */
  private async tolerate<T>(promise: Promise<T>, codes: ErrorCode[] = ['STORAGE_FAILED', 'DISK_FULL']): Promise<T | null> {
    try {
      return await promise;
    } catch (error) {
      if (isFerryError(error, 'STORAGE_FAILED') && codes.includes('STORAGE_FAILED') && (this.ioErrorPossible || this.boot.failed)) {
        this.boot.failed = true;
        return null;
      }
      if (isFerryError(error, 'DISK_FULL') && codes.includes('DISK_FULL') && this.diskFullPossible) return null;
      throw error;
    }
  }

  private makeRecord(spec: RecordSpec, index: number, call: AppendCall, clock: SimClock): Expected {
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
    const record: Expected = { id, call, index, input, key, headers, timestampMs, stampedFrom, state: 'pending', offset: null };
    this.byId.set(id, record);
    return record;
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

async function assertRejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
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
