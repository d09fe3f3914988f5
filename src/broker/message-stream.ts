/**
 * The embedded way to consume: a subscription as an async iterator of messages with ack/nack,
 * the same shape the TCP client offers. It buffers at most `prefetch` messages: credit is
 * granted as the application takes messages (streams) or settles them (groups).
 */
import type { Delivery, DeliverySink, Subscription } from './types.js';

export interface ConsumedMessage {
  topic: string;
  partition: number;
  offset: number;
  timestamp: Date;
  key: Buffer | null;
  headers: Record<string, string>;
  value: Buffer;
  deliveryCount: number;
  ack(): Promise<void>;
  nack(options?: { delayMs?: number }): Promise<void>;
  /** Moves the message to the group's dead-letter topic now; resolves once that is durable. */
  reject(reason: string): Promise<void>;
  /** Still working on it: restarts the ack timeout. */
  touch(): Promise<void>;
}

export class MessageStream implements AsyncIterable<ConsumedMessage>, DeliverySink {
  private readonly buffered: Delivery[] = [];
  /** Calls of next() not yet answered, oldest first: each takes the next message, as an async generator's would. */
  private readonly waiting: Array<(result: IteratorResult<ConsumedMessage>) => void> = [];
  private subscription: Subscription | null = null;
  private done = false;

  constructor(
    private readonly grouped: boolean,
    /** Called once when the stream closes (the broker stops tracking it). */
    private readonly onClosed: () => void = () => undefined,
  ) {}

  /** Called once by the broker after subscribing. */
  attach(subscription: Subscription): void {
    this.subscription = subscription;
  }

  deliver(delivery: Delivery): void {
    const resolve = this.waiting.shift();
    if (resolve !== undefined) {
      resolve({ value: this.toMessage(delivery), done: false });
      return;
    }
    this.buffered.push(delivery);
  }

  writable(): boolean {
    return !this.done;
  }

  private toMessage(delivery: Delivery): ConsumedMessage {
    const subscription = this.subscription!;
    if (!this.grouped) subscription.grantCredit(1);
    let settled = false;
    const settle = (): void => {
      if (settled) return;
      settled = true;
      if (this.grouped) subscription.grantCredit(1);
    };
    return {
      topic: delivery.topic,
      partition: delivery.partition,
      offset: delivery.offset,
      timestamp: new Date(delivery.timestampMs),
      key: delivery.key,
      headers: Object.fromEntries(delivery.headers),
      value: delivery.value,
      deliveryCount: delivery.deliveryCount,
      ack: async () => {
        await subscription.ack(delivery.partition, delivery.offset);
        settle();
      },
      nack: async (options?: { delayMs?: number }) => {
        await subscription.nack(delivery.partition, delivery.offset, options);
        settle();
      },
      reject: async (reason: string) => {
        await subscription.reject?.(delivery.partition, delivery.offset, reason);
        settle();
      },
      touch: async () => {
        await subscription.touch?.(delivery.partition, delivery.offset);
      },
    };
  }

  next(): Promise<IteratorResult<ConsumedMessage>> {
    const delivery = this.buffered.shift();
    if (delivery !== undefined) return Promise.resolve({ value: this.toMessage(delivery), done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting.push(resolve);
    });
  }

  /** Ends the iteration (a pending `next()` resolves done) and the subscription. */
  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    this.onClosed();
    this.buffered.length = 0;
    for (const resolve of this.waiting.splice(0)) resolve({ value: undefined, done: true });
    await this.subscription?.close();
  }

  [Symbol.asyncIterator](): AsyncIterator<ConsumedMessage> {
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }
}
