/**
 * Exactly-once publish: a message may carry an id; a second publish with the same id within the
 * topic's dedup window stores nothing and is answered with the first one's partition and offset.
 * The rest: docs/INTERNALS.md.
 */
import type { Clock } from '../platform/clock.js';
import type { PartitionLog } from '../storage/types.js';
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

  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock,
    private readonly stampAges: StampAges = wallClockAges(clock),
  ) {}

  get size(): number {
    return this.entries.size;
  }

  lookup(id: string): DedupEntry | Promise<DedupEntry | undefined> | undefined {
    this.expire();
    return this.entries.get(id)?.entry ?? this.pending.get(id);
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
    for (const [id, remembered] of this.entries) {
      if (remembered.expiresMonoMs >= nowMs) break;
      this.entries.delete(id);
    }
  }

  /**
   * Rebuilds the index from the records of the last window in every partition, and from delayed
   * messages not yet moved (their partition is named by `partitionHeader`).
   */
  async rebuild(logs: readonly PartitionLog[], delayed?: { log: PartitionLog; partitionHeader: string }): Promise<void> {
    const fromMs = this.clock.nowMs() - this.windowMs - this.stampAges.aheadMsMax();
    // What is left of each window, counted from now on on the monotonic clock. A timestamp ahead
    // of the clock (it stepped back since) counts as stored now.
    const found: Array<{ id: string; entry: DedupEntry; windowLeftMs: number }> = [];
    const sources: Array<{ log: PartitionLog; partition: number | null }> = logs.map((log, partition) => ({ log, partition }));
    if (delayed !== undefined) sources.push({ log: delayed.log, partition: null });
    for (const { log, partition: fixedPartition } of sources) {
      let offset = await log.offsetForTimestamp(fromMs);
      while (offset < log.nextOffset) {
        // The whole local log: a replica that just became leader holds records not yet committed.
        const records = await log.read(offset, { recordsMax: REBUILD_READ_RECORDS, uncommitted: true });
        if (records.length === 0) break;
        for (const record of records) {
          const id = record.headers.find(([name]) => name === ID_HEADER)?.[1];
          if (id === undefined) continue;
          const partition = fixedPartition ?? Number(record.headers.find(([name]) => name === delayed!.partitionHeader)?.[1] ?? 0);
          const windowLeftMs = this.windowMs - Math.max(0, this.stampAges.ageMs(record.timestampMs));
          const entry: DedupEntry = { partition, offset: record.offset, storedAtMs: record.timestampMs, ...(fixedPartition === null ? { delayed: true } : {}) };
          if (windowLeftMs >= 0) found.push({ id, entry, windowLeftMs });
        }
        offset = records[records.length - 1]!.offset + 1;
      }
    }
    // Remembered in expiry order.
    found.sort((a, b) => a.windowLeftMs - b.windowLeftMs);
    for (const { id, entry, windowLeftMs } of found) this.rememberFor(id, entry, windowLeftMs);
  }
}

function wallClockAges(clock: Clock): StampAges {
  return { ageMs: (stampMs) => clock.nowMs() - stampMs, aheadMsMax: () => 0 };
}
