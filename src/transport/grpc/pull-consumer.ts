/**
 * A consumer for clients that cannot stream: a broker subscription that lives between unary calls.
 * Pull grants credit so that buffered + outstanding credit equals the call's max_messages, waits
 * up to wait_ms for a first message, and returns what is buffered. The broker's credit still bounds
 * everything (one credit per delivery): messages delivered after a Pull answered stay buffered for
 * the next one, never more than the largest max_messages asked for.
 *
 * A consumer no call has named for its idle timeout is closed; the broker then hands its
 * unsettled messages (buffered or returned) to other consumers, as when a TCP consumer disconnects.
 */
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { FerryError } from '../../errors.js';
import type { BrokerApi, Delivery, DeliverySink, SubscribeOptions, Subscription } from '../../broker/types.js';
import type { ConsumerRegistry, RegisteredConsumer } from './consumers.js';

export interface PullConsumerDeps {
  registry: ConsumerRegistry;
  clock: Clock;
  logger: Logger;
}

export class PullConsumer implements DeliverySink, RegisteredConsumer {
  readonly id: string;
  private broker: Subscription | null = null;
  private readonly buffer: Delivery[] = [];
  /** Credit granted to the broker and not yet used by a delivery. */
  private creditOutstanding = 0;
  private pulling = false;
  private wakeWaiter: (() => void) | null = null;
  private idleTimer: TimerHandle | null = null;
  private closed = false;
  private endedReason: string | null = null;

  private constructor(
    private readonly deps: PullConsumerDeps,
    readonly topic: string,
    readonly group: string | undefined,
    private readonly idleTimeoutMs: number,
  ) {
    this.id = deps.registry.allocateId();
  }

  /** Subscribes with no credit (nothing is delivered before the first Pull) and registers the consumer. */
  static async open(broker: BrokerApi, topic: string, options: SubscribeOptions, idleTimeoutMs: number, deps: PullConsumerDeps): Promise<PullConsumer> {
    const consumer = new PullConsumer(deps, topic, options.group, idleTimeoutMs);
    consumer.broker = await broker.subscribe(topic, { ...options, credit: 0 }, consumer);
    deps.registry.add(consumer);
    consumer.used();
    deps.logger.debug('grpc.pull_consumer.opened', { consumerId: consumer.id, topic, group: options.group });
    return consumer;
  }

  subscription(): Subscription | null {
    return this.closed ? null : this.broker;
  }

  // --- DeliverySink ---

  deliver(delivery: Delivery): void {
    if (this.closed) return;
    this.creditOutstanding -= 1;
    this.buffer.push(delivery);
    this.wakeWaiter?.();
  }

  writable(): boolean {
    return !this.closed;
  }

  ended(reason: string): void {
    this.endedReason = reason;
    void this.close();
  }

  // --- Calls ---

  /** Returns up to `maxMessages` deliveries, waiting up to `waitMs` (or until `signal`) for a first one. */
  async pull(maxMessages: number, waitMs: number, signal: AbortSignal): Promise<Delivery[]> {
    if (this.closed || this.broker === null) throw this.goneError();
    if (this.pulling) throw new FerryError('INVALID_ARGUMENT', `a Pull is already waiting on consumer ${this.id}; pull from one place at a time`);
    this.pulling = true;
    try {
      const grant = maxMessages - this.buffer.length - this.creditOutstanding;
      if (grant > 0) {
        this.creditOutstanding += grant;
        // May deliver synchronously into the buffer.
        this.broker.grantCredit(grant);
      }
      if (this.buffer.length === 0 && waitMs > 0 && !signal.aborted) await this.waitForDelivery(waitMs, signal);
      if (this.closed && this.buffer.length === 0) throw this.goneError();
      // A caller that went away gets nothing: the messages stay buffered for the next Pull.
      if (signal.aborted) return [];
      return this.buffer.splice(0, maxMessages);
    } finally {
      this.pulling = false;
      this.used();
    }
  }

  used(): void {
    if (this.closed) return;
    this.idleTimer?.cancel();
    this.idleTimer = this.deps.clock.schedule(this.idleTimeoutMs, () => {
      this.idleTimer = null;
      // A long Pull is use: the timeout counts from its end.
      if (this.pulling) this.used();
      else {
        this.deps.logger.debug('grpc.pull_consumer.idle_closed', { consumerId: this.id, topic: this.topic, group: this.group });
        void this.close();
      }
    });
  }

  /** Closes the broker subscription: unsettled messages go to other consumers. Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.idleTimer?.cancel();
    this.idleTimer = null;
    this.deps.registry.remove(this);
    this.buffer.length = 0;
    this.wakeWaiter?.();
    const subscription = this.broker;
    this.broker = null;
    try {
      await subscription?.close();
    } catch (error) {
      this.deps.logger.warn('grpc.pull_consumer.close_failed', { consumerId: this.id, error });
    }
  }

  private waitForDelivery(waitMs: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        timer.cancel();
        signal.removeEventListener('abort', done);
        this.wakeWaiter = null;
        resolve();
      };
      const timer = this.deps.clock.schedule(waitMs, done);
      signal.addEventListener('abort', done);
      this.wakeWaiter = done;
    });
  }

  private goneError(): FerryError {
    const why = this.endedReason === null ? 'it was closed' : this.endedReason;
    return new FerryError('UNKNOWN_SUBSCRIPTION', `consumer ${this.id} is gone: ${why}`, { detail: { consumerId: this.id, ended: true } });
  }
}
