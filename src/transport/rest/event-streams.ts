/**
 * The broker's open Server-Sent Events streams: opening one from `GET /v1/topics/{topic}/events`
 * (its query and `Last-Event-ID`), acks from `POST /v1/topics/{topic}/groups/{group}/acks` routed
 * to the stream holding each message, and closing them all when the port closes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FerryError } from '../../errors.js';
import { CREDIT_MAX } from '../../broker/limits.js';
import type { BrokerApi, StartPosition, SubscribeOptions, Subscription } from '../../broker/types.js';
import type { Logger } from '../../platform/logger.js';
import { EventStream, type EventEncoding } from './event-stream.js';
import { ACK_IDS_MAX, SSE_PREFETCH_DEFAULT, SSE_PREFETCH_MAX, SSE_STREAMS_MAX } from './limits.js';

/** `partition:offset`, as event ids are written. */
const EVENT_ID = /^(\d{1,4}):(\d{1,16})$/;
const DIGITS = /^\d{1,16}$/;

export interface AckOutcome {
  acked: number;
  /** Ids no open stream of this broker holds unacked (already acked, redelivered elsewhere, or never sent). */
  unknown: string[];
}

export class EventStreams {
  private readonly all = new Set<EventStream>();
  /** Manual-ack group streams by `topic\0group`: where an ack goes. */
  private readonly byGroup = new Map<string, Set<EventStream>>();

  constructor(private readonly logger: Logger) {}

  get size(): number {
    return this.all.size;
  }

  /** Opens a stream on `res`; errors before the first byte (unknown topic, forbidden) reject, to be answered as JSON. */
  async open(broker: BrokerApi, topic: string, query: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.all.size >= SSE_STREAMS_MAX) throw new FerryError('TOO_MANY_SUBSCRIPTIONS', `at most ${SSE_STREAMS_MAX} event streams may be open at once`);
    const group = optionalText(query.get('group'), 'group');
    const autoAck = flag(query.get('autoAck'), 'autoAck');
    const encoding = eventEncoding(query.get('encoding'));
    const prefetch = integerParam(query.get('prefetch'), 'prefetch', 1, Math.min(SSE_PREFETCH_MAX, CREDIT_MAX)) ?? SSE_PREFETCH_DEFAULT;
    const options: SubscribeOptions = { credit: prefetch };
    if (group !== undefined) options.group = group;
    const from = startPosition(query.get('from'));
    if (from !== undefined) options.from = from;
    const lastEventId = req.headers['last-event-id'];
    // A stream resumes after the last event it saw; a group keeps its own position.
    if (group === undefined && typeof lastEventId === 'string' && lastEventId !== '') options.partitionOffsets = resumeOffsets(lastEventId);
    const stream = new EventStream(res, { topic, group, autoAck, encoding, logger: this.logger, onClose: (closed) => this.forget(closed) });
    this.add(stream);
    let subscription: Subscription;
    try {
      subscription = await broker.subscribe(topic, options, stream);
    } catch (error) {
      stream.discard();
      throw error;
    }
    stream.start(subscription);
  }

  /** Acks `ids` (`partition:offset`) of `group` on `topic`, each by the stream that holds it. */
  async ack(topic: string, group: string, ids: readonly string[]): Promise<AckOutcome> {
    if (ids.length > ACK_IDS_MAX) throw new FerryError('BATCH_TOO_LARGE', `at most ${ACK_IDS_MAX} ids per acks request`);
    const streams = this.byGroup.get(groupKey(topic, group));
    const unknown: string[] = [];
    const byStream = new Map<EventStream, Array<[number, number]>>();
    for (const id of ids) {
      const position = parseEventId(id);
      const holder = streams === undefined ? undefined : [...streams].find((stream) => stream.holds(`${position[0]}:${position[1]}`));
      if (holder === undefined) {
        unknown.push(id);
        continue;
      }
      let positions = byStream.get(holder);
      if (positions === undefined) byStream.set(holder, (positions = []));
      positions.push(position);
    }
    await Promise.all([...byStream].map(([stream, positions]) => stream.ack(positions)));
    return { acked: ids.length - unknown.length, unknown };
  }

  async close(): Promise<void> {
    await Promise.all([...this.all].map((stream) => stream.close()));
  }

  private add(stream: EventStream): void {
    this.all.add(stream);
    const { group, autoAck, topic } = stream.options;
    if (group === undefined || autoAck) return;
    const key = groupKey(topic, group);
    let streams = this.byGroup.get(key);
    if (streams === undefined) this.byGroup.set(key, (streams = new Set()));
    streams.add(stream);
  }

  private forget(stream: EventStream): void {
    this.all.delete(stream);
    const { group, topic } = stream.options;
    if (group === undefined) return;
    const key = groupKey(topic, group);
    const streams = this.byGroup.get(key);
    if (streams === undefined) return;
    streams.delete(stream);
    if (streams.size === 0) this.byGroup.delete(key);
  }
}

