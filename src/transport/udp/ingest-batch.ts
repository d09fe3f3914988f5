/**
 * The datagrams of one event-loop turn, gathered per topic and handed to the broker together at
 * the turn's end (setImmediate): one publish per topic, which the broker turns into one append per
 * partition. A datagram is one message, so each is stored whole or not at all; nothing waits for
 * the store, and nothing is confirmed to the sender.
 *
 * What has been received but not yet stored is bounded (UDP_IN_FLIGHT_BYTES_MAX): past it, new
 * datagrams are dropped as `overloaded` rather than queued, since a sender over UDP cannot be
 * slowed down, only refused.
 */
import { isFerryError } from '../../errors.js';
import type { Logger } from '../../platform/logger.js';
import type { BrokerApi, PublishMessage } from '../../broker/types.js';
import type { DatagramCounts } from './outcomes.js';

/**
 * Datagram bytes received and not yet stored, at most: 32 MiB is over half a second at 100,000
 * 512-byte datagrams a second, far more than a healthy store takes, and a bounded loss of memory
 * when the store stalls.
 */
export const UDP_IN_FLIGHT_BYTES_MAX = 32 * 1024 * 1024;
/** Bytes of messages in one publish call: well inside one storage batch (16 MiB), so a turn's burst never fails as too large. */
const PUBLISH_BYTES_MAX = 4 * 1024 * 1024;
/** At most one `udp.store_failed` line per this interval: a failing store under a flood must not become a log flood. */
const FAILURE_LOG_INTERVAL_MS = 10_000;

interface PendingTopic {
  messages: PublishMessage[];
  bytes: number;
}

export interface IngestBatchOptions {
  /** Messages in one publish call at most (limits.publishMessagesMax). */
  publishMessagesMax: number;
  inFlightBytesMax?: number;
  logger: Logger;
  /** Monotonic milliseconds, for the failure log's interval. */
  nowMs: () => number;
}

export class IngestBatch {
  private pending = new Map<string, PendingTopic>();
  private flushScheduled = false;
  /** Bytes received and not yet stored (pending and handed to the broker). */
  private inFlightBytes = 0;
  private readonly storing = new Set<Promise<void>>();
  private readonly inFlightBytesMax: number;
  private failureLoggedMs = -Infinity;
  private failuresUnlogged = 0;

  constructor(
    private readonly broker: Pick<BrokerApi, 'publish'>,
    private readonly counts: DatagramCounts,
    private readonly options: IngestBatchOptions,
  ) {
    this.inFlightBytesMax = options.inFlightBytesMax ?? UDP_IN_FLIGHT_BYTES_MAX;
  }

  get bytesInFlight(): number {
    return this.inFlightBytes;
  }

  /** Queues one message for this turn's publish of `topic`; false (nothing queued) when the bound is reached. */
  add(topic: string, message: PublishMessage, bytes: number): boolean {
    if (this.inFlightBytes + bytes > this.inFlightBytesMax) return false;
    this.inFlightBytes += bytes;
    let entry = this.pending.get(topic);
    if (entry === undefined || entry.messages.length >= this.options.publishMessagesMax || entry.bytes + bytes > PUBLISH_BYTES_MAX) {
      if (entry !== undefined) this.publish(topic, entry);
      entry = { messages: [], bytes: 0 };
      this.pending.set(topic, entry);
    }
    entry.messages.push(message);
    entry.bytes += bytes;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    return true;
  }

  /** Resolves once every message queued so far has been stored or dropped. */
  async drain(): Promise<void> {
    this.flush();
    while (this.storing.size > 0) await Promise.all([...this.storing]);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const pending = this.pending;
    if (pending.size === 0) return;
    this.pending = new Map();
    for (const [topic, entry] of pending) this.publish(topic, entry);
  };

  private publish(topic: string, entry: PendingTopic): void {
    const count = entry.messages.length;
    const stored = this.broker.publish(topic, entry.messages).then(
      () => this.counts.add('stored', count),
      (error: unknown) => this.failed(topic, count, error),
    );
    const tracked = stored.finally(() => {
      this.inFlightBytes -= entry.bytes;
      this.storing.delete(tracked);
    });
    this.storing.add(tracked);
  }

  private failed(topic: string, count: number, error: unknown): void {
    if (isFerryError(error, 'UNKNOWN_TOPIC')) {
      this.counts.add('unknown_topic', count);
      return;
    }
    this.counts.add('failed', count);
    this.failuresUnlogged += count;
    const nowMs = this.options.nowMs();
    if (nowMs - this.failureLoggedMs < FAILURE_LOG_INTERVAL_MS) return;
    this.options.logger.warn('udp.store_failed', { topic, datagrams: this.failuresUnlogged, code: isFerryError(error) ? error.code : 'INTERNAL', error });
    this.failureLoggedMs = nowMs;
    this.failuresUnlogged = 0;
  }
}
