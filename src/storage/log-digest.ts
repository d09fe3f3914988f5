/**
 * Digests of a log's offset ranges, so that two replicas can find where their logs differ in a few
 * round trips instead of re-reading them (docs/CLUSTERING.md, "Replica digests").
 *
 * A range's digest covers the whole batches *starting* in it, as they lie on disk: a follower writes
 * the leader's batches unchanged, so equal logs give equal digests whatever their segment files.
 * The tree: leaves of `DIGEST_LEAF_RECORDS` offsets (aligned at multiples of it) hash their batches'
 * bytes; a range of whole leaves hashes its leaves' digests; a range below a leaf hashes its batches
 * directly. A leaf wholly inside sealed segments never changes until a truncation or a reset, so its
 * digest is kept (computed lazily, on the first request that covers it) and later requests only hash
 * digests. Every batch hashed is checked (header and record CRCs) on the way: damage is reported
 * with its range (CORRUPT_RANGE), not hashed.
 */
import assert from 'node:assert/strict';
import { createHash, type Hash } from 'node:crypto';
import { FerryError } from '../errors.js';
import { readBatchHeader, verifyBatchRecords } from './record-batch.js';

/** Offsets per leaf of the digest tree: the unit a mismatch is first narrowed to, and the unit kept. */
export const DIGEST_LEAF_RECORDS = 1024;
/** Ranges a digest request splits a span into per level: a log of n records is narrowed in log64(n) round trips. */
export const DIGEST_FANOUT = 64;
/** The smallest range a mismatch is narrowed to (a leaf split once more). */
export const DIGEST_SPAN_MIN = DIGEST_LEAF_RECORDS / DIGEST_FANOUT;
/** Bytes of a digest on the wire: SHA-256 cut to 128 bits, far beyond any accidental collision. */
export const DIGEST_BYTES = 16;
/** Ranges one digest answer carries at most (a request asks for at most DIGEST_FANOUT + 1). */
export const DIGEST_RANGES_MAX = 4096;
/** Bytes read from the log per step while hashing. */
const DIGEST_READ_BYTES = 1024 * 1024;

/** The digest of one range `[fromOffset, toOffset)`. */
export interface RangeDigest {
  fromOffset: number;
  toOffset: number;
  digest: Buffer;
}

/** What hashing reads of a log. */
export interface DigestSource {
  readonly startOffset: number;
  /** Whole batches from the one holding `offset`, none reaching past `endOffset`. */
  readBatches(offset: number, options: { bytesMax: number; endOffset?: number }): Promise<Buffer[]>;
}

/**
 * A source that serves reads from `held` (whole batches back to back, in offset order, just read
 * from `log` by the caller) and reads `log` only for what they do not hold: a leader serving a
 * catch-up chunk hashes the bytes it has in memory instead of reading them from disk a second time.
 * Each read from `held` resolves on the next turn of the event loop, so hashing a large chunk leaves
 * room for other work between steps (the same steps as reading from disk: DIGEST_READ_BYTES).
 */
