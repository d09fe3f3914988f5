/**
 * When the checkpoint is rewritten: after a sync, at most once per checkpointIntervalMs (each
 * write costs two fsyncs and a directory sync), plus on demand (roll, open, close). Writes are
 * serialised, always write the latest synced point, and never fail the log: when one fails the
 * previous checkpoint still names a synced prefix and recovery merely verifies more.
 */
import type { Clock, TimerHandle } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import type { Logger } from '../platform/logger.js';
import { writeCheckpoint, type Checkpoint } from './checkpoint.js';

export class Checkpointer {
  private chain: Promise<void> = Promise.resolve();
  private queued = false;
  private lastWriteMonoMs: number;
  private timer: TimerHandle | null = null;
  private written: Checkpoint | null = null;
  private stopped = false;

  constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly intervalMs: number,
    /** The synced prefix as of now: what a checkpoint written now may claim. */
    private readonly syncedPoint: () => Checkpoint,
  ) {
    this.lastWriteMonoMs = clock.monotonicMs();
  }

  /** After a sync: write now if the last write is intervalMs old, else once it is. */
  afterSync(): void {
    if (this.timer !== null || this.stopped) return;
    const dueInMs = this.lastWriteMonoMs + this.intervalMs - this.clock.monotonicMs();
    if (dueInMs <= 0) {
      void this.writeNow();
      return;
    }
    this.timer = this.clock.schedule(dueInMs, () => {
      this.timer = null;
      if (!this.stopped) void this.writeNow();
    });
  }

  /** Writes the current synced point (after any write in progress). Never rejects. */
  writeNow(): Promise<void> {
    if (this.queued) return this.chain;
    this.queued = true;
    this.chain = this.chain.then(async () => {
      this.queued = false;
      const point = this.syncedPoint();
      const last = this.written;
      if (last !== null && last.segmentBaseOffset === point.segmentBaseOffset && last.position === point.position) return;
      this.lastWriteMonoMs = this.clock.monotonicMs();
      try {
        await writeCheckpoint(this.fs, this.dir, point, this.clock.nowMs());
        this.written = point;
      } catch (error) {
        this.logger.warn('storage.checkpoint.failed', { dir: this.dir, error });
      }
    });
    return this.chain;
  }

  /** No more timed writes; resolves when the write in progress (if any) is done. */
  stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    return this.chain;
  }
}
