/**
 * What the delay store keeps on disk about the wall clock, so that a restart on the same boot can
 * tell how far the wall clock stepped while its delayed messages waited.
 * The rest: docs/INTERNALS.md.
 */
import { join } from 'node:path';
import type { BootTime, Clock } from '../../platform/clock.js';
import type { FileSystem } from '../../platform/fs.js';
import type { Logger } from '../../platform/logger.js';
import { BootEpochFile, type BootEpoch } from '../wall-clock/boot-epochs.js';

const EPOCHS_FILE = 'clock.json';
const EPOCHS_VERSION = 1;
/**
 * A message fits the current epoch when its difference is at most this much below the epoch's:
 * Date.now() has a resolution of 1 ms and the two clocks are read one after the other. A lower one
 * starts an epoch (in it, the message would be released early after a restart); so a message may
 * be released this much early, no more.
 */
export const EPOCH_EARLY_TOLERANCE_MS = 2;
/**
 * ... and at most this much above it. A message's difference is measured when it is added, against
 * the wall clock its due time was computed with: for a `delayMs` publish that was a moment earlier
 * (the publish waited in queues meanwhile), which makes the difference lower by that wait. Counting
 * it as the epoch's lower difference releases it later, never earlier; a new epoch for every change
 * of that wait would rewrite the file at almost every add. So after a restart a message may come up
 * to this much late (and a forward step smaller than it is not noticed: late, not early).
 */
export const EPOCH_LATE_TOLERANCE_MS = 1000;
/**
 * Epochs kept at most: one per wall-clock step while some delayed message waits. Past it the two
 * oldest are merged, keeping the smaller difference, which releases their messages later, never
 * earlier.
 */
export const EPOCHS_MAX = 1000;

/** Messages stored before open whose release must move: offsets first..last, by `shiftMs` (delay-store terms). */
export interface RestoredShift {
  first: number;
  last: number;
  /** Difference at their publish minus the difference at open: positive means "due earlier than its due time says now". */
  shiftMs: number;
}

export interface WallEpochsOptions {
  fs: FileSystem;
  dir: string;
  clock: Clock;
  logger: Logger;
  topic: string;
  /** The delay log's first offset and next offset at open. */
  startOffset: number;
  nextOffset: number;
}

export class WallEpochs {
  /** The epochs still needed, ascending by offset (`from`); the last one is current. */
  private epochs: BootEpoch[];
  /** Changes of the epochs (and their file writes), one at a time. */
  private changes: Promise<void> = Promise.resolve();

  private constructor(
    private readonly options: WallEpochsOptions,
    /** Null without a boot clock: the wall clock is the only reference. */
    private readonly file: BootEpochFile | null,
    epochs: BootEpoch[],
    /** Release shifts of the messages stored before open (empty after a reboot or without boot time). */
    readonly restored: RestoredShift[],
  ) {
    this.epochs = epochs;
  }

  static async open(options: WallEpochsOptions): Promise<WallEpochs> {
    const { fs, clock, logger, topic } = options;
    const path = join(options.dir, EPOCHS_FILE);
    // Boot time first, then the wall clock: a delay between them makes the difference larger, and
    // the shifts below smaller, which releases later rather than earlier.
    const boot = clock.bootTime?.() ?? null;
    const wallMs = clock.nowMs();
    if (boot === null) {
      // Epochs written on some earlier run would not describe what is appended from now on.
      if ((await fs.stat(path)) !== null) await fs.unlink(path);
      logger.info('broker.delay.clock_reference', { topic, reference: 'wall clock', reason: 'no boot time' });
      return new WallEpochs(options, null, [], []);
    }
    const nowDiffMs = wallMs - boot.monotonicMs;
    const file = new BootEpochFile(
      {
        fs,
        path,
        version: EPOCHS_VERSION,
        epochsMax: EPOCHS_MAX,
        epochsRequired: false,
        // The wall clock is still a reference.
        unusable: (why) => logger.warn(why.kind === 'unknown' ? 'broker.delay.clock_file_unknown' : 'broker.delay.clock_file_unreadable', { topic, path, ...why }),
      },
      boot.bootId,
    );
    const saved = await file.read(boot);
    const reason = saved.reason;
    // Epochs at or past the log's end are of records a crash took back: their offsets are reused.
    const epochs = saved.epochs.filter((epoch) => epoch.from < options.nextOffset);
    const restored: RestoredShift[] = [];
    epochs.forEach((epoch, index) => {
      const first = Math.max(epoch.from, options.startOffset);
      const last = (epochs[index + 1]?.from ?? options.nextOffset) - 1;
      if (first <= last) restored.push({ first, last, shiftMs: epoch.wallMinusBootMs - nowDiffMs });
    });
    const stepMsMax = restored.reduce((max, shift) => Math.max(max, Math.abs(shift.shiftMs)), 0);
    logger.info('broker.delay.clock_reference', { topic, reference: reason === 'same boot' ? 'boot clock' : 'wall clock', reason, epochs: epochs.length, stepMsMax });
    const store = new WallEpochs(options, file, epochs, restored);
    // The epoch of what this process appends, unless the last one already is.
    await store.extend(options.nextOffset, [wallMs]);
    return store;
  }

