/**
 * Exactly-once publish: a message may carry an id; a second publish with the same id within the
 * topic's dedup window stores nothing and is answered with the first one's partition and offset.
 * The rest: docs/INTERNALS.md.
 */
import type { Clock } from '../platform/clock.js';
import type { LogRecord } from '../storage/record.js';
import type { NotedHeaders, PartitionLog } from '../storage/types.js';
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

/** An id remembered: where its first copy is, and when (monotonic time) it is forgotten. */
interface Remembered {
  entry: DedupEntry;
  expiresMonoMs: number;
}

export class DedupIndex {
  /** In insertion order, which is expiry order (each expires a window after it is remembered), so expiry pops from the front. */
  private readonly entries = new Map<string, Remembered>();
  /** Publishes with an id whose append has not resolved yet. */
  private readonly pending = new Map<string, Promise<DedupEntry | undefined>>();
  /** Partitions' ids taken over from a follower's notes at a promotion. */
  private adopted: AdoptedIds[] = [];

  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock,
    private readonly stampAges: StampAges = wallClockAges(clock),
  ) {}

  get size(): number {
    let size = this.entries.size;
    for (const adopted of this.adopted) size += adopted.ids.size;
    return size;
  }

  lookup(id: string): DedupEntry | Promise<DedupEntry | undefined> | undefined {
    this.expire();
    return this.entries.get(id)?.entry ?? this.pending.get(id) ?? this.lookupAdopted(id);
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

  /** Marks `id` as being published; `stored` resolves with where it landed (undefined if it failed). */
  begin(id: string, stored: Promise<DedupEntry | undefined>): void {
    this.pending.set(id, stored);
    void stored.then((entry) => {
      if (this.pending.get(id) === stored) this.pending.delete(id);
      if (entry !== undefined) this.remember(id, entry);
    });
  }

  /** Remembers the id of a publish stored just now, for a whole window. */
  remember(id: string, entry: DedupEntry): void {
    this.rememberFor(id, entry, this.windowMs);
  }

  private rememberFor(id: string, entry: DedupEntry, windowLeftMs: number): void {
    if (this.entries.has(id)) return;
    this.entries.set(id, { entry, expiresMonoMs: this.clock.monotonicMs() + windowLeftMs });
    while (this.entries.size > DEDUP_ENTRIES_MAX) this.entries.delete(this.entries.keys().next().value!);
  }

  private expire(): void {
    const nowMs = this.clock.monotonicMs();
    for (let i = this.adopted.length - 1; i >= 0; i--) if (this.adopted[i]!.expiresMonoMs < nowMs) this.adopted.splice(i, 1);
    for (const [id, remembered] of this.entries) {
      if (remembered.expiresMonoMs >= nowMs) break;
      this.entries.delete(id);
    }
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
async function readIds(log: PartitionLog, from: number, end: number, visit: (id: string, record: LogRecord) => void): Promise<void> {
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
