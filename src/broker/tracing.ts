/**
 * The broker's own spans (docs/OPERATIONS.md, "Tracing"): when the process has
 * `@opentelemetry/api` and a registered SDK (an embedding application's, or one loaded with
 * `node --import` before `ferry serve`), moving a message to its dead-letter topic and
 * republishing it by a redrive each make a span, the child of the producer's context the message
 * carries, so they join the message's trace. Without the API or an SDK nothing is done
 * (src/protocol/tracing.ts).
 */
import type { Header } from '../storage/types.js';
import { failSpan, loadOtelApi, MESSAGING_ATTRIBUTES as A, MESSAGING_SYSTEM, SPAN_KIND, Tracing, type SpanLike } from '../protocol/tracing.js';
import type { PublishMessage } from './types.js';

/** The instrumentation scope of the broker's spans. */
const SCOPE = 'ferry/broker';
const DLQ_REASON_HEADER = 'ferry-dlq-reason';
const DLQ_TOPIC_HEADER = 'ferry-dlq-topic';

type Operation = 'dead_letter' | 'redrive';

export class BrokerTracing {
  /** The broker's tracing, or null when `@opentelemetry/api` is not installed. */
  static async load(): Promise<BrokerTracing | null> {
    const api = await loadOtelApi();
    return api === null ? null : new BrokerTracing(new Tracing(api, SCOPE));
  }

  constructor(private readonly tracing: Tracing) {}

  /** Runs `store` (the dead letter's publish to `deadLetterTopic`) inside a span per message. */
  deadLetter(deadLetterTopic: string, message: PublishMessage, store: () => Promise<void>): Promise<void> {
    return this.around('dead_letter', deadLetterTopic, [message], store);
  }

  /** Runs `store` (the republish of dead letters to `topic`) inside a span per message. */
  redrive(topic: string, messages: readonly PublishMessage[], store: () => Promise<void>): Promise<void> {
    return this.around('redrive', topic, messages, store);
  }

  private around(operation: Operation, topic: string, messages: readonly PublishMessage[], store: () => Promise<void>): Promise<void> {
    const tracer = this.tracing.tracer();
    if (tracer === null) return store();
    const spans: SpanLike[] = messages.map((message) => {
      const headers = message.headers ?? [];
      const attributes: Record<string, string | number> = {
        [A.system]: MESSAGING_SYSTEM,
        [A.destination]: topic,
        [A.operationName]: operation,
        [A.operationType]: 'send',
        [A.bodySize]: message.value.length,
      };
      const source = valueOf(headers, DLQ_TOPIC_HEADER);
      if (source !== undefined && operation === 'dead_letter') attributes[A.sourceTopic] = source;
      const reason = valueOf(headers, DLQ_REASON_HEADER);
      if (reason !== undefined && operation === 'dead_letter') attributes[A.reason] = reason;
      if (operation === 'redrive' && message.id !== undefined) attributes[A.messageId] = message.id;
      return tracer.startSpan(`${operation} ${topic}`, { kind: SPAN_KIND.PRODUCER, attributes }, this.tracing.extract(headers as Header[]));
    });
    return store().then(
      () => {
        for (const span of spans) span.end();
      },
      (error: unknown) => {
        for (const span of spans) {
          failSpan(span, error);
          span.end();
        }
        throw error;
      },
    );
  }
}

function valueOf(headers: readonly Header[], name: string): string | undefined {
  for (const [key, value] of headers) if (key === name) return value;
  return undefined;
}
