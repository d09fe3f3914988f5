/**
 * The durable state of one queue group, as rebuilt from its snapshot and journal: per partition,
 * which offsets are settled, how far delivery has reached, which messages wait for a redelivery
 * (with their delivery counts and due times), and which are on their way to the dead-letter topic.
 * Applying an event twice has the same effect as once, so a journal that overlaps its snapshot
 * replays safely.
 */
import { AckSet } from './ack-set.js';
import { GroupEventKind, type GroupEvent } from './group-journal.js';
import type { GroupConfig } from '../types.js';

export interface RetryEntry {
  deliveries: number;
  dueMs: number;
}

export interface DeadLetterIntent {
  dlqOffsetHint: number;
  reason: string;
}

export class PartitionGroupState {
  /** Offsets below this were delivered at least once. */
  dispatchedEnd: number;
  readonly retries = new Map<number, RetryEntry>();
  readonly intents = new Map<number, DeadLetterIntent>();

  constructor(
    public acks: AckSet,
    dispatchedEnd: number,
  ) {
    this.dispatchedEnd = Math.max(dispatchedEnd, acks.ackFloor);
  }

  /** Deliveries so far of an unsettled offset, as far as the durable state knows. */
  deliveriesOf(offset: number): number {
    const retry = this.retries.get(offset);
    if (retry !== undefined) return retry.deliveries;
    return offset < this.dispatchedEnd ? 1 : 0;
  }

  /** Whether the state says anything about an offset at or past `endOffset`. */
  private referencesFrom(endOffset: number): boolean {
    if (this.acks.ackFloor > endOffset || this.dispatchedEnd > endOffset) return true;
    for (const offset of this.acks.settledAboveFloor()) if (offset >= endOffset) return true;
    for (const offset of this.retries.keys()) if (offset >= endOffset) return true;
    for (const offset of this.intents.keys()) if (offset >= endOffset) return true;
    return false;
  }

  /**
   * Forgets everything about offsets at or past `endOffset` (where the partition's log now ends):
   * settlements, delivery reach, scheduled redeliveries and dead-letter intents. Returns what was
   * dropped, or null when the state was within the log already.
   */
  truncateAt(endOffset: number): StateTruncation | null {
    if (!this.referencesFrom(endOffset)) return null;
    const ackFloorBefore = this.acks.ackFloor;
    const dispatchedEndBefore = this.dispatchedEnd;
    const settledForgotten = this.acks.truncateAt(endOffset);
    this.dispatchedEnd = Math.min(this.dispatchedEnd, endOffset);
    let retriesDropped = 0;
    for (const offset of [...this.retries.keys()]) {
      if (offset < endOffset) continue;
      this.retries.delete(offset);
      retriesDropped += 1;
    }
    let intentsDropped = 0;
    for (const offset of [...this.intents.keys()]) {
      if (offset < endOffset) continue;
      this.intents.delete(offset);
      intentsDropped += 1;
    }
    return {
      endOffset,
      ackFloorBefore,
      dispatchedEndBefore,
      settledForgotten,
      retriesDropped,
      intentsDropped,
    };
  }
}

/** What `truncateAt` dropped from one partition's state. */
export interface StateTruncation {
  endOffset: number;
  ackFloorBefore: number;
  dispatchedEndBefore: number;
  /** Settled offsets at or past the end, counting those below the old floor. */
  settledForgotten: number;
  retriesDropped: number;
  intentsDropped: number;
}

export const GROUP_SNAPSHOT_VERSION = 2;

export interface GroupSnapshot {
  version: number;
  group: string;
  createdAtMs: number;
  config: GroupConfig;
  journalOffset: number;
  redeliveredTotal: number;
  deadLetteredTotal: number;
  partitions: Array<{
    floor: number;
    settled: number[];
    dispatchedEnd: number;
    retries: Array<[offset: number, deliveries: number, dueMs: number]>;
    intents: Array<[offset: number, dlqOffsetHint: number, reason: string]>;
  }>;
}

export class GroupState {
  redeliveredTotal = 0;
  deadLetteredTotal = 0;

  constructor(readonly partitions: PartitionGroupState[]) {}

  static fromSnapshot(snapshot: GroupSnapshot, partitionCount: number): GroupState {
    const partitions: PartitionGroupState[] = [];
    for (let index = 0; index < partitionCount; index++) {
      const saved = snapshot.partitions[index];
      const state = new PartitionGroupState(new AckSet(saved?.floor ?? 0, saved?.settled ?? []), saved?.dispatchedEnd ?? 0);
      for (const [offset, deliveries, dueMs] of saved?.retries ?? []) state.retries.set(offset, { deliveries, dueMs });
      for (const [offset, dlqOffsetHint, reason] of saved?.intents ?? []) state.intents.set(offset, { dlqOffsetHint, reason });
      partitions.push(state);
    }
    const state = new GroupState(partitions);
    state.redeliveredTotal = snapshot.redeliveredTotal ?? 0;
    state.deadLetteredTotal = snapshot.deadLetteredTotal ?? 0;
    return state;
  }

  toSnapshot(base: Pick<GroupSnapshot, 'group' | 'createdAtMs' | 'config' | 'journalOffset'>): GroupSnapshot {
    return {
      version: GROUP_SNAPSHOT_VERSION,
      ...base,
      redeliveredTotal: this.redeliveredTotal,
      deadLetteredTotal: this.deadLetteredTotal,
      partitions: this.partitions.map((partition) => ({
        floor: partition.acks.ackFloor,
        settled: partition.acks.settledAboveFloor(),
        dispatchedEnd: partition.dispatchedEnd,
        retries: [...partition.retries].map(([offset, retry]) => [offset, retry.deliveries, retry.dueMs]),
        intents: [...partition.intents].map(([offset, intent]) => [offset, intent.dlqOffsetHint, intent.reason]),
      })),
    };
  }

  apply(event: GroupEvent): void {
    const partition = this.partitions[event.partition];
    if (partition === undefined) return;
    switch (event.kind) {
      case GroupEventKind.settle:
        partition.acks.settle(event.offset);
        partition.retries.delete(event.offset);
        if (partition.intents.delete(event.offset)) this.deadLetteredTotal += 1;
        break;
      case GroupEventKind.dispatched:
        if (event.endOffset > partition.dispatchedEnd) partition.dispatchedEnd = event.endOffset;
        break;
      case GroupEventKind.retry:
        if (partition.acks.isSettled(event.offset)) break;
        // Counted once per (offset, deliveries), so replaying an overlap does not count twice.
        if (partition.retries.get(event.offset)?.deliveries !== event.deliveries) this.redeliveredTotal += 1;
        partition.retries.set(event.offset, { deliveries: event.deliveries, dueMs: event.dueMs });
        break;
      case GroupEventKind.deadLetterIntent:
        if (partition.acks.isSettled(event.offset)) break;
        partition.retries.delete(event.offset);
        partition.intents.set(event.offset, { dlqOffsetHint: event.dlqOffsetHint, reason: event.reason });
        break;
      case GroupEventKind.reset:
        partition.acks = new AckSet(event.floor);
        partition.dispatchedEnd = event.floor;
        partition.retries.clear();
        partition.intents.clear();
        break;
    }
  }
}
