/**
 * The ids (`ferry-id`) of the records a follower replicates, noted as it writes them. At a
 * promotion the topic's dedup index takes the notes over as they are (DedupIndex.rebuild), so a
 * new leader neither reads the last dedup window back from disk nor copies it into a new index
 * (docs/CLUSTERING.md, "Promotion").
 */
import { DEFAULT_DEDUP_WINDOW_MS, ID_HEADER } from '../broker/dedup.js';
import { IdTable } from '../broker/id-table.js';
import { DEDUP_ENTRIES_MAX } from '../broker/limits.js';
import { FerryError } from '../errors.js';
import { BATCH_HEADER_BYTES, readBatchHeader, readU32, recordHeaderValueAt, recordSizeAt, recordTimestampAt, verifyBatchRecords } from '../storage/record-batch.js';
import type { NotedHeader, NotedHeaderLookup, NotedHeaders, ReplicaLog } from '../storage/types.js';
import type { FollowerLogChange } from './topic-follower.js';

const ID_HEADER_BYTES = Buffer.from(ID_HEADER, 'utf8');
/**
 * Entries are kept for this many dedup windows: a promotion needs one window, plus what a clock
 * step may add; what was forgotten is read back from the log instead.
 */
const NOTES_KEPT_WINDOWS = 2;
/** The columns of a note's row in its IdTable. */
const OFFSET = 0;
const TIMESTAMP_MS = 1;
const NOTE_COLUMNS = 2;
/** Bytes of whole batches read per step while filling new notes from the log. */
const FILL_READ_BYTES = 1024 * 1024;

/** Noted ids, by id: a row of offset and timestamp each, in offset order (an id noted again moves to the end). */
export class NotedIdTable implements NotedHeaderLookup {
  readonly table = new IdTable(NOTE_COLUMNS);

  get size(): number {
    return this.table.size;
  }

  get(id: string): NotedHeader | undefined {
    const seq = this.table.find(id);
    return seq < 0 ? undefined : this.headerAt(seq);
  }

  /** Notes `id` (the bytes `source[start..end)`) at `offset`; an earlier note of it goes. */
  noteBytes(source: Uint8Array, start: number, end: number, offset: number, timestampMs: number): void {
    const held = this.table.findBytes(source, start, end);
    if (held >= 0) this.table.delete(held);
    this.table.push(source, start, end, offset, timestampMs);
  }

  /** Notes `id` at `offset`; an earlier note of it goes. */
  note(id: string, offset: number, timestampMs: number): void {
    const held = this.table.find(id);
    if (held >= 0) this.table.delete(held);
    this.table.pushString(id, offset, timestampMs);
  }

  headerAt(seq: number): NotedHeader {
    return { offset: this.table.value(seq, OFFSET), timestampMs: this.table.value(seq, TIMESTAMP_MS) };
  }

  /** The ids in offset order (for tests and diagnostics). */
  *keys(): IterableIterator<string> {
    for (let seq = this.table.oldestSeq; seq < this.table.endSeq; seq++) if (this.table.isLive(seq)) yield this.table.idOf(seq);
  }
}

export class NotedIds {
  private entries = new NotedIdTable();
  /** Every record with an id at this offset or later is in `entries`. */
  private fromOffset: number;
  /** One past the last record noted: where the next write must begin for the notes to stay whole. */
  private endOffset: number;
  private readonly keepMs: number;