  /**
   * Whether messages appended now fall in the current (last) epoch: given, for each, what the wall
   * clock reads now in the terms of its due time (due time minus remaining delay). When it does,
   * wherever their records land (after every record already appended), they are read right. When
   * not, the caller must `extend` at the exact offset they will take.
   */
  inCurrent(wallNowMs: readonly number[]): boolean {
    if (this.file === null) return true;
    if (this.file.unsure) return false;
    const current = this.epochs.at(-1);
    const boot = this.bootNow();
    if (current === undefined || boot === null) return boot === null;
    return wallNowMs.every((wallMs) => fits(wallMs - boot.monotonicMs, current));
  }

  /**
   * Makes the epochs of messages about to be appended at nextOffset, nextOffset + 1, ... (no other
   * record may be pending or come first) durable: epochs from nextOffset on are replaced (nothing is
   * stored there; a failed append gave those offsets back), and one starts at each message whose
   * difference is not its predecessor's. Rejects, with the epochs unsure, if it cannot be written.
   */
  extend(nextOffset: number, wallNowMs: readonly number[]): Promise<void> {
    return this.serially(() => this.extendNow(nextOffset, wallNowMs));
  }

  private async extendNow(nextOffset: number, wallNowMs: readonly number[]): Promise<void> {
    if (this.file === null) return;
    const boot = this.bootNow();
    if (boot === null) return;
    const epochs = this.epochs.filter((epoch) => epoch.from < nextOffset);
    let changed = this.file.unsure || epochs.length !== this.epochs.length;
    wallNowMs.forEach((wallMs, index) => {
      const diffMs = wallMs - boot.monotonicMs;
      const current = epochs.at(-1);
      if (current !== undefined && fits(diffMs, current)) return;
      this.options.logger.info('broker.delay.clock_epoch', { topic: this.options.topic, fromOffset: nextOffset + index, stepMs: current === undefined ? null : diffMs - current.wallMinusBootMs });
      epochs.push({ from: nextOffset + index, wallMinusBootMs: diffMs });
      changed = true;
    });
    if (!changed) return;
    const merges = this.file.capEpochs(epochs);
    if (merges > 0) this.options.logger.warn('broker.delay.clock_epochs_full', { topic: this.options.topic, merges });
    this.epochs = epochs;
    await this.file.write(boot.monotonicMs, this.epochs);
  }

  /** Whether every message about to be appended at nextOffset, ... falls in the epoch that covers its offset. */
  covers(nextOffset: number, wallNowMs: readonly number[]): boolean {
    if (this.file === null) return true;
    if (this.file.unsure) return false;
    const boot = this.bootNow();
    if (boot === null) return true;
    return wallNowMs.every((wallMs, index) => {
      const offset = nextOffset + index;
      let epoch: BootEpoch | undefined;
      for (let at = this.epochs.length - 1; at >= 0 && epoch === undefined; at--) if (this.epochs[at]!.from <= offset) epoch = this.epochs[at];
      return epoch !== undefined && fits(wallMs - boot.monotonicMs, epoch);
    });
  }

  /** Forgets the epochs whose every message is moved (all their offsets are below `pendingFrom`). */
  prune(pendingFrom: number): Promise<void> {
    return this.serially(() => this.pruneNow(pendingFrom));
  }

  private async pruneNow(pendingFrom: number): Promise<void> {
    if (this.file === null) return;
    let drop = 0;
    while (drop < this.epochs.length - 1 && this.epochs[drop + 1]!.from <= pendingFrom) drop++;
    const boot = this.bootNow();
    if (drop === 0 || boot === null) return;
    this.epochs = this.epochs.slice(drop);
    await this.file.write(boot.monotonicMs, this.epochs);
  }

  private serially(task: () => Promise<void>): Promise<void> {
    const run = this.changes.then(task);
    this.changes = run.catch(() => undefined);
    return run;
  }

  private bootNow(): BootTime | null {
    return this.options.clock.bootTime?.() ?? null;
  }
}

/** Whether a message with this difference is read right enough in `epoch` (see the tolerances). */
function fits(diffMs: number, epoch: BootEpoch): boolean {
  return diffMs >= epoch.wallMinusBootMs - EPOCH_EARLY_TOLERANCE_MS && diffMs <= epoch.wallMinusBootMs + EPOCH_LATE_TOLERANCE_MS;
}
