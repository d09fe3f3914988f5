/**
 * The final drain of every chaos run, once the faults have stopped and the clients have left:
 *
 * 1. A consumer in the group under test acks everything (nacks poison) until every message still
 *    outstanding (confirmed, never acked) is acked or found in the dead-letter topic — or nothing
 *    has arrived for `idleMs` (what is still outstanding then is what the checker calls lost).
 *    Meanwhile a stream reads the dead-letter topic from the start.
 * 2. A stream reads the whole topic from its start to its end: the final scan, which shows every
 *    stored copy (for the checker's missing-from-log, stored-twice and order checks).
 *
 * Everything is recorded in the history like any consumer's work, as consumer `drain`.
 */
import type { FerryClient, Message, Subscription, SubscriptionMovedEvent } from '../../src/client/index.js';
import { isFerryError } from '../../src/errors.js';
import { decodeValue, forEachEvent, nowT, type DeliveryKind, type HistoryWriter } from './history.js';
import type { ConsumerSettings } from './consumer.js';

/** Stream reads of the scans take this much credit. */
const SCAN_PREFETCH = 4_096;
/** Poll interval while the dead-letter topic does not exist yet. */
const DLQ_RETRY_MS = 500;

export interface DrainOptions {
  client: FerryClient;
  topic: string;
  history: HistoryWriter;
  consumer: ConsumerSettings;
  /** `p:s` of every message confirmed and not acked before the drain. */
  outstanding: Set<string>;
  idleMs: number;
  /** An upper bound on the whole drain, whatever arrives. */
  maxMs: number;
}

export interface DrainReport {
  drainMs: number;
  /** Outstanding when the drain started and when it ended. */
  outstandingBefore: number;
  outstandingAfter: number;
  scanned: number;
  scanComplete: boolean;
  deadLettersSeen: number;
}

/** Messages confirmed and not acked so far, from the history files written up to now. */
export function outstandingMessages(paths: readonly string[]): Set<string> {
  const outstanding = new Set<string>();
  const acked = new Set<string>();
  for (const path of paths) {
    forEachEvent(path, (event) => {
      if (event.k === 'po') outstanding.add(`${event.p}:${event.s}`);
      else if (event.k === 'ak' && event.dg === event.g) acked.add(`${event.p}:${event.s}`);
    });
  }
  for (const key of acked) outstanding.delete(key);
  return outstanding;
}

export async function drain(options: DrainOptions): Promise<DrainReport> {
  const startedMs = performance.now();
  const { client, history, outstanding } = options;
  const outstandingBefore = outstanding.size;
  let lastDeliveryMs = performance.now();
  let stopped = false;

  const deadLetterTopic = `${options.topic}.dlq`;
  let deadLettersSeen = 0;
  // Caught at once: a failure here must not become an unhandled rejection while the group drains.
  let deadLetterFailure: unknown = null;
  const deadLetters = (async () => {
    while (!stopped) {
      try {
        await readStream(client, deadLetterTopic, 'dlq', history, () => stopped, (key) => {
          deadLettersSeen++;
          outstanding.delete(key);
        });
        return;
      } catch (error) {
        if (!isFerryError(error, 'UNKNOWN_TOPIC')) throw error;
        await new Promise((resolve) => setTimeout(resolve, DLQ_RETRY_MS));
      }
    }
  })().catch((error: unknown) => {
    deadLetterFailure = error;
  });

  const subscription = await client.subscribe(options.topic, {
    group: options.consumer.group,
    prefetch: options.consumer.prefetch,
    ackTimeoutMs: options.consumer.ackTimeoutMs,
    backoffMs: options.consumer.backoffMs,
    deliveriesMax: options.consumer.deliveriesMax,
  });
  // An ack sent to a leader that loses the topic just then may be lost, and the new leader delivers
  // the message again: the move is recorded as a disruption of the drain, like a lost connection.
  let generation = 0;
  const onMoved = (event: SubscriptionMovedEvent): void => {
    if (event.subscription === subscription) history.record({ k: 'rc', t: nowT(), c: 'drain', g: ++generation, moved: true });
  };
  client.on('subscriptionMoved', onMoved);
  const watchdog = setInterval(() => {
    const idle = performance.now() - lastDeliveryMs > options.idleMs;
    if (outstanding.size === 0 || idle || performance.now() - startedMs > options.maxMs) void subscription.close();
  }, 100);
  try {
    for await (const message of subscription) {
      lastDeliveryMs = performance.now();
      settle(message, history, outstanding, generation);
    }
  } finally {
    clearInterval(watchdog);
    client.off('subscriptionMoved', onMoved);
  }
  stopped = true;
  await deadLetters;
  if (deadLetterFailure !== null) throw deadLetterFailure;

  // The final scan, then the dead-letter topic once more to its end (dead letters of the drain).
  const scanned = await scanToEnd(client, options.topic, 'scan', history);
  let scanComplete = scanned.complete;
  try {
    const dlq = await scanToEnd(client, deadLetterTopic, 'dlq', history, (key) => outstanding.delete(key));
    deadLettersSeen = Math.max(deadLettersSeen, dlq.count);
    scanComplete &&= dlq.complete;
  } catch (error) {
    if (!isFerryError(error, 'UNKNOWN_TOPIC')) throw error;
  }
  history.flush();
  return {
    drainMs: Math.round(performance.now() - startedMs),
    outstandingBefore,
    outstandingAfter: outstanding.size,
    scanned: scanned.count,
    scanComplete,
    deadLettersSeen,
  };
}

