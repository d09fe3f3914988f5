/**
 * A capped list of "wall time minus boot-monotonic time" epochs on one boot, kept in a state file:
 * the one idea behind wall-history.ts (ages of stored timestamps) and delay/wall-epochs.ts (release
 * times of delayed messages). docs/RELIABILITY.md, "Wall-clock steps", tells the whole story.
 */
import type { BootTime } from '../../platform/clock.js';
import type { FileSystem } from '../../platform/fs.js';
import { readStateFile, writeStateFile, type UnusableStateFile } from './state-file.js';

export interface BootEpoch {
  /** Where the epoch starts: a delay-log offset (wall-epochs.ts) or a boot-monotonic time in ms (wall-history.ts). */
  from: number;
  /** Wall-clock minus boot-monotonic time during the epoch. */
  wallMinusBootMs: number;
}

/** Why the epochs of the last process are, or are not, a reference now. */
export type ClockReason = 'first run' | 'reboot' | 'boot clock went back' | 'same boot';

interface BootEpochsFile {
  version: number;
  bootId: string;
  /** The boot's monotonic clock when the file was written: a later reading on this boot is not lower. */
  bootMonotonicMs: number;
  epochs: Array<[from: number, wallMinusBootMs: number]>;
}

export interface BootEpochFileOptions {
  fs: FileSystem;
  path: string;
  version: number;
  /** Epochs kept at most (see `capEpochs`). */
  epochsMax: number;
  /** A file without epochs is unusable (wall-history.ts always writes one). */
  epochsRequired: boolean;
  /** A file that exists but is not used; the wall clock is still a reference. */
  unusable(why: UnusableStateFile): void;
}

/** The file of one boot's epochs: read once at open, rewritten whole when the epochs change. */
export class BootEpochFile {
  /** A write failed: the file may not match the epochs until a write succeeds. */
  unsure = false;

  constructor(
    private readonly options: BootEpochFileOptions,
    readonly bootId: string,
  ) {}

  /** The epochs the file holds when it was written earlier on this boot; none otherwise, with the reason. */
  async read(boot: BootTime): Promise<{ reason: ClockReason; epochs: BootEpoch[] }> {
    const { fs, path, version, epochsRequired } = this.options;
    const saved = await readStateFile<BootEpochsFile>(
      fs,
      path,
      (file) => file.version === version && typeof file.bootId === 'string' && Array.isArray(file.epochs) && (!epochsRequired || file.epochs.length > 0),
      (why) => this.options.unusable(why),
    );
    if (saved === null) return { reason: 'first run', epochs: [] };
    if (saved.bootId !== boot.bootId) return { reason: 'reboot', epochs: [] };
    if (saved.bootMonotonicMs > boot.monotonicMs) return { reason: 'boot clock went back', epochs: [] };
    return { reason: 'same boot', epochs: saved.epochs.map(([from, wallMinusBootMs]) => ({ from, wallMinusBootMs })) };
  }

  /** Replaces the file with these epochs; a failure leaves it unsure and is a FerryError. */
  async write(bootMonotonicMs: number, epochs: readonly BootEpoch[]): Promise<void> {
    const file: BootEpochsFile = {
      version: this.options.version,
      bootId: this.bootId,
      bootMonotonicMs,
      epochs: epochs.map((epoch) => [epoch.from, epoch.wallMinusBootMs]),
    };
    try {
      await writeStateFile(this.options.fs, this.options.path, file);
    } catch (error) {
      this.unsure = true;
      throw error;
    }
    this.unsure = false;
  }

  /**
   * Keeps at most `epochsMax` epochs: past it the two oldest merge into one, keeping the smaller
   * difference (a delayed message released later, a timestamp read younger: never the other way).
   * Returns how many merges it took.
   */
  capEpochs(epochs: BootEpoch[]): number {
    let merges = 0;
    while (epochs.length > this.options.epochsMax) {
      const [oldest, next] = epochs.splice(0, 2) as [BootEpoch, BootEpoch];
      epochs.unshift({ from: oldest.from, wallMinusBootMs: Math.min(oldest.wallMinusBootMs, next.wallMinusBootMs) });
      merges++;
    }
    return merges;
  }
}
