/**
 * OpenTelemetry, when the application has it (docs/OPERATIONS.md, "Tracing"). `@opentelemetry/api`
 * is an optional peer dependency: it is imported once, on first use, and if it is missing nothing
 * else ever happens. With the API present, spans are made only while an SDK is registered
 * (`recording()`), so an application without one pays one check per message and nothing more.
 *
 * Shared by the client (producer and consumer spans) and the broker (dead-letter and redrive
 * spans): both read and write the trace context in a message's headers the same way — through the
 * application's registered propagator, or as a W3C `traceparent` when none is registered — and name
 * spans and attributes by OpenTelemetry's messaging semantic conventions.
 * Only structural types are used here: nothing of the API's types leaks into Ferry's declarations.
 */
import type { WireHeader } from './messages.js';

export const TRACEPARENT_HEADER = 'traceparent';
export const TRACESTATE_HEADER = 'tracestate';

/** `messaging.system` of every span Ferry makes. */
export const MESSAGING_SYSTEM = 'ferry';

/** Attribute names: OpenTelemetry's messaging conventions, and Ferry's own under `messaging.ferry.`. */
export const MESSAGING_ATTRIBUTES = {
  system: 'messaging.system',
  destination: 'messaging.destination.name',
  operationName: 'messaging.operation.name',
  operationType: 'messaging.operation.type',
  messageId: 'messaging.message.id',
  partition: 'messaging.destination.partition.id',
  group: 'messaging.consumer.group.name',
  bodySize: 'messaging.message.body.size',
  /** The message's offset in its partition (as Kafka's `messaging.kafka.offset`). */
  offset: 'messaging.ferry.offset',
  /** 1 on the first delivery to a group, more on redeliveries. */
  deliveryCount: 'messaging.ferry.delivery_count',
  /** How a delivery ended: ack, nack or reject. */
  settlement: 'messaging.ferry.settlement',
  /** Dead letters and redrives: where the message came from. */
  sourceTopic: 'messaging.ferry.source.topic',
  reason: 'messaging.ferry.dlq.reason',
} as const;

/** OpenTelemetry's SpanKind values. */
export const SPAN_KIND = { INTERNAL: 0, PRODUCER: 3, CONSUMER: 4 } as const;
/** OpenTelemetry's SpanStatusCode.ERROR. */
const STATUS_ERROR = 2;

export type Attributes = Record<string, string | number | boolean>;

/** The parts of a span Ferry uses. */
export interface SpanLike {
  setAttribute(name: string, value: string | number | boolean): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  recordException(exception: unknown): unknown;
  spanContext(): SpanContextLike;
  end(): void;
}

export interface SpanContextLike {
  traceId: string;
  spanId: string;
  traceFlags: number;
  isRemote?: boolean;
  traceState?: { serialize(): string };
}

/** An OpenTelemetry Context: opaque here. */
export type TraceContext = object;

interface TracerLike {
  startSpan(name: string, options: { kind: number; attributes?: Attributes; links?: Array<{ context: SpanContextLike }> }, context?: TraceContext): SpanLike;
}

/** The parts of `@opentelemetry/api` Ferry uses. */
export interface OtelApi {
  trace: {
    getTracerProvider(): { getDelegate?(): unknown; getTracer(name: string, version?: string): TracerLike };
    getTracer(name: string, version?: string): TracerLike;
    getSpanContext(context: TraceContext): SpanContextLike | undefined;
    setSpan(context: TraceContext, span: SpanLike): TraceContext;
    setSpanContext(context: TraceContext, spanContext: SpanContextLike): TraceContext;
    isSpanContextValid?(spanContext: SpanContextLike): boolean;
  };
  context: { active(): TraceContext };
  propagation: {
    inject(context: TraceContext, carrier: Record<string, string>): void;
    extract(context: TraceContext, carrier: Record<string, string>): TraceContext;
    fields(): string[];
  };
  ProxyTracerProvider: new () => { getDelegate(): unknown };
  ROOT_CONTEXT: TraceContext;
}

const TRACEPARENT_PATTERN = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const INVALID_TRACE_ID = '0'.repeat(32);
const INVALID_SPAN_ID = '0'.repeat(16);

