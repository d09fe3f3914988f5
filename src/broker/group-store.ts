/**
 * The durable state of one queue group: which offsets of each partition are settled.
 *
 * Settlements are appended to a journal (a storage Log, with the topic's durability, so an ack on
 * an `always` topic is fsynced before it is confirmed, and many acks share one group commit).
 * Every GROUP_JOURNAL_RECORDS_PER_SNAPSHOT journal records the whole state is written as a
 * snapshot (atomically) and the journal segments it covers are deleted, so the state never grows
 * with history. Recovery = snapshot + replay of the journal from the snapshot's journal offset;
 * replay is idempotent (settling twice is a no-op), so an overlap is harmless.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Clock } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import type { Logger } from '../platform/logger.js';
import { writeFileAtomic } from '../platform/atomic-write.js';
import { FerryError } from '../protocol/errors.js';
import { Log } from '../storage/log.js';
import type { Durability } from '../storage/types.js';
import { AckSet } from './ack-set.js';
import { GROUP_JOURNAL_RECORDS_PER_SNAPSHOT, GROUP_JOURNAL_SEGMENT_BYTES } from './limits.js';

const SNAPSHOT_FILE = 'state.json';
const JOURNAL_DIR = 'journal';
const SNAPSHOT_VERSION = 1;
const ENTRY_KIND_SETTLE = 1;
const SETTLE_ENTRY_BYTES = 12;

interface GroupSnapshot {
  version: number;
  group: string;
  createdAtMs: number;
  journalOffset: number;
  partitions: Array<{ floor: number; settled: number[] }>;
}

export interface GroupStoreOptions {
  dir: string;
  group: string;
  fs: FileSystem;
  clock: Clock;
  logger: Logger;
  durability: Durability;
  partitions: number;
  /** Floors for a new group (its start position), per partition. */
  initialFloors: () => Promise<number[]>;
}

export class GroupStore {
  private pendingPartitions: number[] = [];
  private pendingOffsets: number[] = [];
  private pendingFlush: Promise<void> | null = null;
  private snapshotting = false;
  private appliedJournalOffset: number;
  private closed = false;

  private constructor(
    private readonly options: GroupStoreOptions,
    private readonly journal: Log,
    readonly acks: AckSet[],
    private snapshotJournalOffset: number,
    readonly createdAtMs: number,
  ) {
    this.appliedJournalOffset = journal.nextOffset;
  }

  static async open(options: GroupStoreOptions): Promise<GroupStore> {
    const { fs, dir } = options;
    await fs.mkdir(dir);
    const snapshotPath = join(dir, SNAPSHOT_FILE);
    let snapshot: GroupSnapshot;
    if ((await fs.stat(snapshotPath)) === null) {
      const floors = await options.initialFloors();
      snapshot = {
        version: SNAPSHOT_VERSION,
        group: options.group,
        createdAtMs: options.clock.nowMs(),
        journalOffset: 0,
        partitions: floors.map((floor) => ({ floor, settled: [] })),
      };
      await writeFileAtomic(fs, snapshotPath, Buffer.from(JSON.stringify(snapshot)));
    } else {
      snapshot = parseSnapshot(await fs.readFile(snapshotPath), snapshotPath);
    }
    const journal = await Log.open({
      dir: join(dir, JOURNAL_DIR),
      fs,
      clock: options.clock,
      logger: options.logger,
      durability: options.durability,
      segmentBytes: GROUP_JOURNAL_SEGMENT_BYTES,
      tailCacheBytes: 0,
    });
    const acks: AckSet[] = [];
    for (let partition = 0; partition < options.partitions; partition++) {
      const saved = snapshot.partitions[partition] ?? { floor: 0, settled: [] };
      acks.push(new AckSet(saved.floor, saved.settled));
    }
    await replayJournal(journal, Math.max(snapshot.journalOffset, journal.startOffset), acks);
    return new GroupStore(options, journal, acks, snapshot.journalOffset, snapshot.createdAtMs);
  }

  /**
   * Records that `offset` of `partition` is settled. Settlements made in the same tick share one
   * journal record; the promise resolves once that record is durable per the topic's mode.
   */
  settle(partition: number, offset: number): Promise<void> {
    if (this.closed) return Promise.reject(new FerryError('LOG_CLOSED', 'group is closed'));
    this.pendingPartitions.push(partition);
    this.pendingOffsets.push(offset);
    if (this.pendingFlush === null) {
      this.pendingFlush = new Promise<void>((resolve) => queueMicrotask(resolve)).then(() => this.flush());
    }
    return this.pendingFlush;
  }

