/**
 * CATCH_UP_READ: a replica far behind its leader (new, emptied, or past the leader's log start)
 * copies the leader's sealed segments in chunks, each with the leader's digests of its leaves to
 * check it against before writing it (docs/CLUSTERING.md, "Catch-up from the leader's segments";
 * docs/PROTOCOL.md has the bytes).
 */
import { FRAME_TYPES } from './frame.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';
import { WIRE_DIGEST_BYTES, type WireRangeDigest } from './codec-digest.js';

export interface CatchUpReadRequest {
  topic: string;
  replicaId: string;
  epoch: number;
  logId: string;
  /** The replica's next offset. */
  fromOffset: number;
  /** About how many bytes of batches the chunk may carry. */
  bytesMax: number;
}

export interface CatchUpChunk {
  logId: string;
  /** The leader's log start: a replica behind it starts over there. */
  logStartOffset: number;
  /** Where the leader's active segment begins: catch-up ends there, and fetching goes on. */
  sealedEnd: number;
  /** The range the chunk covers: the whole batches starting in `[fromOffset, toOffset)`. */
  fromOffset: number;
  toOffset: number;
  /** The leader's digests of the range, one per leaf (spans of 1,024 offsets). */
  ranges: WireRangeDigest[];
  /** The batches, back to back, as they lie in the leader's log. */
  batches: Buffer;
}

/** Digests in one chunk at most. */
const CHUNK_RANGES_MAX = 65_536;

/** CATCH_UP_READ payload: topic str16, replicaId str16, epoch u32, logId str16, fromOffset u64, bytesMax u32, tagged. */
export function encodeCatchUpRead(w: FrameWriter, requestId: number, request: CatchUpReadRequest): void {
  w.beginFrame(FRAME_TYPES.CATCH_UP_READ, requestId);
  w.string16(request.topic);
  w.string16(request.replicaId);
  w.u32(request.epoch);
  w.string16(request.logId);
  w.u64(request.fromOffset);
  w.u32(request.bytesMax);
  w.u8(0);
  w.endFrame();
}

export function decodeCatchUpRead(r: PayloadReader): CatchUpReadRequest {
  const request = { topic: r.string16(), replicaId: r.string16(), epoch: r.u32(), logId: r.string16(), fromOffset: r.u64(), bytesMax: r.u32() };
  r.skipTagged();
  r.done();
  return request;
}

/** CATCH_UP_READ_OK payload: logId str16, logStart u64, sealedEnd u64, from u64, to u64, ranges u32 × (from u64, to u64, digest[16]), batchBytes u32, batches, tagged. */
export function encodeCatchUpReadOk(w: FrameWriter, requestId: number, chunk: CatchUpChunk): void {
  w.beginFrame(FRAME_TYPES.CATCH_UP_READ_OK, requestId);
  w.string16(chunk.logId);
  w.u64(chunk.logStartOffset);
  w.u64(chunk.sealedEnd);
  w.u64(chunk.fromOffset);
  w.u64(chunk.toOffset);
  w.u32(chunk.ranges.length);
  for (const range of chunk.ranges) {
    w.u64(range.fromOffset);
    w.u64(range.toOffset);
    w.raw(range.digest.subarray(0, WIRE_DIGEST_BYTES));
  }
  // Sent from the leader's read as it is, not copied into the frame (FrameWriter.bytesAttached).
  w.bytesAttached(chunk.batches);
  w.u8(0);
  w.endFrame();
}

export function decodeCatchUpReadOk(r: PayloadReader): CatchUpChunk {
  const logId = r.string16();
  const logStartOffset = r.u64();
  const sealedEnd = r.u64();
  const fromOffset = r.u64();
  const toOffset = r.u64();
  const count = r.u32();
  if (count > CHUNK_RANGES_MAX) throw malformed(`${count} digests exceed ${CHUNK_RANGES_MAX}`);
  const ranges: WireRangeDigest[] = [];
  for (let i = 0; i < count; i++) {
    const range = { fromOffset: r.u64(), toOffset: r.u64(), digest: Buffer.allocUnsafe(WIRE_DIGEST_BYTES) };
    for (let b = 0; b < WIRE_DIGEST_BYTES; b++) range.digest[b] = r.u8();
    ranges.push(range);
  }
  // A view of the frame: the caller writes (or copies) it before the next frame is read.
  const batches = r.bytes();
  r.skipTagged();
  r.done();
  return { logId, logStartOffset, sealedEnd, fromOffset, toOffset, ranges, batches };
}
