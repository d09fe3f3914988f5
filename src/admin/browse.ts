/**
 * Browsing a topic's messages for the admin API: a page of one partition from an offset, from a
 * time, or the newest page, optionally only messages with a given key. It reads through a
 * short-lived stream subscription (no group, no state kept), so it sees exactly what consumers
 * see: never an `always` message before it is synced. Every dimension is bounded: messages per
 * page, records scanned for a key search, bytes shown per value and per page, and time.
 */
import type { Clock, TimerHandle } from '../platform/clock.js';
import { FerryError } from '../errors.js';
import type { BrokerApi, Delivery, Header, StartPosition, Subscription } from '../broker/types.js';

export const BROWSE_LIMIT_DEFAULT = 50;
/** A page is read by a person: more than this belongs in a consumer. */
export const BROWSE_LIMIT_MAX = 500;
/** Records read at most while searching by key or skipping other partitions' deliveries. */
export const BROWSE_SCAN_RECORDS_MAX = 20_000;
/** Value bytes shown per message; the rest is cut (the message reports its full size). */
export const BROWSE_VALUE_BYTES_MAX = 64 * 1024;
/** Value bytes per page: bounds the response to a few MiB whatever the message sizes. */
const BROWSE_PAGE_BYTES_MAX = 4 * 1024 * 1024;
/** No further delivery for this long means the visible end was reached (`interval`/`never` topics). */
const BROWSE_IDLE_MS = 150;
/** A browse answers within this, with what it has. */
const BROWSE_TIMEOUT_MS = 3_000;

export interface BrowseQuery {
  partition: number;
  /** Start at this offset (clamped to the partition's range). */
  fromOffset?: number;
  /** Start at the first message at or after this time (ms since the epoch). */
  fromTimeMs?: number;
  limit: number;
  /** Only messages whose key is this text. */
  key?: string;
}

export interface EncodedBytes {
  encoding: 'text' | 'base64';
  data: string;
}

export interface BrowsedMessage {
  partition: number;
  offset: number;
  timestampMs: number;
  key: EncodedBytes | null;
  headers: Header[];
  value: EncodedBytes;
  valueBytes: number;
  /** Only the first BROWSE_VALUE_BYTES_MAX bytes are shown. */
  valueTruncated: boolean;
}

export interface BrowseResult {
  topic: string;
  partition: number;
  /** The partition's oldest kept offset and its visible end when the browse started. */
  startOffset: number;
  endOffset: number;
  messages: BrowsedMessage[];
  /** Where the next page starts. */
  nextOffset: number;
  scanned: number;
}

export async function browse(broker: BrokerApi, clock: Clock, topic: string, query: BrowseQuery): Promise<BrowseResult> {
  const info = broker.describeTopic(topic);
  const partitionInfo = info.partitions[query.partition];
  if (partitionInfo === undefined) {
    throw new FerryError('INVALID_ARGUMENT', `topic ${topic} has partitions 0 to ${info.partitions.length - 1}, not ${query.partition}`);
  }
  if (!Number.isInteger(query.limit) || query.limit < 1 || query.limit > BROWSE_LIMIT_MAX) {
    throw new FerryError('INVALID_ARGUMENT', `limit must be an integer from 1 to ${BROWSE_LIMIT_MAX}`);
  }
  const startOffset = partitionInfo.startOffset;
  const endOffset = info.config.durability === 'always' ? partitionInfo.syncedOffset + 1 : partitionInfo.nextOffset;
  const result: BrowseResult = { topic, partition: query.partition, startOffset, endOffset, messages: [], nextOffset: endOffset, scanned: 0 };

  let from: StartPosition;
  let partitionOffsets: number[] | undefined;
  if (query.fromTimeMs !== undefined) {
    from = { kind: 'timestamp', timestampMs: query.fromTimeMs };
  } else {
    const first = query.fromOffset ?? (query.key === undefined ? endOffset - query.limit : startOffset);
    const offset = Math.min(Math.max(first, startOffset), endOffset);
    result.nextOffset = offset;
    if (offset >= endOffset) return result;
    // Other partitions start at their end ("latest"): only the browsed one is read.
    from = { kind: 'latest' };
    partitionOffsets = info.partitions.map((_, index) => (index === query.partition ? offset : -1));
  }
  return readPage(broker, clock, { topic, query, from, partitionOffsets }, result);
}