  private async flush(): Promise<void> {
    const partitions = this.pendingPartitions;
    const offsets = this.pendingOffsets;
    this.pendingPartitions = [];
    this.pendingOffsets = [];
    this.pendingFlush = null;
    const value = encodeSettlements(partitions, offsets);
    const { lastOffset } = await this.journal.append([{ value }]);
    // The journal resolves appends in offset order, so everything below this is applied.
    assert.ok(lastOffset + 1 > this.appliedJournalOffset);
    this.appliedJournalOffset = lastOffset + 1;
    for (let i = 0; i < partitions.length; i++) this.acks[partitions[i]!]!.settle(offsets[i]!);
    if (this.journal.nextOffset - this.snapshotJournalOffset >= GROUP_JOURNAL_RECORDS_PER_SNAPSHOT) {
      void this.snapshot().catch((error: unknown) =>
        this.options.logger.error('group.snapshot_failed', { group: this.options.group, error }),
      );
    }
  }

  /** Writes the whole state and drops the journal segments it covers. */
  async snapshot(): Promise<void> {
    if (this.snapshotting || this.closed) return;
    this.snapshotting = true;
    try {
      // `acks` holds exactly the journal records below appliedJournalOffset.
      const journalOffset = this.appliedJournalOffset;
      const snapshot: GroupSnapshot = {
        version: SNAPSHOT_VERSION,
        group: this.options.group,
        createdAtMs: this.createdAtMs,
        journalOffset,
        partitions: this.acks.map((acks) => ({ floor: acks.ackFloor, settled: acks.settledAboveFloor() })),
      };
      await writeFileAtomic(this.options.fs, join(this.options.dir, SNAPSHOT_FILE), Buffer.from(JSON.stringify(snapshot)));
      this.snapshotJournalOffset = journalOffset;
      await this.journal.deleteSegmentsBefore(journalOffset);
    } finally {
      this.snapshotting = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.pendingFlush !== null) await this.pendingFlush.catch(() => undefined);
    this.closed = true;
    await this.journal.close();
  }
}

function encodeSettlements(partitions: number[], offsets: number[]): Buffer {
  const buffer = Buffer.allocUnsafe(1 + 4 + partitions.length * SETTLE_ENTRY_BYTES);
  buffer.writeUInt8(ENTRY_KIND_SETTLE, 0);
  buffer.writeUInt32BE(partitions.length, 1);
  let position = 5;
  for (let i = 0; i < partitions.length; i++) {
    const offset = offsets[i]!;
    buffer.writeUInt32BE(partitions[i]!, position);
    buffer.writeUInt32BE(Math.floor(offset / 0x1_0000_0000), position + 4);
    buffer.writeUInt32BE(offset >>> 0, position + 8);
    position += SETTLE_ENTRY_BYTES;
  }
  return buffer;
}

function applySettlements(value: Buffer, acks: AckSet[]): void {
  assert.equal(value.readUInt8(0), ENTRY_KIND_SETTLE);
  const count = value.readUInt32BE(1);
  assert.equal(value.length, 5 + count * SETTLE_ENTRY_BYTES);
  let position = 5;
  for (let i = 0; i < count; i++) {
    const partition = value.readUInt32BE(position);
    const offset = value.readUInt32BE(position + 4) * 0x1_0000_0000 + value.readUInt32BE(position + 8);
    acks[partition]?.settle(offset);
    position += SETTLE_ENTRY_BYTES;
  }
}

async function replayJournal(journal: Log, fromOffset: number, acks: AckSet[]): Promise<void> {
  let offset = fromOffset;
  while (offset < journal.nextOffset) {
    const records = await journal.read(offset, { recordsMax: 1024 });
    if (records.length === 0) break;
    for (const record of records) applySettlements(record.value, acks);
    offset = records[records.length - 1]!.offset + 1;
  }
}

function parseSnapshot(bytes: Buffer, path: string): GroupSnapshot {
  let parsed: GroupSnapshot;
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as GroupSnapshot;
  } catch (cause) {
    throw new FerryError('STORAGE_FAILED', `group state ${path} is not valid JSON`, { cause });
  }
  if (parsed.version !== SNAPSHOT_VERSION || !Array.isArray(parsed.partitions)) {
    throw new FerryError('STORAGE_FAILED', `group state ${path} has an unknown format`);
  }
  return parsed;
}
