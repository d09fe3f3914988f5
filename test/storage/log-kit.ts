/**
 * Helpers shared by the storage unit tests: a log on the simulated disk and clock, deterministic
 * record contents, and reading a whole log back.
 */
import assert from 'node:assert/strict';
import { NodeFileSystem } from '../../src/platform/fs.js';
import type { Logger, LogFields } from '../../src/platform/logger.js';
import { isFerryError, type ErrorCode, type FerryError } from '../../src/errors.js';
import { Log } from '../../src/storage/log.js';
import type { LogOptions, LogRecord, RecordInput } from '../../src/storage/types.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';

export const LOG_DIR = '/data/log';

export interface SimEnv {
  fs: SimFileSystem;
  clock: SimClock;
}

export function simEnv(): SimEnv {
  return { fs: new SimFileSystem(), clock: new SimClock() };
}

export function openSimLog(env: SimEnv, options: Partial<LogOptions> = {}): Promise<Log> {
  return Log.open({ dir: LOG_DIR, fs: env.fs, clock: env.clock, durability: 'always', ...options });
}

/** A log on the real filesystem (for torn-tail and damage tests that edit real files). */
export function openRealLog(dir: string, options: Partial<LogOptions> = {}): Promise<Log> {
  return Log.open({ dir, fs: new NodeFileSystem(), clock: options.clock ?? new SimClock(), durability: 'always', ...options });
}

/** Record `i`: its value and key are a function of `i`, so any read can be checked. */
export function record(i: number, valueBytes = 100): RecordInput {
  const value = Buffer.alloc(valueBytes);
  for (let b = 0; b < valueBytes; b++) value[b] = (i * 31 + b) & 0xff;
  return { key: Buffer.from(`key-${i}`), headers: [['n', String(i)]], value };
}

/** Asserts that `found` is record(i) (as written by `record`). */
export function assertRecord(found: LogRecord, i: number, valueBytes = 100): void {
  const expected = record(i, valueBytes);
  assert.equal(found.key?.toString(), expected.key!.toString(), `key of record ${i}`);
  assert.deepEqual(found.headers, [['n', String(i)]], `headers of record ${i}`);
  assert.ok(found.value.equals(expected.value), `value of record ${i}`);
}

/** Appends records first..first+count-1, one append each, sequentially. */
export async function appendSequential(log: Log, first: number, count: number, valueBytes = 100): Promise<void> {
  for (let i = first; i < first + count; i++) {
    const result = await log.append([record(i, valueBytes)]);
    assert.equal(result.baseOffset, i, 'offsets follow the record numbers');
  }
}

/** Every visible record, read in pieces of `recordsMax`. */
export async function readAll(log: Log, recordsMax = 7): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  let offset = log.startOffset;
  while (offset < log.visibleEndOffset) {
    const records = await log.read(offset, { recordsMax });
    assert.ok(records.length > 0, `read(${offset}) returned nothing below ${log.visibleEndOffset}`);
    out.push(...records);
    offset = records[records.length - 1]!.offset + 1;
  }
  return out;
}

/** Awaits `promise`, which must reject with a FerryError of `code`; returns the error. */
export async function rejectsWith(promise: Promise<unknown>, code: ErrorCode): Promise<FerryError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(isFerryError(error), `expected a FerryError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return error;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

/** A logger that keeps what it was told, for tests that check what an operator would see. */
export class RecordingLogger implements Logger {
  readonly lines: { level: string; event: string; fields: LogFields | undefined }[] = [];
  debug(event: string, fields?: LogFields): void {
    this.lines.push({ level: 'debug', event, fields });
  }
  info(event: string, fields?: LogFields): void {
    this.lines.push({ level: 'info', event, fields });
  }
  warn(event: string, fields?: LogFields): void {
    this.lines.push({ level: 'warn', event, fields });
  }
  error(event: string, fields?: LogFields): void {
    this.lines.push({ level: 'error', event, fields });
  }
  events(event: string): (LogFields | undefined)[] {
    return this.lines.filter((line) => line.event === event).map((line) => line.fields);
  }
}
