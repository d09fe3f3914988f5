/**
 * Keeps a queue group's state durable in one log, its journal: events (group-journal.ts) with the
 * topic's durability, every event of a tick sharing one record and one group commit, and a snapshot
 * of the whole state (group-snapshots.ts) as its first records and again every
 * GROUP_JOURNAL_RECORDS_PER_SNAPSHOT records, after which the segments below it are deleted.
 * Recovery (and a replica that becomes leader) replays from the newest snapshot; events are applied
 * to `state` only once durable, so the state never shows what a crash could take back.
 */
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import type { TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { mkdirDurable, removeTree } from '../../platform/atomic-write.js';
import { FerryError, isFerryError } from '../../errors.js';
import type { AppendResult, LogOptions, PartitionLog, RecordInput, StorageObserver } from '../../storage/types.js';
import type { WriteBufferPool } from '../../storage/write-buffers.js';
import { AckSet } from './ack-set.js';
import { encodeGroupEvents, GroupEventKind, type GroupEvent } from './group-journal.js';
import { parseSnapshot, replayGroup, snapshotRecords, type GroupReplay } from './group-snapshots.js';
import { GroupState, PartitionGroupState, type GroupSnapshot, type StateTruncation } from './group-state.js';
import { DISPATCHED_FLUSH_DELAY_MS, GROUP_JOURNAL_RECORDS_PER_SNAPSHOT, GROUP_JOURNAL_RETRY_MS, GROUP_JOURNAL_SEGMENT_BYTES } from '../limits.js';
import type { GroupConfig } from '../types.js';

/** The legacy snapshot file of groups written before snapshots moved into the journal. */
export const GROUP_STATE_FILE = 'state.json';
/** The journal's directory inside a group's; a group directory holding neither it nor state.json is an unfinished creation. */
export const GROUP_JOURNAL_DIR = 'journal';

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
  /**
   * The journal is a replica that replication holds open and followers copy (cluster mode): its
   * files are never removed. A journal with no snapshot is then a creation that did not complete
   * (refused: the leadership ended, or too few replicas in sync), left in place; the next creation
   * writes its first snapshot into it.
   */
  keepFiles?: boolean;
  /**
   * Cluster mode: the journal as this broker replayed it while following its leader, to be
   * continued instead of replayed from the start (replayGroup); null when there is none.
   */
  warmReplay?: () => Promise<GroupReplay | null>;
}

