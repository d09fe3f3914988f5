/**
 * A message handed to the application by a subscription. Headers and the timestamp are built on
 * first access: a consumer that reads only the value pays for neither.
 */
import type { WireHeader } from '../protocol/messages.js';

/** What a message needs from the subscription that received it. */
export interface MessageSettler {
  ack(message: Message): Promise<void>;
  nack(message: Message, options?: NackOptions): Promise<void>;
}

export interface NackOptions {
  /** Redeliver no sooner than this. */
  delayMs?: number;
}

export class Message {
  private headerRecord: Record<string, string> | null = null;

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
   * Settles the message for its group (streams: a no-op). Resolves once the ACK is queued on the
   * connection (it leaves in the same event-loop turn); rejects with CONNECTION_CLOSED when the
   * subscription is closed. If the connection that delivered the message was lost, the ack is moot:
   * the broker redelivers the message (at-least-once), and the promise resolves.
   */
  ack(): Promise<void> {
    return this.settler.ack(this);
  }

  /** Returns the message to its group for redelivery (after `delayMs` if given). */
  nack(options?: NackOptions): Promise<void> {
    return this.settler.nack(this, options);
  }
}
