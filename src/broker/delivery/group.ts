/**
 * A queue group on one topic: subscribers compete for messages, each message goes to one of them,
 * and the group remembers durably (GroupStore) which messages are settled.
 *
 * Dispatch is push with credit: a subscriber receives a message only while it has credit (one
 * credit per delivery). A delivery not acked within ackTimeoutMs, or nacked, waits for its backoff
 * and is delivered again, to any subscriber; after deliveriesMax deliveries (or on reject) it moves
 * to the dead-letter topic (dead-letter.ts). Messages waiting for redelivery go before new ones.
 */
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { FerryError, type ErrorCode } from '../../errors.js';
import type { PartitionLog } from '../../storage/types.js';
import type { LogRecord } from '../../storage/types.js';
import { backoffDelayMs } from './backoff.js';
import { DeadLetterer, type DeadLetterTarget } from './dead-letter.js';
import { GroupEventKind } from './group-journal.js';
import type { GroupStore } from './group-store.js';
import { GroupPartition, type InFlight } from './group-partition.js';
import { GroupSubscription, type SubscriptionOwner } from './group-subscription.js';
import { PartitionReader } from './partition-reader.js';
import { DISPATCH_READ_RECORDS_MAX, HELD_RECORD_BYTES_MAX } from '../limits.js';
import type { Delivery, DeliverySink, GroupConfig, GroupInfo } from '../types.js';

/** Acks of one tick: they wait for one journal record (`stored`) and settle together (`done`). */
interface SettleBatch {
  readonly stored: Promise<void>;
  readonly done: Promise<void>;
  readonly settlements: Array<{ partition: GroupPartition; offset: number; deliveries: number }>;
}

export interface GroupDeps {
  topic: string;
  name: string;
  logs: PartitionLog[];
  store: GroupStore;
  clock: Clock;
  logger: Logger;
  random: () => number;
  allocateSubscriptionId: () => number;
  deadLetters: DeadLetterTarget;
}

export class Group implements SubscriptionOwner {
  readonly topic: string;
  readonly name: string;
  readonly config: GroupConfig;
  private readonly subscriptions: GroupSubscription[] = [];
  private readonly partitions: GroupPartition[];
  private readonly deadLetterer: DeadLetterer;
  private nextSubscriberIndex = 0;
  private nextPartitionIndex = 0;
  private pumping = false;
  /** Set by `nextRecord` with the record it returns: that record's deliveries so far. */
  private nextDeliveriesBefore = 0;
  private closed = false;
  /** Set by quiesce(): no new deliveries, settles still taken. */
  private quiescing = false;
  private ackTimer: TimerHandle | null = null;
  /** Bytes of records held for waiting redeliveries, against HELD_RECORD_BYTES_MAX. */
  private heldBytes = 0;
  /** While a reset is being made durable, nothing is delivered (the old state would skip records). */
  private resetting = false;
  /** Settlements waiting for the journal record of their tick. */
  private settleBatch: SettleBatch | null = null;

  private constructor(private readonly deps: GroupDeps) {
    this.topic = deps.topic;
    this.name = deps.name;
    this.config = deps.store.config;
    this.partitions = deps.logs.map((log, index) => {
      const floor = Math.max(deps.store.state.partitions[index]!.acks.ackFloor, log.startOffset);
      const reader = new PartitionReader(log, floor, () => this.pump(), deps.logger, { topic: deps.topic, group: deps.name, partition: index });
      return new GroupPartition(index, log, reader);
    });
    this.deadLetterer = new DeadLetterer({
      topic: deps.topic,
      group: deps.name,
      deadLetterTopic: this.config.deadLetterTopic,
      logs: deps.logs,
      store: deps.store,
      clock: deps.clock,
      logger: deps.logger,
      target: deps.deadLetters,
      onSettled: () => this.pump(),
    });
  }

  /**
   * Opens the group over its recovered store: cuts state the partition logs no longer back,
   * schedules pending redeliveries, finishes dead-lettering.
   */
  static async open(deps: GroupDeps): Promise<Group> {
    await deps.store.cutToLogs(deps.logs, deps.topic);
    const group = new Group(deps);
    const nowMs = deps.clock.nowMs();
    deps.store.state.partitions.forEach((state, index) => {
      const partition = group.partitions[index]!;
      for (const [offset, retry] of state.retries) group.scheduleRedelivery(partition, offset, retry.deliveries, retry.dueMs - nowMs, null);
    });
    await group.deadLetterer.recover();
    deps.store.waitOutRefusals();
    return group;
  }