export function heldBatchesSource(log: DigestSource, held: readonly Buffer[]): DigestSource {
  const spans = held.map((batch) => {
    const header = readBatchHeader(batch, 0);
    return header === null ? null : { start: header.baseOffset, end: header.baseOffset + header.recordCount };
  });
  return {
    get startOffset() {
      return log.startOffset;
    },
    async readBatches(offset, options) {
      const first = spans.findIndex((span) => span !== null && span.start <= offset && offset < span.end);
      if (first < 0) return log.readBatches(offset, options);
      const out: Buffer[] = [];
      for (let i = first, bytes = 0; i < held.length && (out.length === 0 || bytes + held[i]!.length <= options.bytesMax); i++) {
        const span = spans[i];
        // A batch without a valid header is read from the log, which reports it as damage.
        if (span === null || (i > first && span.start !== spans[i - 1]!.end) || (options.endOffset !== undefined && span.end > options.endOffset)) break;
        out.push(held[i]!);
        bytes += held[i]!.length;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
      return out;
    },
  };
}

/** The ranges `[from, to)` is cut into: pieces of `spanRecords` aligned at multiples of it. */
export function pieces(fromOffset: number, toOffset: number, spanRecords: number): Array<{ fromOffset: number; toOffset: number }> {
  const out: Array<{ fromOffset: number; toOffset: number }> = [];
  for (let at = fromOffset; at < toOffset; ) {
    const end = Math.min(toOffset, (Math.floor(at / spanRecords) + 1) * spanRecords);
    out.push({ fromOffset: at, toOffset: end });
    at = end;
  }
  return out;
}

/** Checks a digest request's numbers; throws INVALID_ARGUMENT. */
export function checkDigestRequest(fromOffset: number, toOffset: number, spanRecords: number): void {
  const ok = Number.isSafeInteger(fromOffset) && Number.isSafeInteger(toOffset) && Number.isSafeInteger(spanRecords) && fromOffset >= 0 && toOffset >= fromOffset && spanRecords >= 1;
  if (!ok) throw new FerryError('INVALID_ARGUMENT', `a digest request needs 0 <= from <= to and a span of at least 1, got ${fromOffset}..${toOffset} by ${spanRecords}`);
  if (spanRecords >= DIGEST_LEAF_RECORDS && spanRecords % DIGEST_LEAF_RECORDS !== 0) {
    throw new FerryError('INVALID_ARGUMENT', `a digest span of ${DIGEST_LEAF_RECORDS} or more must be whole leaves, got ${spanRecords}`);
  }
  const count = Math.ceil(toOffset / spanRecords) - Math.floor(fromOffset / spanRecords);
  if (count > DIGEST_RANGES_MAX) throw new FerryError('INVALID_ARGUMENT', `a digest request may cover at most ${DIGEST_RANGES_MAX} ranges, got ${count}`);
}

/**
 * The leaf digests a log keeps: leaf index → digest, for leaves wholly in sealed segments. Dropped
 * from a cut on (truncation, reset) and below the log start (retention).
 */
export class DigestCache {
  private readonly leaves = new Map<number, Buffer>();

  get size(): number {
    return this.leaves.size;
  }

  get(leaf: number): Buffer | undefined {
    return this.leaves.get(leaf);
  }

  set(leaf: number, digest: Buffer): void {
    this.leaves.set(leaf, digest);
  }

  /** The log was cut at `offset`: leaves holding a batch at or past it change. */
  cutFrom(offset: number): void {
    for (const leaf of this.leaves.keys()) if ((leaf + 1) * DIGEST_LEAF_RECORDS > offset) this.leaves.delete(leaf);
  }

  /** The log starts at `offset` now: leaves below it can no longer be asked for. */
  dropBelow(offset: number): void {
    for (const leaf of this.leaves.keys()) if (leaf * DIGEST_LEAF_RECORDS < offset) this.leaves.delete(leaf);
  }
}

/**
 * Hashes the whole batches starting in `[lo, hi)` (a batch starting there is hashed whole, even
 * past `hi`: both replicas cut their ranges at the same offsets, and batches end at the same ones).
 * `complete` says whether the range was read to its end (the log did not end inside it).
 */
async function hashBatches(source: DigestSource, lo: number, hi: number, hash: Hash): Promise<{ complete: boolean }> {
  let offset = lo;
  while (offset < hi) {
    const batches = await source.readBatches(offset, { bytesMax: DIGEST_READ_BYTES });
    if (batches.length === 0) return { complete: false };
    for (const batch of batches) {
      const header = readBatchHeader(batch, 0);
      if (header === null) throw damagedAt(offset, offset, 'batch header');
      const end = header.baseOffset + header.recordCount;
      if (header.baseOffset >= hi) return { complete: true };
      offset = Math.max(offset, end);
      if (header.baseOffset < lo) continue;
      const damage = verifyBatchRecords(batch, 0, header);
      if (damage !== null) throw damagedAt(header.baseOffset, end - 1, `record ${damage}`);
      hash.update(batch);
    }
  }
  return { complete: true };
}

function damagedAt(fromOffset: number, toOffset: number, damage: string): FerryError {
  return new FerryError('CORRUPT_RANGE', `offsets ${fromOffset}..${toOffset} are damaged (${damage})`, { detail: { fromOffset, toOffset, damage } });
}

function digestOf(hash: Hash): Buffer {
  return hash.digest().subarray(0, DIGEST_BYTES);
}

/**
 * The digests of `[fromOffset, toOffset)` cut into pieces of `spanRecords` (see `pieces`).
 * `sealedEnd`: where the log's active segment begins; leaves below it are kept in `cache`.
 */
export async function digestRanges(
  source: DigestSource,
  cache: DigestCache,
  sealedEnd: number,
  request: { fromOffset: number; toOffset: number; spanRecords: number },
): Promise<RangeDigest[]> {
  const { fromOffset, toOffset, spanRecords } = request;
  checkDigestRequest(fromOffset, toOffset, spanRecords);
  assert.ok(fromOffset >= source.startOffset || fromOffset === toOffset, 'digests start inside the log');
  const out: RangeDigest[] = [];
  for (const piece of pieces(fromOffset, toOffset, spanRecords)) {
    const hash = createHash('sha256');
    if (spanRecords < DIGEST_LEAF_RECORDS) {
      await hashBatches(source, piece.fromOffset, piece.toOffset, hash);
    } else {
      for (const leaf of pieces(piece.fromOffset, piece.toOffset, DIGEST_LEAF_RECORDS)) hash.update(await leafDigest(source, cache, sealedEnd, leaf));
    }
    out.push({ ...piece, digest: digestOf(hash) });
  }
  return out;
}

/** One leaf (or the part of it inside the request), from the cache when it is whole and sealed. */
async function leafDigest(source: DigestSource, cache: DigestCache, sealedEnd: number, part: { fromOffset: number; toOffset: number }): Promise<Buffer> {
  const leaf = Math.floor(part.fromOffset / DIGEST_LEAF_RECORDS);
  const whole = part.fromOffset === leaf * DIGEST_LEAF_RECORDS && part.toOffset === (leaf + 1) * DIGEST_LEAF_RECORDS;
  const cacheable = whole && part.toOffset <= sealedEnd;
  if (cacheable) {
    const known = cache.get(leaf);
    if (known !== undefined) return known;
  }
  const hash = createHash('sha256');
  const { complete } = await hashBatches(source, part.fromOffset, part.toOffset, hash);
  const digest = digestOf(hash);
  if (cacheable && complete) cache.set(leaf, digest);
  return digest;
}

/**
 * The digests `digestRanges` gives for `[fromOffset, toOffset)`, computed from `batches` in memory
 * (back to back, in offset order; those starting outside the range are ignored): a replica checks a
 * chunk copied from its leader against the leader's digests before writing it.
 */
export function digestBatchList(batches: readonly Buffer[], request: { fromOffset: number; toOffset: number; spanRecords: number }): RangeDigest[] {
  const { fromOffset, toOffset, spanRecords } = request;
  checkDigestRequest(fromOffset, toOffset, spanRecords);
  const starts = batches.map((batch) => {
    const header = readBatchHeader(batch, 0);
    if (header === null) throw damagedAt(fromOffset, toOffset - 1, 'batch header');
    return header.baseOffset;
  });
  const hashOf = (lo: number, hi: number): Buffer => {
    const hash = createHash('sha256');
    for (let i = 0; i < batches.length; i++) if (starts[i]! >= lo && starts[i]! < hi) hash.update(batches[i]!);
    return digestOf(hash);
  };
  return pieces(fromOffset, toOffset, spanRecords).map((piece) => {
    if (spanRecords < DIGEST_LEAF_RECORDS) return { ...piece, digest: hashOf(piece.fromOffset, piece.toOffset) };
    const hash = createHash('sha256');
    for (const leaf of pieces(piece.fromOffset, piece.toOffset, DIGEST_LEAF_RECORDS)) hash.update(hashOf(leaf.fromOffset, leaf.toOffset));
    return { ...piece, digest: digestOf(hash) };
  });
}
