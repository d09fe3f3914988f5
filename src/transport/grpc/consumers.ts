/**
 * Every open consumer (Consume streams and pull consumers) by its consumer id, so the unary
 * Ack/Nack/Reject/Touch calls can find the broker subscription a delivery belongs to. Nack,
 * reject and touch must come through the subscription that holds the delivery (the broker checks
 * it), which is why a delivery is named by (consumer id, partition, offset).
 *
 * Ids are 128 random bits: whoever knows one can settle that consumer's messages, so they must
 * not be guessable from another consumer's id.
 */
import { randomBytes } from 'node:crypto';
import { FerryError } from '../../errors.js';
import type { Subscription } from '../../broker/types.js';

/** 16 bytes: unguessable, and short in a URL or a log line (22 characters of base64url). */
const CONSUMER_ID_BYTES = 16;

export interface RegisteredConsumer {
  readonly id: string;
  /** The broker subscription; null once the consumer is closed. */
  subscription(): Subscription | null;
  /** A call named this consumer (pull consumers restart their idle timeout). */
  used(): void;
  /** Closes the broker subscription (its unsettled messages go to other consumers) and unregisters. */
  close(): Promise<void>;
}

export class ConsumerRegistry {
  private readonly consumers = new Map<string, RegisteredConsumer>();

  constructor(private readonly newId: () => string = () => randomBytes(CONSUMER_ID_BYTES).toString('base64url')) {}

  allocateId(): string {
    for (;;) {
      const id = this.newId();
      if (!this.consumers.has(id)) return id;
    }
  }

  add(consumer: RegisteredConsumer): void {
    this.consumers.set(consumer.id, consumer);
  }

  remove(consumer: RegisteredConsumer): void {
    if (this.consumers.get(consumer.id) === consumer) this.consumers.delete(consumer.id);
  }

  get size(): number {
    return this.consumers.size;
  }

  /** The consumer and its live subscription; UNKNOWN_SUBSCRIPTION when it is gone (closed, idle, or never existed). */
  lookup(id: string): { consumer: RegisteredConsumer; subscription: Subscription } {
    if (id === '') throw new FerryError('INVALID_ARGUMENT', 'consumer_id is required');
    const consumer = this.consumers.get(id);
    const subscription = consumer?.subscription() ?? null;
    if (consumer === undefined || subscription === null) {
      throw new FerryError('UNKNOWN_SUBSCRIPTION', `no open consumer ${id} (closed, idle too long, or never opened)`);
    }
    consumer.used();
    return { consumer, subscription };
  }

  values(): RegisteredConsumer[] {
    return [...this.consumers.values()];
  }
}