  get subscriberCount(): number {
    return this.subscriptions.length;
  }

  describe(): GroupInfo {
    const state = this.deps.store.state;
    let inFlight = 0;
    let pendingRedelivery = 0;
    let pending = 0;
    let oldestDeliveredAtMs = Infinity;
    const partitions = this.partitions.map((partition) => {
      inFlight += partition.inFlight.size;
      pendingRedelivery += partition.waiting.size;
      for (const entry of partition.inFlight.values()) oldestDeliveredAtMs = Math.min(oldestDeliveredAtMs, entry.deliveredAtMs);
      const acks = state.partitions[partition.index]!.acks;
      const lag = Math.max(0, partition.log.nextOffset - Math.max(acks.ackFloor, partition.log.startOffset) - acks.settledAboveCount);
      pending += lag;
      return { partition: partition.index, ackFloor: acks.ackFloor, lag };
    });
    return {
      topic: this.topic,
      name: this.name,
      config: this.config,
      subscribers: this.subscriptions.length,
      inFlight,
      pendingRedelivery,
      pending,
      redeliveredTotal: state.redeliveredTotal,
      deadLetteredTotal: state.deadLetteredTotal,
      oldestUnackedAgeMs: oldestDeliveredAtMs === Infinity ? 0 : Math.max(0, this.deps.clock.monotonicMs() - oldestDeliveredAtMs),
      partitions,
    };
  }

  subscribe(sink: DeliverySink, credit: number): GroupSubscription {
    if (this.closed) throw new FerryError('BROKER_CLOSING', 'group is closing');
    const subscription = new GroupSubscription(this.deps.allocateSubscriptionId(), this, sink, credit);
    this.subscriptions.push(subscription);
    queueMicrotask(() => this.pump());
    return subscription;
  }

  ackFloor(partition: number): number {
    return this.deps.store.state.partitions[partition]!.acks.ackFloor;
  }

  isSettled(partition: number, offset: number): boolean {
    return this.deps.store.state.partitions[partition]!.acks.isSettled(offset);
  }

  /** Settles an offset without a delivery (used by redrive on its internal group). */
  settleDirect(partition: number, offset: number): Promise<void> {
    return this.deps.store.settle(partition, offset);
  }

  /** The log of a partition advanced: there may be new messages. */
  onLogAdvance(): void {
    this.pump();
  }

  /**
   * Stops new deliveries while acks, nacks and rejects of those in flight are still taken (a
   * controlled handover lets consumers settle what they hold before leadership moves).
   */
  quiesce(): void {
    this.quiescing = true;
  }

  /** Deliveries handed out and not yet settled, over all partitions. */
  get inFlightCount(): number {
    let count = 0;
    for (const partition of this.partitions) count += partition.inFlight.size;
    return count;
  }

  pump(): void {
    if (this.pumping || this.closed || this.resetting || this.quiescing) return;
    this.pumping = true;
    // One clock reading per pump for all its deliveries (~100 ns saved each): a run is synchronous,
    // so a late delivery's ack deadline is early by at most the run's length, never late.
    const nowMs = this.deps.clock.monotonicMs();
    try {
      for (;;) {
        const index = this.nextSubscriberIndexReady();
        if (index === -1) break;
        if (!this.deliverOne(this.subscriptions[index]!, nowMs)) {
          this.requestRecords();
          break;
        }
        // The turn passes only with a delivery: else a trickle of messages skips one subscriber every time.
        this.nextSubscriberIndex = (index + 1) % Math.max(1, this.subscriptions.length);
      }
    } finally {
      this.pumping = false;
    }
  }

  /** The index of the next subscriber with credit and a writable sink, or -1. */
  private nextSubscriberIndexReady(): number {
    const count = this.subscriptions.length;
    for (let i = 0; i < count; i++) {
      const index = (this.nextSubscriberIndex + i) % count;
      const subscription = this.subscriptions[index]!;
      if (subscription.credit > 0 && subscription.sink.writable()) return index;
    }
    return -1;
  }

