/**
 * One Server-Sent Events stream: a broker subscription written to an HTTP response as
 * `text/event-stream` (docs/HTTP.md, "Consuming with Server-Sent Events").
 *
 * Each message is one event: `id: <partition>:<offset>`, and its value as `data:` lines (UTF-8
 * text, one `data:` line per line of it). A value that text cannot carry exactly (not UTF-8, or
 * holding a carriage return, which SSE reads as a line end) is sent as an event of type `base64`
 * with the value in base64, so nothing is lost; with `encoding=base64` every value is (type
 * `message`).
 *
 * Credit is the subscription's: `prefetch` messages at first, then one more per message written
 * (streams), acked by the broker (`autoAck=true`), or acked over `POST .../acks` (groups). The
 * events of one burst of deliveries are written together, in one write.
 */
import { isUtf8 } from 'node:buffer';
import type { ServerResponse } from 'node:http';
import type { ErrorCode } from '../../errors.js';
import type { Delivery, DeliverySink, Subscription } from '../../broker/types.js';
import type { Logger } from '../../platform/logger.js';
import { SSE_KEEPALIVE_MS, SSE_RETRY_MS } from './limits.js';

export type EventEncoding = 'utf8' | 'base64';

export interface EventStreamOptions {
  topic: string;
  /** The queue group; absent: a stream subscription (no acks). */
  group: string | undefined;
  /** Group streams: the broker acks each message once it is written. */
  autoAck: boolean;
  encoding: EventEncoding;
  logger: Logger;
  /** Called once when the stream ends, whichever side ends it. */
  onClose: (stream: EventStream) => void;
}

export class EventStream implements DeliverySink {
  private subscription: Subscription | null = null;
  private pending = '';
  /** Deliveries in `pending`, and (auto-acked groups) their positions. */
  private pendingCount = 0;
  private pendingPositions: Array<[number, number]> = [];
  private flushScheduled = false;
  private paused = false;
  /** Manual-ack groups: the positions written and not yet acked (`partition:offset`). */
  private readonly unacked = new Set<string>();
  private readonly keepalive: NodeJS.Timeout;
  private closed = false;
  private started = false;

  constructor(
    private readonly res: ServerResponse,
    readonly options: EventStreamOptions,
  ) {
    res.on('drain', this.onDrain);
    res.once('close', () => void this.close());
    this.keepalive = setInterval(() => {
      if (this.started && this.pending === '') res.write(': keep-alive\n\n');
    }, SSE_KEEPALIVE_MS);
    this.keepalive.unref();
  }

