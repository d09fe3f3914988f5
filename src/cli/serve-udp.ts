/**
 * The UDP ingest port of `ferry serve` (docs/OPERATIONS.md, "UDP ingest"), opened only when
 * `udp.port` is set. What it may write is the configuration's alone (`udp.topics`): UDP carries no
 * login, so users and their rules do not apply to it.
 */
import type { BrokerApi } from '../broker/types.js';
import type { FerryConfig } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { isLoopbackHost } from '../security/tls.js';
import { UdpServer } from '../transport/udp/server.js';

/** Opens the UDP port over `broker` (the observed broker, so its traffic is counted); null when none is configured. */
export async function startUdp(config: FerryConfig, parts: { broker: BrokerApi; clock: Clock; logger: Logger }): Promise<UdpServer | null> {
  const udp = config.udp;
  if (udp.port === undefined) return null;
  const { logger } = parts;
  const server = new UdpServer(parts.broker, {
    topics: udp.topics,
    sourceMessagesPerSecond: udp.sourceMessagesPerSecond,
    sourceBurstMessages: udp.sourceBurstMessages,
    datagramBytesMax: udp.datagramBytesMax,
    receiveBufferBytes: udp.receiveBufferBytes,
    limits: config.limits,
    clock: parts.clock,
    logger,
  });
  const address = await server.listen(udp.port, udp.host);
  logger.info('udp.listening', { host: address.host, port: address.port, topics: udp.topics, sourceMessagesPerSecond: udp.sourceMessagesPerSecond, receiveBufferBytes: address.receiveBufferBytes, receiverNice: address.receiverNice });
  if (udp.topics.length === 0) logger.warn('udp.no_topics', { note: 'udp.topics is empty: every datagram is dropped (outcome forbidden); list the topics UDP may write to' });
  if (!isLoopbackHost(udp.host)) logger.warn('udp.exposed', { host: udp.host, topics: udp.topics, note: 'UDP has no login: anyone who can reach this address may write to udp.topics (at udp.sourceMessagesPerSecond per address)' });
  // Linux reports twice the usable size; less than asked means net.core.rmem_max capped it.
  if (address.receiveBufferBytes < udp.receiveBufferBytes) {
    logger.warn('udp.receive_buffer_capped', { askedBytes: udp.receiveBufferBytes, grantedBytes: address.receiveBufferBytes, note: 'raise net.core.rmem_max for the buffer asked (udp.receiveBufferBytes); bursts beyond the buffer are dropped by the kernel' });
  }
  return server;
}