  /** Delivers the next available message to `subscription`; false when none is ready. */
  private deliverOne(subscription: GroupSubscription, nowMs: number): boolean {
    const count = this.partitions.length;
    for (let i = 0; i < count; i++) {
      const partition = this.partitions[(this.nextPartitionIndex + i) % count]!;
      const record = this.nextRecord(partition);
      if (record === undefined) continue;
      this.nextPartitionIndex = (partition.index + 1) % count;
      const deliveryCount = this.nextDeliveriesBefore + 1;
      partition.inFlight.set(record.offset, { subscription, deliveryCount, deadlineMs: nowMs + this.config.ackTimeoutMs, deliveredAtMs: nowMs, record });
      this.armAckTimer();
      subscription.credit -= 1;
      subscription.inFlight += 1;
      const delivery: Delivery = {
        topic: this.topic,
        partition: partition.index,
        offset: record.offset,
        timestampMs: record.timestampMs,
        key: record.key,
        headers: record.headers,
        value: record.value,
        deliveryCount,
      };
      subscription.sink.deliver(delivery);
      return true;
    }
    return false;
  }

  /**
   * The next record to deliver from `partition`, or undefined; sets `nextDeliveriesBefore` to how
   * often it was delivered before (a field rather than a returned pair: one object less per delivery).
   */
  private nextRecord(partition: GroupPartition): LogRecord | undefined {
    const state = this.deps.store.state.partitions[partition.index]!;
    // Redeliveries first, in the order they fell due.
    while (partition.dueHead < partition.due.length) {
      const offset = partition.due[partition.dueHead]!;
      const waiting = partition.waiting.get(offset);
      if (waiting === undefined || state.acks.isSettled(offset) || partition.retryTimers.has(offset)) {
        partition.dueHead += 1;
        continue;
      }
      if (waiting.record === null) {
        this.fetchDue(partition);
        break;
      }
      partition.dueHead += 1;
      this.forgetWaiting(partition, offset);
      this.nextDeliveriesBefore = waiting.deliveries;
      return waiting.record;
    }
    if (partition.dueHead > 0 && partition.dueHead * 2 >= partition.due.length) {
      partition.due = partition.due.slice(partition.dueHead);
      partition.dueHead = 0;
    }
    for (;;) {
      const record = partition.reader.takeHighestPriority();
      if (record === undefined) return undefined;
      const offset = record.offset;
      if (state.acks.isSettled(offset) || partition.inFlight.has(offset) || partition.waiting.has(offset) || partition.settling.has(offset)) continue;
      if (this.deadLetterer.isMoving(partition.index, offset)) continue;
      this.deps.store.dispatched(partition.index, offset + 1);
      this.nextDeliveriesBefore = state.deliveriesOf(offset);
      return record;
    }
  }

  private requestRecords(): void {
    let demand = 0;
    for (const subscription of this.subscriptions) demand += subscription.credit;
    if (demand === 0) return;
    for (const partition of this.partitions) partition.reader.request(demand);
  }

  /** Reads the records of due redeliveries that are not held in memory (after a restart, or past the bound). */
  private fetchDue(partition: GroupPartition): void {
    if (partition.fetchingDue) return;
    const missing: number[] = [];
    for (let index = partition.dueHead; index < partition.due.length && missing.length < DISPATCH_READ_RECORDS_MAX; index++) {
      const offset = partition.due[index]!;
      if (partition.waiting.get(offset)?.record === null) missing.push(offset);
    }
    if (missing.length === 0) return;
    partition.fetchingDue = true;
    void this.readOffsets(partition, missing.sort((a, b) => a - b)).finally(() => {
      partition.fetchingDue = false;
      this.pump();
    });
  }