  /**
   * The subscription is open: the response starts (200, the retry hint) and what was delivered
   * meanwhile goes out. Until then nothing is written, so a refused subscribe is answered as JSON.
   */
  start(subscription: Subscription): void {
    this.subscription = subscription;
    if (this.closed) {
      void subscription.close().catch(() => undefined);
      return;
    }
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // Reverse proxies (nginx) must pass events on as they come, not buffer them.
      'x-accel-buffering': 'no',
    });
    const { topic, group } = this.options;
    this.res.write(`retry: ${SSE_RETRY_MS}\n: ferry ${topic}${group === undefined ? '' : ` group ${group}`}\n\n`);
    this.started = true;
    this.flush();
  }

  /** The subscribe failed: nothing was written; the caller answers the error. */
  discard(): void {
    this.closed = true;
    clearInterval(this.keepalive);
    this.res.off('drain', this.onDrain);
    this.options.onClose(this);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  // --- DeliverySink ---

  deliver(delivery: Delivery): void {
    // After the stream closed the delivery is dropped: the group redelivers it once the subscription closes.
    if (this.closed) return;
    this.pending += eventText(delivery, this.options.encoding);
    this.pendingCount++;
    if (this.options.group !== undefined) {
      if (this.options.autoAck) this.pendingPositions.push([delivery.partition, delivery.offset]);
      else this.unacked.add(`${delivery.partition}:${delivery.offset}`);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // The broker delivers a burst synchronously: one write per burst.
      queueMicrotask(this.flush);
    }
  }

  writable(): boolean {
    if (this.closed) return false;
    // writableNeedDrain is HTTP/1.1's only; the buffered length against the mark is both versions'.
    if (this.res.writableLength < this.res.writableHighWaterMark) return true;
    this.paused = true;
    return false;
  }

  ended(reason: string, code?: ErrorCode): void {
    this.fail(code ?? 'UNKNOWN_SUBSCRIPTION', reason);
  }

  /** The caller may no longer consume this topic (src/security/guard.ts). */
  revoked(error: { code: ErrorCode; message: string }): void {
    this.fail(error.code, error.message);
  }

  // --- Acks over POST .../acks ---

  /** Whether this stream holds `partition:offset` unacked (manual-ack groups). */
  holds(id: string): boolean {
    return this.unacked.has(id);
  }

  /** Acks positions this stream holds; credit comes back once the acks are durable. */
  async ack(positions: ReadonlyArray<[number, number]>): Promise<void> {
    const subscription = this.subscription;
    if (subscription === null || positions.length === 0) return;
    const acks: Array<Promise<void>> = [];
    for (const [partition, offset] of positions) {
      if (!this.unacked.delete(`${partition}:${offset}`)) continue;
      acks.push(subscription.ack(partition, offset));
    }
    await Promise.all(acks);
    if (!this.closed) subscription.grantCredit(acks.length);
  }

  /** Ends the stream and its subscription (unacked group messages become deliverable again). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.keepalive);
    this.res.off('drain', this.onDrain);
    if (!this.res.writableEnded) this.res.end();
    this.options.onClose(this);
    this.unacked.clear();
    await this.subscription?.close().catch((error: unknown) => this.options.logger.debug('rest.sse.close_failed', { error }));
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.closed || !this.started || this.pending === '') return;
    const count = this.pendingCount;
    const positions = this.pendingPositions;
    this.res.write(this.pending);
    this.pending = '';
    this.pendingCount = 0;
    this.pendingPositions = [];
    const subscription = this.subscription;
    if (subscription === null) return;
    if (this.options.group === undefined) subscription.grantCredit(count);
    else if (this.options.autoAck) this.autoAck(subscription, positions);
  };

  /** Acks what was just written; the credit comes back when the acks are durable (they share one journal record). */
  private autoAck(subscription: Subscription, positions: Array<[number, number]>): void {
    const acks = positions.map(([partition, offset]) => subscription.ack(partition, offset));
    Promise.all(acks).then(
      () => {
        if (!this.closed) subscription.grantCredit(positions.length);
      },
      (error: unknown) => {
        this.options.logger.warn('rest.sse.ack_failed', { topic: this.options.topic, group: this.options.group, error });
        void this.close();
      },
    );
  }

  private readonly onDrain = (): void => {
    if (!this.paused) return;
    this.paused = false;
    this.subscription?.resume();
  };

  private fail(code: string, message: string): void {
    if (this.closed) return;
    this.flush();
    if (!this.started) {
      void this.close();
      return;
    }
    this.res.write(`event: error\ndata: ${JSON.stringify({ code, message })}\n\n`);
    void this.close();
  }
}

/** One delivery as SSE text, ending with the blank line that dispatches it. */
export function eventText(delivery: Delivery, encoding: EventEncoding): string {
  const { value } = delivery;
  const id = `id: ${delivery.partition}:${delivery.offset}\n`;
  if (encoding === 'base64') return `${id}data: ${value.toString('base64')}\n\n`;
  if (value.includes(0x0d) || !isUtf8(value)) return `${id}event: base64\ndata: ${value.toString('base64')}\n\n`;
  const text = value.toString('utf8');
  if (!text.includes('\n')) return `${id}data: ${text}\n\n`;
  return `${id}data: ${text.split('\n').join('\ndata: ')}\n\n`;
}
