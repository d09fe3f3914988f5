/**
 * What the admin layer reads from the TCP server, as an interface (TcpServer implements it), so
 * each side can be built and tested alone.
 */
import type { ConnectionStats, ServerStats } from '../transport/tcp/server.js';

export interface ConnectionSource {
  connectionStats(): ConnectionStats[];
  stats(): ServerStats;
}

/** A connection as the admin API shows it; `backedUpMs` once the transport reports it. */
export type ConnectionView = ConnectionStats & { backedUpMs?: number };

/** What the admin layer reads from the UDP ingest port (UdpServer implements it). */
export interface UdpSource {
  datagramCounts(): Array<{ outcome: string; count: number }>;
  /** The socket's receive buffer as the kernel granted it. */
  readonly receiveBufferBytes: number;
  /** Datagram bytes received and not yet stored (handed over by the receiver thread, or waiting for the store). */
  readonly bytesInFlight: number;
  /** Receiver threads started to replace one that ended unasked. */
  readonly receiverRestarts: number;
}

/** What the metrics read of the MQTT port. */
export interface MqttSource {
  /** Sockets refused at accept, by why (accept_rate, per_ip, total); counted as `mqtt_<why>`. */
  refusedCounts(): Record<string, number>;
}