/** The API as loaded, with what Ferry needs on top. */
export class Tracing {
  private readonly noopProvider: unknown;
  private tracerFor: { delegate: unknown; tracer: TracerLike } | null = null;

  constructor(
    readonly api: OtelApi,
    private readonly scope: string,
  ) {
    // The API's own no-op provider: what the global provider delegates to while no SDK is registered.
    this.noopProvider = new api.ProxyTracerProvider().getDelegate();
  }

  /** The tracer of the registered SDK, or null when none is registered (then nothing is recorded). */
  tracer(): TracerLike | null {
    const provider = this.api.trace.getTracerProvider();
    const delegate = typeof provider.getDelegate === 'function' ? provider.getDelegate() : provider;
    if (delegate === this.noopProvider || (delegate as object | null)?.constructor?.name === 'NoopTracerProvider') return null;
    let cached = this.tracerFor;
    if (cached === null || cached.delegate !== delegate) cached = this.tracerFor = { delegate, tracer: this.api.trace.getTracer(this.scope) };
    return cached.tracer;
  }

  /** The context a span made now is the child of: the application's active one. */
  active(): TraceContext {
    return this.api.context.active();
  }

  /** `context` with `span` as its current span. */
  withSpan(context: TraceContext, span: SpanLike): TraceContext {
    return this.api.trace.setSpan(context, span);
  }

  /** Writes `context` (its span) into `headers`: by the registered propagator, or as W3C traceparent/tracestate. */
  inject(context: TraceContext, headers: Record<string, string>): void {
    const propagation = this.api.propagation;
    if (propagation.fields().length > 0) {
      propagation.inject(context, headers);
      return;
    }
    const span = this.api.trace.getSpanContext(context);
    if (span === undefined || span.traceId === INVALID_TRACE_ID || span.spanId === INVALID_SPAN_ID) return;
    headers[TRACEPARENT_HEADER] = `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
    const state = span.traceState?.serialize();
    if (state !== undefined && state !== '') headers[TRACESTATE_HEADER] = state;
  }

  /** The producer's context from a message's headers (ROOT_CONTEXT with no span when it carries none). */
  extract(headers: readonly WireHeader[] | Record<string, string>): TraceContext {
    const carrier = Array.isArray(headers) ? Object.fromEntries(headers as WireHeader[]) : (headers as Record<string, string>);
    const root = this.api.ROOT_CONTEXT;
    if (this.api.propagation.fields().length > 0) return this.api.propagation.extract(root, carrier);
    const match = TRACEPARENT_PATTERN.exec(carrier[TRACEPARENT_HEADER] ?? '');
    if (match === null || match[1] === INVALID_TRACE_ID || match[2] === INVALID_SPAN_ID) return root;
    return this.api.trace.setSpanContext(root, { traceId: match[1]!, spanId: match[2]!, traceFlags: parseInt(match[3]!, 16), isRemote: true });
  }

  /** The span context carried by `context`, if any (a link target). */
  spanContextOf(context: TraceContext): SpanContextLike | undefined {
    return this.api.trace.getSpanContext(context);
  }
}

/** Marks a span failed with `error`. */
export function failSpan(span: SpanLike, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: STATUS_ERROR, message: error instanceof Error ? error.message : String(error) });
}

export type ApiImporter = () => Promise<unknown>;

const loaded = new Map<ApiImporter, Promise<OtelApi | null>>();
const importApi: ApiImporter = () => import('@opentelemetry/api');

/**
 * `@opentelemetry/api`, imported once per process (the promise is kept), or null when it is not
 * installed. `importer` is for tests: a module that cannot be found.
 */
export function loadOtelApi(importer: ApiImporter = importApi): Promise<OtelApi | null> {
  let api = loaded.get(importer);
  if (api === undefined) {
    api = importer().then(
      (module) => {
        const namespace = module as Partial<OtelApi> & { default?: Partial<OtelApi> };
        const candidate = namespace.trace !== undefined ? namespace : (namespace.default ?? {});
        return candidate.trace !== undefined && candidate.propagation !== undefined && candidate.ProxyTracerProvider !== undefined ? (candidate as OtelApi) : null;
      },
      () => null,
    );
    loaded.set(importer, api);
  }
  return api;
}