  /** Reads sorted offsets in runs (one read per run of close offsets) into their waiting entries. */
  private async readOffsets(partition: GroupPartition, offsets: number[]): Promise<void> {
    /** Offsets this close together are read in one go rather than one by one. */
    const RUN_GAP_MAX = 64;
    let start = 0;
    while (start < offsets.length) {
      let end = start;
      while (end + 1 < offsets.length && offsets[end + 1]! - offsets[end]! <= RUN_GAP_MAX) end++;
      const first = offsets[start]!;
      const last = offsets[end]!;
      try {
        const records = await partition.log.read(first, { recordsMax: last - first + 1 });
        for (const record of records) {
          const waiting = partition.waiting.get(record.offset);
          if (waiting !== undefined && waiting.record === null) waiting.record = copyRecord(record);
        }
        // Offsets the log no longer has (cut by a crash in `interval`/`never` mode, or retention):
        // nothing to redeliver; forgetting them keeps fetchDue from asking again forever.
        for (let index = start; index <= end; index++) {
          const offset = offsets[index]!;
          if (partition.waiting.get(offset)?.record === null) this.forgetWaiting(partition, offset);
        }
      } catch (error) {
        this.deps.logger.error('broker.group.redelivery_read_failed', { topic: this.topic, group: this.name, from: first, to: last, error });
        // Unreadable (deleted by retention or damaged): nothing left to redeliver.
        for (let index = start; index <= end; index++) {
          const offset = offsets[index]!;
          if (partition.waiting.get(offset)?.record === null) this.forgetWaiting(partition, offset);
        }
      }
      start = end + 1;
    }
  }

  // --- Ack timeouts ---

  private armAckTimer(): void {
    if (this.ackTimer !== null || this.closed) return;
    let earliestMs = Infinity;
    for (const partition of this.partitions) {
      const first = partition.inFlight.values().next();
      if (!first.done) earliestMs = Math.min(earliestMs, first.value.deadlineMs);
    }
    if (earliestMs === Infinity) return;
    this.ackTimer = this.deps.clock.schedule(earliestMs - this.deps.clock.monotonicMs(), () => {
      this.ackTimer = null;
      this.expireDeliveries();
      this.armAckTimer();
    });
  }

  private expireDeliveries(): void {
    const nowMs = this.deps.clock.monotonicMs();
    for (const partition of this.partitions) {
      for (const [offset, entry] of partition.inFlight) {
        if (entry.deadlineMs > nowMs) break;
        partition.inFlight.delete(offset);
        entry.subscription.inFlight -= 1;
        this.deps.logger.debug('broker.group.ack_timeout', { topic: this.topic, group: this.name, partition: partition.index, offset });
        void this.fail(partition, entry, 'ack timeout').catch((error: unknown) =>
          this.deps.logger.error('broker.group.redelivery_failed', { topic: this.topic, group: this.name, offset, error }),
        );
      }
    }
  }

  // --- Settling, redelivery, dead letters ---

  /**
   * ack: settles an offset. A delivery in flight is settled only by the subscription holding it
   * (UNKNOWN_DELIVERY otherwise, as nack, reject and touch); a late ack of one waiting for its
   * redelivery, or of one a restart or failover left undelivered, is taken from any subscriber.
   */
  settle(subscription: GroupSubscription, partitionIndex: number, offset: number): Promise<void> {
    const partition = this.partitionAt(partitionIndex);
    const state = this.deps.store.state.partitions[partitionIndex]!;
    const entry = partition.inFlight.get(offset);
    let deliveries = state.deliveriesOf(offset);
    if (entry !== undefined && entry.subscription !== subscription) {
      return Promise.reject(new FerryError('UNKNOWN_DELIVERY', `offset ${offset} of partition ${partitionIndex} is in flight on another subscription`));
    }
    if (entry !== undefined) {
      partition.inFlight.delete(offset);
      entry.subscription.inFlight -= 1;
      deliveries = entry.deliveryCount;
    } else if (partition.waiting.has(offset)) {
      // A late ack of a message waiting for redelivery (its delivery timed out): settle it all the same.
      deliveries = partition.waiting.get(offset)!.deliveries;
      this.forgetWaiting(partition, offset);
    } else if (state.acks.isSettled(offset)) {
      return Promise.resolve();
    } else if (offset >= partition.reader.position) {
      return Promise.reject(new FerryError('UNKNOWN_DELIVERY', `offset ${offset} of partition ${partitionIndex} was not delivered to this group`));
    }
    // Until the settlement is durable (and so in the state), the reader must not hand it out again:
    // after a restart a redelivered offset can be ahead of the reader.
    partition.settling.add(offset);
    const stored = this.deps.store.settle(partitionIndex, offset);
    let batch = this.settleBatch;
    if (batch === null || batch.stored !== stored) {
      batch = this.startSettleBatch(stored);
      this.settleBatch = batch;
    }
    // Not the record: a settlement waits for its journal record to commit (in a cluster, on the
    // followers too), and a record's bytes are a view of the read that fetched it, so holding it
    // here would keep every read buffer of the last commit's worth of acks alive. The failure
    // path reads it again.
    batch.settlements.push({ partition, offset, deliveries });
    return batch.done;
  }

