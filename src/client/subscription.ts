/**
 * A subscription as the application sees it: an async iterator of messages with flow control.
 * The rest: docs/INTERNALS.md.
 */
import { FerryError } from '../errors.js';
import { FRAME_TYPES } from '../protocol/frame.js';
import { appendAck, appendCredit, appendNack } from '../protocol/codec-subscribe.js';
import { appendReject, appendTouch } from '../protocol/codec-settle.js';
import { NACK_DELAY_BACKOFF, type DeliverBatch, type SubscribeRequest, type WireStartPosition } from '../protocol/messages.js';
import type { ClientConnection } from './connection.js';
import { Message, type MessageSettler, type NackOptions } from './message.js';
import { SettleRequest } from './settle-request.js';
import type { ClientTracing } from './tracing.js';

export type StartFrom = 'earliest' | 'latest' | number | Date;

export interface SubscribeOptions {
  /** Queue group: messages are shared among the group's subscribers and must be acked. */
  group?: string;
  /** Where a new group or a stream starts (default: earliest for groups, latest for streams). */
  from?: StartFrom;
  /** Messages held by this client at most (buffered + unacknowledged). */
  prefetch?: number;
  /** Group settings, applied when the group is created by this subscribe. */
  ackTimeoutMs?: number;
  backoffMs?: number[];
  deliveriesMax?: number;
  deadLetterTopic?: string;
}

/**
 * The 'subscriptionMoved' event: the client took `subscription` off its broker (the connection was
 * lost, or the broker no longer leads the topic) and makes it again, on the topic's leader in a
 * cluster. Settles sent in `generation` (the one that ended) may never have been applied: their
 * messages may come again, and a later answered close() does not vouch for them.
 */
export interface SubscriptionMovedEvent {
  subscription: Subscription;
  topic: string;
  group: string | undefined;
  /** The generation that ended (subscription.generation before it is made again). */
  generation: number;
  /** Why: the lost connection's error, or NOT_LEADER. */
  error: FerryError;
}

export type GroupSettings = Pick<SubscribeOptions, 'ackTimeoutMs' | 'backoffMs' | 'deliveriesMax' | 'deadLetterTopic'>;

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  /** Credit is owed: write it before the subscription's connection next flushes. */
  creditDirty(subscription: Subscription): void;
  unsubscribe(connection: ClientConnection, wireId: number): Promise<void>;
  subscriptionClosed(subscription: Subscription): void;
  /** Consumer spans (client/tracing.ts); null without @opentelemetry/api or with tracing off. */
  readonly tracing: ClientTracing | null;
}

const RESOLVED: Promise<void> = Promise.resolve();
const DONE: IteratorResult<Message> = Object.freeze({ done: true, value: undefined });
/** Credit owed that is sent at once, not at the end of the turn: a quarter of prefetch, at least 16. */
const EAGER_CREDIT_FRACTION_DIVISOR = 4;
const EAGER_CREDIT_MIN = 16;
/** Taken slots at the buffer head that trigger compaction (amortised O(1) per message). */
const COMPACT_AFTER = 1024;

export function toStartPosition(from: StartFrom | undefined, group: string | undefined): WireStartPosition {
  if (from === undefined) return { kind: group === undefined ? 'latest' : 'earliest' };
  if (from === 'earliest' || from === 'latest') return { kind: from };
  if (typeof from === 'number') {
    if (!Number.isSafeInteger(from) || from < 0) throw new FerryError('INVALID_ARGUMENT', `from offset must be a non-negative integer, got ${from}`);
    return { kind: 'offset', offset: from };
  }
  if (from instanceof Date && !Number.isNaN(from.getTime())) return { kind: 'timestamp', timestampMs: Math.max(0, from.getTime()) };
  throw new FerryError('INVALID_ARGUMENT', `from must be 'earliest', 'latest', an offset or a Date`);
}

