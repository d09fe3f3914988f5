/**
 * Exactly-once publish: a message may carry an id; a second publish with the same id within the
 * topic's dedup window stores nothing and is answered with the first one's partition and offset.
 * The rest: docs/INTERNALS.md.
 */
import type { Clock } from '../platform/clock.js';
import type { LogRecord } from '../storage/record.js';
import type { NotedHeaders, PartitionLog } from '../storage/types.js';
import { IdTable } from './id-table.js';
import { DEDUP_ENTRIES_MAX } from './limits.js';

export const ID_HEADER = 'ferry-id';
export const DEFAULT_DEDUP_WINDOW_MS = 2 * 60 * 1000;
/** Records read per log read while rebuilding the index. */
const REBUILD_READ_RECORDS = 2048;

export interface DedupEntry {
  partition: number;
  /** In the partition's log, or, for a delayed message not yet moved, in the delay log. */
  offset: number;
  /** The offset is in the delay log. */
  delayed?: boolean;
  /** When the first publish was stored (broker time). */
  storedAtMs: number;
}

/** How old stored timestamps are (wall-history.ts; by default, their age by the wall clock). */
export interface StampAges {
  ageMs(stampMs: number): number;
  /** The most by which a stamp's age by the wall clock can exceed `ageMs`. */
  aheadMsMax(): number;
}

/**
 * A partition's ids noted by a follower, taken over at a promotion (PartitionLog.notedHeaders) and
 * looked up in place until the window of the newest has passed.
 */
interface AdoptedIds {
  partition: number;
  ids: NotedHeaders['entries'];
  /** Only entries in [fromOffset, endOffset) count: the rest were read from the log or are not in it. */
  fromOffset: number;
  endOffset: number;
  /** When (monotonic time) every entry's window has passed. */
  expiresMonoMs: number;
}

/** A publish with ids in flight: what its append resolves to, and where each id is in it. */
interface PendingIds {
  stored: Promise<ReadonlyArray<DedupEntry> | undefined>;
  position: number;
}

/** The columns of a remembered id's row in its IdTable; the first holds `partition * 2 + (delayed ? 1 : 0)`. */
const PARTITION_AND_DELAYED = 0;
const OFFSET = 1;
const STORED_AT_MS = 2;
const EXPIRES_MONO_MS = 3;
const REMEMBERED_COLUMNS = 4;

/**
 * The ids remembered, oldest first, in a compact IdTable (its bytes and numbers off V8's heap)
 * rather than an object per id: in cluster mode every publish carries an id, so a busy topic
 * remembers every message of the last window (hundreds of thousands). A Map of strings over
 * parallel arrays held about 130 bytes of heap per id; the table about 60, none of it traced by
 * the GC.
 */
class RememberedIds {
  private readonly table = new IdTable(REMEMBERED_COLUMNS);

  get size(): number {
    return this.table.size;
  }

  has(id: string): boolean {
    return this.table.find(id) >= 0;
  }

  find(id: string): DedupEntry | undefined {
    const seq = this.table.find(id);
    if (seq < 0) return undefined;
    const partitionAndDelayed = this.table.value(seq, PARTITION_AND_DELAYED);
    const entry: DedupEntry = { partition: Math.floor(partitionAndDelayed / 2), offset: this.table.value(seq, OFFSET), storedAtMs: this.table.value(seq, STORED_AT_MS) };
    if (partitionAndDelayed % 2 === 1) entry.delayed = true;
    return entry;
  }

  push(id: string, entry: DedupEntry, expiresMonoMs: number): void {
    this.table.pushString(id, entry.partition * 2 + (entry.delayed === true ? 1 : 0), entry.offset, entry.storedAtMs, expiresMonoMs);
  }

  /** Forgets the oldest id if it expires before `nowMs` (or `force`); false when there was none to forget. */
  shiftExpired(nowMs: number, force: boolean): boolean {
    const seq = this.table.oldestLive();
    if (seq < 0 || (!force && this.table.value(seq, EXPIRES_MONO_MS) >= nowMs)) return false;
    this.table.removeOldest();
    return true;
  }
}