  /**
   * The settlements of one tick share one journal record (group-store.ts) and so one promise: one
   * reaction finishes them all (hot path: an ack per message), and every ack of the tick gets the
   * same promise back.
   */
  private startSettleBatch(stored: Promise<void>): SettleBatch {
    const settlements: SettleBatch['settlements'] = [];
    const done = stored.then(
      () => {
        for (const { partition, offset } of settlements) partition.settling.delete(offset);
      },
      (error: unknown) => {
        for (const { partition, offset, deliveries } of settlements) {
          partition.settling.delete(offset);
          // The ack did not become durable (e.g. disk full): the message is delivered again, after
          // its backoff (not at once: a full disk would otherwise make a redelivery storm).
          if (!this.deps.store.state.partitions[partition.index]!.acks.isSettled(offset) && !this.closed) {
            this.scheduleRedelivery(partition, offset, deliveries, backoffDelayMs(this.config.backoffMs, deliveries, this.deps.random), null);
          }
        }
        throw error;
      },
    );
    return { stored, done, settlements };
  }

  /** nack: the message goes back for redelivery after its backoff (or `delayMs`). */
  release(subscription: GroupSubscription, partitionIndex: number, offset: number, delayMs?: number): Promise<void> {
    const partition = this.partitionAt(partitionIndex);
    const entry = this.takeInFlight(subscription, partition, offset);
    return this.fail(partition, entry, 'nack', delayMs);
  }

  reject(subscription: GroupSubscription, partitionIndex: number, offset: number, reason: string): Promise<void> {
    const partition = this.partitionAt(partitionIndex);
    const entry = this.takeInFlight(subscription, partition, offset);
    return this.deadLetterer.move(partition.index, offset, entry.deliveryCount, reason);
  }

  touch(subscription: GroupSubscription, partitionIndex: number, offset: number): void {
    const partition = this.partitionAt(partitionIndex);
    const entry = this.takeInFlight(subscription, partition, offset);
    // Re-inserted at the end: its new deadline is the latest, which keeps the map in deadline order.
    entry.deadlineMs = this.deps.clock.monotonicMs() + this.config.ackTimeoutMs;
    partition.inFlight.set(offset, entry);
    subscription.inFlight += 1;
  }

  private takeInFlight(subscription: GroupSubscription, partition: GroupPartition, offset: number): InFlight {
    const entry = partition.inFlight.get(offset);
    if (entry === undefined || entry.subscription !== subscription) {
      throw new FerryError('UNKNOWN_DELIVERY', `offset ${offset} of partition ${partition.index} is not in flight on this subscription`);
    }
    partition.inFlight.delete(offset);
    subscription.inFlight -= 1;
    return entry;
  }

  /** A delivery failed (nack or ack timeout): schedule its redelivery, or dead-letter it. */
  private async fail(partition: GroupPartition, entry: InFlight, reason: string, delayMs?: number): Promise<void> {
    const offset = entry.record.offset;
    const deliveries = entry.deliveryCount;
    if (deliveries >= this.config.deliveriesMax) {
      await this.deadLetterer.move(partition.index, offset, deliveries, `${reason} after ${deliveries} deliveries`);
      return;
    }
    const delay = delayMs ?? backoffDelayMs(this.config.backoffMs, deliveries, this.deps.random);
    const dueMs = this.deps.clock.nowMs() + delay;
    this.scheduleRedelivery(partition, offset, deliveries, delay, entry.record);
    await this.deps.store.record({ kind: GroupEventKind.retry, partition: partition.index, offset, deliveries, dueMs });
  }

