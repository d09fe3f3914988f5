/**
 * Keeps a queue group's state durable: a journal of events (group-journal.ts) in a storage Log
 * with the topic's durability — so an ack on an `always` topic is fsynced before it is confirmed,
 * and every event of a tick (of every tick while the previous record is being written) shares one
 * record and one group commit — plus a snapshot written
 * atomically every GROUP_JOURNAL_RECORDS_PER_SNAPSHOT records, after which the journal segments it
 * covers are deleted, so the state never grows with history.
 *
 * Recovery = snapshot + replay of the journal from the snapshot's journal offset. Events are
 * applied to `state` only once durable, so the state never shows what a crash could take back.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { mkdirDurable, removeTree, writeFileAtomic } from '../../platform/atomic-write.js';
import { FerryError } from '../../errors.js';
import type { LogOptions, PartitionLog, StorageObserver } from '../../storage/types.js';
import type { WriteBufferPool } from '../../storage/write-buffers.js';
import { AckSet } from './ack-set.js';
import { decodeGroupEvents, encodeGroupEvents, GroupEventKind, type GroupEvent } from './group-journal.js';
import { GROUP_SNAPSHOT_VERSION, GroupState, PartitionGroupState, type GroupSnapshot, type StateTruncation } from './group-state.js';
import { DISPATCHED_FLUSH_DELAY_MS, GROUP_JOURNAL_RECORDS_PER_SNAPSHOT, GROUP_JOURNAL_SEGMENT_BYTES } from '../limits.js';
import type { GroupConfig } from '../types.js';

/** The group's snapshot; a group directory without it is a creation that never finished. */
export const GROUP_STATE_FILE = 'state.json';
const SNAPSHOT_FILE = GROUP_STATE_FILE;
const JOURNAL_DIR = 'journal';
/** Journal records replayed per read during recovery. */
const REPLAY_READ_RECORDS = 1024;

/** Where the group's state lives and how its journal is kept (the topic's durability), then its own. */
export interface GroupStoreOptions extends Pick<LogOptions, 'dir' | 'fs' | 'clock' | 'durability'> {
  group: string;
  logger: Logger;
  partitions: number;
  observer?: StorageObserver | null;
  /** The broker's encode buffers (storage/write-buffers.ts); by default the journal keeps its own. */
  writeBuffers?: WriteBufferPool;
  /** Opens the journal (the topic's log factory). */
  openLog: (options: LogOptions) => Promise<PartitionLog>;
  /** For a new group: its configuration and start floors, per partition. */
  initial: () => Promise<{ config: GroupConfig; floors: number[] }>;
}

export class GroupStore {
  private pending: GroupEvent[] = [];
  private pendingFlush: Promise<void> | null = null;
  /**
   * The journal append in flight, if any. The next flush starts once it has settled, so the events
   * of every tick meanwhile share one record: under a stream of acks the journal writes and syncs
   * once per sync it can do, not once per tick of acks.
   */
  private appending: Promise<unknown> | null = null;
  /** Highest dispatched end queued per partition in the pending batch (merged into one event). */
  private readonly pendingDispatched = new Map<number, number>();
  /** Writes queued delivery counts that no record of acks took along within DISPATCHED_FLUSH_DELAY_MS. */
  private dispatchedTimer: TimerHandle | null = null;
  private snapshotting = false;
  private closed = false;
  private appliedJournalOffset: number;

  private constructor(
    private readonly options: GroupStoreOptions,
    private readonly journal: PartitionLog,
    readonly state: GroupState,
    readonly config: GroupConfig,
    private snapshotJournalOffset: number,
    readonly createdAtMs: number,
    /** The group was created by this open (its state cannot predate the partition logs' recovery). */
    readonly createdNow: boolean,
  ) {
    this.appliedJournalOffset = journal.nextOffset;
  }

  /**
   * Opens the group's state, creating it when new. A new group's configuration (the names derived
   * for it included) is settled before anything is created, and a creation that fails leaves no
   * directory behind.
   */
  static async open(options: GroupStoreOptions): Promise<GroupStore> {
    const { fs, dir } = options;
    const createdNow = (await fs.stat(join(dir, SNAPSHOT_FILE))) === null;
    const initial = createdNow ? await options.initial() : null;
    try {
      return await GroupStore.openIn(options, initial);
    } catch (error) {
      if (createdNow) await removeTree(fs, dir).catch(() => undefined);
      throw error;
    }
  }

