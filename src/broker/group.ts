/**
 * A queue group on one topic: subscribers compete for messages, each message goes to one of
 * them, and the group remembers (durably, through GroupStore) exactly which messages are settled.
 *
 * Dispatch is push with credit: a subscriber receives a message only while it has credit (one
 * credit per delivery). Unsettled messages of a subscriber that leaves, and nacked ones, return to
 * the group's redelivery queue and go to any subscriber before new messages do.
 */
import type { Logger } from '../platform/logger.js';
import type { Clock, TimerHandle } from '../platform/clock.js';
import { FerryError } from '../protocol/errors.js';
import type { Log } from '../storage/log.js';
import type { LogRecord } from '../storage/types.js';
import { GroupStore } from './group-store.js';
import { PartitionReader } from './partition-reader.js';
import type { Delivery, DeliverySink, Subscription } from './types.js';

interface InFlight {
  subscription: GroupSubscription;
  deliveryCount: number;
}

class GroupPartition {
  readonly inFlight = new Map<number, InFlight>();
  /** Offsets waiting for redelivery, ascending. */
  readonly redeliver: number[] = [];
  /** Records fetched for redelivery, in the order of `redeliver` at fetch time. */
  redeliverReady: LogRecord[] = [];
  fetchingRedelivery = false;
  /** Delivery counts of offsets that were delivered before and are waiting again. */
  readonly previousDeliveries = new Map<number, number>();

  constructor(
    readonly index: number,
    readonly log: Log,
    readonly reader: PartitionReader,
  ) {}
}

export class Group {
  private readonly subscriptions: GroupSubscription[] = [];
  private readonly partitions: GroupPartition[];
  private nextSubscriberIndex = 0;
  private nextPartitionIndex = 0;
  private pumping = false;
  private closed = false;
  private readonly timers = new Set<TimerHandle>();

  constructor(
    readonly topic: string,
    readonly name: string,
    logs: Log[],
    private readonly store: GroupStore,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly allocateSubscriptionId: () => number,
  ) {
    this.partitions = logs.map((log, index) => {
      const floor = Math.max(store.acks[index]!.ackFloor, log.startOffset);
      const reader = new PartitionReader(log, floor, () => this.pump(), logger, { topic, group: name, partition: index });
      return new GroupPartition(index, log, reader);
    });
  }

  get subscriberCount(): number {
    return this.subscriptions.length;
  }

  describe(): { name: string; subscribers: number; inFlight: number; pendingRedelivery: number; partitions: Array<{ partition: number; ackFloor: number; lag: number }> } {
    let inFlight = 0;
    let pendingRedelivery = 0;
    for (const partition of this.partitions) {
      inFlight += partition.inFlight.size;
      pendingRedelivery += partition.redeliver.length;
    }
    return {
      name: this.name,
      subscribers: this.subscriptions.length,
      inFlight,
      pendingRedelivery,
      partitions: this.partitions.map((partition) => {
        const ackFloor = this.store.acks[partition.index]!.ackFloor;
        return { partition: partition.index, ackFloor, lag: Math.max(0, partition.log.nextOffset - ackFloor) };
      }),
    };
  }

  subscribe(sink: DeliverySink, credit: number): Subscription {
    if (this.closed) throw new FerryError('BROKER_CLOSING', 'group is closing');
    const subscription = new GroupSubscription(this.allocateSubscriptionId(), this, sink, credit);
    this.subscriptions.push(subscription);
    queueMicrotask(() => this.pump());
    return subscription;
  }

  /** The log of a partition advanced: there may be new messages. */
  onLogAdvance(): void {
    this.pump();
  }

  pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      for (;;) {
        const subscription = this.nextSubscriber();
        if (subscription === undefined) break;
        if (!this.deliverOne(subscription)) {
          this.requestRecords();
          break;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private nextSubscriber(): GroupSubscription | undefined {
    const count = this.subscriptions.length;
    for (let i = 0; i < count; i++) {
      const subscription = this.subscriptions[(this.nextSubscriberIndex + i) % count]!;
      if (subscription.credit > 0 && subscription.sink.writable()) {
        this.nextSubscriberIndex = (this.nextSubscriberIndex + i + 1) % count;
        return subscription;
      }
    }
    return undefined;
  }

  /** Delivers the next available message to `subscription`; false when none is ready. */
  private deliverOne(subscription: GroupSubscription): boolean {
    const count = this.partitions.length;
    for (let i = 0; i < count; i++) {
      const partition = this.partitions[(this.nextPartitionIndex + i) % count]!;
      const record = this.nextRecord(partition);
      if (record === undefined) continue;
      this.nextPartitionIndex = (partition.index + 1) % count;
      const deliveryCount = (partition.previousDeliveries.get(record.offset) ?? 0) + 1;
      partition.previousDeliveries.delete(record.offset);
      partition.inFlight.set(record.offset, { subscription, deliveryCount });
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

  private nextRecord(partition: GroupPartition): LogRecord | undefined {
    const acks = this.store.acks[partition.index]!;
    while (partition.redeliverReady.length > 0) {
      const record = partition.redeliverReady.shift()!;
      if (!acks.isSettled(record.offset) && !partition.inFlight.has(record.offset)) return record;
    }
    for (;;) {
      const record = partition.reader.take();
      if (record === undefined) return undefined;
      if (!acks.isSettled(record.offset) && !partition.inFlight.has(record.offset)) return record;
    }
  }

  private requestRecords(): void {
    let demand = 0;
    for (const subscription of this.subscriptions) demand += subscription.credit;
    if (demand === 0) return;
    for (const partition of this.partitions) {
      if (partition.redeliver.length > 0) this.fetchRedeliveries(partition);
      else partition.reader.request(demand);
    }
  }

  private fetchRedeliveries(partition: GroupPartition): void {
    if (partition.fetchingRedelivery) return;
    partition.fetchingRedelivery = true;
    const offsets = partition.redeliver.splice(0, partition.redeliver.length);
    void this.readOffsets(partition.log, offsets).then((records) => {
      partition.fetchingRedelivery = false;
      partition.redeliverReady.push(...records);
      this.pump();
    });
  }

  private async readOffsets(log: Log, offsets: number[]): Promise<LogRecord[]> {
    const records: LogRecord[] = [];
    for (const offset of offsets) {
      try {
        const [record] = await log.read(offset, { recordsMax: 1 });
        if (record !== undefined && record.offset === offset) records.push(record);
      } catch (error) {
        this.logger.error('broker.group.redelivery_read_failed', { topic: this.topic, group: this.name, offset, error });
      }
    }
    return records;
  }

  settle(partitionIndex: number, offset: number): Promise<void> {
    const partition = this.partitionAt(partitionIndex);
    const entry = partition.inFlight.get(offset);
    if (entry !== undefined) {
      partition.inFlight.delete(offset);
      entry.subscription.inFlight -= 1;
    } else if (this.store.acks[partitionIndex]!.isSettled(offset) || offset >= partition.reader.position) {
      // Already settled, or never delivered: nothing to do for a settled one; an ack for an
      // offset never delivered is a client error.
      if (offset >= partition.reader.position && !this.store.acks[partitionIndex]!.isSettled(offset)) {
        return Promise.reject(new FerryError('UNKNOWN_DELIVERY', `offset ${offset} of partition ${partitionIndex} was not delivered to this group`));
      }
      return Promise.resolve();
    } else {
      // Waiting for redelivery (e.g. a late ack after its subscriber left): settle it all the same.
      removeSorted(partition.redeliver, offset);
      partition.previousDeliveries.delete(offset);
    }
    return this.store.settle(partitionIndex, offset);
  }

  release(subscription: GroupSubscription, partitionIndex: number, offset: number, delayMs: number): void {
    const partition = this.partitionAt(partitionIndex);
    const entry = partition.inFlight.get(offset);
    if (entry === undefined || entry.subscription !== subscription) {
      throw new FerryError('UNKNOWN_DELIVERY', `offset ${offset} of partition ${partitionIndex} is not in flight on this subscription`);
    }
    partition.inFlight.delete(offset);
    subscription.inFlight -= 1;
    partition.previousDeliveries.set(offset, entry.deliveryCount);
    if (delayMs <= 0) {
      insertSorted(partition.redeliver, offset);
      this.pump();
      return;
    }
    const timer = this.clock.schedule(delayMs, () => {
      this.timers.delete(timer);
      if (this.closed) return;
      insertSorted(partition.redeliver, offset);
      this.pump();
    });
    this.timers.add(timer);
  }

  removeSubscription(subscription: GroupSubscription): void {
    const index = this.subscriptions.indexOf(subscription);
    if (index < 0) return;
    this.subscriptions.splice(index, 1);
    for (const partition of this.partitions) {
      for (const [offset, entry] of partition.inFlight) {
        if (entry.subscription !== subscription) continue;
        partition.inFlight.delete(offset);
        partition.previousDeliveries.set(offset, entry.deliveryCount);
        insertSorted(partition.redeliver, offset);
      }
    }
    subscription.inFlight = 0;
    this.pump();
  }

  private partitionAt(index: number): GroupPartition {
    const partition = this.partitions[index];
    if (partition === undefined) throw new FerryError('INVALID_ARGUMENT', `topic ${this.topic} has no partition ${index}`);
    return partition;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) timer.cancel();
    this.timers.clear();
    for (const subscription of [...this.subscriptions]) subscription.markClosed();
    this.subscriptions.length = 0;
    for (const partition of this.partitions) partition.reader.close();
    await this.store.close();
  }
}

export class GroupSubscription implements Subscription {
  credit: number;
  inFlight = 0;
  private closed = false;

  constructor(
    readonly id: number,
    private readonly owner: Group,
    readonly sink: DeliverySink,
    credit: number,
  ) {
    this.credit = credit;
  }

  get topic(): string {
    return this.owner.topic;
  }

  get group(): string {
    return this.owner.name;
  }

  grantCredit(count: number): void {
    if (this.closed) return;
    this.credit += count;
    this.owner.pump();
  }

  ack(partition: number, offset: number): Promise<void> {
    return this.owner.settle( partition, offset);
  }

  async nack(partition: number, offset: number, options: { delayMs?: number } = {}): Promise<void> {
    this.owner.release(this, partition, offset, options.delayMs ?? 0);
  }

  resume(): void {
    this.owner.pump();
  }

  markClosed(): void {
    this.closed = true;
    this.credit = 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.markClosed();
    this.owner.removeSubscription(this);
  }
}

function insertSorted(values: number[], value: number): void {
  let low = 0;
  let high = values.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (values[mid]! < value) low = mid + 1;
    else high = mid;
  }
  if (values[low] !== value) values.splice(low, 0, value);
}

function removeSorted(values: number[], value: number): void {
  const index = values.indexOf(value);
  if (index >= 0) values.splice(index, 1);
}
