/**
 * What `Log.open` does before the log takes appends: find the segments, trust the checkpointed
 * prefix, verify everything after it record by record, cut a torn or corrupt tail, drop segments
 * that no longer continue the offsets, and validate or rebuild every index.
 * The rest: docs/INTERNALS.md.
 */
import { join } from 'node:path';
import type { Clock } from '../platform/clock.js';
import type { FileHandle, FileSystem } from '../platform/fs.js';
import type { Logger } from '../platform/logger.js';
import { TEMP_SUFFIX } from '../platform/atomic-write.js';
import { readCheckpoint, type Checkpoint } from './checkpoint.js';
import { BATCH_HEADER_BYTES, BATCH_MAGIC, readBatchHeader, verifyBatchRecords } from './record-batch.js';
import { LOG_SUFFIX, OFFSET_INDEX_SUFFIX, parseSegmentFileName, readFully, Segment, segmentFileName, TIME_INDEX_SUFFIX, unlinkIfPresent } from './segment.js';
import { needsIndexEntry, SegmentIndex } from './segment-index.js';
import { ByteWindow } from './segment-reader.js';
import type { RecoveryReport } from './types.js';

/** Recovery reads sequentially in large chunks: one pread covers many small batches. */
const RECOVERY_WINDOW_BYTES = 1024 * 1024;
const MAGIC_BYTES = Buffer.from([BATCH_MAGIC >>> 24, (BATCH_MAGIC >>> 16) & 0xff, (BATCH_MAGIC >>> 8) & 0xff, BATCH_MAGIC & 0xff]);

export interface RecoveryContext {
  fs: FileSystem;
  dir: string;
  clock: Clock;
  logger: Logger;
  indexIntervalBytes: number;
}

export interface RecoveredLog {
  /** In offset order; empty when the directory held no segment. */
  segments: Segment[];
  report: RecoveryReport;
  /** Segments with bytes no checkpoint covered (or just cut): open syncs them before calling them synced. */
  unsynced: Segment[];
}

interface WalkStart {
  position: number;
  offset: number;
  maxTimestampMs: number;
}

interface WalkResult {
  endPosition: number;
  nextOffset: number;
  maxTimestampMs: number;
  /** Where the valid prefix ends when the rest must be cut. */
  torn: { position: number; damage: string } | null;
  /** The first damaged range kept inside the trusted prefix (offsets, inclusive). */
  damaged?: { fromOffset: number; toOffset: number };
}

/** Bytes of segment `baseOffset` that the checkpoint vouches for. */
function trustedBytes(baseOffset: number, checkpoint: Checkpoint | null): number {
  if (checkpoint === null || baseOffset > checkpoint.segmentBaseOffset) return 0;
  if (baseOffset < checkpoint.segmentBaseOffset) return Number.POSITIVE_INFINITY;
  return checkpoint.position;
}

export async function recoverLog(ctx: RecoveryContext): Promise<RecoveredLog> {
  const { fs, dir, logger } = ctx;
  const report: RecoveryReport = {
    segments: 0,
    records: 0,
    startOffset: 0,
    nextOffset: 0,
    truncatedBytes: 0,
    truncatedRecords: 0,
    indexesRebuilt: 0,
    segmentsDropped: 0,
  };
  let dirChanged = false;
  const bases = new Set<number>();
  const indexFiles: { name: string; baseOffset: number }[] = [];
  for (const name of await fs.readdir(dir)) {
    if (name.endsWith(TEMP_SUFFIX)) {
      // A metadata write that never reached its rename: the old file is still the valid one.
      await unlinkIfPresent(fs, join(dir, name));
      dirChanged = true;
      continue;
    }
    const parsed = parseSegmentFileName(name);
    if (parsed === null) continue;
    if (parsed.suffix === LOG_SUFFIX) bases.add(parsed.baseOffset);
    else indexFiles.push({ name, baseOffset: parsed.baseOffset });
  }
  for (const file of indexFiles) {
    if (!bases.has(file.baseOffset)) {
      await unlinkIfPresent(fs, join(dir, file.name));
      dirChanged = true;
    }
  }
  const sorted = [...bases].sort((a, b) => a - b);
  const checkpoint = await trustedCheckpoint(fs, dir, bases, logger);

  const segments: Segment[] = [];
  const unsynced: Segment[] = [];
  let dropping = false;
  for (let i = 0; i < sorted.length; i++) {
    const baseOffset = sorted[i]!;
    const previous = segments[segments.length - 1];
    if (dropping || (previous !== undefined && previous.nextOffset !== baseOffset)) {
      // Offsets no longer continue: everything from here on is not a prefix of the log any more.
      dropping = true;
      await dropSegment(ctx, baseOffset, report);
      dirChanged = true;
      continue;
    }
    const loaded = await loadSegment(ctx, baseOffset, checkpoint, sorted[i + 1] ?? null, report);
    segments.push(loaded.segment);
    if (loaded.unsynced) unsynced.push(loaded.segment);
    if (loaded.indexChanged && i < sorted.length - 1) await loaded.segment.writeIndexFiles();
  }
  if (dirChanged) await fs.syncDir(dir);

  const last = segments[segments.length - 1];
  if (last !== undefined) last.createdAtMs = await firstBatchTimestamp(last, ctx.clock.nowMs());
  report.segments = segments.length;
  report.startOffset = segments[0]?.baseOffset ?? 0;
  report.nextOffset = last?.nextOffset ?? 0;
  report.records = report.nextOffset - report.startOffset;
  return { segments, report, unsynced };
}