export class Subscription implements AsyncIterableIterator<Message>, MessageSettler {
  private connection: ClientConnection | null = null;
  private wireId = 0;
  /** Incremented at each (re)subscribe; messages remember theirs. */
  private epoch = 0;
  private buffer: Array<Message | undefined> = [];
  private head = 0;
  /** Calls of next() not yet answered, oldest first: each takes the next message, as an async generator's would. */
  private readonly waiters: Array<{ resolve: (result: IteratorResult<Message>) => void; reject: (error: unknown) => void }> = [];
  private closed = false;
  private closing: Promise<boolean> | null = null;
  private failure: FerryError | null = null;
  private creditOwed = 0;
  /** Streams: next offset wanted per partition (last received + 1). */
  private readonly nextOffsets = new Map<number, number>();

  constructor(
    readonly topic: string,
    readonly group: string | undefined,
    readonly prefetch: number,
    private readonly from: WireStartPosition,
    private readonly host: SubscriptionHost,
    private readonly groupSettings: GroupSettings = {},
  ) {}

  /** The connection the subscription is attached to (null while detached). */
  get currentConnection(): ClientConnection | null {
    return this.connection;
  }

  /** The server's id for this subscription on the current connection (0 while detached). */
  get id(): number {
    return this.wireId;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Which attachment to a broker the subscription is on: 1 once subscribed, one more each time the
   * client makes it again (after a lost connection, or on its topic's new leader; the client emits
   * 'subscriptionMoved' when it takes the subscription off a broker). A message is settled only
   * on the broker of the generation that delivered it, and an answered close() vouches only for
   * settles sent in the current generation: acks of an earlier one may never have been applied.
   */
  get generation(): number {
    return this.epoch;
  }

  /** Messages received and not yet taken by the application. */
  get buffered(): number {
    return this.buffer.length - this.head;
  }

  // ---- connection lifecycle (driven by the client) ----

  /** The SUBSCRIBE request for the current state: first subscribe or resume. */
  subscribeRequest(): SubscribeRequest {
    const request: SubscribeRequest = { topic: this.topic, from: this.from, credit: Math.max(0, this.prefetch - this.buffered) };
    if (this.group !== undefined) {
      request.group = this.group;
      request.credit = this.prefetch;
      const settings = this.groupSettings;
      if (settings.ackTimeoutMs !== undefined) request.ackTimeoutMs = settings.ackTimeoutMs;
      if (settings.backoffMs !== undefined) request.backoffMs = settings.backoffMs;
      if (settings.deliveriesMax !== undefined) request.deliveriesMax = settings.deliveriesMax;
      if (settings.deadLetterTopic !== undefined) request.deadLetterTopic = settings.deadLetterTopic;
    } else if (this.nextOffsets.size > 0) {
      // The broker takes one start offset for every partition: start at the lowest wanted one and
      // skip, per partition, what was already received. The exact positions travel too (tag 1).
      let lowest = Number.MAX_SAFE_INTEGER;
      for (const offset of this.nextOffsets.values()) lowest = Math.min(lowest, offset);
      request.from = { kind: 'offset', offset: lowest };
      request.resumeOffsets = [...this.nextOffsets];
    }
    return request;
  }

  attach(connection: ClientConnection, wireId: number): void {
    this.connection = connection;
    this.wireId = wireId;
    this.epoch++;
    this.creditOwed = 0;
  }

  /** The connection is gone: group messages not yet taken will be redelivered, so drop them. */
  detach(): void {
    this.connection = null;
    this.wireId = 0;
    this.creditOwed = 0;
    if (this.group !== undefined) {
      this.buffer = [];
      this.head = 0;
    }
  }

  onDeliver(batch: DeliverBatch): void {
    if (this.closed) return;
    const isStream = this.group === undefined;
    for (const d of batch.deliveries) {
      if (isStream) {
        const next = this.nextOffsets.get(d.partition);
        if (next !== undefined && d.offset < next) {
          // A duplicate after a resume: skip it and give its credit back.
          this.owe(1);
          continue;
        }
        this.nextOffsets.set(d.partition, d.offset + 1);
      }
      const message = new Message(
        batch.topic,
        d.partition,
        d.offset,
        d.timestampMs,
        d.deliveryCount,
        d.key,
        d.headers,
        d.value,
        this,
        this.epoch,
      );
      const waiter = this.buffered === 0 ? this.waiters.shift() : undefined;
      if (waiter !== undefined) {
        if (isStream) this.owe(1);
        waiter.resolve({ done: false, value: this.handOver(message) });
      } else {
        this.buffer.push(message);
      }
    }
  }

  /** Ends the subscription with an error (e.g. reconnecting gave up). */
  fail(error: FerryError): void {
    if (this.closed) return;
    this.closed = true;
    this.failure = error;
    this.buffer = [];
    this.head = 0;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }

  /** Appends the credit owed since the last flush (called by the client before each flush). */
  writeCredit(connection: ClientConnection): void {
    if (this.creditOwed === 0 || connection !== this.connection || this.closed) return;
    appendCredit(connection.writer, this.wireId, this.creditOwed);
    this.creditOwed = 0;
  }

  private owe(count: number): void {
    if (this.connection === null) return;
    if (this.creditOwed === 0) this.host.creditDirty(this);
    this.creditOwed += count;
    // A burst of deliveries is consumed in one turn; sending its acks and credit only at the end of
    // the turn left the broker idle meanwhile. Once a quarter of the window is owed it leaves now,
    // so the broker refills while the application works through the rest.
    if (this.creditOwed >= Math.max(EAGER_CREDIT_MIN, this.prefetch / EAGER_CREDIT_FRACTION_DIVISOR)) this.connection.flushNow();
  }

  // ---- the iterator ----

  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this;
  }