/** The ids of an acks body: a JSON array, `{"ids": [...]}`, or text with ids apart by commas, spaces or lines. */
export function ackIds(body: Buffer, contentType: string | undefined): string[] {
  const text = body.toString('utf8');
  if (!/^application\/json\b/i.test(contentType ?? '')) return text.split(/[\s,]+/).filter((id) => id !== '');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new FerryError('INVALID_ARGUMENT', `the acks body is not JSON: ${(error as Error).message}`);
  }
  const ids = Array.isArray(parsed) ? parsed : typeof parsed === 'object' && parsed !== null ? (parsed as { ids?: unknown }).ids : undefined;
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string')) {
    throw new FerryError('INVALID_ARGUMENT', 'the acks body is a JSON array of event ids ("partition:offset") or {"ids": [...]}');
  }
  return ids as string[];
}

function parseEventId(id: string): [number, number] {
  const match = EVENT_ID.exec(id.trim());
  if (match === null) throw new FerryError('INVALID_ARGUMENT', `event id ${JSON.stringify(id.slice(0, 40))} is not partition:offset`);
  return [Number(match[1]), Number(match[2])];
}

/**
 * Where a resuming stream starts, per partition, from `Last-Event-ID`: after the last event's
 * offset in its partition. Several `partition:offset` pairs apart by commas name several
 * partitions; a partition not named starts from `from`.
 */
export function resumeOffsets(lastEventId: string): number[] {
  const offsets: number[] = [];
  for (const part of lastEventId.split(',')) {
    const [partition, offset] = parseEventId(part);
    while (offsets.length < partition) offsets.push(-1);
    offsets[partition] = offset + 1;
  }
  return offsets;
}

/** `from`: earliest, latest, an offset, or a time (ms since the epoch is an offset; a date is a time). */
function startPosition(value: string | null): StartPosition | undefined {
  if (value === null || value === '') return undefined;
  if (value === 'earliest' || value === 'latest') return { kind: value };
  if (DIGITS.test(value)) return { kind: 'offset', offset: Number(value) };
  const timestampMs = Date.parse(value);
  if (Number.isNaN(timestampMs)) throw new FerryError('INVALID_ARGUMENT', `from must be earliest, latest, an offset or a date (2026-01-02T03:04:05Z), got ${JSON.stringify(value.slice(0, 40))}`);
  return { kind: 'timestamp', timestampMs };
}

function eventEncoding(value: string | null): EventEncoding {
  if (value === null || value === 'utf8' || value === 'base64') return value ?? 'utf8';
  throw new FerryError('INVALID_ARGUMENT', `encoding must be utf8 or base64, got ${JSON.stringify(value.slice(0, 32))}`);
}

function flag(value: string | null, name: string): boolean {
  if (value === null || value === 'false') return false;
  if (value === 'true' || value === '') return true;
  throw new FerryError('INVALID_ARGUMENT', `${name} must be true or false`);
}

function optionalText(value: string | null, name: string): string | undefined {
  if (value === null) return undefined;
  if (value === '') throw new FerryError('INVALID_ARGUMENT', `${name} must not be empty`);
  return value;
}

function integerParam(value: string | null, name: string, min: number, max: number): number | undefined {
  if (value === null) return undefined;
  const number = DIGITS.test(value) ? Number(value) : NaN;
  if (!(number >= min && number <= max)) throw new FerryError('INVALID_ARGUMENT', `${name} must be an integer from ${min} to ${max}`);
  return number;
}

function groupKey(topic: string, group: string): string {
  return `${topic}\0${group}`;
}
