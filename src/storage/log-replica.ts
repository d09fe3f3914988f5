/**
 * What a log needs to be a follower's copy of a leader's log: batches received from the leader
 * are checked before they are written (header CRC, every record's CRC, contiguous offsets,
 * non-decreasing epochs), and the log can be cut back to an offset, durably, when its tail
 * diverged from the leader's (docs/CLUSTERING.md, "Truncation").
 */
import { FerryError } from '../errors.js';
import type { RawBatch } from './append-queue.js';
import { findBatch, walkBatches } from './batch-reader.js';
import { findSegment } from './log-reader.js';
import type { LogState } from './log-state.js';
import type { LogSyncer } from './log-syncer.js';
import type { LogWriter } from './log-writer.js';
import type { ReplicaAppendOptions } from './types.js';
import { BATCH_HEADER_BYTES, readBatchHeader, verifyBatchRecords } from './record-batch.js';
import { OFFSET_INDEX_SUFFIX, Segment, TIME_INDEX_SUFFIX, unlinkIfPresent } from './segment.js';

function damaged(message: string, detail: Record<string, unknown>): FerryError {
  return new FerryError('CORRUPT_RANGE', message, { detail });
}

/**
 * The batches in `bytes` (back to back), checked: each starts where the one before ended (the
 * first at `expectedOffset`), carries an epoch no older than `epochFloor` or the batch before,
 * and every record's CRC holds. Damage anywhere refuses the whole chunk: nothing is written.
 * `options.matchedLeaderDigests`: see ReplicaAppendOptions (records not checked again, not cached).
 */
export function parseBatches(bytes: Buffer, expectedOffset: number, epochFloor: number, options: ReplicaAppendOptions = {}): RawBatch[] {
  const matched = options.matchedLeaderDigests === true;
  const batches: RawBatch[] = [];
  let at = 0;
  let expected = expectedOffset;
  let epoch = epochFloor;
  while (at < bytes.length) {
    const header = bytes.length - at >= BATCH_HEADER_BYTES ? readBatchHeader(bytes, at) : null;
    if (header === null) throw damaged(`replicated bytes: no valid batch header at byte ${at}`, { fromOffset: expected, position: at, damage: 'batch header' });
    if (at + header.batchBytes > bytes.length) throw damaged(`replicated bytes: batch at ${header.baseOffset} is cut short`, { fromOffset: header.baseOffset, damage: 'length' });
    if (header.baseOffset !== expected) {
      throw new FerryError('INVALID_ARGUMENT', `replicated batch starts at offset ${header.baseOffset}, expected ${expected}`, { detail: { baseOffset: header.baseOffset, expectedOffset: expected } });
    }
    if (header.leaderEpoch < epoch) {
      throw new FerryError('INVALID_ARGUMENT', `replicated batch at ${header.baseOffset} has epoch ${header.leaderEpoch}, older than ${epoch}`, { detail: { epoch: header.leaderEpoch, epochFloor: epoch } });
    }
    const damage = matched ? null : verifyBatchRecords(bytes, at, header);
    if (damage !== null) {
      throw damaged(`replicated batch at ${header.baseOffset}: record ${damage}`, { fromOffset: header.baseOffset, toOffset: header.baseOffset + header.recordCount - 1, damage });
    }
    batches.push(matched ? { buf: bytes.subarray(at, at + header.batchBytes), header, uncached: true } : { buf: bytes.subarray(at, at + header.batchBytes), header });
    at += header.batchBytes;
    expected = header.baseOffset + header.recordCount;
    epoch = header.leaderEpoch;
  }
  return batches;
}

/**
 * Cuts the log back so that it ends at `offset` (or at the start of the batch holding it), or, for
 * an offset at or below its start, empties it to begin at `offset`. Newest first, so that after a
 * crash at any step the files still hold a prefix of the old log (a follower checks its epochs
 * again before fetching, and so cuts again); then the checkpoint and the epoch list. The writer
 * and syncer must be idle, and everything written synced. Returns the new end.
 */