  private static async openIn(options: GroupStoreOptions, initial: { config: GroupConfig; floors: number[] } | null): Promise<GroupStore> {
    const { fs, dir } = options;
    const createdNow = initial !== null;
    await mkdirDurable(fs, dir);
    const snapshotPath = join(dir, SNAPSHOT_FILE);
    let snapshot: GroupSnapshot;
    if (initial !== null) {
      const { config, floors } = initial;
      snapshot = new GroupState(floors.map((floor) => new PartitionGroupState(new AckSet(floor), floor))).toSnapshot({
        group: options.group,
        createdAtMs: options.clock.nowMs(),
        config,
        journalOffset: 0,
      });
      await writeFileAtomic(fs, snapshotPath, Buffer.from(JSON.stringify(snapshot)));
    } else {
      snapshot = parseSnapshot(await fs.readFile(snapshotPath), snapshotPath);
    }
    const journal = await options.openLog({
      dir: join(dir, JOURNAL_DIR),
      fs,
      clock: options.clock,
      logger: options.logger,
      durability: options.durability,
      segmentBytes: GROUP_JOURNAL_SEGMENT_BYTES,
      tailCacheBytes: 0,
      ...(options.observer ? { observer: options.observer } : {}),
      ...(options.writeBuffers ? { writeBuffers: options.writeBuffers } : {}),
    });
    try {
      const state = GroupState.fromSnapshot(snapshot, options.partitions);
      await replayJournal(journal, Math.max(snapshot.journalOffset, journal.startOffset), state);
      const store = new GroupStore(options, journal, state, snapshot.config, snapshot.journalOffset, snapshot.createdAtMs, createdNow);
      if (journal.nextOffset < snapshot.journalOffset) {
        // A power loss cut journal records the (synced) snapshot already covers. New records would
        // reuse their offsets and be skipped by the next replay, which starts at the snapshot's
        // offset: move the snapshot to where the journal now ends before anything is appended.
        options.logger.warn('broker.group.journal_behind_snapshot', {
          group: options.group,
          dir,
          journalEndOffset: journal.nextOffset,
          snapshotJournalOffset: snapshot.journalOffset,
        });
        await store.snapshot();
      }
      return store;
    } catch (error) {
      await journal.close().catch(() => undefined);
      throw error;
    }
  }

  /**
   * A power loss in `interval`/`never` mode can keep the group's journal (synced on its own) while a
   * partition loses its unsynced tail: the state then settles, retries or dead-letters offsets the
   * log no longer has, and new messages would get those offsets — taken as settled, never delivered.
   * The state is cut back to where each log ended when it was opened (its end now can be further:
   * the delay store and other groups' dead-letter recovery append before groups open), and persisted.
   * A group created by this open took its start from the logs as they are: nothing to cut.
   */
  async cutToLogs(logs: readonly PartitionLog[], topic: string): Promise<void> {
    if (this.createdNow) return;
    const truncations = await this.truncateToLogEnds(logs.map((log) => log.recovery.nextOffset));
    truncations.forEach((truncation, partition) => {
      if (truncation === null) return;
      const durability = logs[partition]!.durability;
      const fields = {
        topic,
        group: this.options.group,
        partition,
        durability,
        logEndOffset: truncation.endOffset,
        ackFloorBefore: truncation.ackFloorBefore,
        dispatchedEndBefore: truncation.dispatchedEndBefore,
        settledForgotten: truncation.settledForgotten,
        retriesDropped: truncation.retriesDropped,
        intentsDropped: truncation.intentsDropped,
      };
      // `interval`/`never`: the documented price of a power loss. `always`: nothing is delivered or
      // acked before it is synced, so state past the end means the log lost synced data — except a
      // start position taken at the unsynced end (a group created or reset at 'latest' while an
      // append awaited its fdatasync), which the state cannot tell apart.
      if (durability === 'always') this.options.logger.error('broker.group.state_ahead_of_log', fields);
      else this.options.logger.warn('broker.group.state_ahead_of_log', fields);
    });
  }

  /**
   * Cuts the state back to where the partition logs end (`endOffsets`, per partition): in
   * `interval`/`never` mode a power loss can keep journal records about offsets whose records the
   * partition lost, and those offsets go to new messages. When anything was cut the whole state is
   * written as a snapshot (atomic and synced), so no later replay brings the cut state back: a
   * journal record would be only as durable as the journal's own mode. Call before any event is
   * recorded.
   */
  async truncateToLogEnds(endOffsets: readonly number[]): Promise<Array<StateTruncation | null>> {
    assert.equal(endOffsets.length, this.state.partitions.length);
    assert.equal(this.pending.length, 0);
    assert.equal(this.pendingDispatched.size, 0);
    const truncations = this.state.partitions.map((partition, index) => partition.truncateAt(endOffsets[index]!));
    if (truncations.some((truncation) => truncation !== null)) await this.snapshot();
    return truncations;
  }

