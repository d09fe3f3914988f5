/**
 * A message handed to the application by a subscription. Headers and the timestamp are built on
 * first access: a consumer that reads only the value pays for neither.
 */
import type { WireHeader } from '../protocol/messages.js';
import type { SpanLike } from '../protocol/tracing.js';
import { endDeliverySpan, type Settlement } from './tracing.js';

/** What a message needs from the subscription that received it. */
export interface MessageSettler {
  ack(message: Message): Promise<void>;
  nack(message: Message, options?: NackOptions): Promise<void>;
  reject(message: Message, reason: string): Promise<void>;
  touch(message: Message): Promise<void>;
}

export interface NackOptions {
  /** Redeliver after exactly this long (0: at once); without it the group's backoff schedule applies. */
  delayMs?: number;
}

/** The dead letter's ferry-dlq-reason when reject() is given none. */
export const REJECT_REASON_DEFAULT = 'rejected by the consumer';

export class Message {
  private headerRecord: Record<string, string> | null = null;
  /** The consumer span of this delivery (client/tracing.ts: OpenTelemetry with an SDK registered), else null. */
  private trace: SpanLike | null = null;
  private traceOpen = false;

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: number,
    readonly timestampMs: number,
    readonly deliveryCount: number,
    readonly key: Buffer | null,
    private readonly headerList: readonly WireHeader[],
    readonly value: Buffer,
    private readonly settler: MessageSettler,
    /** The connection generation that delivered it: acks for an older one are moot. */
    readonly epoch: number,
  ) {}

  get headers(): Record<string, string> {
    if (this.headerRecord === null) {
      const record: Record<string, string> = {};
      for (const [name, value] of this.headerList) record[name] = value;
      this.headerRecord = record;
    }
    return this.headerRecord;
  }

  get timestamp(): Date {
    return new Date(this.timestampMs);
  }

  /**
   * The OpenTelemetry span of this delivery (`process <topic>`), when the application has
   * `@opentelemetry/api` and a registered SDK: make it the parent of the work on this message
   * (`trace.setSpan(context.active(), message.span)`). Undefined otherwise. Settling ends it.
   */
  get span(): unknown {
    return this.trace ?? undefined;
  }

  /** Called by the subscription when the message is handed to the application (tracing on). */
  traced(span: SpanLike | null, settles: boolean): void {
    if (span === null) return;
    this.trace = span;
    this.traceOpen = settles;
    if (!settles) span.end();
  }

  private settled(settlement: Settlement, done: Promise<void>): Promise<void> {
    if (this.traceOpen) {
      this.traceOpen = false;
      endDeliverySpan(this.trace!, settlement, done);
    }
    return done;
  }

  /**
   * Settles the message for its group (streams: a no-op). Resolves once the ACK is queued on the
   * connection (it leaves in the same event-loop turn); rejects with CONNECTION_CLOSED when the
   * subscription is closed. If the connection that delivered the message was lost, the ack is moot:
   * the broker redelivers the message (at-least-once), and the promise resolves.
   */
  ack(): Promise<void> {
    const done = this.settler.ack(this);
    return this.trace === null ? done : this.settled('ack', done);
  }

  /**
   * Returns the message to its group for redelivery: after `delayMs` if given, else after the
   * group's backoff for its delivery count. Past the group's deliveriesMax it is dead-lettered.
   * Resolves once queued, like ack().
   */
  nack(options?: NackOptions): Promise<void> {
    const done = this.settler.nack(this, options);
    return this.trace === null ? done : this.settled('nack', done);
  }

  /**
   * Moves the message to the group's dead-letter topic now, with `reason` in its ferry-dlq-reason
   * header. Unlike ack() this waits for the broker: it resolves once the dead letter is stored and
   * the original settled, both durably. It rejects with CONNECTION_CLOSED when the connection that
   * delivered the message was lost (the broker delivers it again), and with INVALID_ARGUMENT for a
   * stream subscription (no group, so no dead-letter topic).
   */
  reject(reason: string = REJECT_REASON_DEFAULT): Promise<void> {
    const done = this.settler.reject(this, reason);
    return this.trace === null ? done : this.settled('reject', done);
  }

  /**
   * Tells the broker the message is still being worked on: its ack timeout starts again. Resolves
   * once queued (fire-and-forget, like ack()); a no-op for streams.
   */
  touch(): Promise<void> {
    return this.settler.touch(this);
  }
}
