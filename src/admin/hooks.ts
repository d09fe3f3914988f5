/**
 * What the admin layer reads from the parts it does not own, as interfaces, so each side can be
 * built and tested alone:
 * - ConnectionSource: the TCP server's statistics (TcpServer implements it).
 * - StorageObserver: storage events the broker does not expose yet. BrokerMetrics implements it;
 *   the storage log should call it (see docs/OPERATIONS.md, "Metrics not wired yet").
 */
import type { ConnectionStats, ServerStats } from '../transport/tcp/server.js';

export interface ConnectionSource {
  connectionStats(): ConnectionStats[];
  stats(): ServerStats;
}

/** A connection as the admin API shows it; `backedUpMs` once the transport reports it. */
export type ConnectionView = ConnectionStats & { backedUpMs?: number };

export interface StorageObserver {
  /** One fdatasync of a log segment (or group journal) took this long. */
  fsyncCompleted(seconds: number): void;
  /** The log's writer issued one write holding this many records and bytes. */
  batchWritten(records: number, bytes: number): void;
}
