/**
 * Exactly-once publish: a message may carry an id; a second publish with the same id within the
 * topic's dedup window stores nothing and is answered with the first one's partition and offset.
 *
 * The id travels in the record itself (header `ferry-id`), so the window needs no file of its
 * own: on open, the tail of each partition covering the window is scanned (using the time index
 * to find where the window starts) to rebuild the index. Entries expire in insertion order.
 */
import type { Clock } from '../platform/clock.js';
import type { Log } from '../storage/log.js';
import { DEDUP_ENTRIES_MAX } from './limits.js';

export const ID_HEADER = 'ferry-id';
export const DEFAULT_DEDUP_WINDOW_MS = 2 * 60 * 1000;
/** Records read per log read while rebuilding the index. */
const REBUILD_READ_RECORDS = 2048;

export interface DedupEntry {
  partition: number;
  offset: number;
  /** When the first publish was stored (broker time). */
  storedAtMs: number;
}

export class DedupIndex {
  /** In insertion (= stored time) order, so expiry pops from the front. */
  private readonly entries = new Map<string, DedupEntry>();
  /** Publishes with an id whose append has not resolved yet. */
  private readonly pending = new Map<string, Promise<DedupEntry | undefined>>();

  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  lookup(id: string): DedupEntry | Promise<DedupEntry | undefined> | undefined {
    this.expire();
    return this.entries.get(id) ?? this.pending.get(id);
  }

  /** Marks `id` as being published; `stored` resolves with where it landed (undefined if it failed). */
  begin(id: string, stored: Promise<DedupEntry | undefined>): void {
    this.pending.set(id, stored);
    void stored.then((entry) => {
      if (this.pending.get(id) === stored) this.pending.delete(id);
      if (entry !== undefined) this.remember(id, entry);
    });
  }

  remember(id: string, entry: DedupEntry): void {
    if (this.entries.has(id)) return;
    this.entries.set(id, entry);
    while (this.entries.size > DEDUP_ENTRIES_MAX) this.entries.delete(this.entries.keys().next().value!);
  }

  private expire(): void {
    const oldestKeptMs = this.clock.nowMs() - this.windowMs;
    for (const [id, entry] of this.entries) {
      if (entry.storedAtMs >= oldestKeptMs) break;
      this.entries.delete(id);
    }
  }

  /**
   * Rebuilds the index from the records of the last window in every partition, and from delayed
   * messages not yet moved (their partition is named by `partitionHeader`).
   */
  async rebuild(logs: readonly Log[], delayed?: { log: Log; partitionHeader: string }): Promise<void> {
    const fromMs = this.clock.nowMs() - this.windowMs;
    const found: Array<[string, DedupEntry]> = [];
    const sources: Array<{ log: Log; partition: number | null }> = logs.map((log, partition) => ({ log, partition }));
    if (delayed !== undefined) sources.push({ log: delayed.log, partition: null });
    for (const { log, partition: fixedPartition } of sources) {
      let offset = await log.offsetForTimestamp(fromMs);
      while (offset < log.nextOffset) {
        const records = await log.read(offset, { recordsMax: REBUILD_READ_RECORDS });
        if (records.length === 0) break;
        for (const record of records) {
          const id = record.headers.find(([name]) => name === ID_HEADER)?.[1];
          if (id === undefined) continue;
          const partition = fixedPartition ?? Number(record.headers.find(([name]) => name === delayed!.partitionHeader)?.[1] ?? 0);
          found.push([id, { partition, offset: record.offset, storedAtMs: record.timestampMs }]);
        }
        offset = records[records.length - 1]!.offset + 1;
      }
    }
    found.sort((a, b) => a[1].storedAtMs - b[1].storedAtMs);
    for (const [id, entry] of found) this.remember(id, entry);
  }
}