  /**
   * `fromOffset`: the log's end when noting begins; `dedupWindowMs`: the topic's; `entriesMax`: ids
   * kept at most (the dedup index's own bound; smaller only in tests): past it the oldest are
   * forgotten as by age, and a promotion reads them back from the log.
   */
  constructor(
    fromOffset: number,
    dedupWindowMs: number,
    private readonly entriesMax: number = DEDUP_ENTRIES_MAX,
  ) {
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
    const keptFromMs = nowMs - this.keepMs;
    for (let at = 0; at < bytes.length; ) {
      const header = readBatchHeader(bytes, at);
      if (header === null) throw new FerryError('INTERNAL', `a written batch at byte ${at} has no valid header`);
      const batch = bytes.subarray(at, at + header.batchBytes);
      const end = header.baseOffset + header.recordCount;
      if (this.entries.size === 0 && header.maxTimestampMs < keptFromMs && end > this.endOffset) {
        // Older than what is kept, with nothing noted before it (a catch-up copying old segments):
        // the notes begin after it, as if its records had been noted and forgotten, without the walk.
        this.fromOffset = end;
        this.endOffset = end;
      } else {
        this.endOffset = Math.max(this.endOffset, noteBatchIds(this.entries, batch, this.endOffset, Number.POSITIVE_INFINITY));
      }
      at += header.batchBytes;
    }
    this.forgetOlderThan(keptFromMs);
  }

  /** The log was cut back to end at `end`. */
  cut(end: number): void {
    // Entries are in offset order, so those at `end` or later are the newest.
    const table = this.entries.table;
    for (let seq = table.newestLive(); seq >= 0 && table.value(seq, OFFSET) >= end; seq = table.newestLive()) table.removeNewest();
    this.endOffset = Math.min(this.endOffset, end);
    this.fromOffset = Math.min(this.fromOffset, end);
  }

  /** The log was emptied to start at `start`. */
  reset(start: number): void {
    this.entries = new NotedIdTable();
    this.fromOffset = start;
    this.endOffset = start;
  }

  /**
   * The notes as they stand; the caller takes them over (nothing is copied), so noting ends here.
   * Null when they do not reach `logEnd`: the log grew by a path that does not note (a catch-up
   * copy), so the notes are not whole and the log is read instead.
   */
  handOver(logEnd: number): (NotedHeaders & { entries: NotedIdTable }) | null {
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
  prepend(entries: NotedIdTable, from: number, until: number): boolean {
    if (this.fromOffset !== until || from > until) return false;
    const merged = new NotedIdTable();
    const older = entries.table;
    for (let seq = older.oldestSeq; seq < older.endSeq; seq++) {
      if (older.isLive(seq) && this.entries.get(older.idOf(seq)) === undefined) merged.table.pushRow(older, seq);
    }
    const newer = this.entries.table;
    for (let seq = newer.oldestSeq; seq < newer.endSeq; seq++) if (newer.isLive(seq)) merged.table.pushRow(newer, seq);
    this.entries = merged;
    this.fromOffset = from;
    return true;
  }

  private forgetOlderThan(timestampMs: number): void {
    let forgot = false;
    const table = this.entries.table;
    for (let seq = table.oldestLive(); seq >= 0; seq = table.oldestLive()) {
      if (table.value(seq, TIMESTAMP_MS) >= timestampMs && table.size <= this.entriesMax) {
        // What was forgotten is no longer covered: a reader of the log reads it back instead.
        if (forgot) this.fromOffset = Math.max(this.fromOffset, table.value(seq, OFFSET));
        return;
      }
      table.removeOldest();
      forgot = true;
    }
    if (forgot) this.fromOffset = this.endOffset;
  }
}

/**
 * Notes into `entries` the id of each record with one at an offset in [`from`, `until`) of `bytes`
 * (whole batches whose records were checked), walking the bytes rather than decoding records.
 * Returns the offset after the last record in that range (`from` when there is none).
 */
function noteBatchIds(entries: NotedIdTable, bytes: Buffer, from: number, until: number): number {
  let end = from;
  for (let at = 0; at < bytes.length; ) {
    const header = readBatchHeader(bytes, at);
    if (header === null) throw new FerryError('INTERNAL', `a written batch at byte ${at} has no valid header`);
    let recordAt = at + BATCH_HEADER_BYTES;
    for (let i = 0; i < header.recordCount; i++) {
      const offset = header.baseOffset + i;
      if (offset >= from && offset < until) {
        const idAt = recordHeaderValueAt(bytes, recordAt, ID_HEADER_BYTES);
        if (idAt >= 0) entries.noteBytes(bytes, idAt, idAt + readU32(bytes, idAt - 4), offset, recordTimestampAt(bytes, recordAt));
        end = offset + 1;
      }
      recordAt += recordSizeAt(bytes, recordAt);
    }
    at += header.batchBytes;
  }
  return end;
}

/**
 * The ids of the records in [`from`, `until`) of `log` as notes, read as whole batches (their
 * records' CRCs checked, as a read of records checks them) and walked, not decoded record by record.
 */
async function readNotes(log: ReplicaLog, from: number, until: number): Promise<NotedIdTable> {
  const entries = new NotedIdTable();
  for (let offset = from; offset < until; ) {
    const batches = await log.readBatches(offset, { bytesMax: FILL_READ_BYTES });
    if (batches.length === 0) break;
    for (const batch of batches) {
      const header = readBatchHeader(batch, 0);
      const damage = header === null ? 'batch header' : verifyBatchRecords(batch, 0, header);
      if (damage !== null) throw new FerryError('CORRUPT_RANGE', `offsets from ${offset} are damaged (${damage})`, { detail: { fromOffset: offset, damage } });
      noteBatchIds(entries, batch, offset, until);
      offset = Math.max(offset, header!.baseOffset + header!.recordCount);
    }
  }
  return entries;
}

/** The dedup window of a topic's stored settings (the broker's default when it has none). */
export function dedupWindowMsOf(config: Readonly<Record<string, unknown>>): number {
  const windowMs = config['dedupWindowMs'];
  return typeof windowMs === 'number' ? windowMs : DEFAULT_DEDUP_WINDOW_MS;
}

/** The notes of each of a topic's logs while this broker follows, and their hand-over at a promotion. */
export class TopicNotes {
  private following = new Map<string, NotedIds>();
  private promoting = new Map<string, NotedIds>();

