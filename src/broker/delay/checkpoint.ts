/**
 * The delay store's checkpoint: bucket files and progress made durable (the state file, replaced
 * atomically), then the finished buckets and the delay-log segments below every pending message
 * deleted. What it vouches for is taken before anything is written.
 */
import { join } from 'node:path';
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { FileSystem } from '../../platform/fs.js';
import type { Logger } from '../../platform/logger.js';
import { writeFileAtomic } from '../../platform/atomic-write.js';
import { FerryError } from '../../errors.js';
import type { Durability, PartitionLog } from '../../storage/types.js';
import type { BucketFiles } from './bucket-files.js';
import type { DelayMover } from './mover.js';
import type { DelaySchedule } from './schedule.js';
import type { WallEpochs } from './wall-epochs.js';

/** How often the schedule's progress is checkpointed, at most. */
const CHECKPOINT_INTERVAL_MS = 1000;
const STATE_FILE = 'state.json';
const STATE_VERSION = 2;
/** Version 1 decided what was moved from a (due, offset) cursor; it is converted at open. */
const STATE_VERSION_CURSOR = 1;

export interface DelayState {
  version: number;
  /** Every delay-log record below this has its scheduled item in a synced bucket file. */
  indexedEnd: number;
  /** Main-log offsets from which moves newer than the synced "moved" items can be found. */
  movedScanFrom: number[];
  /** Lowest delay-log offset in each bucket not yet finished (for deleting delay-log segments). */
  bucketMinOffsets: Record<string, number>;
}

export interface CursorStateV1 {
  version: 1;
  cursorDueMs: number;
  cursorOffset: number;
  indexedEnd: number;
  movedScanFrom: number[];
  bucketMinOffsets: Record<string, number>;
}

/**
 * The state file of the store in `dir`, written first for a new store: then moves are always
 * searched for from where they can begin. (A store without one that has records, from before this
 * rule, searches the whole topic.) A version-1 file comes back as it is, with its cursor.
 */
export async function readDelayState(fs: FileSystem, dir: string, log: PartitionLog, mainLogs: readonly PartitionLog[]): Promise<{ state: DelayState; cursor: CursorStateV1 | null }> {
  const statePath = join(dir, STATE_FILE);
  let saved: DelayState | CursorStateV1;
  if ((await fs.stat(statePath)) === null) {
    const fresh = log.nextOffset === 0;
    saved = { version: STATE_VERSION, indexedEnd: 0, movedScanFrom: mainLogs.map((main) => (fresh ? main.nextOffset : 0)), bucketMinOffsets: {} };
    await writeFileAtomic(fs, statePath, Buffer.from(JSON.stringify(saved)));
  } else {
    saved = JSON.parse((await fs.readFile(statePath)).toString('utf8')) as DelayState | CursorStateV1;
  }
  if (saved.version !== STATE_VERSION && saved.version !== STATE_VERSION_CURSOR) {
    throw new FerryError('STORAGE_FAILED', `${statePath} has unknown version ${saved.version}`);
  }
  const state: DelayState = { version: STATE_VERSION, indexedEnd: saved.indexedEnd, movedScanFrom: saved.movedScanFrom, bucketMinOffsets: saved.bucketMinOffsets };
  return { state, cursor: saved.version === STATE_VERSION_CURSOR ? (saved as CursorStateV1) : null };
}

export interface DelayCheckpointOptions {
  fs: FileSystem;
  dir: string;
  clock: Clock;
  logger: Logger;
  topic: string;
  durability: Durability;
  log: PartitionLog;
  mainLogs: readonly PartitionLog[];
  state: DelayState;
  schedule: DelaySchedule;
  files: BucketFiles;
  mover: DelayMover;
  epochs: WallEpochs;
  /** The delay-log offset below which every record was handed to the schedule (adds in flight are not yet). */
  scheduledEnd: () => number;
}

export class DelayCheckpoint {
  private timer: TimerHandle | null = null;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly options: DelayCheckpointOptions) {}

  /** Takes a checkpoint within CHECKPOINT_INTERVAL_MS, unless one is already due. */
  soon(): void {
    if (this.timer !== null || this.stopped) return;
    this.timer = this.options.clock.schedule(CHECKPOINT_INTERVAL_MS, () => {
      this.timer = null;
      void this.run().catch((error: unknown) => this.options.logger.error('broker.delay.checkpoint_failed', { topic: this.options.topic, error }));
    });
  }

  /** Makes bucket files and progress durable, then deletes what is finished. */
  run(): Promise<void> {
    this.running ??= this.options.files.exclusive(() => this.take()).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** No more timed checkpoints; resolves once the one under way (if any) is done, whatever its outcome. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
    if (this.running !== null) await this.running.catch(() => undefined);
  }

  private async take(): Promise<void> {
    const { log, mainLogs, state, schedule, files } = this.options;
    // 1. What this checkpoint vouches for, taken before anything is written: every record below
    //    indexedEnd was scheduled (its item is queued or written), and every move whose record lies
    //    below movedScanFrom has its "moved" item queued or written.
    let indexedEnd = this.options.scheduledEnd();
    const floor = this.options.mover.scanFloor;
    const movedScanFrom = mainLogs.map((main, partition) => Math.min(main.nextOffset, floor?.[partition] ?? Infinity));
    // 2. Those items, written and synced.
    await files.syncAll();
    // 3. Without `always`, the records they speak of may not be synced yet: a power loss must not
    //    keep a "moved" item whose moved copy it took back.
    if (this.options.durability !== 'always') {
      await log.sync();
      await Promise.all(mainLogs.map((main) => main.sync()));
    }
    indexedEnd = Math.min(indexedEnd, log.syncedOffset + 1);
    // 4. Progress, then the finished buckets.
    const finished = schedule.bucketStarts.filter((bucket) => schedule.isFinished(bucket, indexedEnd));
    const bucketMinOffsets = { ...state.bucketMinOffsets };
    for (const bucket of finished) delete bucketMinOffsets[String(bucket)];
    const written: DelayState = { version: STATE_VERSION, indexedEnd, movedScanFrom, bucketMinOffsets };
    await writeFileAtomic(this.options.fs, join(this.options.dir, STATE_FILE), Buffer.from(JSON.stringify(written)));
    state.indexedEnd = indexedEnd;
    state.movedScanFrom = movedScanFrom;
    schedule.legacyCursor = null;
    for (const bucket of finished) {
      if (!schedule.isFinished(bucket, indexedEnd)) continue;
      await files.unlink(bucket).catch(() => undefined);
      // New entries may have come while unlinking: their items are queued and recreate the file.
      if (!schedule.isFinished(bucket, indexedEnd)) continue;
      schedule.forget(bucket);
    }
    const pendingFrom = schedule.pendingFrom(indexedEnd);
    await log.deleteSegmentsBefore(pendingFrom);
    await this.options.epochs.prune(pendingFrom).catch((error: unknown) => this.options.logger.warn('broker.delay.clock_prune_failed', { topic: this.options.topic, error }));
  }
}
