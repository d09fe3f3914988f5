/**
 * Catch-up from the leader's segments (docs/CLUSTERING.md): a replica that is new, emptied, behind
 * the leader's log start or far behind copies the batches of the leader's sealed segments in
 * chunks of whole leaves, checks each chunk against the leader's leaf digests (storage/log-digest.ts)
 * before writing it, and then fetches the tail as usual. The leader's side reads a chunk and its
 * digests (kept per sealed leaf, so serving a chunk reads it once); the replica's side checks and
 * writes (records not checked again once the digests match: the leader checked them while hashing),
 * at most `cluster.replicaCatchUpBytesPerSec` (catch-up-rate.ts).
 */
import { FerryError } from '../errors.js';
import type { CatchUpChunk, CatchUpReadRequest } from '../protocol/codec-catch-up.js';
import { DIGEST_LEAF_RECORDS, digestBatchList } from '../storage/log-digest.js';
import { type BatchHeader, readBatchHeader } from '../storage/record-batch.js';
import type { ReplicaLog } from '../storage/types.js';
import { firstDifference } from './replica-verifier.js';

/** The leader: the chunk of `log` from `request.fromOffset`, cut at a leaf boundary when it holds one. */
export async function readChunk(log: ReplicaLog, request: CatchUpReadRequest, bytesMax: number): Promise<CatchUpChunk> {
  const sealedEnd = log.sealedEndOffset;
  const empty = (at: number): CatchUpChunk => ({ logId: request.logId, logStartOffset: log.startOffset, sealedEnd, fromOffset: at, toOffset: at, ranges: [], batches: Buffer.alloc(0) });
  const from = request.fromOffset;
  if (from < log.startOffset || from >= sealedEnd) return empty(Math.max(from, log.startOffset));
  const cutGeneration = log.cutGeneration;
  const batches: Buffer[] = [];
  const ends: Array<{ baseOffset: number; endOffset: number }> = [];
  // A read stops at a segment's end: read on into the next ones up to the chunk's size. A read that
  // left less room than its largest batch stopped for want of room (the next batch did not fit):
  // the chunk is full, and stays one read, sent as it is (not joined with a second read's batch).
  for (let at = from, bytes = 0, full = false; !full && bytes < bytesMax && at < sealedEnd; ) {
    const room = bytesMax - bytes;
    const got = await log.readBatches(at, { bytesMax: room, endOffset: sealedEnd });
    if (got.length === 0) break;
    let gotBytes = 0;
    let largest = 0;
    for (const batch of got) {
      const span = batchSpan(batch);
      batches.push(batch);
      ends.push(span);
      gotBytes += batch.length;
      largest = Math.max(largest, batch.length);
      at = span.endOffset;
    }
    bytes += gotBytes;
    full = room - gotBytes < largest;
  }
  if (batches.length === 0 || ends[0]!.baseOffset !== from) return empty(from);
  const lastEnd = ends[ends.length - 1]!.endOffset;
  const aligned = Math.floor(lastEnd / DIGEST_LEAF_RECORDS) * DIGEST_LEAF_RECORDS;
  const to = aligned > from ? aligned : lastEnd;
  const kept = batches.filter((_, i) => ends[i]!.baseOffset < to);
  // The digests hash the batches just read (checking their records), not a second read of them.
  const ranges = await log.digests({ fromOffset: from, toOffset: to, spanRecords: DIGEST_LEAF_RECORDS }, { batches: kept, cutGeneration });
  return { logId: request.logId, logStartOffset: log.startOffset, sealedEnd, fromOffset: from, toOffset: to, ranges, batches: backToBack(kept) };
}

/** The batches as one buffer: a view when they lie back to back in one read already (most chunks), else a copy. */
function backToBack(batches: readonly Buffer[]): Buffer {
  const first = batches[0]!;
  let end = first.byteOffset;
  for (const batch of batches) {
    if (batch.buffer !== first.buffer || batch.byteOffset !== end) return Buffer.concat(batches);
    end += batch.length;
  }
  return Buffer.from(first.buffer, first.byteOffset, end - first.byteOffset);
}

function batchSpan(batch: Buffer): { baseOffset: number; endOffset: number } {
  const header = readBatchHeader(batch, 0);
  if (header === null) throw new FerryError('CORRUPT_RANGE', 'a batch read for catch-up has no valid header');
  return { baseOffset: header.baseOffset, endOffset: header.baseOffset + header.recordCount };
}

/** Calls `visit` for each of back-to-back batches (a chunk's bytes); CORRUPT_RANGE where one is not whole. */
function eachBatch(bytes: Buffer, visit: (header: BatchHeader, at: number) => void): void {
  for (let at = 0; at < bytes.length; ) {
    const header = readBatchHeader(bytes, at);
    if (header === null || at + header.batchBytes > bytes.length) throw new FerryError('CORRUPT_RANGE', `a catch-up chunk has no valid batch at byte ${at}`, { detail: { position: at } });
    visit(header, at);
    at += header.batchBytes;
  }
}

/** The offset after the last of back-to-back batches (a chunk's bytes), `fromOffset` when there are none. */
export function batchesEndOffset(bytes: Buffer, fromOffset: number): number {
  let end = fromOffset;
  eachBatch(bytes, (header) => (end = header.baseOffset + header.recordCount));
  return end;
}

/**
 * Splits back-to-back batches (the chunk's bytes) into one buffer per batch; CORRUPT_RANGE where
 * one does not start inside `[fromOffset, toOffset)`, which the digests cover (they ignore the rest).
 */
function splitBatches(bytes: Buffer, fromOffset: number, toOffset: number): Buffer[] {
  const out: Buffer[] = [];
  eachBatch(bytes, (header, at) => {
    if (header.baseOffset < fromOffset || header.baseOffset >= toOffset) {
      throw new FerryError('CORRUPT_RANGE', `a catch-up chunk of ${fromOffset}..${toOffset - 1} holds a batch at ${header.baseOffset}, outside what its digests cover`, {
        detail: { fromOffset, toOffset: toOffset - 1, position: at, damage: 'uncovered batch' },
      });
    }
    out.push(bytes.subarray(at, at + header.batchBytes));
  });
  return out;
}

/**
 * The replica: checks a chunk against the leader's digests; throws CORRUPT_RANGE (with the first
 * range that differs) when the bytes are not what the leader hashed, or when a batch lies outside
 * the digests' ranges. Returns the batches: every byte of them equals what the leader hashed, and
 * the leader checks every record's CRC of what it hashes, so they are written with
 * `matchedLeaderDigests` (their records are not checked a second time).
 */
export function checkChunk(chunk: CatchUpChunk): Buffer {
  const batches = splitBatches(chunk.batches, chunk.fromOffset, chunk.toOffset);
  const mine = digestBatchList(batches, { fromOffset: chunk.fromOffset, toOffset: chunk.toOffset, spanRecords: DIGEST_LEAF_RECORDS });
  const differs = firstDifference(mine, chunk.ranges);
  if (differs !== null) {
    throw new FerryError('CORRUPT_RANGE', `catch-up chunk ${chunk.fromOffset}..${chunk.toOffset - 1} of ${chunk.logId} does not match the leader's digests at ${differs.fromOffset}..${differs.toOffset - 1}`, {
      detail: { fromOffset: differs.fromOffset, toOffset: differs.toOffset - 1, damage: 'digest' },
    });
  }
  return chunk.batches;
}