async function trustedCheckpoint(fs: FileSystem, dir: string, bases: Set<number>, logger: Logger): Promise<Checkpoint | null> {
  const checkpoint = await readCheckpoint(fs, dir);
  if (typeof checkpoint === 'string') {
    logger.warn('storage.recovery.checkpoint_invalid', { dir, reason: checkpoint });
    return null;
  }
  if (checkpoint === null || !bases.has(checkpoint.segmentBaseOffset)) return checkpoint;
  const stat = await fs.stat(join(dir, segmentFileName(checkpoint.segmentBaseOffset, LOG_SUFFIX)));
  if (stat === null || stat.size < checkpoint.position) {
    // The file is shorter than what was synced: something outside Ferry cut it. Trust nothing.
    logger.warn('storage.recovery.checkpoint_invalid', { dir, reason: 'segment shorter than the checkpoint', ...checkpoint });
    return null;
  }
  return checkpoint;
}

interface LoadedSegment {
  segment: Segment;
  unsynced: boolean;
  indexChanged: boolean;
}

async function loadSegment(
  ctx: RecoveryContext,
  baseOffset: number,
  checkpoint: Checkpoint | null,
  nextBaseOffset: number | null,
  report: RecoveryReport,
): Promise<LoadedSegment> {
  const { fs, dir, logger } = ctx;
  const handle = await fs.open(join(dir, segmentFileName(baseOffset, LOG_SUFFIX)), 'readwrite');
  let size = await handle.size();
  const verifyFrom = trustedBytes(baseOffset, checkpoint);
  const loaded = await loadIndex(ctx, handle, baseOffset, size, verifyFrom);
  const index = loaded.index;
  const entries = index.count;
  const start: WalkStart =
    entries === 0
      ? { position: 0, offset: baseOffset, maxTimestampMs: -1 }
      : { position: index.positionAt(entries - 1), offset: baseOffset + index.relativeOffsetAt(entries - 1), maxTimestampMs: index.maxTimestampAt(entries - 1) };
  const resumeOffset = checkpoint !== null && checkpoint.segmentBaseOffset === baseOffset ? checkpoint.nextOffset : null;
  const walk = await walkSegment(ctx, handle, baseOffset, index, size, start, verifyFrom, resumeOffset, nextBaseOffset);
  if (walk.damaged !== undefined && report.damaged === undefined) report.damaged = walk.damaged;
  let cut = false;
  if (walk.torn !== null) {
    const position = walk.torn.position;
    const truncatedBytes = size - position;
    const truncatedRecords = await countRecords(handle, position, size);
    await handle.truncate(position);
    index.truncateTo(index.firstAfterPosition(position - 1));
    size = position;
    cut = true;
    report.truncatedBytes += truncatedBytes;
    report.truncatedRecords += truncatedRecords;
    logger.warn('storage.recovery.truncated', {
      dir,
      segmentBaseOffset: baseOffset,
      position,
      truncatedBytes,
      truncatedRecords,
      damage: walk.torn.damage,
      nextOffset: walk.nextOffset,
    });
  }
  if (loaded.rebuilt) {
    report.indexesRebuilt++;
    logger.warn('storage.recovery.index_rebuilt', { dir, segmentBaseOffset: baseOffset, reason: loaded.reason, entries: index.count });
  }
  const segment = new Segment(fs, dir, baseOffset, handle, index, {
    sizeBytes: walk.torn === null ? Math.max(walk.endPosition, size) : size,
    nextOffset: walk.nextOffset,
    maxTimestampMs: walk.maxTimestampMs,
    createdAtMs: ctx.clock.nowMs(),
  });
  return { segment, unsynced: cut || verifyFrom < size, indexChanged: loaded.rebuilt || index.count !== entries || cut };
}

