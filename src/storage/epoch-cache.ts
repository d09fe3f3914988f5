/**
 * The leader epochs of one log: where each epoch's first batch starts (docs/STORAGE.md, "Leader
 * epochs"). A follower that comes back asks the leader where its own last epoch ends there, and
 * truncates to that point before fetching again (Kafka's KIP-101), so this list must be right for
 * every offset the log holds.
 *
 * It is derived from the batch headers and kept in `leader-epochs` beside the segments, rewritten
 * atomically whenever it changes (a new epoch, a truncation): rarely. An entry is made durable
 * before the first batch of its epoch is written, so after any crash the file knows every epoch
 * the log holds; entries past the recovered end are dropped at open. A missing or damaged file is
 * rebuilt from the batch headers.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { FileSystem } from '../platform/fs.js';
import { writeFileAtomic } from '../platform/atomic-write.js';
import { crc32c } from './crc32c.js';

export const EPOCH_FILE = 'leader-epochs';
const EPOCH_FILE_VERSION = 1;

export interface EpochEntry {
  epoch: number;
  /** Offset of the first record written in this epoch. */
  startOffset: number;
}

/** Where `epoch` ends in a log: the first offset after it, and the largest epoch at or below it that the log holds. */
export interface EpochEnd {
  /** The largest epoch at or below the one asked about; -1 when the log holds none. */
  epoch: number;
  /** One past its last offset: the next epoch's start, or the log's end for the newest. */
  endOffset: number;
}

export class EpochCache {
  private entries: EpochEntry[];

  constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    entries: readonly EpochEntry[],
  ) {
    this.entries = [...entries];
    assertOrdered(this.entries);
  }

  /** The file's entries, or null when there is no usable file. */
  static async read(fs: FileSystem, dir: string): Promise<EpochEntry[] | null> {
    const path = join(dir, EPOCH_FILE);
    if ((await fs.stat(path)) === null) return null;
    try {
      const parsed = JSON.parse((await fs.readFile(path)).toString('utf8')) as { version?: unknown; epochs?: unknown; crc?: unknown };
      if (parsed.version !== EPOCH_FILE_VERSION || !Array.isArray(parsed.epochs)) return null;
      if (parsed.crc !== crc32c(Buffer.from(JSON.stringify(parsed.epochs)))) return null;
      const entries: EpochEntry[] = [];
      for (const item of parsed.epochs as unknown[]) {
        if (!Array.isArray(item) || !Number.isSafeInteger(item[0]) || !Number.isSafeInteger(item[1])) return null;
        entries.push({ epoch: item[0] as number, startOffset: item[1] as number });
      }
      return isOrdered(entries) ? entries : null;
    } catch {
      return null;
    }
  }

  get all(): readonly EpochEntry[] {
    return this.entries;
  }

  /** The newest epoch; -1 when the log holds none. */
  get latest(): number {
    return this.entries.length === 0 ? -1 : this.entries[this.entries.length - 1]!.epoch;
  }

  /**
   * Records that `epoch` starts at `startOffset`, durably, before any batch of it is written. A
   * no-op for the newest epoch; an older epoch is a caller bug.
   */
  async begin(epoch: number, startOffset: number): Promise<void> {
    const latest = this.entries[this.entries.length - 1];
    if (latest !== undefined && latest.epoch === epoch) return;
    assert.ok(latest === undefined || epoch > latest.epoch, `epoch ${epoch} is not after ${latest?.epoch}`);
    assert.ok(latest === undefined || startOffset >= latest.startOffset, 'an epoch starts at or after the one before');
    // An earlier epoch that never got a batch ends where this one starts: keep only epochs that hold records.
    const kept = latest !== undefined && latest.startOffset === startOffset ? this.entries.slice(0, -1) : this.entries;
    this.entries = [...kept, { epoch, startOffset }];
    await this.persist();
  }

  /** Forgets every epoch entry at or after `offset` (the log was cut there), durably when anything changed. */
  async truncateFrom(offset: number): Promise<void> {
    const kept = this.entries.filter((entry) => entry.startOffset < offset);
    if (kept.length === this.entries.length) return;
    this.entries = kept;
    await this.persist();
  }

  /** Replaces everything (a rebuild from batch headers), durably. */
  async replace(entries: readonly EpochEntry[]): Promise<void> {
    assertOrdered(entries);
    this.entries = [...entries];
    await this.persist();
  }

  /**
   * KIP-101's answer for a follower whose last epoch is `epoch`: the largest epoch at or below it
   * that this log holds, and where that epoch ends here (the next epoch's start, or `logEndOffset`).
   */
  endOf(epoch: number, logEndOffset: number): EpochEnd {
    let index = -1;
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i]!.epoch <= epoch) {
        index = i;
        break;
      }
    }
    if (index < 0) return { epoch: -1, endOffset: this.entries[0]?.startOffset ?? logEndOffset };
    const next = this.entries[index + 1];
    return { epoch: this.entries[index]!.epoch, endOffset: next === undefined ? logEndOffset : next.startOffset };
  }

  private persist(): Promise<void> {
    const epochs = this.entries.map((entry) => [entry.epoch, entry.startOffset]);
    const body = JSON.stringify({ version: EPOCH_FILE_VERSION, epochs, crc: crc32c(Buffer.from(JSON.stringify(epochs))) });
    return writeFileAtomic(this.fs, join(this.dir, EPOCH_FILE), Buffer.from(body + '\n'));
  }
}

function isOrdered(entries: readonly EpochEntry[]): boolean {
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (entry.epoch < 0 || entry.startOffset < 0) return false;
    const before = entries[i - 1];
    if (before !== undefined && (entry.epoch <= before.epoch || entry.startOffset < before.startOffset)) return false;
  }
  return true;
}

function assertOrdered(entries: readonly EpochEntry[]): void {
  assert.ok(isOrdered(entries), 'epochs increase and start in offset order');
}
