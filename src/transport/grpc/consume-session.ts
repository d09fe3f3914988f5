/**
 * One Consume stream: the bridge between a bidirectional gRPC call and a broker subscription,
 * like ServerSubscription is for a TCP connection.
 * The rest: docs/INTERNALS.md.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { ConnectError } from '@connectrpc/connect';
import type { Logger } from '../../platform/logger.js';
import { FerryError } from '../../errors.js';
import type { BrokerApi, Delivery, DeliverySink, Subscription } from '../../broker/types.js';
import type { ConsumeRequest, ConsumeResponseSchema } from '../../generated/ferry/v1/messages_pb.js';
import type { ConsumerRegistry, RegisteredConsumer } from './consumers.js';
import { deliveryBytes, subscribeOptionsFromProto } from './convert.js';
import { CONSUME_QUEUED_BYTES_MAX, DELIVERY_BATCH_BYTES_MAX } from './limits.js';
import { applyAcks, applySettles, checkSettleCount, settleCount } from './settle.js';
import type { AckRequest } from './ack-request-codec.js';

type ConsumeResponseInit = MessageInitShape<typeof ConsumeResponseSchema>;

/** A request of the stream: as protobuf-es decodes it, or (acks only) as ack-request-codec.ts does. */
export type ConsumeInput = ConsumeRequest | AckRequest;

/**
 * A response of the stream: deliveries as the broker made them (each transport encodes them its
 * own way: connect from protobuf-es messages, fast-consume.ts by hand), or any other response.
 */
export type ConsumeOutput = { deliveries: Delivery[]; response?: undefined } | { response: ConsumeResponseInit; deliveries?: undefined };

/** Size charged for a response without messages (subscribed, settle results). */
const CONTROL_RESPONSE_BYTES = 64;

interface Queued {
  output: ConsumeOutput;
  bytes: number;
}

export interface ConsumeSessionDeps {
  broker: BrokerApi;
  registry: ConsumerRegistry;
  logger: Logger;
}

export class ConsumeSession implements DeliverySink, RegisteredConsumer {
  readonly id: string;
  private broker: Subscription | null = null;
  private readonly queue: Queued[] = [];
  private queuedBytes = 0;
  private batch: Delivery[] = [];
  private batchBytes = 0;
  private flushScheduled = false;
  /** The broker was told "unwritable" and waits for resume(). */
  private paused = false;
  private wake: (() => void) | null = null;
  /** No more responses are produced: the generator ends once the queue is empty. */
  private finished = false;
  private failure: unknown = null;
  private closed = false;
  private readonly settling = new Set<Promise<unknown>>();

  constructor(private readonly deps: ConsumeSessionDeps) {
    this.id = deps.registry.allocateId();
  }

  subscription(): Subscription | null {
    return this.closed ? null : this.broker;
  }

  used(): void {}

  /** The response stream of the call; `requests` is its request stream. */
  async *run(requests: AsyncIterable<ConsumeInput>, signal: AbortSignal): AsyncGenerator<ConsumeOutput> {
    const onAbort = (): void => {
      // Nobody reads the responses any more (cancelled), or the server is shutting down: then the
      // reason (UNAVAILABLE) becomes the call's status.
      this.queue.length = 0;
      this.queuedBytes = 0;
      this.finish(signal.reason instanceof ConnectError ? signal.reason : null);
    };
    signal.addEventListener('abort', onAbort);
    const iterator = requests[Symbol.asyncIterator]();
    try {
      const first = await iterator.next();
      if (first.done === true || first.value.start === undefined) {
        throw new FerryError('INVALID_ARGUMENT', 'the first ConsumeRequest must carry start (topic, group, ...)');
      }
      const { topic, options } = subscribeOptionsFromProto(first.value.start, 'start');
      this.broker = await this.deps.broker.subscribe(topic, { ...options, credit: first.value.credit }, this);
      this.deps.registry.add(this);
      if (signal.aborted) return;
      yield { response: { subscribed: { consumerId: this.id, topic, group: options.group ?? '' } } };
      // The first request's credit was the initial credit; its settles (if any) apply now.
      // (An AckRequest never comes first: it has no start.)
      this.handle({ ...(first.value as ConsumeRequest), start: undefined, credit: 0 });
      void this.readRequests(iterator);
      for (;;) {
        const next = this.queue.shift();
        if (next !== undefined) {
          this.queuedBytes -= next.bytes;
          this.resumeIfDrained();
          yield next.output;
          continue;
        }
        if (this.failure !== null) throw this.failure;
        if (this.finished) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      await this.close();
      // Stop reading requests if the client is still sending (the call is over).
      void iterator.return?.().catch(() => undefined);
    }
  }

  // --- DeliverySink ---

  deliver(delivery: Delivery): void {
    // After the call ended the delivery is dropped: the group redelivers it once the subscription closes.
    if (this.closed) return;
    this.batch.push(delivery);
    this.batchBytes += deliveryBytes(delivery);
    if (this.batchBytes >= DELIVERY_BATCH_BYTES_MAX) this.flushBatch();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      // The broker delivers a burst synchronously: one response per burst.
      queueMicrotask(() => this.flushBatch());
    }
  }

