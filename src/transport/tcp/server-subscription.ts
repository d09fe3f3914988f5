/**
 * One subscription of one connection: the DeliverySink the broker pushes into, and the bookkeeping
 * the connection needs for it (wire id, pause/resume, acks still settling).
 *
 * The wire id is chosen by the connection before broker.subscribe is called, and the sink reports
 * itself unwritable until the SUBSCRIBED reply is queued: a delivery can then never reach the
 * client ahead of the reply that tells it the id.
 */
import type { Delivery, Subscription, SubscriptionCloseOptions } from '../../broker/types.js';
import type { ErrorCode, FerryError } from '../../errors.js';
import type { RevocableSink } from '../../security/guard.js';

/** What the sink needs from its connection. */
export interface SinkOwner {
  /** Queues one delivery; false when it could not be encoded (it is then dropped and logged). */
  queueDelivery(sink: ServerSubscription, delivery: Delivery): void;
  /** True while the socket is below its high-water mark and the connection is open. */
  acceptsDeliveries(): boolean;
  /** Remembers that this sink refused deliveries, so it is resumed on drain. */
  notePaused(sink: ServerSubscription): void;
  /** An ack or nack the broker rejected. */
  settleFailed(sink: ServerSubscription, error: unknown): void;
  /** The broker ended the subscription (its topic was deleted), or its grant was withdrawn (FORBIDDEN). */
  subscriptionEnded(sink: ServerSubscription, reason: string, code?: ErrorCode): void;
}

export class ServerSubscription implements RevocableSink {
  subscription: Subscription | null = null;
  /** Set once SUBSCRIBED is queued; until then deliveries wait. */
  announced = false;
  closing = false;
  /** Waiting in the owner's paused set. */
  paused = false;
  /** Acks and nacks handed to the broker and not yet settled. */
  settling = 0;
  private settledWaiters: Array<() => void> = [];
  delivered = 0;
  /** Credit admitted so far (initial credit and grants, after the cap). */
  private granted = 0;
  /** ACK, NACK and REJECT entries received: deliveries the client has settled (or given up on). */
  acknowledged = 0;
  /** Deliveries the broker pushed before SUBSCRIBED was queued (it should have asked writable() first); bounded by credit. */
  private early: Delivery[] | null = null;
  private closeDone: Promise<void> | null = null;

  constructor(
    readonly wireId: number,
    readonly topic: string,
    readonly group: string | undefined,
    private readonly owner: SinkOwner,
    /** The cap on credit outstanding plus deliveries unsettled (subscriptionUnackedMax). */
    private readonly unackedMax: number,
  ) {}

  /**
   * How much of a credit grant the cap lets through. A group's deliveries count until settled
   * (granted − acknowledged is what the client may hold: unsettled plus not yet delivered); a
   * stream's until delivered (it has nothing to settle). A client that grants without acking is
   * held at the cap instead of growing the broker's in-flight state without bound.
   */
  admitCredit(count: number): number {
    const used = this.granted - (this.group === undefined ? this.delivered : this.acknowledged);
    const admitted = Math.max(0, Math.min(count, this.unackedMax - used));
    this.granted += admitted;
    return admitted;
  }

  deliver(delivery: Delivery): void {
    // After UNSUBSCRIBE or a closed connection the delivery is dropped: the broker treats it as
    // unacknowledged and a group redelivers it once this subscription is closed.
    if (this.closing) return;
    this.delivered++;
    if (!this.announced) {
      (this.early ??= []).push(delivery);
      return;
    }
    this.owner.queueDelivery(this, delivery);
  }

  ended(reason: string, code?: ErrorCode): void {
    this.owner.subscriptionEnded(this, reason, code);
  }

  revoked(error: FerryError): void {
    this.owner.subscriptionEnded(this, error.message, error.code);
  }

  /** Marks SUBSCRIBED as queued and queues the deliveries that arrived ahead of it. */
  announce(): void {
    this.announced = true;
    const early = this.early;
    this.early = null;
    if (early !== null) for (const delivery of early) this.owner.queueDelivery(this, delivery);
  }

  writable(): boolean {
    if (!this.closing && this.announced && this.owner.acceptsDeliveries()) return true;
    if (!this.closing) this.owner.notePaused(this);
    return false;
  }

  /** Bound once: called when one ack or nack settles, whatever its outcome. */
  readonly settled = (): void => {
    this.settling--;
    if (this.settling === 0 && this.settledWaiters.length > 0) {
      const waiters = this.settledWaiters;
      this.settledWaiters = [];
      for (const resolve of waiters) resolve();
    }
  };

  /** Bound once: called when the broker rejects an ack or nack. */
  readonly settleFailed = (error: unknown): void => {
    this.settled();
    this.owner.settleFailed(this, error);
  };

  /** `count` acks or nacks that share the promise `settled`: each settles (or fails) with it. */
  settleAll(settled: Promise<void>, count: number): void {
    if (count === 1) {
      settled.then(this.settled, this.settleFailed);
      return;
    }
    settled.then(
      () => {
        for (let i = 0; i < count; i++) this.settled();
      },
      (error: unknown) => {
        for (let i = 0; i < count; i++) this.settleFailed(error);
      },
    );
  }

  /** Resolves once every ack and nack handed to the broker so far has settled. */
  whenSettled(): Promise<void> {
    if (this.settling === 0) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** Closes the broker subscription after pending acks settle; safe to call twice (the first call's options count). */
  close(options: SubscriptionCloseOptions = {}): Promise<void> {
    this.closing = true;
    this.early = null;
    return (this.closeDone ??= this.closeOnce(options));
  }

  private async closeOnce(options: SubscriptionCloseOptions): Promise<void> {
    await this.whenSettled();
    const subscription = this.subscription;
    this.subscription = null;
    if (subscription !== null) await subscription.close(options);
  }
}
