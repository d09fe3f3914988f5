/**
 * The mutable state of one log, shared by the parts that change it: the writer (log-writer.ts),
 * the syncer (log-syncer.ts), maintenance and truncation (log.ts). One object, so that the three
 * offsets and the segment list have one home; the invariants between them are asserted where they
 * move.
 */
import assert from 'node:assert/strict';
import { FerryError, isFerryError } from '../errors.js';
import type { EpochCache } from './epoch-cache.js';
import type { LogConfig } from './log-config.js';
import { AgeClock } from './retention.js';
import type { Segment } from './segment.js';
import { TailCache } from './tail-cache.js';
import { WriteBufferPool } from './write-buffers.js';

export function isDiskFull(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

/** Every error leaving the public API is a FerryError; `context` says what was being done. */
export function toFerryError(error: unknown, context: string): FerryError {
  if (isFerryError(error)) return error;
  if (isDiskFull(error)) return new FerryError('DISK_FULL', `${context}: disk full`, { cause: error });
  if (error instanceof assert.AssertionError) return new FerryError('INTERNAL', `${context}: invariant violated: ${error.message}`, { cause: error });
  return new FerryError('STORAGE_FAILED', `${context}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

export class LogState {
  segments: Segment[];
  active: Segment;
  readonly tailCache: TailCache;
  readonly writeBuffers: WriteBufferPool;
  /** One past the last offset assigned (appended). */
  nextOffset: number;
  /** Last offset whose write returned. */
  writtenOffset: number;
  /** Last offset an fdatasync covered. */
  syncedOffset: number;
  totalBytes: number;
  /** The epoch new local batches are stamped with. */
  leaderEpoch: number;
  /** One past the last offset consumers may see, when the log's owner sets it (replication); null: the local rule. */
  ownerVisibleEnd: number | null = null;
  failure: FerryError | null = null;
  closing = false;
  /** Segment ages are measured on it, so that wall-clock steps move no age (retention.ts). */
  readonly ageClock: AgeClock;
  /** Each segment's newest record timestamp on the AgeClock. */
  readonly ageStamps = new WeakMap<Segment, number>();
  private readonly listeners = new Set<() => void>();
  private readonly failureHandlers: Array<(failure: FerryError) => void> = [];

  constructor(
    readonly config: LogConfig,
    segments: Segment[],
    readonly epochs: EpochCache,
  ) {
    assert.ok(segments.length > 0, 'a log always has an active segment');
    this.segments = segments;
    this.active = segments[segments.length - 1]!;
    this.tailCache = new TailCache(config.tailCacheBytes, config.tailCacheBudget ?? undefined);
    this.writeBuffers = config.writeBuffers ?? new WriteBufferPool();
    this.nextOffset = this.active.nextOffset;
    this.writtenOffset = this.nextOffset - 1;
    this.syncedOffset = this.writtenOffset;
    this.totalBytes = segments.reduce((sum, segment) => sum + segment.sizeBytes, 0);
    this.leaderEpoch = Math.max(config.leaderEpoch, epochs.latest);
    this.ageClock = new AgeClock(config.clock);
    for (const segment of segments) this.ageStamps.set(segment, this.ageClock.fromStored(segment.maxTimestampMs, config.stampAgeMs));
  }

  get startOffset(): number {
    return this.segments[0]!.baseOffset;
  }

  /** One past the last offset the local rule lets consumers see: synced for `always`, written otherwise. */
  get localVisibleEnd(): number {
    return (this.config.durability === 'always' ? this.syncedOffset : this.writtenOffset) + 1;
  }

  get visibleEnd(): number {
    const local = this.localVisibleEnd;
    return this.ownerVisibleEnd === null ? local : Math.max(this.startOffset, Math.min(this.ownerVisibleEnd, local));
  }

  addListener(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  clearListeners(): void {
    this.listeners.clear();
  }

  notifyAdvance(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.config.logger.error('storage.listener.failed', { dir: this.config.dir, error });
      }
    }
  }

  /** Told once when the log fails (to reject what waits on it). */
  onFailure(handler: (failure: FerryError) => void): void {
    this.failureHandlers.push(handler);
  }

  /** fsyncgate: after a failed sync nothing in this process can be trusted to reach the disk. */
  failStorage(cause: unknown, operation: string): void {
    if (this.failure !== null) return;
    this.failure = new FerryError('STORAGE_FAILED', `log ${this.config.dir}: ${operation} failed; reopen the log to continue`, { cause });
    this.config.logger.error('storage.failed', { dir: this.config.dir, operation, error: cause });
    for (const handler of this.failureHandlers) handler(this.failure);
  }

  closedError(): FerryError {
    return new FerryError('LOG_CLOSED', `log ${this.config.dir} is closed`);
  }
}