export async function truncateLog(state: LogState, writer: LogWriter, syncer: LogSyncer, offset: number): Promise<number> {
  const { fs, dir } = state.config;
  if (offset >= state.nextOffset) {
    // No record to cut, but an epoch begun at or past `offset` without a record (this log led it
    // for a moment) is not the leader's: forget it, or the leader's older epoch could not continue.
    await state.epochs.truncateFrom(offset);
    return state.nextOffset;
  }
  if (offset <= state.startOffset) return resetLog(state, writer, syncer, offset);
  const segment = findSegment(state.segments, offset)!;
  // Where to cut, first: damage that hides it fails the truncation before anything changed.
  const place = await findBatch(segment, offset);
  while (state.segments[state.segments.length - 1] !== segment) {
    const later = state.segments.pop()!;
    state.totalBytes -= later.sizeBytes;
    await later.delete();
  }
  await fs.syncDir(dir);
  const cut = place === null ? segment.sizeBytes : place.position;
  const end = place === null ? segment.nextOffset : place.header.baseOffset;
  await segment.handle.truncate(cut);
  await segment.handle.datasync();
  state.totalBytes -= segment.sizeBytes - cut;
  segment.index.truncateTo(segment.index.firstAfterPosition(cut - 1));
  segment.sizeBytes = cut;
  segment.nextOffset = end;
  segment.maxTimestampMs = await maxTimestampBefore(segment, cut);
  // It is the active segment again: index files are written when it is sealed or closed.
  for (const suffix of [OFFSET_INDEX_SUFFIX, TIME_INDEX_SUFFIX]) await unlinkIfPresent(fs, segment.path(suffix));
  await fs.syncDir(dir);
  state.active = segment;
  writer.resetTo(cut);
  await settleCut(state, syncer, { segmentBaseOffset: segment.baseOffset, position: cut, nextOffset: end });
  state.config.logger.warn('storage.log.truncated', { dir, requestedOffset: offset, nextOffset: end, segmentBaseOffset: segment.baseOffset, position: cut });
  return end;
}

/**
 * Empties the log so that it begins (and ends) at `offset`: a replica starting over from a
 * leader's log start. Old segments go newest first; a crash midway leaves a prefix, or an empty
 * log, which the replica resets again.
 */
export async function resetLog(state: LogState, writer: LogWriter, syncer: LogSyncer, offset: number): Promise<number> {
  const { fs, dir } = state.config;
  for (const segment of [...state.segments].reverse()) await segment.delete();
  await fs.syncDir(dir);
  const active = await Segment.create(fs, dir, offset, state.ageClock.nowMs());
  await fs.syncDir(dir);
  state.segments = [active];
  state.active = active;
  state.totalBytes = 0;
  writer.resetTo(0);
  await settleCut(state, syncer, { segmentBaseOffset: offset, position: 0, nextOffset: offset });
  state.config.logger.warn('storage.log.reset', { dir, startOffset: offset });
  return offset;
}

async function settleCut(state: LogState, syncer: LogSyncer, point: { segmentBaseOffset: number; position: number; nextOffset: number }): Promise<void> {
  state.nextOffset = point.nextOffset;
  state.writtenOffset = point.nextOffset - 1;
  state.syncedOffset = point.nextOffset - 1;
  if (state.ownerVisibleEnd !== null && state.ownerVisibleEnd > point.nextOffset) state.ownerVisibleEnd = point.nextOffset;
  // The hot tail ends at the written offset; rather than cut it batch by batch, start it afresh.
  state.tailCache.clear();
  await syncer.truncatedTo(point);
  await state.epochs.truncateFrom(point.nextOffset);
}

/** The newest record timestamp in `segment` below byte `cut`: the index's running max, then the batches after its last entry. */
async function maxTimestampBefore(segment: Segment, cut: number): Promise<number> {
  const index = segment.index;
  let max = index.count > 0 ? index.maxTimestampAt(index.count - 1) : -1;
  if (cut === 0) return -1;
  const from = index.count > 0 ? segment.baseOffset + index.relativeOffsetAt(index.count - 1) : segment.baseOffset;
  await walkBatches(segment, from, ({ position, header }) => {
    if (position >= cut) return true;
    if (header.maxTimestampMs > max) max = header.maxTimestampMs;
    return false;
  });
  return max;
}