  writable(): boolean {
    if (!this.closed && this.queuedBytes + this.batchBytes < CONSUME_QUEUED_BYTES_MAX) return true;
    this.paused = !this.closed;
    return false;
  }

  ended(reason: string): void {
    this.flushBatch();
    this.finish(new FerryError('UNKNOWN_SUBSCRIPTION', reason, { detail: { consumerId: this.id, ended: true } }));
  }

  /** The caller may no longer consume this topic (src/security/guard.ts): the call ends PERMISSION_DENIED. */
  revoked(error: FerryError): void {
    this.flushBatch();
    this.finish(new FerryError(error.code, error.message, { detail: { consumerId: this.id, ended: true } }));
  }

  // --- Requests ---

  private async readRequests(iterator: AsyncIterator<ConsumeInput>): Promise<void> {
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) break;
        if (this.finished) return;
        this.handle(next.value);
      }
      // Half-close: the client sends nothing more. Apply what it sent, then end with OK.
      await Promise.all([...this.settling]);
      await this.close();
      this.finish(null);
    } catch (error) {
      // A failed request (bad settle batch) fails the call; a broken request stream (the client
      // cancelled or the connection dropped) is also reported by the aborted signal.
      this.finish(error);
    }
  }

  private handle(request: ConsumeInput): void {
    if (request.start !== undefined) throw new FerryError('INVALID_ARGUMENT', 'start may only be sent in the first ConsumeRequest');
    const subscription = this.broker;
    if (subscription === null || this.closed) return;
    const count = 'kind' in request ? request.partitions.length : settleCount(request);
    if (count > 0) {
      checkSettleCount(count);
      const requestId = request.requestId;
      const settled = 'kind' in request ? applyAcks(subscription, request.partitions, request.offsets, this.deps.logger) : applySettles(subscription, request, this.deps.logger);
      const applied = settled.then((failures) => {
        if (requestId !== 0 || failures.length > 0) this.push({ response: { settled: { requestId, failures } } }, CONTROL_RESPONSE_BYTES);
      });
      this.settling.add(applied);
      void applied.finally(() => this.settling.delete(applied));
    } else if (request.requestId !== 0) {
      this.push({ response: { settled: { requestId: request.requestId, failures: [] } } }, CONTROL_RESPONSE_BYTES);
    }
    if (request.credit > 0) subscription.grantCredit(request.credit);
  }

  // --- Responses ---

  private flushBatch(): void {
    this.flushScheduled = false;
    if (this.batch.length === 0) return;
    const deliveries = this.batch;
    const bytes = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    this.push({ deliveries }, bytes);
  }

  private push(output: ConsumeOutput, bytes: number): void {
    if (this.finished) return;
    this.queue.push({ output, bytes });
    this.queuedBytes += bytes;
    this.wake?.();
  }

  private resumeIfDrained(): void {
    if (!this.paused || this.queuedBytes + this.batchBytes > CONSUME_QUEUED_BYTES_MAX / 2) return;
    this.paused = false;
    this.broker?.resume();
  }

  /** No more responses after those queued; `failure` (if any) ends the call after them. */
  private finish(failure: unknown): void {
    if (this.finished) return;
    this.finished = true;
    this.failure = failure;
    this.wake?.();
  }

  /** Closes the broker subscription once; unsettled deliveries go back to the group. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.deps.registry.remove(this);
    const subscription = this.broker;
    if (subscription === null) return;
    try {
      await subscription.close();
    } catch (error) {
      this.deps.logger.warn('grpc.consume.close_failed', { consumerId: this.id, error });
    }
  }
}
