/**
 * What wrappers of the broker's contract share (the admin's observed broker, the security guard's
 * views): a subscription that forwards to the broker's, and the optional methods, asked for by name.
 */
import { FerryError } from '../errors.js';
import type { BrokerApi, Subscription, SubscriptionCloseOptions } from './types.js';

type OptionalMethod = 'listGroups' | 'describeGroup' | 'resetGroup' | 'redrive' | 'publishAsBroker';

/** The optional method `name` of `broker`, bound; INVALID_ARGUMENT when this broker does not offer it. */
export function required<K extends OptionalMethod>(broker: BrokerApi, name: K): NonNullable<BrokerApi[K]> {
  const method = broker[name];
  if (method === undefined) throw new FerryError('INVALID_ARGUMENT', `this broker does not support ${name}`);
  return (method as (...args: never[]) => unknown).bind(broker) as NonNullable<BrokerApi[K]>;
}

/** A subscription that passes everything on to `inner` (reject and touch only when it has them); subclasses change what they watch. */
export class ForwardingSubscription implements Subscription {
  readonly reject?: (partition: number, offset: number, reason: string) => Promise<void>;
  readonly touch?: (partition: number, offset: number) => Promise<void>;

  constructor(protected readonly inner: Subscription) {
    const { reject, touch } = inner;
    if (reject !== undefined) this.reject = (partition, offset, reason) => this.rejected(reject.call(inner, partition, offset, reason));
    if (touch !== undefined) this.touch = (partition, offset) => touch.call(inner, partition, offset);
  }

  get id(): number {
    return this.inner.id;
  }
  get topic(): string {
    return this.inner.topic;
  }
  get group(): string | undefined {
    return this.inner.group;
  }

  grantCredit(count: number): void {
    this.inner.grantCredit(count);
  }

  ack(partition: number, offset: number): Promise<void> {
    return this.inner.ack(partition, offset);
  }

  nack(partition: number, offset: number, options?: { delayMs?: number }): Promise<void> {
    return this.inner.nack(partition, offset, options);
  }

  resume(): void {
    this.inner.resume();
  }

  close(options?: SubscriptionCloseOptions): Promise<void> {
    return this.inner.close(options);
  }

  /** What a reject returns: the inner subscription's promise, which a subclass may watch. */
  protected rejected(settled: Promise<void>): Promise<void> {
    return settled;
  }
}