export class DedupIndex {
  /** In insertion order, which is expiry order (each expires a window after it is remembered), so expiry pops from the front. */
  private readonly remembered = new RememberedIds();
  /** Publishes with an id whose append has not resolved yet. */
  private readonly pending = new Map<string, PendingIds>();
  /** Partitions' ids taken over from a follower's notes at a promotion. */
  private adopted: AdoptedIds[] = [];

  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock,
    private readonly stampAges: StampAges = wallClockAges(clock),
    /** Ids held at most (smaller only in tests). */
    private readonly entriesMax: number = DEDUP_ENTRIES_MAX,
  ) {}

  get size(): number {
    let size = this.remembered.size;
    for (const adopted of this.adopted) size += adopted.ids.size;
    return size;
  }

  lookup(id: string): DedupEntry | Promise<DedupEntry | undefined> | undefined {
    this.expire();
    const remembered = this.remembered.find(id);
    if (remembered !== undefined) return remembered;
    const pending = this.pending.get(id);
    if (pending !== undefined) return pending.stored.then((entries) => entries?.[pending.position]);
    return this.adopted.length === 0 ? undefined : this.lookupAdopted(id);
  }

  private lookupAdopted(id: string): DedupEntry | undefined {
    for (const adopted of this.adopted) {
      const noted = adopted.ids.get(id);
      if (noted === undefined || noted.offset < adopted.fromOffset || noted.offset >= adopted.endOffset) continue;
      if (this.windowMs - Math.max(0, this.stampAges.ageMs(noted.timestampMs)) < 0) continue;
      return { partition: adopted.partition, offset: noted.offset, storedAtMs: noted.timestampMs };
    }
    return undefined;
  }

  /**
   * Marks the ids of one append as being published; `stored` resolves with where each landed, in
   * the same order (undefined if the append failed). One reaction for the whole append.
   */
  beginAll(ids: readonly string[], stored: Promise<ReadonlyArray<DedupEntry> | undefined>): void {
    for (let position = 0; position < ids.length; position++) this.pending.set(ids[position]!, { stored, position });
    void stored.then((entries) => {
      for (let position = 0; position < ids.length; position++) {
        const id = ids[position]!;
        if (this.pending.get(id)?.stored === stored) this.pending.delete(id);
        if (entries !== undefined) this.remember(id, entries[position]!);
      }
    });
  }

  /** Remembers the id of a publish stored just now, for a whole window. */
  remember(id: string, entry: DedupEntry): void {
    this.rememberFor(id, entry, this.windowMs);
  }

  private rememberFor(id: string, entry: DedupEntry, windowLeftMs: number): void {
    if (this.remembered.has(id)) return;
    this.remembered.push(id, entry, this.clock.monotonicMs() + windowLeftMs);
    while (this.remembered.size > this.entriesMax) this.remembered.shiftExpired(0, true);
  }

  private expire(): void {
    const nowMs = this.clock.monotonicMs();
    for (let i = this.adopted.length - 1; i >= 0; i--) if (this.adopted[i]!.expiresMonoMs < nowMs) this.adopted.splice(i, 1);
    while (this.remembered.shiftExpired(nowMs, false));
  }

  /**
   * Rebuilds the index from the records of the last window in every partition, and from delayed
   * messages not yet moved (their partition is named by `partitionHeader`). A partition whose log
   * offers a follower's notes of its ids (a promotion) has only what precedes them read back; the
   * notes themselves are taken over and looked up in place, so a promotion costs no copy of them.
   */
  async rebuild(logs: readonly PartitionLog[], delayed?: { log: PartitionLog; partitionHeader: string }): Promise<void> {
    const fromMs = this.clock.nowMs() - this.windowMs - this.stampAges.aheadMsMax();
    // What is left of each window, counted from now on on the monotonic clock. A timestamp ahead
    // of the clock (it stepped back since) counts as stored now.
    const found: Array<{ id: string; entry: DedupEntry; windowLeftMs: number }> = [];
    const keep = (id: string, entry: DedupEntry): void => {
      const windowLeftMs = this.windowMs - Math.max(0, this.stampAges.ageMs(entry.storedAtMs));
      if (windowLeftMs >= 0) found.push({ id, entry, windowLeftMs });
    };
    for (const [partition, log] of logs.entries()) {
      const from = await log.offsetForTimestamp(fromMs);
      // A follower noted the ids it replicated: only what came before its notes is read back.
      const noted = log.notedHeaders?.(ID_HEADER) ?? null;
      const readEnd = noted === null ? log.nextOffset : Math.min(log.nextOffset, Math.max(from, noted.fromOffset));
      await readIds(log, from, readEnd, (id, record) => keep(id, { partition, offset: record.offset, storedAtMs: record.timestampMs }));
      if (noted !== null && noted.entries.size > 0) {
        const expiresMonoMs = this.clock.monotonicMs() + this.windowMs + this.stampAges.aheadMsMax();
        this.adopted.push({ partition, ids: noted.entries, fromOffset: readEnd, endOffset: log.nextOffset, expiresMonoMs });
      }
    }
    if (delayed !== undefined) {
      await readIds(delayed.log, await delayed.log.offsetForTimestamp(fromMs), delayed.log.nextOffset, (id, record) => {
        const partition = Number(record.headers.find(([name]) => name === delayed.partitionHeader)?.[1] ?? 0);
        keep(id, { partition, offset: record.offset, storedAtMs: record.timestampMs, delayed: true });
      });
    }
    // Remembered in expiry order.
    found.sort((a, b) => a.windowLeftMs - b.windowLeftMs);
    for (const { id, entry, windowLeftMs } of found) this.rememberFor(id, entry, windowLeftMs);
  }
}

/** Every record with an id in [`from`, `end`) of the whole local log (a new leader's holds records not yet committed). */
export async function readIds(log: PartitionLog, from: number, end: number, visit: (id: string, record: LogRecord) => void): Promise<void> {
  let offset = from;
  while (offset < end) {
    const records = await log.read(offset, { recordsMax: Math.min(REBUILD_READ_RECORDS, end - offset), uncommitted: true });
    if (records.length === 0) break;
    for (const record of records) {
      if (record.offset >= end) return;
      const id = record.headers.find(([name]) => name === ID_HEADER)?.[1];
      if (id !== undefined) visit(id, record);
    }
    offset = records[records.length - 1]!.offset + 1;
  }
}

function wallClockAges(clock: Clock): StampAges {
  return { ageMs: (stampMs) => clock.nowMs() - stampMs, aheadMsMax: () => 0 };
}
