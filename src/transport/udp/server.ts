/**
 * UdpServer: the UDP ingest port (`ferry serve --udp-port`). One datagram is one message, in the
 * binary or the plain-text form (src/protocol/udp-datagram.ts); it is stored whole or dropped, and
 * nothing is answered (at most once). UDP has no login, so what it may do is set by the operator:
 * only topics matching `udp.topics`, at most `udp.sourceMessagesPerSecond` from one source
 * address, within the `limits.*` of any publish. Every datagram ends in one outcome, counted
 * (outcomes.ts); a bad one costs a counter, never an exception past this module or a blocked loop.
 * The socket is read on a thread of its own (receiver.ts), which hands datagrams over in batches;
 * the datagrams of one event-loop turn are stored together (ingest-batch.ts).
 */
import type { AdmissionLimits } from '../../broker/limits.js';
import type { BrokerApi, PublishMessage } from '../../broker/types.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { decodeUdpDatagram, type UdpMessage } from '../../protocol/udp-datagram.js';
import { matches } from '../../security/patterns.js';
import { PublishQuota } from '../../security/quota.js';
import { IngestBatch } from './ingest-batch.js';
import { DatagramCounts, type UdpOutcome } from './outcomes.js';
import { UdpReceiver, type UdpAddress } from './receiver.js';

export { UDP_OUTCOMES, type UdpOutcome } from './outcomes.js';
export type { UdpAddress } from './receiver.js';

/**
 * Topic names whose udp.topics verdict is remembered: a datagram's topic is checked against the
 * patterns once, not per datagram. Cleared when full, so random names cannot grow it.
 */
const TOPIC_VERDICTS_MAX = 10_000;

export interface UdpServerOptions {
  /** Topic patterns datagrams may write to (`*` any run of characters, `?` one); empty: none. */
  topics: readonly string[];
  /** Datagrams one source address may send per second; beyond it they are dropped as rate_limited. */
  sourceMessagesPerSecond: number;
  /** Datagrams a source may send at once above the rate; 0: one second's worth. */
  sourceBurstMessages: number;
  /** Longest datagram accepted; longer ones are dropped as oversized. */
  datagramBytesMax: number;
  /** The socket's receive buffer asked of the kernel (which may grant less: net.core.rmem_max). */
  receiveBufferBytes: number;
  /** The publish limits every message meets (key, headers, message size, messages per publish). */
  limits: AdmissionLimits;
  /** Bytes received and not yet stored at most (default UDP_IN_FLIGHT_BYTES_MAX); beyond it datagrams are dropped as overloaded. */
  inFlightBytesMax?: number;
  /** Bytes the receiver thread has packed and this thread not yet taken, at most (default UDP_HANDOFF_BYTES_MAX); beyond it, overloaded. */
  handoffBytesMax?: number;
  clock: Clock;
  logger: Logger;
}

export class UdpServer {
  private receiver: UdpReceiver | null = null;
  private readonly counts = new DatagramCounts();
  private readonly batch: IngestBatch;
  private readonly quota: PublishQuota;
  private readonly verdicts = new Map<string, boolean>();
  /** The receive buffer the kernel granted the socket (0 before listen). */
  receiveBufferBytes = 0;

  constructor(
    broker: Pick<BrokerApi, 'publish'>,
    private readonly options: UdpServerOptions,
  ) {
    const { clock, logger, limits } = options;
    this.batch = new IngestBatch(broker, this.counts, {
      publishMessagesMax: limits.publishMessagesMax,
      ...(options.inFlightBytesMax === undefined ? {} : { inFlightBytesMax: options.inFlightBytesMax }),
      logger,
      nowMs: () => clock.monotonicMs(),
    });
    this.quota = new PublishQuota(options.sourceMessagesPerSecond, options.sourceBurstMessages || options.sourceMessagesPerSecond, clock);
  }

  /** Starts the receiver thread and binds the port (0: any free one). */
  async listen(port: number, host: string): Promise<UdpAddress> {
    const { receiver, address } = await UdpReceiver.open({
      host,
      port,
      receiveBufferBytes: this.options.receiveBufferBytes,
      datagramBytesMax: this.options.datagramBytesMax,
      ...(this.options.handoffBytesMax === undefined ? {} : { handoffBytesMax: this.options.handoffBytesMax }),
      counts: this.counts,
      logger: this.options.logger,
      onDatagram: this.receive,
    });
    this.receiver = receiver;
    this.receiveBufferBytes = address.receiveBufferBytes;
    return address;
  }

  /** Datagrams by outcome since the start, zeros included. */
  datagramCounts(): Array<{ outcome: UdpOutcome; count: number }> {
    return this.counts.entries();
  }

  /** Bytes received and not yet stored: packed by the receiver and not yet taken, then taken and not yet stored. */
  get bytesInFlight(): number {
    return (this.receiver?.handoffBytes ?? 0) + this.batch.bytesInFlight;
  }

  /** Stops receiving (the receiver thread ends), then waits until what was received is stored or dropped. */
  async close(): Promise<void> {
    const receiver = this.receiver;
    this.receiver = null;
    if (receiver !== null) await receiver.close();
    await this.batch.drain();
  }

  private readonly receive = (datagram: Buffer, source: string): void => {
    const outcome = this.admit(datagram, source);
    if (outcome !== null) this.counts.add(outcome);
  };

  /** Queues the datagram's message, or names why it is dropped. */
  private admit(datagram: Buffer, source: string): UdpOutcome | null {
    if (!this.quota.take(source, 1)) return 'rate_limited';
    if (datagram.length > this.options.datagramBytesMax) return 'oversized';
    let message: UdpMessage;
    try {
      message = decodeUdpDatagram(datagram);
    } catch {
      return 'malformed';
    }
    if (!this.allowed(message.topic)) return 'forbidden';
    const bytes = this.messageBytes(message);
    if (bytes < 0) return 'oversized';
    const stored: PublishMessage = message.headers.length === 0 ? { key: message.key, value: message.value } : { key: message.key, headers: message.headers, value: message.value };
    return this.batch.add(message.topic, stored, bytes) ? null : 'overloaded';
  }

  private allowed(topic: string): boolean {
    let verdict = this.verdicts.get(topic);
    if (verdict === undefined) {
      verdict = this.options.topics.some((pattern) => matches(pattern, topic));
      if (this.verdicts.size >= TOPIC_VERDICTS_MAX) this.verdicts.clear();
      this.verdicts.set(topic, verdict);
    }
    return verdict;
  }

  /** The message's bytes as the limits count them (key + headers + value), or -1 when a limit is broken. */
  private messageBytes(message: UdpMessage): number {
    const limits = this.options.limits;
    const keyBytes = message.key?.length ?? 0;
    if (keyBytes > limits.keyBytesMax) return -1;
    if (message.headers.length > limits.headersCountMax) return -1;
    let headerBytes = 0;
    for (const [name, value] of message.headers) headerBytes += Buffer.byteLength(name) + Buffer.byteLength(value);
    if (headerBytes > limits.headersBytesMax) return -1;
    const bytes = keyBytes + headerBytes + message.value.length;
    return bytes > limits.recordBytesMax ? -1 : bytes;
  }
}