/**
 * The segment's index from its files, trimmed to the trusted prefix, with its last entry checked
 * against the segment; a fresh empty index (to be rebuilt by the walk) when missing or damaged.
 */
async function loadIndex(
  ctx: RecoveryContext,
  handle: FileHandle,
  baseOffset: number,
  size: number,
  verifyFrom: number,
): Promise<{ index: SegmentIndex; rebuilt: boolean; reason: string }> {
  const offsetFile = await readIfPresent(ctx.fs, join(ctx.dir, segmentFileName(baseOffset, OFFSET_INDEX_SUFFIX)));
  const timeFile = await readIfPresent(ctx.fs, join(ctx.dir, segmentFileName(baseOffset, TIME_INDEX_SUFFIX)));
  const missing = offsetFile === null || timeFile === null;
  const decoded = missing ? 'missing' : SegmentIndex.decode(offsetFile, timeFile, size);
  if (typeof decoded === 'string') return { index: new SegmentIndex(), rebuilt: size > 0, reason: decoded };
  // Entries past the checkpoint point at bytes not yet verified: the walk re-adds them.
  decoded.truncateTo(decoded.firstAfterPosition(verifyFrom - 1));
  const last = decoded.count - 1;
  if (last >= 0) {
    const window = new ByteWindow(handle, size);
    const header = await window.header(decoded.positionAt(last), baseOffset + decoded.relativeOffsetAt(last));
    if (header === null || header.maxTimestampMs > decoded.maxTimestampAt(last)) {
      return { index: new SegmentIndex(), rebuilt: true, reason: 'last entry does not point at its batch' };
    }
  }
  return { index: decoded, rebuilt: false, reason: '' };
}

async function readIfPresent(fs: FileSystem, path: string): Promise<Buffer | null> {
  if ((await fs.stat(path)) === null) return null;
  return fs.readFile(path);
}

/**
 * Walks the batches from `start` to the end of the file, extending `index`. Batches reaching past
 * `verifyFrom` are verified record by record; the first one that fails is where the tail is cut.
 * Damage before `verifyFrom` is skipped (see the module comment).
 */
async function walkSegment(
  ctx: RecoveryContext,
  handle: FileHandle,
  baseOffset: number,
  index: SegmentIndex,
  size: number,
  start: WalkStart,
  verifyFrom: number,
  resumeOffset: number | null,
  nextBaseOffset: number | null,
): Promise<WalkResult> {
  const window = new ByteWindow(handle, size, RECOVERY_WINDOW_BYTES);
  let position = start.position;
  let expected = start.offset;
  let maxTimestampMs = start.maxTimestampMs;
  let lastIndexed = index.lastPosition();
  let firstDamage: { fromOffset: number; toOffset: number } | undefined;
  while (position < size) {
    const header = await window.header(position, expected);
    let damage: string | null = header === null ? 'batch header' : null;
    const verify = header !== null && position + header.batchBytes > verifyFrom;
    if (header !== null && verify) {
      const at = await window.ensure(position, header.batchBytes);
      const recordDamage = at < 0 ? 'length' : verifyBatchRecords(window.buf, at, header);
      if (recordDamage !== null) damage = `record ${recordDamage}`;
    }
    if (damage !== null || header === null) {
      if (position >= verifyFrom || verify) return { endPosition: position, nextOffset: expected, maxTimestampMs, torn: { position, damage: damage ?? 'batch' } };
      ctx.logger.warn('storage.recovery.damaged_prefix', { dir: ctx.dir, segmentBaseOffset: baseOffset, position, offset: expected, damage });
      const next = await findNextHeader(handle, position + 1, Math.min(size, verifyFrom), size, expected);
      const damagedFrom = expected;
      if (next !== null) {
        position = next.position;
        expected = next.baseOffset;
      } else if (verifyFrom < size && resumeOffset !== null && resumeOffset > expected) {
        position = verifyFrom;
        expected = resumeOffset;
      } else if (nextBaseOffset !== null) {
        // A sealed segment whose end is unreadable: the next segment says where it ended.
        return { endPosition: size, nextOffset: nextBaseOffset, maxTimestampMs, torn: null, damaged: firstDamage ?? { fromOffset: damagedFrom, toOffset: nextBaseOffset - 1 } };
      } else {
        return { endPosition: position, nextOffset: expected, maxTimestampMs, torn: { position, damage: damage ?? 'batch' }, ...(firstDamage === undefined ? {} : { damaged: firstDamage }) };
      }
      firstDamage ??= { fromOffset: damagedFrom, toOffset: expected - 1 };
      continue;
    }
    if (header.maxTimestampMs > maxTimestampMs) maxTimestampMs = header.maxTimestampMs;
    if (position !== lastIndexed && needsIndexEntry(lastIndexed, position, ctx.indexIntervalBytes)) {
      index.add(expected - baseOffset, position, maxTimestampMs);
      lastIndexed = position;
    }
    position += header.batchBytes;
    expected = header.baseOffset + header.recordCount;
  }
  return { endPosition: position, nextOffset: expected, maxTimestampMs, torn: null, ...(firstDamage === undefined ? {} : { damaged: firstDamage }) };
}