  settle(partition: number, offset: number): Promise<void> {
    return this.record({ kind: GroupEventKind.settle, partition, offset });
  }

  /**
   * Notes that delivery reached `endOffset`; merged per partition, never awaited. It rides in the
   * next journal record of other events (acks), or is written on its own after
   * DISPATCHED_FLUSH_DELAY_MS, so that deliveries alone do not cost a sync per tick.
   */
  dispatched(partition: number, endOffset: number): void {
    if (this.closed) return;
    const queued = this.pendingDispatched.get(partition);
    if (queued !== undefined && queued >= endOffset) return;
    if (this.state.partitions[partition]!.dispatchedEnd >= endOffset) return;
    this.pendingDispatched.set(partition, endOffset);
    if (this.dispatchedTimer === null && this.pendingFlush === null) {
      this.dispatchedTimer = this.options.clock.schedule(DISPATCHED_FLUSH_DELAY_MS, () => {
        this.dispatchedTimer = null;
        this.scheduleFlush().catch(() => undefined);
      });
    }
  }

  /**
   * Journals an event. Events of the same tick share one journal record; the promise resolves
   * once that record is durable per the topic's mode and the event is applied to `state`.
   */
  record(event: GroupEvent): Promise<void> {
    if (this.closed) return Promise.reject(new FerryError('LOG_CLOSED', 'group is closed'));
    this.pending.push(event);
    return this.scheduleFlush();
  }

  private scheduleFlush(): Promise<void> {
    if (this.pendingFlush === null) {
      const after = this.appending ?? new Promise<void>((resolve) => queueMicrotask(resolve));
      const flush = (): Promise<void> => this.flush();
      this.pendingFlush = after.then(flush, flush);
    }
    return this.pendingFlush;
  }

  private async flush(): Promise<void> {
    this.dispatchedTimer?.cancel();
    this.dispatchedTimer = null;
    const events = this.pending;
    for (const [partition, endOffset] of this.pendingDispatched) events.push({ kind: GroupEventKind.dispatched, partition, endOffset });
    this.pending = [];
    this.pendingDispatched.clear();
    this.pendingFlush = null;
    if (events.length === 0) return;
    const appended = this.journal.append([{ value: encodeGroupEvents(events) }]);
    this.appending = appended;
    let lastOffset: number;
    try {
      ({ lastOffset } = await appended);
    } finally {
      if (this.appending === appended) this.appending = null;
    }
    // The journal resolves appends in offset order, so everything below this is applied.
    assert.ok(lastOffset + 1 > this.appliedJournalOffset);
    this.appliedJournalOffset = lastOffset + 1;
    for (const event of events) this.state.apply(event);
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
      // `state` holds exactly the journal records below appliedJournalOffset.
      const journalOffset = this.appliedJournalOffset;
      const snapshot = this.state.toSnapshot({
        group: this.options.group,
        createdAtMs: this.createdAtMs,
        config: this.config,
        journalOffset,
      });
      await writeFileAtomic(this.options.fs, join(this.options.dir, SNAPSHOT_FILE), Buffer.from(JSON.stringify(snapshot)));
      this.snapshotJournalOffset = journalOffset;
      await this.journal.deleteSegmentsBefore(journalOffset);
    } finally {
      this.snapshotting = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.pendingDispatched.size > 0) this.scheduleFlush().catch(() => undefined);
    while (this.pendingFlush !== null) await this.pendingFlush.catch(() => undefined);
    this.closed = true;
    await this.journal.close();
  }
}

async function replayJournal(journal: PartitionLog, fromOffset: number, state: GroupState): Promise<void> {
  let offset = fromOffset;
  while (offset < journal.nextOffset) {
    const records = await journal.read(offset, { recordsMax: REPLAY_READ_RECORDS });
    if (records.length === 0) break;
    for (const record of records) for (const event of decodeGroupEvents(record.value)) state.apply(event);
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
  if (parsed.version !== GROUP_SNAPSHOT_VERSION || !Array.isArray(parsed.partitions) || typeof parsed.config !== 'object') {
    throw new FerryError('STORAGE_FAILED', `group state ${path} has an unknown format (version ${String(parsed.version)})`);
  }
  return parsed;
}