  constructor(
    private readonly dedupWindowMs: () => number,
    /** The local log a follower writes, read to fill new notes with what precedes them. */
    private readonly localLog: (logId: string) => ReplicaLog | undefined,
    private readonly nowMs: () => number,
  ) {}

  /** A follower changed a log. */
  change(logId: string, change: FollowerLogChange): void {
    let noted = this.following.get(logId);
    if (change.kind === 'appended') {
      if (noted === undefined) {
        noted = new NotedIds(change.from, this.dedupWindowMs());
        this.following.set(logId, noted);
        this.fill(logId, noted, change.from);
      }
      noted.note(change.bytes, change.from, this.nowMs());
    } else if (change.kind === 'cut') {
      noted?.cut(change.end);
    } else {
      noted?.reset(change.start);
    }
  }

  /**
   * Reads into new notes, in the background, the ids of the window's records that precede them:
   * what this broker held before it began following (after a restart, most of the window), so a
   * promotion soon after a restart does not read them back on its own path.
   */
  private fill(logId: string, noted: NotedIds, until: number): void {
    const log = this.localLog(logId);
    if (log === undefined || log.startOffset >= until) return;
    const reading = async (): Promise<void> => {
      const from = await log.offsetForTimestamp(this.nowMs() - this.dedupWindowMs());
      if (from >= until) return;
      const entries = await readNotes(log, from, until);
      if (this.following.get(logId) === noted) noted.prepend(entries, from, until);
    };
    // A failed read leaves the notes as they are: a promotion then reads the log, as without them.
    reading().catch(() => undefined);
  }

  /** Leadership begins: this broker appends itself from now on, so the notes end here. */
  beginPromotion(): void {
    this.promoting = this.following;
    this.following = new Map();
  }

  /** The notes of one log for the promoted topic's dedup index (NotedIds.handOver). */
  take(logId: string, logEnd: number): NotedHeaders | null {
    const noted = this.promoting.get(logId)?.handOver(logEnd) ?? null;
    this.promoting.delete(logId);
    return noted;
  }

  endPromotion(): void {
    this.promoting = new Map();
  }

  /** The notes of a log as they stand, while following (for tests and diagnostics). */
  peek(logId: string): { fromOffset: number; size: number } | null {
    return this.following.get(logId)?.extent() ?? null;
  }
}