/** The journal's log options: where, and how it is stored (the same on every replica). */
export function groupJournalOptions(groupDir: string, options: Pick<GroupStoreOptions, 'fs' | 'clock' | 'logger' | 'durability' | 'observer' | 'writeBuffers'>): LogOptions {
  return {
    dir: join(groupDir, GROUP_JOURNAL_DIR),
    fs: options.fs,
    clock: options.clock,
    logger: options.logger,
    durability: options.durability,
    segmentBytes: GROUP_JOURNAL_SEGMENT_BYTES,
    tailCacheBytes: 0,
    ...(options.observer ? { observer: options.observer } : {}),
    ...(options.writeBuffers ? { writeBuffers: options.writeBuffers } : {}),
  };
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
  /** The next flush writes a snapshot first (due by count, or asked for). */
  private snapshotDue = false;
  private closed = false;
  private appliedJournalOffset: number;
  /** Appends refused for too few replicas in sync are offered again (waitOutRefusals) rather than failed. */
  private retryRefused = false;
  /** Ends the pause between two offers of a refused append at once (stopWaiting). */
  private wakeRetry: (() => void) | null = null;

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
   * directory behind. With `existingOnly`, a directory whose creation never finished (no snapshot
   * anywhere) is removed and null returned instead. With `keepFiles` nothing is removed (above).
   */
  static async open(options: GroupStoreOptions & { existingOnly?: false }): Promise<GroupStore>;
  static async open(options: GroupStoreOptions & { existingOnly: boolean }): Promise<GroupStore | null>;
  static async open(options: GroupStoreOptions & { existingOnly?: boolean }): Promise<GroupStore | null> {
    const { fs, dir } = options;
    const legacyPath = join(dir, GROUP_STATE_FILE);
    const legacy = (await fs.stat(legacyPath)) === null ? null : parseSnapshot(await fs.readFile(legacyPath), legacyPath);
    if (legacy !== null) {
      const found = await GroupStore.openExisting(options, legacy);
      assert.ok(found !== null, 'a legacy snapshot is a base');
      return found;
    }
    const hasJournal = (await fs.stat(join(dir, GROUP_JOURNAL_DIR))) !== null;
    const found = hasJournal ? await GroupStore.openExisting(options, null) : null;
    if (found !== null) return found;
    if (hasJournal || options.existingOnly === true) {
      // No snapshot anywhere: a creation that crashed before its first snapshot was durable.
      if ((await fs.stat(dir)) !== null && options.keepFiles !== true) {
        options.logger.warn('broker.group.incomplete_removed', { group: options.group, dir });
        await removeTree(fs, dir);
        await fs.syncDir(dirname(dir));
      }
      if (options.existingOnly === true) return null;
    }
    const initial = await options.initial();
    try {
      return await GroupStore.create(options, initial);
    } catch (error) {
      if (options.keepFiles !== true) await removeTree(fs, dir).catch(() => undefined);
      throw error;
    }
  }

  /** A new group: its first snapshot is the journal's first record, synced before the group exists. */
  private static async create(options: GroupStoreOptions, initial: { config: GroupConfig; floors: number[] }): Promise<GroupStore> {
    await mkdirDurable(options.fs, options.dir);
    const journal = await options.openLog(groupJournalOptions(options.dir, options));
    try {
      const createdAtMs = options.clock.nowMs();
      const state = new GroupState(initial.floors.map((floor) => new PartitionGroupState(new AckSet(floor), floor)));
      const snapshot = state.toSnapshot({ group: options.group, createdAtMs, config: initial.config, journalOffset: journal.nextOffset });
      const { baseOffset } = await journal.append(snapshotRecords(snapshot));
      await journal.sync();
      return new GroupStore(options, journal, state, initial.config, baseOffset, createdAtMs, true);
    } catch (error) {
      await journal.close().catch(() => undefined);
      throw error;
    }
  }

  private static async openExisting(options: GroupStoreOptions, legacy: GroupSnapshot | null): Promise<GroupStore | null> {
    const journal = await options.openLog(groupJournalOptions(options.dir, options));
    try {
      const warm = legacy === null ? ((await options.warmReplay?.()) ?? null) : null;
      const replayed = await replayGroup(journal, options.partitions, legacy, options.dir, warm);
      if (replayed === null) {
        await journal.close();
        return null;
      }
      const { state, snapshot, snapshotOffset } = replayed;
      const store = new GroupStore(options, journal, state, snapshot.config, snapshotOffset < 0 ? snapshot.journalOffset : snapshotOffset, snapshot.createdAtMs, false);
      if (legacy !== null && snapshotOffset < 0) {
        // Snapshots used to be a file beside the journal: the first one in the journal replaces it
        // (and, when a power loss cut journal records the file covers, new records would otherwise
        // reuse offsets a later replay skips).
        await store.snapshot();
        await options.fs.unlink(join(options.dir, GROUP_STATE_FILE));
        await options.fs.syncDir(options.dir);
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
    const snapshotting = this.snapshotDue;
    if (events.length === 0 && !snapshotting) return;
    this.snapshotDue = false;
    // `state` holds exactly the journal records below appliedJournalOffset, and nothing else is
    // being appended: a snapshot taken now belongs right there.
    assert.equal(this.appliedJournalOffset, this.journal.nextOffset, 'the state covers the whole journal');
    const records = snapshotting ? snapshotRecords(this.snapshotOf(this.appliedJournalOffset)) : [];
    if (events.length > 0) records.push({ value: encodeGroupEvents(events) });
    const appended = this.appendWhenAccepted(records);
    this.appending = appended;
    let baseOffset: number;
    let lastOffset: number;
    try {
      ({ baseOffset, lastOffset } = await appended);
    } finally {
      if (this.appending === appended) this.appending = null;
    }
    // The journal resolves appends in offset order, so everything below this is applied.
    assert.ok(lastOffset + 1 > this.appliedJournalOffset);
    this.appliedJournalOffset = lastOffset + 1;
    for (const event of events) this.state.apply(event);
    if (snapshotting) {
      this.snapshotJournalOffset = baseOffset;
      // The segments wholly below the snapshot hold nothing a replay needs any more.
      this.journal.deleteSegmentsBefore(baseOffset).catch((error: unknown) => this.options.logger.error('group.journal.delete_failed', { group: this.options.group, error }));
    } else if (this.journal.nextOffset - this.snapshotJournalOffset >= GROUP_JOURNAL_RECORDS_PER_SNAPSHOT) {
      this.snapshotDue = true;
      this.scheduleFlush().catch((error: unknown) => this.options.logger.error('group.snapshot_failed', { group: this.options.group, error }));
    }
  }

  /**
   * Appends to the journal. In a cluster a leader whose in-sync set is below minInSync refuses with
   * NOT_ENOUGH_REPLICAS and writes nothing; once waitOutRefusals was called the same records are
   * offered again every GROUP_JOURNAL_RETRY_MS until they are taken, and the events' callers wait.
   * Failing them instead broke an invariant (docs/CLUSTERING.md, "Invariants", 12): a failed ack
   * put its message back for redelivery, and a failed retry record left a redelivery that was
   * scheduled in memory only. It ends when the journal takes them, when it refuses for another
   * reason (the leadership ended: NOT_LEADER), or after stopWaiting (one more offer).
   */
  private async appendWhenAccepted(records: RecordInput[]): Promise<AppendResult> {
    for (let refusals = 0; ; refusals++) {
      try {
        const result = await this.journal.append(records);
        if (refusals > 0) this.options.logger.info('broker.group.journal_accepted', { group: this.options.group, refusals });
        return result;
      } catch (error) {
        if (!this.retryRefused || !isFerryError(error, 'NOT_ENOUGH_REPLICAS')) throw error;
        if (refusals === 0) this.options.logger.warn('broker.group.journal_waiting', { group: this.options.group, error });
        await new Promise<void>((resolve) => {
          const timer = this.options.clock.schedule(GROUP_JOURNAL_RETRY_MS, () => {
            this.wakeRetry = null;
            resolve();
          });
          this.wakeRetry = () => {
            timer.cancel();
            this.wakeRetry = null;
            resolve();
          };
        });
      }
    }
  }

  /** The group serves (opened): from now on a journal append refused for too few replicas in sync waits (appendWhenAccepted). */
  waitOutRefusals(): void {
    if (!this.closed) this.retryRefused = true;
  }

  /** Refused appends are offered once more and then fail (the group is closing). */
  stopWaiting(): void {
    this.retryRefused = false;
    this.wakeRetry?.();
  }

  private snapshotOf(journalOffset: number): GroupSnapshot {
    return this.state.toSnapshot({ group: this.options.group, createdAtMs: this.createdAtMs, config: this.config, journalOffset });
  }

  /**
   * Writes the whole state into the journal and syncs it, whatever the journal's mode: later
   * replays start from it (and the journal segments below it are dropped).
   */
  async snapshot(): Promise<void> {
    if (this.closed) return;
    this.snapshotDue = true;
    await this.scheduleFlush();
    await this.journal.sync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.stopWaiting();
    if (this.pendingDispatched.size > 0) this.scheduleFlush().catch(() => undefined);
    while (this.pendingFlush !== null) await this.pendingFlush.catch(() => undefined);
    this.closed = true;
    await this.journal.close();
  }
}
