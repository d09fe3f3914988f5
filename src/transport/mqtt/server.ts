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
import { AcceptGate } from '../tcp/accept-gate.js';
import { TlsAcceptor } from '../tcp/tls-accept.js';
import type { MqttSecurity } from './connect.js';
import { MqttConnection, type MqttLimits } from './connection.js';
import { RetainedStore } from './retained.js';
import { SessionRegistry } from './sessions.js';
import { TopicMap } from './topic-map.js';
import { Wills } from './wills.js';

export type { MqttLimits } from './connection.js';

export interface MqttServerOptions {
  limits: MqttLimits;
  /** Open connections at most; further sockets are closed at accept. */
  connectionsMax: number;
  /** Per source address, checked at accept before any TLS or CONNECT work (default: no limit). */
  perAddress?: {
    /** New connections one address may open per second on average (the Ferry port's accept gate, tcp/accept-gate.ts); 0: no limit. */
    acceptsPerSecond: number;
    /** New connections one address may open at once above the rate. */
    acceptBurst: number;
    /** Open connections from one address at most (TLS handshakes included). */
    connectionsMax: number;
  };
  /** Where MQTT topic names are stored (default: their first level). */
  topicMap?: TopicMap;
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

/** Why a socket was refused at accept on the MQTT port (ferry_connections_refused_total{reason="mqtt_…"}). */
export type MqttRefusedReason = 'accept_rate' | 'per_ip' | 'total';

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
  readonly wills: Wills;
  private readonly topicMap: TopicMap;
  private readonly acceptGate: AcceptGate;
  /** Sockets accepted on the port (TLS handshakes included), per source address. */
  private readonly perAddress = new Map<string, number>();
  private readonly refusedByReason: Record<MqttRefusedReason, number> = { accept_rate: 0, per_ip: 0, total: 0 };

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
    this.topicMap = options.topicMap ?? new TopicMap();
    this.wills = new Wills({ clock, logger, retained: this.retained, topicMap: this.topicMap });
    this.acceptGate = new AcceptGate(options.perAddress?.acceptsPerSecond ?? 0, options.perAddress?.acceptBurst ?? 1);
  }

  /** Sockets refused at accept, by why (the metrics read them). */
  refusedCounts(): Record<MqttRefusedReason, number> {
    return { ...this.refusedByReason };
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

  /**
   * The first checks, before any TLS handshake or CONNECT work (as on the Ferry port): the
   * per-address accept rate, the per-address connection limit, the total. A refused socket is
   * closed at once and counted.
   */
  private admit(socket: Socket, address: string): boolean {
    let refused: MqttRefusedReason | null = null;
    if (!this.acceptGate.take(address, this.options.clock.monotonicMs())) refused = 'accept_rate';
    else if ((this.perAddress.get(address) ?? 0) >= (this.options.perAddress?.connectionsMax ?? Number.POSITIVE_INFINITY)) refused = 'per_ip';
    else if (this.connections.size >= this.options.connectionsMax) refused = 'total';
    if (refused !== null) {
      this.refusedByReason[refused]++;
      this.options.logger.debug('mqtt.connection_refused', { address, reason: refused });
      socket.destroy();
      return false;
    }
    this.perAddress.set(address, (this.perAddress.get(address) ?? 0) + 1);
    socket.once('close', () => {
      const left = (this.perAddress.get(address) ?? 1) - 1;
      if (left <= 0) this.perAddress.delete(address);
      else this.perAddress.set(address, left);
    });
    return true;
  }

  private async accept(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    const address = socket.remoteAddress ?? '';
    if (!this.admit(socket, address)) return;
    if (this.tls === null) {
      this.attach(socket, address);
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
      topicMap: this.topicMap,
      wills: this.wills,
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
    this.wills.close();
    this.sessions.close();
    await this.retained.close();
  }
}
