/**
 * The ids (`ferry-id`) of the records a follower replicates, noted as it writes them. At a
 * promotion the topic's dedup index takes the notes over as they are (DedupIndex.rebuild), so a
 * new leader neither reads the last dedup window back from disk nor copies it into a new index
 * (docs/CLUSTERING.md, "Promotion").
 */
import { DEFAULT_DEDUP_WINDOW_MS, ID_HEADER } from '../broker/dedup.js';
import { FerryError } from '../errors.js';
import { BATCH_HEADER_BYTES, readBatchHeader, recordHeaderValue, recordSizeAt, recordTimestampAt } from '../storage/record-batch.js';
import type { NotedHeader, NotedHeaders } from '../storage/types.js';

const ID_HEADER_BYTES = Buffer.from(ID_HEADER, 'utf8');
/**
 * Entries are kept for this many dedup windows: a promotion needs one window, plus what a clock
 * step may add; what was forgotten is read back from the log instead.
 */
const NOTES_KEPT_WINDOWS = 2;

export class NotedIds {
  /** By id, in offset order (an id noted again moves to the end). */
  private entries = new Map<string, NotedHeader>();
  /** Every record with an id at this offset or later is in `entries`. */
  private fromOffset: number;
  /** One past the last record noted: where the next write must begin for the notes to stay whole. */
  private endOffset: number;
  private readonly keepMs: number;

  /** `fromOffset`: the log's end when noting begins; `dedupWindowMs`: the topic's. */
  constructor(fromOffset: number, dedupWindowMs: number) {
    this.fromOffset = fromOffset;
    this.endOffset = fromOffset;
    this.keepMs = NOTES_KEPT_WINDOWS * dedupWindowMs;
  }

  /**
   * Notes the records of `bytes` (whole batches, just written to the log, so already checked)
   * from `appendedFrom` on: the log's end before the write. A write that does not continue the
   * notes (the log moved by other means) starts them afresh there.
   */
  note(bytes: Buffer, appendedFrom: number, nowMs: number): void {
    if (appendedFrom !== this.endOffset) this.reset(appendedFrom);
    let at = 0;
    while (at < bytes.length) {
      const header = readBatchHeader(bytes, at);
      if (header === null) throw new FerryError('INTERNAL', `a written batch at byte ${at} has no valid header`);
      let recordAt = at + BATCH_HEADER_BYTES;
      for (let i = 0; i < header.recordCount; i++) {
        const offset = header.baseOffset + i;
        if (offset >= this.endOffset) {
          const id = recordHeaderValue(bytes, recordAt, ID_HEADER_BYTES);
          if (id !== undefined) {
            this.entries.delete(id);
            this.entries.set(id, { offset, timestampMs: recordTimestampAt(bytes, recordAt) });
          }
          this.endOffset = offset + 1;
        }
        recordAt += recordSizeAt(bytes, recordAt);
      }
      at += header.batchBytes;
    }
    this.forgetOlderThan(nowMs - this.keepMs);
  }

  /** The log was cut back to end at `end`. */
  cut(end: number): void {
    for (const [id, entry] of this.entries) if (entry.offset >= end) this.entries.delete(id);
    this.endOffset = Math.min(this.endOffset, end);
    this.fromOffset = Math.min(this.fromOffset, end);
  }

  /** The log was emptied to start at `start`. */
  reset(start: number): void {
    this.entries = new Map();
    this.fromOffset = start;
    this.endOffset = start;
  }

  /** The notes as they stand; the caller takes them over (nothing is copied), so noting ends here. */
  handOver(): NotedHeaders {
    const noted = { fromOffset: this.fromOffset, entries: this.entries };
    this.reset(this.endOffset);
    return noted;
  }

  private forgetOlderThan(timestampMs: number): void {
    let forgot = false;
    for (const [id, entry] of this.entries) {
      if (entry.timestampMs >= timestampMs) {
        // What was forgotten is no longer covered: a reader of the log reads it back instead.
        if (forgot) this.fromOffset = Math.max(this.fromOffset, entry.offset);
        return;
      }
      this.entries.delete(id);
      forgot = true;
    }
    if (forgot) this.fromOffset = this.endOffset;
  }
}

/** The dedup window of a topic's stored settings (the broker's default when it has none). */
export function dedupWindowMsOf(config: Readonly<Record<string, unknown>>): number {
  const windowMs = config['dedupWindowMs'];
  return typeof windowMs === 'number' ? windowMs : DEFAULT_DEDUP_WINDOW_MS;
}
