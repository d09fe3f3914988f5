/**
 * UdpServer: the UDP ingest port (`ferry serve --udp-port`). One datagram is one message, in the
 * binary or the plain-text form (src/protocol/udp-datagram.ts); it is stored whole or dropped, and
 * nothing is answered (at most once). UDP has no login, so what it may do is set by the operator:
 * only topics matching `udp.topics`, at most `udp.sourceMessagesPerSecond` from one source
 * address, within the `limits.*` of any publish. Every datagram ends in one outcome, counted
 * (outcomes.ts); a bad one costs a counter, never an exception past this module or a blocked loop.
 * The socket is read on a thread of its own (receiver.ts), which hands datagrams over in batches;
 * the datagrams of one event-loop turn are stored together (ingest-batch.ts). A receiver thread
 * that ends unasked is replaced by a new one on the same port, after a pause that grows while
 * replacements keep failing (counted in `receiverRestarts`); the port is silent only meanwhile.
 */
import type { AdmissionLimits } from '../../broker/limits.js';
import type { BrokerApi, PublishMessage } from '../../broker/types.js';
import type { Clock, TimerHandle } from '../../platform/clock.js';
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
/** The first pause before a receiver thread that ended unasked is replaced. */
export const UDP_RECEIVER_RESTART_MS_MIN = 100;
/** The pause doubles while replacements keep ending (or failing to bind), up to this. */
export const UDP_RECEIVER_RESTART_MS_MAX = 5_000;
/** A receiver that ran this long before it ended is replaced after the first pause again. */
const UDP_RECEIVER_STABLE_MS = 60_000;

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
  /** Where the receiver listens (the bound port, also when listen() asked for any). */
  private bound: { host: string; port: number } | null = null;
  private closed = false;
  private restartTimer: TimerHandle | null = null;
  private restartDelayMs = UDP_RECEIVER_RESTART_MS_MIN;
  private receiverStartedMs = 0;
  private replacing: Promise<void> = Promise.resolve();
  /** Receiver threads started to replace one that ended unasked. */
  receiverRestarts = 0;
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
    const address = await this.openReceiver(host, port);
    this.bound = { host: address.host, port: address.port };
    return address;
  }

  private async openReceiver(host: string, port: number): Promise<UdpAddress> {
    const { receiver, address } = await UdpReceiver.open({
      host,
      port,
      receiveBufferBytes: this.options.receiveBufferBytes,
      datagramBytesMax: this.options.datagramBytesMax,
      ...(this.options.handoffBytesMax === undefined ? {} : { handoffBytesMax: this.options.handoffBytesMax }),
      counts: this.counts,
      logger: this.options.logger,
      onDatagram: this.receive,
      onEnded: this.receiverEnded,
    });
    this.receiver = receiver;
    this.receiverStartedMs = this.options.clock.monotonicMs();
    this.receiveBufferBytes = address.receiveBufferBytes;
    return address;
  }

  private readonly receiverEnded = (exitCode: number): void => {
    this.receiver = null;
    if (this.closed) return;
    if (this.options.clock.monotonicMs() - this.receiverStartedMs >= UDP_RECEIVER_STABLE_MS) this.restartDelayMs = UDP_RECEIVER_RESTART_MS_MIN;
    this.options.logger.error('udp.receiver_ended', { exitCode, restartInMs: this.restartDelayMs });
    this.scheduleRestart();
  };

  private scheduleRestart(): void {
    const delayMs = this.restartDelayMs;
    this.restartDelayMs = Math.min(UDP_RECEIVER_RESTART_MS_MAX, delayMs * 2);
    this.restartTimer = this.options.clock.schedule(delayMs, () => {
      this.restartTimer = null;
      this.replacing = this.replaceReceiver();
    });
  }

  /** Starts a new receiver on the bound port; on failure (the port taken meanwhile) tries again later. */
  private async replaceReceiver(): Promise<void> {
    const bound = this.bound;
    if (this.closed || bound === null) return;
    try {
      await this.openReceiver(bound.host, bound.port);
      this.receiverRestarts += 1;
      this.options.logger.warn('udp.receiver_restarted', { host: bound.host, port: bound.port, restarts: this.receiverRestarts });
    } catch (error) {
      if (this.closed) return;
      this.options.logger.error('udp.receiver_restart_failed', { error, retryInMs: this.restartDelayMs });
      this.scheduleRestart();
    }
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
    this.closed = true;
    this.restartTimer?.cancel();
    this.restartTimer = null;
    await this.replacing;
    await this.closeReceiver();
    await this.batch.drain();
  }

  private async closeReceiver(): Promise<void> {
    const receiver = this.receiver;
    this.receiver = null;
    if (receiver !== null) await receiver.close();
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
