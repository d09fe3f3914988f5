/**
 * Reads one partition's log ahead of its subscribers: a small buffer of records fetched in
 * chunks (one log read per chunk), refilled when it runs dry and the log has more visible
 * records. Only records below the log's visible end are read, so an `always` topic never hands
 * out a record before it is synced.
 */
import { FerryError, isFerryError } from '../../errors.js';
import type { Logger } from '../../platform/logger.js';
import type { PartitionLog } from '../../storage/types.js';
import type { LogRecord } from '../../storage/types.js';
import { DISPATCH_READ_AHEAD_RECORDS, DISPATCH_READ_BYTES_MAX, DISPATCH_READ_RECORDS_MAX } from '../limits.js';
import { PRIORITY_MAX } from '../../protocol/priority.js';
import { priorityOf } from './priority.js';

export class PartitionReader {
  private buffer: LogRecord[] = [];
  private bufferIndex = 0;
  private fetchOffset: number;
  private fetching = false;
  private closed = false;
  /** Whether some buffered record has a priority above 0. */
  private prioritized = false;
  /** Bumped by seek(), so that a fetch started before it is ignored. */
  private generation = 0;

  constructor(
    private readonly log: PartitionLog,
    startOffset: number,
    private readonly onReady: () => void,
    private readonly logger: Logger,
    private readonly context: Record<string, unknown>,
  ) {
    this.fetchOffset = startOffset;
  }

  /** Offset of the next record `take()` would return. */
  get position(): number {
    const next = this.buffer[this.bufferIndex];
    return next === undefined ? this.fetchOffset : next.offset;
  }

  get buffered(): number {
    return this.buffer.length - this.bufferIndex;
  }

  /**
   * The buffered record with the highest priority (oldest first within a level); plain FIFO when
   * nothing buffered has a priority, which is the common, cheap case.
   */
  takeHighestPriority(): LogRecord | undefined {
    if (!this.prioritized) return this.take();
    let best = this.bufferIndex;
    let bestPriority = -1;
    for (let index = this.bufferIndex; index < this.buffer.length; index++) {
      const priority = priorityOf(this.buffer[index]!.headers);
      if (priority > bestPriority) {
        best = index;
        bestPriority = priority;
        if (priority === PRIORITY_MAX) break;
      }
    }
    if (best === this.bufferIndex) return this.take();
    const [record] = this.buffer.splice(best, 1);
    return record;
  }

  take(): LogRecord | undefined {
    const record = this.buffer[this.bufferIndex];
    if (record === undefined) return undefined;
    this.bufferIndex += 1;
    if (this.bufferIndex === this.buffer.length) {
      this.buffer = [];
      this.bufferIndex = 0;
    }
    return record;
  }

  /** Starts a fetch when the buffer is empty and the log has visible records past it. */
  request(recordsWanted: number): void {
    if (this.fetching || this.closed || this.buffered > 0) return;
    const endOffset = this.log.visibleEndOffset;
    if (this.fetchOffset >= endOffset) return;
    this.fetching = true;
    const generation = this.generation;
    // Read ahead of the demand, up to the read limits: a read returns views into one buffer read
    // from disk, so records fetched early cost no memory of their own, while fetching only what is
    // wanted made a consumer with 256 credits pread and CRC-check a 1 MiB batch four times over.
    const recordsMax = Math.max(1, Math.min(DISPATCH_READ_RECORDS_MAX, Math.max(recordsWanted, DISPATCH_READ_AHEAD_RECORDS)));
    this.log.read(this.fetchOffset, { recordsMax, bytesMax: DISPATCH_READ_BYTES_MAX, endOffset, wholeBatches: true }).then(
      (records) => this.fetched(records, generation),
      (error: unknown) => this.fetchFailed(error, generation),
    );
  }

  private fetched(records: LogRecord[], generation: number): void {
    this.fetching = false;
    if (this.closed) return;
    if (generation !== this.generation) {
      this.onReady();
      return;
    }
    if (records.length > 0) {
      this.buffer = records;
      this.bufferIndex = 0;
      this.prioritized = records.some((record) => priorityOf(record.headers) > 0);
      this.fetchOffset = records[records.length - 1]!.offset + 1;
    }
    this.onReady();
  }

  private fetchFailed(error: unknown, generation: number): void {
    this.fetching = false;
    if (this.closed) return;
    if (generation !== this.generation) {
      this.onReady();
      return;
    }
    if (isFerryError(error, 'OFFSET_OUT_OF_RANGE') && this.fetchOffset < this.log.startOffset) {
      // Retention removed what we were about to read: continue at the oldest record kept.
      this.logger.warn('broker.reader.skipped_deleted', { ...this.context, from: this.fetchOffset, to: this.log.startOffset });
      this.fetchOffset = this.log.startOffset;
    } else if (isFerryError(error, 'CORRUPT_RANGE')) {
      const toOffset = Number((error as FerryError).detail?.['toOffset'] ?? this.fetchOffset);
      this.logger.error('broker.reader.skipped_corrupt_range', { ...this.context, from: this.fetchOffset, to: toOffset });
      this.fetchOffset = Math.max(this.fetchOffset + 1, toOffset + 1);
    } else {
      this.logger.error('broker.reader.read_failed', { ...this.context, offset: this.fetchOffset, error });
      return;
    }
    this.onReady();
  }

  /** Continues at `offset`; anything buffered or being fetched is dropped. */
  seek(offset: number): void {
    this.buffer = [];
    this.bufferIndex = 0;
    this.fetchOffset = offset;
    this.generation += 1;
  }

  close(): void {
    this.closed = true;
    this.buffer = [];
    this.bufferIndex = 0;
  }
}