/** Reads the page through a stream subscription until it is full, the visible end or the scan limit is reached, or time is up. */
function readPage(
  broker: BrokerApi,
  clock: Clock,
  start: { topic: string; query: BrowseQuery; from: StartPosition; partitionOffsets: number[] | undefined },
  result: BrowseResult,
): Promise<BrowseResult> {
  const { topic, query, from, partitionOffsets } = start;
  const endOffset = result.endOffset;
  return new Promise<BrowseResult>((resolve, reject) => {
    let subscription: Subscription | undefined;
    let creditOwed = 0;
    let done = false;
    let pageBytes = 0;
    let idleTimer: TimerHandle | null = null;
    const finish = (): void => {
      if (done) return;
      done = true;
      idleTimer?.cancel();
      hardTimer.cancel();
      void subscription?.close().catch(() => undefined);
      resolve(result);
    };
    const hardTimer = clock.schedule(BROWSE_TIMEOUT_MS, finish);
    const armIdle = (): void => {
      idleTimer?.cancel();
      idleTimer = clock.schedule(BROWSE_IDLE_MS, finish);
    };
    const sink = {
      writable: () => !done,
      deliver: (delivery: Delivery): void => {
        if (done) return;
        result.scanned += 1;
        if (result.scanned >= BROWSE_SCAN_RECORDS_MAX) return finish();
        if (delivery.partition !== query.partition) {
          // Another partition's delivery spent a credit that the browsed partition needs.
          if (subscription === undefined) creditOwed += 1;
          else subscription.grantCredit(1);
          return;
        }
        result.nextOffset = delivery.offset + 1;
        if (query.key === undefined || delivery.key?.toString('utf8') === query.key) {
          const message = encodeMessage(delivery);
          result.messages.push(message);
          pageBytes += message.valueBytes;
        } else if (subscription === undefined) creditOwed += 1;
        else subscription.grantCredit(1);
        if (result.messages.length >= query.limit || delivery.offset + 1 >= endOffset || pageBytes >= BROWSE_PAGE_BYTES_MAX) return finish();
        armIdle();
      },
      ended: () => finish(),
    };
    broker.subscribe(topic, { from, ...(partitionOffsets === undefined ? {} : { partitionOffsets }), credit: query.limit }, sink).then(
      (opened) => {
        subscription = opened;
        if (done) {
          void opened.close().catch(() => undefined);
          return;
        }
        if (creditOwed > 0) opened.grantCredit(creditOwed);
        armIdle();
      },
      (error: unknown) => {
        done = true;
        hardTimer.cancel();
        reject(error);
      },
    );
  });
}

export function encodeMessage(delivery: Pick<Delivery, 'partition' | 'offset' | 'timestampMs' | 'key' | 'headers' | 'value'>): BrowsedMessage {
  const valueTruncated = delivery.value.length > BROWSE_VALUE_BYTES_MAX;
  const shown = valueTruncated ? delivery.value.subarray(0, BROWSE_VALUE_BYTES_MAX) : delivery.value;
  return {
    partition: delivery.partition,
    offset: delivery.offset,
    timestampMs: delivery.timestampMs,
    key: delivery.key === null ? null : encodeBytes(delivery.key),
    headers: delivery.headers.map(([name, value]) => [name, value] as const),
    value: encodeBytes(shown, valueTruncated),
    valueBytes: delivery.value.length,
    valueTruncated,
  };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Control characters other than tab, newline and carriage return make a value binary for display. */
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** Text when the bytes are printable UTF-8, base64 otherwise. */
export function encodeBytes(bytes: Buffer, cut = false): EncodedBytes {
  try {
    // A cut value may end inside a multi-byte character: decode leniently at the very end only.
    const text = cut ? new TextDecoder('utf-8').decode(bytes) : utf8.decode(bytes);
    if (!CONTROL_CHARACTERS.test(text) && !(cut && text.slice(0, -1).includes('\ufffd'))) return { encoding: 'text', data: text };
  } catch {
    // Not UTF-8: base64 below.
  }
  return { encoding: 'base64', data: bytes.toString('base64') };
}
