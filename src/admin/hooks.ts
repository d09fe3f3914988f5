/**
 * What the admin layer reads from the parts it does not own, as interfaces, so each side can be
 * built and tested alone:
 * - ConnectionSource: the TCP server's statistics (TcpServer implements it).
 * - StorageObserver (defined by src/storage): fsync latency and batch sizes; BrokerMetrics implements it
 *   and serve.ts hands it to the broker, which gives it to every Log.
 */
import type { ConnectionStats, ServerStats } from '../transport/tcp/server.js';

export interface ConnectionSource {
  connectionStats(): ConnectionStats[];
  stats(): ServerStats;
}

/** A connection as the admin API shows it; `backedUpMs` once the transport reports it. */
export type ConnectionView = ConnectionStats & { backedUpMs?: number };

export type { StorageObserver } from '../storage/types.js';
