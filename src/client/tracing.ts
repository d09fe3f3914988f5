/**
 * The client's spans (docs/OPERATIONS.md, "Tracing"), made only while the application has
 * `@opentelemetry/api` and a registered SDK (src/protocol/tracing.ts):
 * - a producer span per published message (`send <topic>`), whose context goes into the message's
 *   headers (`traceparent`), ended when the broker confirms (with partition and offset) or refuses;
 * - a consumer span per delivery handed to the application (`process <topic>`), the child of the
 *   producer's context carried by the message, and linked to it, so a publish, each of its
 *   deliveries, a dead letter and a redriven copy form one trace; ended by ack, nack or reject
 *   (a stream's, which is never settled, when handed over).
 */
import { failSpan, loadOtelApi, MESSAGING_ATTRIBUTES as A, MESSAGING_SYSTEM, SPAN_KIND, TRACEPARENT_HEADER, Tracing, type SpanLike, type TraceContext } from '../protocol/tracing.js';

/** The instrumentation scope of the client's spans. */
const SCOPE = 'ferry/client';
/** The header a message id travels in (the broker's dedup.ts): the span's messaging.message.id. */
const ID_HEADER = 'ferry-id';

export type Settlement = 'ack' | 'nack' | 'reject';

export interface PublishedPosition {
  partition: number;
  offset: number;
}

/** One message's producer span and the headers that carry its context. */
export class PublishTrace {
  constructor(
    private readonly span: SpanLike,
    /** The message's headers with the span's context added. */
    readonly headers: Record<string, string>,
  ) {}

  /** Ends the span with the broker's answer. */
  confirmed(position: PublishedPosition, id: string | undefined): void {
    this.span.setAttribute(A.partition, String(position.partition));
    this.span.setAttribute(A.offset, position.offset);
    if (id !== undefined) this.span.setAttribute(A.messageId, id);
    this.span.end();
  }

  /** Ends the span as failed (refused, timed out, connection lost). */
  failed(error: unknown): void {
    failSpan(this.span, error);
    this.span.end();
  }

  /** UDP: nothing will be confirmed; the span ends once the datagram is handed to the socket. */
  sent(handed: boolean): void {
    if (!handed) failSpan(this.span, 'dropped in the client: its UDP send queue was full');
    this.span.end();
  }
}

export class ClientTracing {
  /** The tracing of a client, or null when `@opentelemetry/api` is not installed (nothing is ever done then). */
  static async load(): Promise<ClientTracing | null> {
    const api = await loadOtelApi();
    return api === null ? null : new ClientTracing(new Tracing(api, SCOPE));
  }

  constructor(private readonly tracing: Tracing) {}

  /**
   * A producer span for one message to `topic`, or null when no SDK is registered. Its parent is
   * the application's active span, or else the trace context the application put in `headers`.
   */
  publish(topic: string, value: Buffer | string | Uint8Array, headers: Readonly<Record<string, string>> | undefined, transport: 'tcp' | 'udp'): PublishTrace | null {
    const tracer = this.tracing.tracer();
    if (tracer === null) return null;
    const bodyBytes = typeof value === 'string' ? Buffer.byteLength(value) : (value?.byteLength ?? 0);
    let parent = this.tracing.active();
    if (this.tracing.spanContextOf(parent) === undefined && headers?.[TRACEPARENT_HEADER] !== undefined) parent = this.tracing.extract(headers);
    const attributes = { [A.system]: MESSAGING_SYSTEM, [A.destination]: topic, [A.operationName]: 'send', [A.operationType]: 'send', [A.bodySize]: bodyBytes, 'network.transport': transport };
    const span = tracer.startSpan(`send ${topic}`, { kind: SPAN_KIND.PRODUCER, attributes }, parent);
    const carried: Record<string, string> = { ...headers };
    this.tracing.inject(this.tracing.withSpan(parent, span), carried);
    return new PublishTrace(span, carried);
  }

  /** A consumer span for a delivery handed to the application, or null when no SDK is registered. */
  deliver(delivery: DeliveredMessage, group: string | undefined): SpanLike | null {
    const tracer = this.tracing.tracer();
    if (tracer === null) return null;
    const headers = delivery.headers;
    const producer = this.tracing.extract(headers);
    const producerSpan = this.tracing.spanContextOf(producer);
    const attributes: Record<string, string | number> = {
      [A.system]: MESSAGING_SYSTEM,
      [A.destination]: delivery.topic,
      [A.operationName]: 'process',
      [A.operationType]: 'process',
      [A.partition]: String(delivery.partition),
      [A.offset]: delivery.offset,
      [A.deliveryCount]: delivery.deliveryCount,
      [A.bodySize]: delivery.value.length,
    };
    if (group !== undefined) attributes[A.group] = group;
    const id = headers[ID_HEADER];
    if (id !== undefined) attributes[A.messageId] = id;
    return tracer.startSpan(
      `process ${delivery.topic}`,
      { kind: SPAN_KIND.CONSUMER, attributes, ...(producerSpan === undefined ? {} : { links: [{ context: producerSpan }] }) },
      producer as TraceContext,
    );
  }
}

/** Ends each message's producer span with its result (or the publish's failure); passes the outcome on. */
export function traced<T extends PublishedPosition | PublishedPosition[]>(sent: Promise<T>, traces: ReadonlyArray<PublishTrace | null>, messages: ReadonlyArray<{ id?: string }>): Promise<T> {
  return sent.then(
    (result) => {
      const positions = Array.isArray(result) ? result : [result];
      traces.forEach((trace, i) => {
        const position = positions[i];
        if (position !== undefined) trace?.confirmed(position, messages[i]?.id);
        else trace?.failed('no result for this message');
      });
      return result;
    },
    (error: unknown) => {
      for (const trace of traces) trace?.failed(error);
      throw error;
    },
  );
}

/** What a consumer span is made from (a Message). */
export interface DeliveredMessage {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly deliveryCount: number;
  readonly value: Buffer;
  readonly headers: Record<string, string>;
}

/** Ends a consumer span once its settle is done (ack and nack: queued; reject: the dead letter stored). */
export function endDeliverySpan(span: SpanLike, settlement: Settlement, settled: Promise<void>): void {
  span.setAttribute(A.settlement, settlement);
  settled.then(
    () => span.end(),
    (error: unknown) => {
      failSpan(span, error);
      span.end();
    },
  );
}