  next(): Promise<IteratorResult<Message>> {
    if (this.head < this.buffer.length) return Promise.resolve({ done: false, value: this.take() });
    if (this.closed) return this.failure === null ? Promise.resolve(DONE) : Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
    });
  }

  async return(): Promise<IteratorResult<Message>> {
    await this.close();
    return DONE;
  }

  private take(): Message {
    const message = this.buffer[this.head]!;
    this.buffer[this.head] = undefined;
    this.head++;
    if (this.head === this.buffer.length) {
      this.buffer = [];
      this.head = 0;
    } else if (this.head >= COMPACT_AFTER && this.head * 2 >= this.buffer.length) {
      this.buffer = this.buffer.slice(this.head);
      this.head = 0;
    }
    if (this.group === undefined) this.owe(1);
    return this.handOver(message);
  }

  /** The message as the application gets it: with its consumer span when tracing. */
  private handOver(message: Message): Message {
    const tracing = this.host.tracing;
    if (tracing !== null) message.traced(tracing.deliver(message, this.group), this.group !== undefined);
    return message;
  }

  // ---- settling ----

  ack(message: Message): Promise<void> {
    return this.settle(message, false, 0);
  }

  nack(message: Message, options: NackOptions = {}): Promise<void> {
    const delayMs = options.delayMs ?? NACK_DELAY_BACKOFF;
    if (options.delayMs !== undefined && (!Number.isInteger(delayMs) || delayMs < 0 || delayMs >= NACK_DELAY_BACKOFF)) {
      return Promise.reject(new FerryError('INVALID_ARGUMENT', `delayMs must be an integer from 0 to ${NACK_DELAY_BACKOFF - 1}, got ${delayMs}`));
    }
    return this.settle(message, true, delayMs);
  }

  /** REJECT travels with a request id: the promise waits for the SETTLED reply (the dead letter is durable). */
  reject(message: Message, reason: string): Promise<void> {
    if (this.closed) return Promise.reject(new FerryError('CONNECTION_CLOSED', 'the subscription is closed'));
    if (this.group === undefined) {
      return Promise.reject(new FerryError('INVALID_ARGUMENT', 'only messages of a queue group can be rejected (a stream has no dead-letter topic)'));
    }
    if (typeof reason !== 'string') return Promise.reject(new FerryError('INVALID_ARGUMENT', 'the reject reason must be a string'));
    const connection = this.connection;
    if (message.epoch !== this.epoch || connection === null) {
      return Promise.reject(
        new FerryError('CONNECTION_CLOSED', 'the connection that delivered this message was lost; the broker delivers it again'),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const w = connection.writer;
      let request: SettleRequest | undefined;
      if (w.canAppend(FRAME_TYPES.REJECT, this.wireId)) {
        const open = connection.pendingRequest(w.openRequestId);
        if (open instanceof SettleRequest) request = open;
      }
      const fresh = request === undefined;
      request ??= new SettleRequest(connection.allocateRequestId(), connection.deadline());
      try {
        appendReject(w, this.wireId, message.partition, message.offset, reason, request.id);
      } catch (error) {
        reject(error);
        return;
      }
      if (fresh) connection.track(request);
      request.add({ resolve, reject });
      connection.scheduleFlush();
      this.owe(1);
    });
  }

  touch(message: Message): Promise<void> {
    if (this.closed) return Promise.reject(new FerryError('CONNECTION_CLOSED', 'the subscription is closed'));
    // Streams have no ack timeout; a message from a lost connection will be redelivered anyway.
    if (this.group === undefined || message.epoch !== this.epoch || this.connection === null) return RESOLVED;
    appendTouch(this.connection.writer, this.wireId, message.partition, message.offset);
    this.connection.scheduleFlush();
    return RESOLVED;
  }

  private settle(message: Message, nack: boolean, delayMs: number): Promise<void> {
    if (this.closed) return Promise.reject(new FerryError('CONNECTION_CLOSED', 'the subscription is closed'));
    // Streams keep no delivery state; a message from a lost connection will be redelivered anyway.
    if (this.group === undefined || message.epoch !== this.epoch || this.connection === null) return RESOLVED;
    const connection = this.connection;
    if (nack) appendNack(connection.writer, this.wireId, message.partition, message.offset, delayMs);
    else appendAck(connection.writer, this.wireId, message.partition, message.offset);
    connection.scheduleFlush();
    this.owe(1);
    return RESOLVED;
  }

  // ---- closing ----

  /**
   * Stops deliveries (UNSUBSCRIBE; acks queued before it are applied first) and ends the iterator.
   * Resolves with true when the broker answered the UNSUBSCRIBE: every ack and nack of this
   * subscription sent before close() on its current connection — in its current `generation` —
   * had then settled (an ack durably, per the topic's durability); it says nothing of settles
   * sent in an earlier generation, to a broker the subscription has since left. Resolves with
   * false when no answer came — the connection was lost (possibly before the client noticed: its
   * socket had failed, no 'reconnecting' yet), the request timed out, the broker had ended the
   * subscription, or it was not attached: those acks may be lost, and the broker delivers their
   * messages again. Never rejects; a second call returns the first call's outcome.
   */
  close(): Promise<boolean> {
    return (this.closing ??= this.closeOnce());
  }

  private async closeOnce(): Promise<boolean> {
    this.closed = true;
    this.buffer = [];
    this.head = 0;
    for (const waiter of this.waiters.splice(0)) waiter.resolve(DONE);
    const connection = this.connection;
    const wireId = this.wireId;
    this.connection = null;
    try {
      if (connection === null || wireId === 0) return false;
      await this.host.unsubscribe(connection, wireId);
      return true;
    } catch {
      // The connection went away (the server closes the subscription with it), or no answer in time.
      return false;
    } finally {
      this.host.subscriptionClosed(this);
    }
  }
}
