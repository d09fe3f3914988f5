/**
 * How old a stored timestamp really is, across restarts on one boot: the broker's record of the
 * wall clock's steps.
 * The rest: docs/INTERNALS.md.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { BootTime, Clock } from '../../platform/clock.js';
import type { FileSystem } from '../../platform/fs.js';
import type { Logger } from '../../platform/logger.js';
import { BootEpochFile, type BootEpoch } from './boot-epochs.js';

export const WALL_HISTORY_FILE = 'wall-clock.json';
const WALL_HISTORY_VERSION = 1;
/**
 * A difference that moved by more than this since the current epoch began starts a new one. Below
 * it lie the clocks' resolution and slewing (NTP adjusts the rate by at most 500 ppm); a stamp is
 * read at most this much off, which windows of seconds to days do not notice.
 */
export const STEP_TOLERANCE_MS = 100;
/**
 * An epoch also takes stamps from up to this long before its start: the time between reading the
 * clocks in `observe` and the log stamping the batch, while an append waits for the epoch to be
 * durable and in the log's queue.
 */
export const STAMP_LAG_MS_MAX = 1_000;
/** Epochs kept at most; past it the two oldest merge, keeping the smaller difference (younger readings). */
export const WALL_EPOCHS_MAX = 1_000;

export interface WallHistoryOptions {
  fs: FileSystem;
  /** The broker's data directory. */
  dir: string;
  clock: Clock;
  logger: Logger;
}

export class WallHistory {
  /** Ascending by `from` (the boot's monotonic clock when each began); the last is current. Empty without a boot clock. */
  private epochs: BootEpoch[];
  /** The write of the newest epochs, until it is done; appends wait for it. */
  private writing: Promise<void> | null = null;

  private constructor(
    private readonly options: WallHistoryOptions,
    /** Null without a boot clock: the wall clock is the only reference. */
    private readonly file: BootEpochFile | null,
    epochs: BootEpoch[],
  ) {
    this.epochs = epochs;
  }

  static async open(options: WallHistoryOptions): Promise<WallHistory> {
    const { fs, clock, logger } = options;
    const path = join(options.dir, WALL_HISTORY_FILE);
    const boot = clock.bootTime?.() ?? null;
    if (boot === null) {
      logger.info('broker.clock_reference', { reference: 'wall clock', reason: 'no boot time' });
      return new WallHistory(options, null, []);
    }
    const file = new BootEpochFile(
      {
        fs,
        path,
        version: WALL_HISTORY_VERSION,
        epochsMax: WALL_EPOCHS_MAX,
        epochsRequired: true,
        // The wall clock is still a reference.
        unusable: (why) => logger.warn(why.kind === 'unknown' ? 'broker.clock_file_unknown' : 'broker.clock_file_unreadable', { path, ...why }),
      },
      boot.bootId,
    );
    const { reason, epochs } = await file.read(boot);
    const history = new WallHistory(options, file, epochs);
    logger.info('broker.clock_reference', { reference: reason === 'same boot' ? 'boot clock' : 'wall clock', reason, epochs: epochs.length, aheadMsMax: history.aheadMsMax() });
    // The first epoch of a boot also stands for every stamp written before it (earlier boots,
    // earlier versions): for those the wall clock is the only reference.
    if (history.epochs.length === 0) history.epochs.push({ from: 0, wallMinusBootMs: clock.nowMs() - boot.monotonicMs });
    const writing = history.observe() ?? (reason === 'same boot' ? undefined : history.write(file));
    // The broker still opens on a full disk; its first append tries the write again (and fails as the append would).
    if (writing !== undefined) await writing.catch((error: unknown) => logger.warn('broker.clock_file_unwritable', { path, error }));
    return history;
  }

  /**
   * Call before stamping records with the wall clock: when the clock stepped since the current
   * epoch began, starts a new epoch and returns the promise of its write, to be awaited before the
   * stamp (rejects with DISK_FULL or STORAGE_FAILED if it cannot be written). Otherwise, and when
   * nothing is being written, undefined: two clock reads and a comparison.
   */
  observe(): Promise<void> | undefined {
    if (this.file === null) return undefined;
    const boot = this.bootNow();
    if (boot === null) return undefined;
    const diffMs = this.options.clock.nowMs() - boot.monotonicMs;
    const current = this.epochs.at(-1)!;
    if (Math.abs(diffMs - current.wallMinusBootMs) > STEP_TOLERANCE_MS) {
      this.options.logger.info('broker.clock_step', { stepMs: diffMs - current.wallMinusBootMs });
      this.epochs.push({ from: boot.monotonicMs, wallMinusBootMs: diffMs });
      this.file.capEpochs(this.epochs);
      return this.write(this.file);
    }
    if (this.file.unsure && this.writing === null) return this.write(this.file);
    return this.writing ?? undefined;
  }

  /**
   * How long ago a record stamped `stampMs` (wall clock) was written, never negative: read in the
   * latest epoch it fits, so never older than it is (within STEP_TOLERANCE_MS). Without a boot
   * clock: its age by the wall clock.
   */
  ageMs(stampMs: number): number {
    const boot = this.file === null ? null : this.bootNow();
    if (boot === null) return Math.max(0, this.options.clock.nowMs() - stampMs);
    for (let at = this.epochs.length - 1; at >= 0; at--) {
      const epoch = this.epochs[at]!;
      const writtenAtBootMs = stampMs - epoch.wallMinusBootMs;
      if (at === 0 || writtenAtBootMs >= epoch.from - STAMP_LAG_MS_MAX) return Math.max(0, boot.monotonicMs - writtenAtBootMs);
    }
    assert.fail('the first epoch takes every stamp');
  }

  /** The most by which a stamp's age by the wall clock now can exceed `ageMs`: how much further back a scan by timestamp must start. */
  aheadMsMax(): number {
    const boot = this.file === null ? null : this.bootNow();
    if (boot === null || this.epochs.length === 0) return 0;
    const nowDiffMs = this.options.clock.nowMs() - boot.monotonicMs;
    return Math.max(0, nowDiffMs - Math.min(...this.epochs.map((epoch) => epoch.wallMinusBootMs)));
  }

  private bootNow(): BootTime | null {
    return this.options.clock.bootTime?.() ?? null;
  }

  /** Writes the epochs as they are now, after any write in progress; a failure leaves them unsure and is a FerryError. */
  private write(file: BootEpochFile): Promise<void> {
    const run = (this.writing ?? Promise.resolve()).catch(() => undefined).then(() => file.write(this.bootNow()?.monotonicMs ?? 0, this.epochs));
    const settled = run.finally(() => {
      if (this.writing === settled) this.writing = null;
    });
    this.writing = settled;
    return settled;
  }
}