/** The first valid batch header in `[from, to)` whose base offset is past `afterOffset`. */
async function findNextHeader(handle: FileHandle, from: number, to: number, size: number, afterOffset: number): Promise<{ position: number; baseOffset: number } | null> {
  const headers = new ByteWindow(handle, size);
  let chunkStart = from;
  while (chunkStart < to) {
    const length = Math.min(RECOVERY_WINDOW_BYTES, size - chunkStart);
    const chunk = Buffer.allocUnsafe(length);
    const got = await readFully(handle, chunk, 0, length, chunkStart);
    for (let i = chunk.subarray(0, got).indexOf(MAGIC_BYTES); i >= 0 && chunkStart + i < to; i = chunk.subarray(0, got).indexOf(MAGIC_BYTES, i + 1)) {
      const header = await headers.header(chunkStart + i, null);
      if (header !== null && header.baseOffset > afterOffset) return { position: chunkStart + i, baseOffset: header.baseOffset };
    }
    if (got < length || chunkStart + got >= size) break;
    // Overlap by a header's length so a magic straddling two chunks is still seen.
    chunkStart += got - BATCH_HEADER_BYTES;
  }
  return null;
}

/** Records (whole or partial) in `[from, size)`: the counts of readable headers, plus one for a partial tail. */
async function countRecords(handle: FileHandle, from: number, size: number): Promise<number> {
  const window = new ByteWindow(handle, Number.POSITIVE_INFINITY, RECOVERY_WINDOW_BYTES);
  let records = 0;
  let position = from;
  while (position < size) {
    const at = await window.ensure(position, Math.min(BATCH_HEADER_BYTES, size - position));
    const header = at < 0 || size - position < BATCH_HEADER_BYTES ? null : readBatchHeader(window.buf, at);
    if (header === null) return records + 1;
    records += header.recordCount;
    position += header.batchBytes;
  }
  return records;
}

async function dropSegment(ctx: RecoveryContext, baseOffset: number, report: RecoveryReport): Promise<void> {
  const path = join(ctx.dir, segmentFileName(baseOffset, LOG_SUFFIX));
  const handle = await ctx.fs.open(path, 'read');
  let bytes = 0;
  let records = 0;
  try {
    bytes = await handle.size();
    records = bytes === 0 ? 0 : await countRecords(handle, 0, bytes);
  } finally {
    await handle.close();
  }
  for (const suffix of [LOG_SUFFIX, OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX]) await unlinkIfPresent(ctx.fs, join(ctx.dir, segmentFileName(baseOffset, suffix)));
  report.segmentsDropped++;
  report.truncatedBytes += bytes;
  report.truncatedRecords += records;
  ctx.logger.warn('storage.recovery.segment_dropped', { dir: ctx.dir, segmentBaseOffset: baseOffset, bytes, records });
}

/** When the segment started taking records: its first batch's newest timestamp, capped at now. */
async function firstBatchTimestamp(segment: Segment, nowMs: number): Promise<number> {
  if (segment.sizeBytes === 0) return nowMs;
  const header = await new ByteWindow(segment.handle, segment.sizeBytes).header(0, segment.baseOffset);
  return header === null ? nowMs : Math.min(header.maxTimestampMs, nowMs);
}
