/**
 * The notes of a follower as cluster/noted-ids.ts kept them before they were stored compactly: a
 * Map of id to { offset, timestampMs } in offset order. The model its property test holds the
 * compact NotedIds against.
 */
import { FerryError } from '../../src/errors.js';
import { ID_HEADER } from '../../src/broker/dedup.js';
import { BATCH_HEADER_BYTES, readBatchHeader, recordHeaderValue, recordSizeAt, recordTimestampAt } from '../../src/storage/record-batch.js';
import type { NotedHeader } from '../../src/storage/types.js';

const ID_HEADER_BYTES = Buffer.from(ID_HEADER, 'utf8');
const NOTES_KEPT_WINDOWS = 2;

export class MapNotedIds {
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

  /**
   * The notes as they stand; the caller takes them over (nothing is copied), so noting ends here.
   * Null when they do not reach `logEnd`: the log grew by a path that does not note (a catch-up
   * copy), so the notes are not whole and the log is read instead.
   */
  handOver(logEnd: number): { fromOffset: number; entries: Map<string, NotedHeader> } | null {
    const noted = this.endOffset === logEnd ? { fromOffset: this.fromOffset, entries: this.entries } : null;
    this.reset(logEnd);
    return noted;
  }

  extent(): { fromOffset: number; size: number } {
    return { fromOffset: this.fromOffset, size: this.entries.size };
  }

  /**
   * Adds the ids read from the log before the notes began: `entries` (in offset order) of the
   * records in [`from`, `until`), `until` being where the notes began. Refused (false) when the notes
   * no longer begin there (a cut, a reset, a write that did not continue them): the log is then
   * read at the promotion, as without it. An id noted since keeps its newer entry.
   */
  prepend(entries: ReadonlyMap<string, NotedHeader>, from: number, until: number): boolean {
    if (this.fromOffset !== until || from > until) return false;
    const merged = new Map<string, NotedHeader>();
    for (const [id, entry] of entries) if (!this.entries.has(id)) merged.set(id, entry);
    for (const [id, entry] of this.entries) merged.set(id, entry);
    this.entries = merged;
    this.fromOffset = from;
    return true;
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
