/**
 * Reads of whole batches as they lie on disk, for what works below records: a leader shipping its
 * log to followers (the bytes go out unchanged, CRCs and all), truncation finding where a batch
 * starts, and the leader-epoch list rebuilt from batch headers.
 */
import { FerryError } from '../errors.js';
import type { EpochEntry } from './epoch-cache.js';
import { BATCH_HEADER_BYTES, type BatchHeader } from './record-batch.js';
import type { Segment } from './segment.js';
import { ByteWindow, READ_WINDOW_BYTES_MAX } from './segment-reader.js';

/** Sequential header walks read this much per pread. */
const WALK_WINDOW_BYTES = 1024 * 1024;

/** A batch's place in its segment. */
export interface BatchPlace {
  position: number;
  header: BatchHeader;
}

/**
 * Walks the batch headers of `segment` from the index entry at or before `offset`, calling
 * `visit` for each until it returns true (stop) or the segment ends. A header that does not check
 * out is damage: CORRUPT_RANGE.
 */
export async function walkBatches(segment: Segment, fromOffset: number, visit: (place: BatchPlace, window: ByteWindow) => boolean, windowBytes = WALK_WINDOW_BYTES): Promise<void> {
  const entry = segment.index.floorByOffset(fromOffset - segment.baseOffset);
  let position = entry < 0 ? 0 : segment.index.positionAt(entry);
  let offset = entry < 0 ? segment.baseOffset : segment.baseOffset + segment.index.relativeOffsetAt(entry);
  const window = new ByteWindow(segment.handle, segment.sizeBytes, windowBytes);
  while (position < segment.sizeBytes) {
    const header = await window.header(position, offset);
    if (header === null) {
      throw new FerryError('CORRUPT_RANGE', `segment ${segment.baseOffset}: no valid batch header at byte ${position} (offset ${offset})`, {
        detail: { fromOffset: offset, toOffset: segment.nextOffset - 1, segmentBaseOffset: segment.baseOffset, position, damage: 'batch header' },
      });
    }
    if (visit({ position, header }, window)) return;
    position += header.batchBytes;
    offset = header.baseOffset + header.recordCount;
  }
}

/** The batch holding `offset` in `segment`, or null when the segment ends before it. */
export async function findBatch(segment: Segment, offset: number): Promise<BatchPlace | null> {
  let found: BatchPlace | null = null;
  await walkBatches(segment, offset, (place) => {
    if (place.header.baseOffset + place.header.recordCount <= offset) return false;
    found = place;
    return true;
  });
  return found;
}

/**
 * Whole batches of `segment` from the one holding `offset`, up to `endOffset` (a batch reaching
 * past it is left out) and about `bytesMax` (at least one batch). The bytes are copies: views of
 * what this call read (the walk's window when it holds them all in one buffer, else one pread).
 */
export async function readSegmentBatches(segment: Segment, offset: number, endOffset: number, bytesMax: number): Promise<Buffer[]> {
  const places: BatchPlace[] = [];
  // Each batch as a view of what the walk read for its headers, when that holds all of it.
  const walked: Array<Buffer | null> = [];
  let bytes = 0;
  await walkBatches(
    segment,
    offset,
    (place, window) => {
      const { header } = place;
      if (header.baseOffset + header.recordCount <= offset) return false;
      if (header.baseOffset + header.recordCount > endOffset) return true;
      if (places.length > 0 && bytes + header.batchBytes > bytesMax) return true;
      places.push(place);
      walked.push(window.view(place.position, header.batchBytes));
      bytes += header.batchBytes;
      return bytes >= bytesMax;
    },
    Math.min(READ_WINDOW_BYTES_MAX, Math.max(WALK_WINDOW_BYTES, bytesMax)),
  );
  if (places.length === 0) return [];
  // The walk's window (a buffer of its own, READ_WINDOW_BYTES_MAX at most) read them already: no second read.
  if (walked.every((view) => view !== null && view.buffer === walked[0]!.buffer)) return walked as Buffer[];
  // The batches are contiguous: one pread for all of them.
  const first = places[0]!.position;
  const out = Buffer.allocUnsafe(bytes);
  let read = 0;
  while (read < bytes) {
    const n = await segment.handle.read(out, read, bytes - read, first + read);
    if (n === 0) throw new FerryError('CORRUPT_RANGE', `segment ${segment.baseOffset} ends inside a batch at byte ${first + read}`);
    read += n;
  }
  return places.map((place) => out.subarray(place.position - first, place.position - first + place.header.batchBytes));
}

/**
 * The leader epochs of `segments` from their batch headers. Epochs never decrease along a log, so
 * a segment whose first epoch equals the next segment's first holds only that epoch: only the
 * segments where the epoch changes (and the last) are walked batch by batch.
 */
export async function scanEpochs(segments: readonly Segment[]): Promise<EpochEntry[]> {
  const entries: EpochEntry[] = [];
  const add = (epoch: number, startOffset: number): void => {
    const last = entries[entries.length - 1];
    if (last === undefined || epoch > last.epoch) entries.push({ epoch, startOffset });
  };
  const firstEpochs: number[] = [];
  for (const segment of segments) {
    if (segment.sizeBytes < BATCH_HEADER_BYTES) {
      firstEpochs.push(-1);
      continue;
    }
    const header = await new ByteWindow(segment.handle, segment.sizeBytes).header(0, segment.baseOffset);
    firstEpochs.push(header === null ? -1 : header.leaderEpoch);
  }
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.sizeBytes === 0) continue;
    const first = firstEpochs[i]!;
    const next = firstEpochs[i + 1];
    if (first >= 0 && next !== undefined && next === first) {
      add(first, segment.baseOffset);
      continue;
    }
    if (first >= 0 && next === undefined && (await lastEpoch(segment)) === first) {
      add(first, segment.baseOffset);
      continue;
    }
    try {
      await walkBatches(segment, segment.baseOffset, ({ header }) => {
        add(header.leaderEpoch, header.baseOffset);
        return false;
      });
    } catch (error) {
      // Damage inside a synced prefix (recovery keeps it, reads report it): the epochs around it
      // are still known from the headers that check out, and the first one stands for the rest.
      if (!(error instanceof FerryError) || error.code !== 'CORRUPT_RANGE') throw error;
      if (first >= 0) add(first, segment.baseOffset);
    }
  }
  return entries;
}

/** The epoch of a segment's last batch (walked from its last index entry), or -1 when unreadable. */
export async function lastEpoch(segment: Segment): Promise<number> {
  let epoch = -1;
  try {
    await walkBatches(segment, segment.nextOffset - 1, ({ header }) => {
      epoch = header.leaderEpoch;
      return false;
    });
  } catch {
    return -1;
  }
  return epoch;
}
