/** One subscriber of a queue group: its credit and deliveries in flight; settling goes through its group. */
import type { DeliverySink, Subscription, SubscriptionCloseOptions } from '../types.js';

/** What a subscription asks of its group (group.ts). */
export interface SubscriptionOwner {
  readonly topic: string;
  readonly name: string;
  pump(): void;
  settle(subscription: GroupSubscription, partition: number, offset: number): Promise<void>;
  release(subscription: GroupSubscription, partition: number, offset: number, delayMs?: number): Promise<void>;
  reject(subscription: GroupSubscription, partition: number, offset: number, reason: string): Promise<void>;
  touch(subscription: GroupSubscription, partition: number, offset: number): void;
  removeSubscription(subscription: GroupSubscription, lost: boolean): void;
}

export class GroupSubscription implements Subscription {
  credit: number;
  inFlight = 0;
  private closed = false;

  constructor(
    readonly id: number,
    private readonly owner: SubscriptionOwner,
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
    return this.owner.settle(this, partition, offset);
  }

  async nack(partition: number, offset: number, options: { delayMs?: number } = {}): Promise<void> {
    await this.owner.release(this, partition, offset, options.delayMs);
  }

  async reject(partition: number, offset: number, reason: string): Promise<void> {
    await this.owner.reject(this, partition, offset, reason);
  }

  async touch(partition: number, offset: number): Promise<void> {
    this.owner.touch(this, partition, offset);
  }

  resume(): void {
    this.owner.pump();
  }

  markClosed(): void {
    this.closed = true;
    this.credit = 0;
  }

  async close(options: SubscriptionCloseOptions = {}): Promise<void> {
    if (this.closed) return;
    this.markClosed();
    this.owner.removeSubscription(this, options.lost ?? false);
  }
}
