/**
 * MqttServer: the MQTT port (`ferry serve --mqtt-port`, off by default). Plaintext and TLS share
 * the port, told apart by the first byte as on the Ferry port (transport/tcp/tls-accept.ts: a TLS
 * handshake record is 0x16, an MQTT CONNECT 0x10). Each socket becomes an MqttConnection over the
 * broker (through the guard when security is configured); `attach` takes any other stream that
 * carries MQTT packets (a WebSocket at the HTTP port's `/mqtt`).
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { BrokerApi } from '../../broker/types.js';
import type { Clock } from '../../platform/clock.js';
import type { FileSystem } from '../../platform/fs.js';
import type { Logger } from '../../platform/logger.js';
import type { TlsMaterial } from '../../security/tls.js';
import { ADMISSION_CEILINGS, type AdmissionLimits } from '../../broker/limits.js';
import { PublishBatcher } from '../rest/publish-batcher.js';
import { TlsAcceptor } from '../tcp/tls-accept.js';
import type { MqttSecurity } from './connect.js';
import { MqttConnection, type MqttLimits } from './connection.js';
import { RetainedStore } from './retained.js';
import { SessionRegistry } from './sessions.js';

export type { MqttLimits } from './connection.js';

export interface MqttServerOptions {
  limits: MqttLimits;
  /** Open connections at most; further sockets are closed at accept. */
  connectionsMax: number;
  security: MqttSecurity | null;
  /** TLS on the same port, by first byte; null: plaintext only. */
  tls: { material: TlsMaterial; handshakeTimeoutMs: number } | null;
  /** The operator's publish limits (`limits.*`): a publish past them is stored alone, so it fails alone (default: the ceilings). */
  admissionLimits?: AdmissionLimits;
  /** Where sessions and retained messages are kept (`<dir>/mqtt/`); null: in memory only. */
  dataDir: string | null;
  fs: FileSystem | null;
  clock: Clock;
  logger: Logger;
}

export interface MqttAddress {
  host: string;
  port: number;
}

export class MqttServer {
  private server: Server | null = null;
  private readonly connections = new Set<MqttConnection>();
  private readonly tls: TlsAcceptor | null;
  readonly sessions: SessionRegistry;
  readonly retained: RetainedStore;

  /**
   * The publishes of one event-loop turn, joined per topic into one broker publish (as HTTP's are:
   * transport/rest/publish-batcher.ts), each PUBLISH still answered with its own result. Under the
   * guard (each connection's view wraps it), over the broker given.
   */
  private readonly broker: BrokerApi;

  constructor(
    broker: BrokerApi,
    private readonly options: MqttServerOptions,
  ) {
    const { clock, logger, fs, dataDir } = options;
    this.broker = new PublishBatcher(broker, options.admissionLimits ?? ADMISSION_CEILINGS);
    this.tls = options.tls === null ? null : new TlsAcceptor({ material: options.tls.material, handshakeTimeoutMs: options.tls.handshakeTimeoutMs, clock });
    this.sessions = new SessionRegistry({ fs, dataDir, clock, logger });
    this.retained = new RetainedStore({ fs, dataDir, clock, logger });
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Reads the stored sessions and retained messages, then listens (port 0: any free one). */
  async listen(port: number, host: string): Promise<MqttAddress> {
    await this.sessions.open();
    await this.retained.open();
    const server = createServer({ noDelay: true }, (socket) => void this.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (error) => this.options.logger.warn('mqtt.server_error', { error }));
    this.server = server;
    const address = server.address() as { address: string; port: number };
    return { host: address.address, port: address.port };
  }

  /** New TLS connections use this certificate from now on (a reload). */
  setTlsMaterial(material: TlsMaterial): void {
    this.tls?.setMaterial(material);
  }

  private async accept(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    if (this.connections.size >= this.options.connectionsMax) {
      this.options.logger.warn('mqtt.connection_refused', { address: socket.remoteAddress, reason: 'too many connections', connectionsMax: this.options.connectionsMax });
      socket.destroy();
      return;
    }
    if (this.tls === null) {
      this.attach(socket, socket.remoteAddress ?? '');
      return;
    }
    const accepted = await this.tls.accept(socket);
    if (accepted.kind === 'dropped') {
      this.options.logger.debug('mqtt.tls_dropped', { address: socket.remoteAddress, reason: accepted.reason });
      return;
    }
    accepted.socket.on('error', () => undefined);
    this.attach(accepted.socket, socket.remoteAddress ?? '');
    // The sniffed plaintext socket was paused with its first bytes put back: they are read now.
    if (accepted.kind === 'plaintext') accepted.socket.resume();
  }

  /** Serves MQTT on `stream` (a socket, or a WebSocket's stream). */
  attach(stream: Duplex, address: string): MqttConnection {
    const connection = new MqttConnection(stream, address, {
      broker: this.broker,
      security: this.options.security,
      limits: this.options.limits,
      sessions: this.sessions,
      retained: this.retained,
      clock: this.options.clock,
      logger: this.options.logger,
    });
    this.connections.add(connection);
    void connection.closed.then(() => this.connections.delete(connection));
    return connection;
  }

  /** Stops accepting, closes every connection (persistent sessions are kept), writes the retained view. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    const stopped = server === null ? Promise.resolve() : new Promise<void>((resolve) => server.close(() => resolve()));
    const connections = [...this.connections];
    for (const connection of connections) connection.shutdown();
    await Promise.allSettled(connections.map((connection) => connection.closed));
    await stopped;
    this.sessions.close();
    await this.retained.close();
  }
}
