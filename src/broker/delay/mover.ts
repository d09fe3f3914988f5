/**
 * Moving due delayed messages into their topic: a timer for the first release, then batches read
 * from the delay log in runs and appended with one append per partition (all or nothing each).
 */
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { Header, LogRecord, PartitionLog } from '../../storage/types.js';
import type { PublishMessage } from '../types.js';
import type { BucketFiles } from './bucket-files.js';
import { DELAY_OFFSET_HEADER, DELIVER_AT_HEADER, PARTITION_HEADER } from './headers.js';
import { readRecordsAt } from './log-reads.js';
import type { DelaySchedule, Entry } from './schedule.js';

/** Messages moved per batch (read in runs, one append per partition for the batch). */
const MOVE_BATCH_MAX = 1000;
/** A failed move (e.g. disk full) is tried again after this long. */
const MOVE_RETRY_MS = 1000;

export interface DelayMoverOptions {
  clock: Clock;
  logger: Logger;
  topic: string;
  /** The delay log, read for the records to move. */
  log: PartitionLog;
  /** The topic's partition logs, where moved records land. */
  mainLogs: readonly PartitionLog[];
  /** Appends due messages to the topic. */
  deliver: (messages: PublishMessage[]) => Promise<unknown>;
  schedule: DelaySchedule;
  files: BucketFiles;
}

export class DelayMover {
  /** Main-log offsets at the start of the move batch in flight: its records land at or after them. */
  scanFloor: number[] | null = null;
  private moving: Promise<void> | null = null;
  private timer: TimerHandle | null = null;
  /** Monotonic time the armed timer fires at. */
  private timerAtMs = Infinity;
  private stopped = false;

  constructor(private readonly options: DelayMoverOptions) {}

  /** Arms the timer for the first release (or to retry after `delayMs`), unless a move runs or a sooner timer is armed. */
  arm(delayMs?: number): void {
    if (this.moving !== null || this.stopped) return;
    const next = this.options.schedule.next;
    if (next === undefined) return;
    const nowMs = this.options.clock.monotonicMs();
    const fireAtMs = delayMs === undefined ? next.releaseMonoMs : nowMs + delayMs;
    if (this.timer !== null) {
      // A message due sooner than the armed timer must not wait for it.
      if (delayMs !== undefined || fireAtMs >= this.timerAtMs) return;
      this.timer.cancel();
    }
    this.timerAtMs = fireAtMs;
    this.timer = this.options.clock.schedule(fireAtMs - nowMs, () => {
      this.timer = null;
      this.timerAtMs = Infinity;
      let retry = false;
      this.moving = this.moveDue()
        .then((failed) => {
          retry = failed;
        })
        .finally(() => {
          this.moving = null;
          this.arm(retry ? MOVE_RETRY_MS : undefined);
        });
    });
  }

  /** No more moves start; resolves once the one under way is done. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    if (this.moving !== null) await this.moving;
  }

  /** Moves every due entry; returns true when a move failed and should be tried again later. */
  private async moveDue(): Promise<boolean> {
    while (!this.stopped) {
      const batch = this.options.schedule.takeReleased(this.options.clock.monotonicMs(), MOVE_BATCH_MAX);
      if (batch.length === 0) return false;
      if (!(await this.moveBatch(batch))) return true;
    }
    return false;
  }

  /** Moves one batch, one append per partition; returns false when some of it must be tried again. */
  private async moveBatch(batch: Entry[]): Promise<boolean> {
    const { schedule, logger, topic } = this.options;
    // Its records land at or after these offsets: a checkpoint taken meanwhile scans from there.
    this.scanFloor = this.options.mainLogs.map((log) => log.nextOffset);
    try {
      let records: Map<number, LogRecord>;
      try {
        records = await readRecordsAt(this.options.log, batch.map((entry) => entry.offset));
      } catch (error) {
        logger.error('broker.delay.move_failed', { topic, error });
        for (const entry of batch) schedule.putBack(entry);
        return false;
      }
      const { parts, gone } = byPartition(batch, records);
      if (gone.length > 0) {
        logger.warn('broker.delay.record_missing', { topic, count: gone.length, firstOffset: gone[0]!.offset });
        this.markMoved(gone);
      }
      // Per partition: an append is all or nothing, so a failure leaves no message half-moved.
      const outcomes = await Promise.allSettled(parts.map((part) => this.options.deliver(part.messages)));
      let failure: unknown = null;
      outcomes.forEach((outcome, index) => {
        const part = parts[index]!;
        if (outcome.status === 'fulfilled') {
          this.markMoved(part.entries);
          return;
        }
        failure ??= outcome.reason;
        for (const entry of part.entries) schedule.putBack(entry);
      });
      if (failure !== null) {
        logger.error('broker.delay.move_failed', { topic, error: failure });
        return false;
      }
      return true;
    } finally {
      this.scanFloor = null;
    }
  }

  private markMoved(entries: readonly Entry[]): void {
    this.options.schedule.markMoved(entries);
    this.options.files.requestFlush();
  }
}

/**
 * A batch's messages by partition (-1: the topic's partitioner picks), each copy carrying its
 * delay-log offset; `gone`: entries whose record is no more (cut by a power loss, its offset maybe
 * reused): nothing to move.
 */
function byPartition(batch: readonly Entry[], records: Map<number, LogRecord>): { parts: Array<{ entries: Entry[]; messages: PublishMessage[] }>; gone: Entry[] } {
  const groups = new Map<number, { entries: Entry[]; messages: PublishMessage[] }>();
  const gone: Entry[] = [];
  for (const entry of batch) {
    const record = records.get(entry.offset);
    const dueHeader = record?.headers.find(([name]) => name === DELIVER_AT_HEADER);
    if (record === undefined || dueHeader === undefined || Number(dueHeader[1]) !== entry.dueMs) {
      gone.push(entry);
      continue;
    }
    const partitionHeader = record.headers.find(([name]) => name === PARTITION_HEADER);
    const partition = partitionHeader === undefined ? -1 : Number(partitionHeader[1]);
    const headers: Header[] = record.headers.filter(([name]) => name !== PARTITION_HEADER);
    headers.push([DELAY_OFFSET_HEADER, String(entry.offset)]);
    let group = groups.get(partition);
    if (group === undefined) groups.set(partition, (group = { entries: [], messages: [] }));
    group.entries.push(entry);
    group.messages.push({ key: record.key, headers, value: record.value, ...(partition === -1 ? {} : { partition }) });
  }
  return { parts: [...groups.values()], gone };
}
