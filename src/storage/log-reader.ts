/**
 * A read across the log: from the hot-tail cache when the offset is in it, else segment by segment
 * from disk (each segment read holds a reference, so retention cannot close it underneath), until
 * the request's limits are met.
 */
import type { FerryError } from '../errors.js';
import type { Segment } from './segment.js';
import { holdsBytesMax, readSegmentRecords, type ReadRequest } from './segment-reader.js';
import type { TailCache } from './tail-cache.js';
import type { LogRecord } from './types.js';

/** The segment holding `offset` (the last one whose base is <= it), or null below the first. */
export function findSegment(segments: readonly Segment[], offset: number): Segment | null {
  let low = 0;
  let high = segments.length - 1;
  let found = -1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    if (segments[mid]!.baseOffset <= offset) {
      found = mid;
      low = mid + 1;
    } else {
      high = mid - 1;
    }
  }
  return found < 0 ? null : segments[found]!;
}

export async function readLog(
  /** The live segment list (retention replaces it while a read is in progress). */
  segments: () => readonly Segment[],
  tailCache: TailCache,
  request: ReadRequest,
  out: LogRecord[],
  outOfRange: (offset: number) => FerryError,
): Promise<void> {
  const bytesSoFar = { bytes: 0 };
  let offset = request.offset;
  while (offset < request.endOffset && out.length < request.recordsMax && !holdsBytesMax(request, out.length, bytesSoFar.bytes)) {
    if (offset >= tailCache.startOffset) {
      tailCache.read({ ...request, offset }, out, bytesSoFar);
      return;
    }
    const segment = findSegment(segments(), offset);
    if (segment === null || !segment.acquire()) {
      // Retention removed it while we were reading.
      if (out.length > 0) return;
      throw outOfRange(offset);
    }
    try {
      await readSegmentRecords(segment, { ...request, offset }, out, bytesSoFar);
    } finally {
      segment.release();
    }
    const reached = out.length > 0 ? out[out.length - 1]!.offset + 1 : offset;
    if (reached < segment.nextOffset) return;
    offset = segment.nextOffset;
  }
}
