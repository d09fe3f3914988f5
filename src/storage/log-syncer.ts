/**
 * Group commit: one sync loop per log. Each pass syncs every segment written since the previous
 * pass started, then settles everyone waiting for offsets up to what was written when the pass
 * started; writes go on meanwhile and are covered by the next pass. After a sync the checkpoint
 * (the synced prefix recovery trusts) may move.
 */
import assert from 'node:assert/strict';
import type { SyncWaiter } from './append-queue.js';
import type { Checkpoint } from './checkpoint.js';
import { Checkpointer } from './checkpointer.js';
import { FSYNC_SLOW_MS } from './limits.js';
import type { LogState } from './log-state.js';
import type { Segment } from './segment.js';

export class LogSyncer {
  private waiters: SyncWaiter[] = [];
  private waitersHead = 0;
  private running = false;
  private dirtySegments: Segment[] = [];
  /** The synced prefix: what the next checkpoint may claim. */
  private syncedPoint: Checkpoint;
  readonly checkpointer: Checkpointer;

  constructor(private readonly state: LogState) {
    const active = state.active;
    this.syncedPoint = { segmentBaseOffset: active.baseOffset, position: active.sizeBytes, nextOffset: active.nextOffset };
    const { fs, dir, clock, logger, checkpointIntervalMs } = state.config;
    this.checkpointer = new Checkpointer(fs, dir, clock, logger, checkpointIntervalMs, () => this.syncedPoint);
    state.onFailure((failure) => {
      const waiters = this.waiters.slice(this.waitersHead);
      this.waiters = [];
      this.waitersHead = 0;
      for (const waiter of waiters) waiter.failed(failure);
    });
  }

  get isIdle(): boolean {
    return !this.running;
  }

  markDirty(segment: Segment): void {
    if (segment.dirty) return;
    segment.dirty = true;
    this.dirtySegments.push(segment);
  }

  /** `waiter` is settled once an fdatasync covers its last offset. */
  wait(waiter: SyncWaiter): void {
    this.waiters.push(waiter);
  }

  /** Nothing written is unsynced and no segment waits for a sync. */
  get allSynced(): boolean {
    return this.state.syncedOffset === this.state.writtenOffset && this.dirtySegments.length === 0;
  }

  /** The checkpoint may name the start of a new segment (after a roll with nothing unsynced). */
  moveToSegmentStart(segment: Segment): Promise<void> {
    this.syncedPoint = { segmentBaseOffset: segment.baseOffset, position: 0, nextOffset: segment.baseOffset };
    return this.checkpointer.writeNow();
  }

  /** After a truncation: the synced prefix ends at `point`, and nothing beyond it waits. */
  truncatedTo(point: Checkpoint): Promise<void> {
    assert.equal(this.waiters.length - this.waitersHead, 0, 'nothing waits for a sync across a truncation');
    this.dirtySegments = this.dirtySegments.filter((segment) => this.state.segments.includes(segment));
    this.syncedPoint = point;
    return this.checkpointer.writeNow();
  }

  /** Resolves once everything written so far is synced. */
  syncAllWritten(): Promise<void> {
    const state = this.state;
    if (state.failure !== null) return Promise.reject(state.failure);
    const target = state.writtenOffset;
    if (target <= state.syncedOffset) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ lastOffset: target, synced: resolve, failed: reject });
      this.request();
    });
  }

  request(): void {
    if (this.running || this.state.failure !== null) return;
    this.running = true;
    void this.run();
  }

  private async run(): Promise<void> {
    const state = this.state;
    const { config } = state;
    try {
      while (state.failure === null && state.writtenOffset > state.syncedOffset) {
        const target = state.writtenOffset;
        const active = state.active;
        const point: Checkpoint = { segmentBaseOffset: active.baseOffset, position: active.sizeBytes, nextOffset: active.nextOffset };
        assert.equal(point.nextOffset, target + 1, 'the active segment ends at the written offset');
        const dirty = this.dirtySegments;
        this.dirtySegments = [];
        for (const segment of dirty) segment.dirty = false;
        for (const segment of dirty) {
          if (!segment.acquire()) continue;
          const startedMs = config.clock.monotonicMs();
          try {
            await segment.handle.datasync();
          } finally {
            segment.release();
          }
          const tookMs = config.clock.monotonicMs() - startedMs;
          config.observer?.fsyncCompleted(tookMs / 1000);
          if (tookMs >= FSYNC_SLOW_MS) config.logger.warn('storage.fsync_slow', { dir: config.dir, segmentBaseOffset: segment.baseOffset, ms: Math.round(tookMs) });
        }
        state.syncedOffset = target;
        this.syncedPoint = point;
        this.settle(target);
        state.notifyAdvance();
        if (!state.closing) this.checkpointer.afterSync();
      }
    } catch (error) {
      state.failStorage(error, 'datasync');
    } finally {
      this.running = false;
    }
  }

  /** Resolves once no sync pass runs (a truncation must not race one). */
  async idle(): Promise<void> {
    while (this.running) await new Promise<void>((resolve) => setImmediate(resolve));
  }

  private settle(syncedOffset: number): void {
    const waiters = this.waiters;
    let head = this.waitersHead;
    while (head < waiters.length && waiters[head]!.lastOffset <= syncedOffset) {
      waiters[head]!.synced();
      head++;
    }
    if (head === waiters.length) {
      this.waiters = [];
      this.waitersHead = 0;
    } else {
      this.waitersHead = head;
    }
  }
}