  private scheduleRedelivery(partition: GroupPartition, offset: number, deliveries: number, delayMs: number, record: LogRecord | null): void {
    this.forgetWaiting(partition, offset);
    let held: LogRecord | null = null;
    if (record !== null && this.heldBytes + recordBytes(record) <= HELD_RECORD_BYTES_MAX) {
      held = record;
      this.heldBytes += recordBytes(record);
    }
    partition.waiting.set(offset, { deliveries, record: held });
    if (delayMs <= 0) {
      partition.due.push(offset);
      queueMicrotask(() => this.pump());
      return;
    }
    const timer = this.deps.clock.schedule(delayMs, () => {
      partition.retryTimers.delete(offset);
      if (this.closed || !partition.waiting.has(offset)) return;
      partition.due.push(offset);
      this.pump();
    });
    partition.retryTimers.set(offset, timer);
  }

  private forgetWaiting(partition: GroupPartition, offset: number): void {
    const waiting = partition.waiting.get(offset);
    if (waiting === undefined) return;
    partition.waiting.delete(offset);
    if (waiting.record !== null) this.heldBytes -= recordBytes(waiting.record);
    partition.retryTimers.get(offset)?.cancel();
    partition.retryTimers.delete(offset);
  }

  /** The subscriber left (or, `lost`, vanished): what it held goes back, or to the dead-letter topic (SubscriptionCloseOptions). */
  removeSubscription(subscription: GroupSubscription, lost: boolean): void {
    const index = this.subscriptions.indexOf(subscription);
    if (index < 0) return;
    this.subscriptions.splice(index, 1);
    for (const partition of this.partitions) {
      for (const [offset, entry] of partition.inFlight) {
        if (entry.subscription !== subscription) continue;
        partition.inFlight.delete(offset);
        if (lost && entry.deliveryCount >= this.config.deliveriesMax) {
          // A failed move is retried by the dead-letterer; meanwhile the message is not delivered.
          const reason = `subscriber lost after ${entry.deliveryCount} deliveries`;
          this.deadLetterer.move(partition.index, offset, entry.deliveryCount, reason).catch(() => undefined);
          continue;
        }
        // Not the message's fault: it goes straight back, keeping its delivery count.
        this.scheduleRedelivery(partition, offset, entry.deliveryCount, 0, entry.record);
      }
    }
    subscription.inFlight = 0;
    this.pump();
  }

  /** Moves the group to new floors: everything below is settled, everything from them on is pending. */
  async reset(floors: number[]): Promise<void> {
    this.resetting = true;
    try {
      for (const partition of this.partitions) {
        for (const entry of partition.inFlight.values()) entry.subscription.inFlight -= 1;
        partition.inFlight.clear();
        for (const offset of [...partition.waiting.keys()]) this.forgetWaiting(partition, offset);
        partition.due = [];
        partition.dueHead = 0;
      }
      await Promise.all(
        this.partitions.map((partition) =>
          this.deps.store.record({ kind: GroupEventKind.reset, partition: partition.index, floor: floors[partition.index]! }),
        ),
      );
      for (const partition of this.partitions) partition.reader.seek(floors[partition.index]!);
    } finally {
      this.resetting = false;
    }
    this.pump();
  }

  private partitionAt(index: number): GroupPartition {
    const partition = this.partitions[index];
    if (partition === undefined) throw new FerryError('INVALID_ARGUMENT', `topic ${this.topic} has no partition ${index}`);
    return partition;
  }

  /** Closes the group; with a reason (topic deleted), its subscribers' sinks are told why. */
  async close(reason?: string, code?: ErrorCode): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ackTimer?.cancel();
    for (const partition of this.partitions) {
      for (const timer of partition.retryTimers.values()) timer.cancel();
      partition.retryTimers.clear();
      partition.reader.close();
    }
    for (const subscription of [...this.subscriptions]) {
      subscription.markClosed();
      if (reason !== undefined) subscription.sink.ended?.(reason, code);
    }
    this.subscriptions.length = 0;
    // Journal writes waiting for replicas in sync end now: a move waiting on one must not hold the close.
    this.deps.store.stopWaiting();
    await this.deadLetterer.close();
    await this.deps.store.close();
  }
}

function recordBytes(record: LogRecord): number {
  return record.value.length + (record.key?.length ?? 0) + 64;
}

/** A copy that does not keep the (possibly large) read buffer the record was sliced from. */
function copyRecord(record: LogRecord): LogRecord {
  return { ...record, value: Buffer.from(record.value), key: record.key === null ? null : Buffer.from(record.key) };
}
