/**
 * TcpServer: accepts TCP connections and runs the Ferry protocol on each (connection.ts) over a
 * BrokerApi. It owns what is shared between connections: the listening socket, the connection
 * limit, one heartbeat/slow-consumer sweep timer, graceful shutdown and the statistics an admin
 * API reads.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { BrokerApi } from '../../broker/types.js';
import type { TimerHandle } from '../../platform/clock.js';
import { encodeError } from '../../protocol/codec-session.js';
import { FrameWriter } from '../../protocol/writer.js';
import { Connection, type ConnectionOwner, type ConnectionStats } from './connection.js';
import { resolveServerOptions, type ResolvedServerOptions, type TcpServerOptions } from './options.js';

export type { TcpServerOptions } from './options.js';
export type { ConnectionStats } from './connection.js';

/** Sweeps per heartbeat interval: detection of a silent peer or a slow consumer is late by at most this fraction. */
const SWEEPS_PER_INTERVAL = 2;
/** Lower bound of the sweep period: a tiny configured interval must not turn the sweep into a busy loop. */
const SWEEP_MS_MIN = 10;

export interface ServerStats {
  connections: number;
  connectionsTotal: number;
  connectionsRejected: number;
  slowConsumersTotal: number;
  bytesIn: number;
  bytesOut: number;
}

export class TcpServer implements ConnectionOwner {
  private readonly options: ResolvedServerOptions;
  private server: Server | null = null;
  private readonly connections = new Set<Connection>();
  private nextConnectionId = 1;
  private sweepTimer: TimerHandle | null = null;
  private closing: Promise<void> | null = null;
  private connectionsTotal = 0;
  private connectionsRejected = 0;
  private slowConsumersTotal = 0;
  /** Bytes of connections already closed, so totals survive them. */
  private closedBytesIn = 0;
  private closedBytesOut = 0;

  constructor(
    private readonly broker: BrokerApi,
    options: TcpServerOptions = {},
  ) {
    this.options = resolveServerOptions(options);
  }

  listen(port: number, host = '127.0.0.1'): Promise<{ port: number; host: string }> {
    if (this.server !== null) return Promise.reject(new Error('TcpServer.listen called twice'));
    const server = createServer({ noDelay: true }, this.accept);
    this.server = server;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        this.server = null;
        reject(error);
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        server.on('error', (error) => this.options.logger.error('transport.server_error', { error }));
        const address = server.address();
        const bound = typeof address === 'object' && address !== null ? { port: address.port, host: address.address } : { port, host };
        this.options.logger.info('transport.listening', bound);
        this.scheduleSweep();
        resolve(bound);
      });
    });
  }

  private readonly accept = (socket: Socket): void => {
    if (this.closing !== null) {
      socket.destroy();
      return;
    }
    if (this.connections.size >= this.options.maxConnections) {
      this.connectionsRejected++;
      this.options.logger.warn('transport.connection.rejected', { connections: this.connections.size });
      const writer = new FrameWriter(256);
      encodeError(writer, 0, { code: 'BROKER_BUSY', message: `the server holds its maximum of ${this.options.maxConnections} connections` });
      socket.on('error', () => undefined);
      socket.end(writer.take()!);
      this.options.clock.schedule(1000, () => socket.destroy());
      return;
    }
    const connection = new Connection(this.nextConnectionId++, socket, this.broker, this.options, this);
    this.connections.add(connection);
    this.connectionsTotal++;
    this.options.logger.info('transport.connection.open', {
      connection: connection.id,
      address: socket.remoteAddress,
      port: socket.remotePort,
    });
  };

  connectionClosed(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    const stats = connection.stats();
    this.closedBytesIn += stats.bytesIn;
    this.closedBytesOut += stats.bytesOut;
  }

  slowConsumer(): void {
    this.slowConsumersTotal++;
  }

  private scheduleSweep(): void {
    const { heartbeatIntervalMs, slowConsumerGraceMs } = this.options;
    const periodMs = Math.max(SWEEP_MS_MIN, Math.min(heartbeatIntervalMs, slowConsumerGraceMs) / SWEEPS_PER_INTERVAL);
    this.sweepTimer = this.options.clock.schedule(periodMs, () => {
      const nowMs = this.options.clock.monotonicMs();
      for (const connection of this.connections) connection.sweep(nowMs);
      if (this.closing === null) this.scheduleSweep();
    });
  }

  /** Open connections. */
  get connectionCount(): number {
    return this.connections.size;
  }

  connectionStats(): ConnectionStats[] {
    return [...this.connections].map((connection) => connection.stats());
  }

  stats(): ServerStats {
    let bytesIn = this.closedBytesIn;
    let bytesOut = this.closedBytesOut;
    for (const connection of this.connections) {
      const stats = connection.stats();
      bytesIn += stats.bytesIn;
      bytesOut += stats.bytesOut;
    }
    return {
      connections: this.connections.size,
      connectionsTotal: this.connectionsTotal,
      connectionsRejected: this.connectionsRejected,
      slowConsumersTotal: this.slowConsumersTotal,
      bytesIn,
      bytesOut,
    };
  }

  /**
   * Graceful: stop accepting, stop deliveries, answer in-flight requests (after their sync), say
   * GOODBYE and close every socket. Bounded by closeTimeoutMs. Safe to call twice.
   */
  close(): Promise<void> {
    return (this.closing ??= this.closeOnce());
  }

  private async closeOnce(): Promise<void> {
    this.sweepTimer?.cancel();
    this.sweepTimer = null;
    const server = this.server;
    const stopped = new Promise<void>((resolve) => {
      if (server === null || !server.listening) resolve();
      else server.close(() => resolve());
    });
    await Promise.all([...this.connections].map((connection) => connection.shutdown(this.options.closeTimeoutMs)));
    await stopped;
    this.options.logger.info('transport.closed', { connectionsTotal: this.connectionsTotal });
  }
}
