/**
 * The delay store's bucket files at work: items queued in memory and appended one write per bucket,
 * synced by the checkpoint; every task on the files (appends, loads, checkpoints) runs one at a time.
 */
import { join } from 'node:path';
import type { FileSystem } from '../../platform/fs.js';
import type { Logger } from '../../platform/logger.js';
import { appendBucketItems, bucketFileName, readBucketItems, type BucketItem } from './buckets.js';

export class BucketFiles {
  /** Items not yet appended to their bucket files. */
  private queued = new Map<number, BucketItem[]>();
  /** Buckets appended to since their last sync. */
  private readonly dirty = new Set<number>();
  /** Bucket-file work runs one task at a time, in order. */
  private tail: Promise<void> = Promise.resolve();
  private flushRequested = false;

  constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly logger: Logger,
    private readonly topic: string,
    /** After each flush, whether or not it wrote everything: the checkpoint makes it durable. */
    private readonly flushed: () => void,
  ) {}

  queue(bucket: number, item: BucketItem): void {
    const items = this.queued.get(bucket);
    if (items === undefined) this.queued.set(bucket, [item]);
    else items.push(item);
  }

  /** The items queued for `bucket` and not yet appended. */
  queuedFor(bucket: number): readonly BucketItem[] | undefined {
    return this.queued.get(bucket);
  }

  /** Whether `bucket` has items queued or appended and not yet synced. */
  unsettled(bucket: number): boolean {
    return this.queued.has(bucket) || this.dirty.has(bucket);
  }

  /** A bucket file deleted: nothing of it is left to sync. */
  forget(bucket: number): void {
    this.dirty.delete(bucket);
  }

  read(bucket: number): Promise<BucketItem[]> {
    return readBucketItems(this.fs, this.path(bucket));
  }

  unlink(bucket: number): Promise<void> {
    return this.fs.unlink(this.path(bucket));
  }

  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task);
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Resolves once the tasks queued so far are done. */
  whenIdle(): Promise<void> {
    return this.tail;
  }

  /** Appends the queued items soon, in a task of their own. */
  requestFlush(): void {
    if (this.flushRequested) return;
    this.flushRequested = true;
    void this.exclusive(async () => {
      this.flushRequested = false;
      await this.appendQueued();
    }).then(
      () => this.flushed(),
      (error: unknown) => {
        // The items stay queued; the next flush or checkpoint tries again.
        this.logger.error('broker.delay.bucket_write_failed', { topic: this.topic, error });
        this.flushed();
      },
    );
  }

  /** Appends every queued item to its bucket file (one write per bucket); failed ones stay queued. */
  async appendQueued(): Promise<void> {
    while (this.queued.size > 0) {
      const batch = this.queued;
      this.queued = new Map();
      const buckets = [...batch.keys()];
      const outcomes = await Promise.allSettled(buckets.map((bucket) => appendBucketItems(this.fs, this.path(bucket), batch.get(bucket)!)));
      let failure: unknown = null;
      outcomes.forEach((outcome, index) => {
        const bucket = buckets[index]!;
        if (outcome.status === 'fulfilled') {
          this.dirty.add(bucket);
          return;
        }
        failure ??= outcome.reason;
        const later = this.queued.get(bucket);
        this.queued.set(bucket, later === undefined ? batch.get(bucket)! : batch.get(bucket)!.concat(later));
      });
      if (failure !== null) throw failure;
    }
  }

  /** Appends what is queued, then syncs every bucket file written since the last sync and the directory. */
  async syncAll(): Promise<void> {
    await this.appendQueued();
    for (const bucket of [...this.dirty]) {
      const handle = await this.fs.open(this.path(bucket), 'create');
      try {
        await handle.datasync();
      } finally {
        await handle.close();
      }
      this.dirty.delete(bucket);
    }
    await this.fs.syncDir(this.dir);
  }

  private path(bucket: number): string {
    return join(this.dir, bucketFileName(bucket));
  }
}
