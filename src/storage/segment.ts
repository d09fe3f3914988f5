/**
 * One segment: a `.log` file of batches starting at `baseOffset`, its sparse index (in memory,
 * written to `.index`/`.timeindex` when sealed or on close), and what the log needs to know about
 * it without reading it: size, next offset, newest timestamp.
 *
 * The handle stays open for reads until the segment is retired (retention, recovery drops, close);
 * readers hold a reference so that retiring never closes a file under an in-flight pread.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { FileHandle, FileSystem } from '../platform/fs.js';
import { writeFileAtomic } from '../platform/atomic-write.js';
import type { BatchHeader } from './record-batch.js';
import { needsIndexEntry, SegmentIndex } from './segment-index.js';

/** Offsets in file names are zero-padded to 20 digits (u64 max) so names sort like offsets. */
const OFFSET_DIGITS = 20;
export const LOG_SUFFIX = '.log';
export const OFFSET_INDEX_SUFFIX = '.index';
export const TIME_INDEX_SUFFIX = '.timeindex';
const SEGMENT_NAME = /^(\d{20})\.(log|index|timeindex)$/;

export function segmentFileName(baseOffset: number, suffix: string): string {
  return String(baseOffset).padStart(OFFSET_DIGITS, '0') + suffix;
}

/** The base offset and kind of a segment file name, or null for any other name. */
export function parseSegmentFileName(name: string): { baseOffset: number; suffix: string } | null {
  const match = SEGMENT_NAME.exec(name);
  if (match === null) return null;
  const baseOffset = Number(match[1]);
  if (!Number.isSafeInteger(baseOffset)) return null;
  return { baseOffset, suffix: '.' + match[2]! };
}

export class Segment {
  /** Bytes written (write() returned); reads never look past this. */
  sizeBytes: number;
  /** One past the last offset written. */
  nextOffset: number;
  /** Running max of record timestamps in the segment; -1 when empty. */
  maxTimestampMs: number;
  /** When the segment started taking records, on the log's AgeClock (retention.ts); its age for segmentAgeMs. */
  createdAtMs: number;
  /** Written since the last datasync started: the next sync must cover it. */
  dirty = false;
  private refs = 0;
  private retired = false;
  private retiring: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  constructor(
    readonly fs: FileSystem,
    readonly dir: string,
    readonly baseOffset: number,
    readonly handle: FileHandle,
    readonly index: SegmentIndex,
    state: { sizeBytes: number; nextOffset: number; maxTimestampMs: number; createdAtMs: number },
  ) {
    assert.ok(state.nextOffset >= baseOffset, 'a segment ends at or after its base');
    this.sizeBytes = state.sizeBytes;
    this.nextOffset = state.nextOffset;
    this.maxTimestampMs = state.maxTimestampMs;
    this.createdAtMs = state.createdAtMs;
  }

  /** A new, empty segment file (truncated, in case a failed roll left one behind). */
  static async create(fs: FileSystem, dir: string, baseOffset: number, nowMs: number): Promise<Segment> {
    const handle = await fs.open(join(dir, segmentFileName(baseOffset, LOG_SUFFIX)), 'create');
    try {
      await handle.truncate(0);
    } catch (error) {
      await handle.close();
      throw error;
    }
    return new Segment(fs, dir, baseOffset, handle, new SegmentIndex(), {
      sizeBytes: 0,
      nextOffset: baseOffset,
      maxTimestampMs: -1,
      createdAtMs: nowMs,
    });
  }

  get recordCount(): number {
    return this.nextOffset - this.baseOffset;
  }

  path(suffix: string): string {
    return join(this.dir, segmentFileName(this.baseOffset, suffix));
  }

  /**
   * Accounts for a batch that now sits at `position`: size, offsets, timestamps, and an index entry
   * when it is the segment's first batch or starts `indexIntervalBytes` past the last entry.
   */
  noteBatch(position: number, header: BatchHeader, indexIntervalBytes: number): void {
    assert.equal(header.baseOffset, this.nextOffset, 'batches are contiguous');
    assert.equal(position, this.sizeBytes, 'batches are appended at the end');
    if (header.maxTimestampMs > this.maxTimestampMs) this.maxTimestampMs = header.maxTimestampMs;
    if (needsIndexEntry(this.index.lastPosition(), position, indexIntervalBytes)) {
      this.index.add(header.baseOffset - this.baseOffset, position, this.maxTimestampMs);
    }
    this.sizeBytes = position + header.batchBytes;
    this.nextOffset = header.baseOffset + header.recordCount;
  }

  /** Writes both index files atomically (temp file, datasync, rename, syncDir). */
  async writeIndexFiles(): Promise<void> {
    await writeFileAtomic(this.fs, this.path(OFFSET_INDEX_SUFFIX), this.index.encodeOffsetIndex());
    await writeFileAtomic(this.fs, this.path(TIME_INDEX_SUFFIX), this.index.encodeTimeIndex());
  }

  /** Takes a reference for an I/O operation; false when the segment is already retired. */
  acquire(): boolean {
    if (this.retired) return false;
    this.refs++;
    return true;
  }

  release(): void {
    assert.ok(this.refs > 0, 'release matches acquire');
    this.refs--;
    if (this.refs === 0 && this.drained !== null) this.drained();
  }

  get isRetired(): boolean {
    return this.retired;
  }

  /** No new references; resolves once the in-flight ones are released and the handle is closed. */
  retire(): Promise<void> {
    if (this.retiring === null) this.retiring = this.closeWhenDrained();
    return this.retiring;
  }

  private async closeWhenDrained(): Promise<void> {
    this.retired = true;
    if (this.refs > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    await this.handle.close();
  }

  /** Retires the segment and removes its files (the caller syncs the directory). */
  async delete(): Promise<void> {
    await this.retire();
    for (const suffix of [LOG_SUFFIX, OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX]) await unlinkIfPresent(this.fs, this.path(suffix));
  }
}

export async function unlinkIfPresent(fs: FileSystem, path: string): Promise<void> {
  try {
    await fs.unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Reads exactly `length` bytes at `position` unless the file ends first; returns the count read. */
export async function readFully(handle: FileHandle, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const n = await handle.read(buf, offset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}