function settle(message: Message, history: HistoryWriter, outstanding: Set<string>, g: number): void {
  const identity = decodeValue(message.value);
  const base = { t: nowT(), kind: 'group' as const, c: 'drain', sub: 1, g, part: message.partition, off: message.offset, dc: message.deliveryCount };
  if (typeof identity === 'string') {
    history.record({ k: 'd', ...base, bad: identity });
    void message.ack().catch(() => undefined);
    return;
  }
  const { p, s, a } = identity;
  history.record({ k: 'd', ...base, p, s, a });
  // Taken and settled in one turn: the generation that delivered it is the one the ack goes to.
  const event = { t: nowT(), c: 'drain', sub: 1, dg: g, g, part: message.partition, off: message.offset, p, s };
  if (identity.x === 1) {
    history.record({ k: 'nk', ...event });
    void message.nack().catch(() => undefined);
    return;
  }
  history.record({ k: 'ak', ...event });
  outstanding.delete(`${p}:${s}`);
  void message.ack().catch(() => undefined);
}

/** Reads a topic as a stream from its start to the end it has now. */
async function scanToEnd(
  client: FerryClient,
  topic: string,
  kind: DeliveryKind,
  history: HistoryWriter,
  onMessage?: (key: string) => void,
): Promise<{ count: number; complete: boolean }> {
  const info = await client.describeTopic(topic);
  const remaining = new Map<number, number>(); // partition → last offset still to see
  for (const partition of info.partitions) {
    if (kind === 'scan') history.record({ k: 'ls', t: performance.now(), part: partition.partition, off: partition.startOffset });
    if (partition.nextOffset > partition.startOffset) remaining.set(partition.partition, partition.nextOffset - 1);
  }
  let count = 0;
  let lastMs = performance.now();
  const subscription = await client.subscribe(topic, { from: 'earliest', prefetch: SCAN_PREFETCH });
  // An ack sent to a leader that loses the topic just then may be lost, and the new leader delivers
  // the message again: the move is recorded as a disruption of the drain, like a lost connection.
  let generation = 0;
  const onMoved = (event: SubscriptionMovedEvent): void => {
    if (event.subscription === subscription) history.record({ k: 'rc', t: nowT(), c: 'drain', g: ++generation, moved: true });
  };
  client.on('subscriptionMoved', onMoved);
  const watchdog = setInterval(() => {
    // A scan that stops making progress (e.g. an unreadable range) ends incomplete rather than hang.
    if (remaining.size === 0 || performance.now() - lastMs > 10_000) void subscription.close();
  }, 100);
  try {
    for await (const message of subscription) {
      lastMs = performance.now();
      count++;
      record(message, kind, history, onMessage);
      const last = remaining.get(message.partition);
      if (last !== undefined && message.offset >= last) remaining.delete(message.partition);
      if (remaining.size === 0) break;
    }
  } finally {
    clearInterval(watchdog);
    await subscription.close();
  }
  return { count, complete: remaining.size === 0 };
}

/** Follows a topic as a stream until `stopped()`. */
async function readStream(
  client: FerryClient,
  topic: string,
  kind: DeliveryKind,
  history: HistoryWriter,
  stopped: () => boolean,
  onMessage: (key: string) => void,
): Promise<void> {
  const subscription: Subscription = await client.subscribe(topic, { from: 'earliest', prefetch: SCAN_PREFETCH });
  // An ack sent to a leader that loses the topic just then may be lost, and the new leader delivers
  // the message again: the move is recorded as a disruption of the drain, like a lost connection.
  let generation = 0;
  const onMoved = (event: SubscriptionMovedEvent): void => {
    if (event.subscription === subscription) history.record({ k: 'rc', t: nowT(), c: 'drain', g: ++generation, moved: true });
  };
  client.on('subscriptionMoved', onMoved);
  const watchdog = setInterval(() => {
    if (stopped()) void subscription.close();
  }, 100);
  try {
    for await (const message of subscription) record(message, kind, history, onMessage);
  } finally {
    clearInterval(watchdog);
  }
}

function record(message: Message, kind: DeliveryKind, history: HistoryWriter, onMessage?: (key: string) => void): void {
  const identity = decodeValue(message.value);
  const base = { t: nowT(), kind, c: 'drain', sub: 0, g: 0, part: message.partition, off: message.offset, dc: message.deliveryCount };
  if (typeof identity === 'string') {
    history.record({ k: 'd', ...base, bad: identity });
    return;
  }
  history.record({ k: 'd', ...base, p: identity.p, s: identity.s, a: identity.a });
  onMessage?.(`${identity.p}:${identity.s}`);
}
