/**
 * TcpServer: accepts TCP connections and runs the Ferry protocol on each (connection.ts) over a
 * BrokerApi. It owns what is shared between connections: the listening socket, the connection
 * limits (in total and per IP address), TLS (tls-accept.ts), one heartbeat/slow-consumer sweep
 * timer, graceful shutdown and the statistics an admin API reads.
 *
 * A refused connection is told why in an ERROR frame before it is closed — TOO_MANY_CONNECTIONS
 * at a limit, AUTH_REQUIRED for plaintext on a TLS-only port — over TLS when the client speaks it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { BrokerApi } from '../../broker/types.js';
import type { TimerHandle } from '../../platform/clock.js';
import type { ErrorCode } from '../../errors.js';
import { DEFAULT_HOST } from '../../protocol/limits.js';
import { Connection, type ConnectionOwner, type ConnectionStats } from './connection.js';
import { resolveServerOptions, type ResolvedServerOptions, type TcpServerOptions } from './options.js';
import { Refusal } from './refusal.js';
import { helloTimedOut } from './session.js';
import { TlsAcceptor } from './tls-accept.js';
import { AcceptGate } from './accept-gate.js';
import type { TlsMaterial } from '../../security/tls.js';

export type { TcpServerOptions } from './options.js';
export type { ConnectionStats } from './connection.js';

/** Sweeps per heartbeat interval: detection of a silent peer or a slow consumer is late by at most this fraction. */
const SWEEPS_PER_INTERVAL = 2;
/** Lower bound of the sweep period: a tiny configured interval must not turn the sweep into a busy loop. */
const SWEEP_MS_MIN = 10;
/** Time a refused socket gets to flush its ERROR frame before it is destroyed. */
const REFUSED_LINGER_MS = 1000;
/**
 * At most one `transport.connection.rejected` log line per this interval: a connection storm must
 * not become a log storm. Each line counts the refusals it stands for; the metric counts every one.
 */
const REJECTED_LOG_INTERVAL_MS = 1000;

/**
 * HELLOs handled per event-loop turn across all connections. A reconnect storm (a broker restart
 * with thousands of clients, or a flood of new sockets) sends its HELLOs together; each costs the
 * broker's thread a login check, a guard and an answer, and handled all in one turn they would
 * hold up every established connection. The rest wait for the next turns, in arrival order. The
 * closes of connections whose login timed out share the budget: a slowloris's sockets, opened
 * together, time out together.
 */
export const HANDSHAKES_PER_TURN_MAX = 16;

/** Why a socket was refused at accept (ferry_connections_refused_total{reason}). */
export type RefusedReason = 'accept_rate' | 'per_ip' | 'total' | 'tls_only';

export interface ServerStats {
  connections: number;
  connectionsTotal: number;
  connectionsRejected: number;
  /** Sockets refused at accept, by why; those on a TLS port and past the accept rate are closed before any TLS or HELLO work. */
  refusedByReason: Record<RefusedReason, number>;
  /** Connections that never reached the protocol: TLS handshake failed or timed out, or closed first. */
  handshakesFailed: number;
  slowConsumersTotal: number;
  /** Times a HELLO (or a login timeout's close) was put off to the next turn because HANDSHAKES_PER_TURN_MAX were handled already (once per HELLO and turn). */
  handshakesDeferred: number;
  /** TLS handshakes started a turn late because TLS_HANDSHAKES_PER_TURN_MAX had started already (tls-accept.ts). */
  tlsHandshakesDeferred: number;
  /** Turns a connection waited out for refusing too many of its requests at once. */
  throttledTurns: number;
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
  private readonly refusedByReason: Record<RefusedReason, number> = { accept_rate: 0, per_ip: 0, total: 0, tls_only: 0 };
  /** The per-address accept rate, checked first (accept-gate.ts). */
  private readonly acceptGate: AcceptGate;
  private handshakesFailed = 0;
  private slowConsumersTotal = 0;
  private handshakesDeferred = 0;
  private throttledTurns = 0;
  /** Accepted sockets not yet closed (TLS handshakes included), in total and per IP address. */
  private admitted = 0;
  private readonly admittedByAddress = new Map<string, number>();
  /** Refused sockets flushing their ERROR frame; destroyed at once by close(). */
  private readonly refused = new Set<Socket>();
  /** Bytes of connections already closed, so totals survive them. */
  private closedBytesIn = 0;
  private closedBytesOut = 0;

  /** Sniffs the first byte and runs TLS handshakes; null without TLS. */
  private readonly tls: TlsAcceptor | null;
  /** The refusals a storm repeats, encoded once (refusal.ts). */
  private readonly refusals: { total: Refusal; perIp: Refusal; tlsOnly: Refusal; acceptRate: Refusal; authTimeout: Refusal; helloTimeout: Refusal };
  private rejectedLoggedAtMs = -Infinity;
  /** Refusals since the last `transport.connection.rejected` line. */
  private rejectedUnlogged = 0;
  /** HELLOs handled in this event-loop turn (HANDSHAKES_PER_TURN_MAX); reset after the turn. */
  private handshakesThisTurn = 0;
  private handshakeTurnResetScheduled = false;

  constructor(
    private readonly broker: BrokerApi,
    options: TcpServerOptions = {},
  ) {
    this.options = resolveServerOptions(options);
    this.acceptGate = new AcceptGate(this.options.acceptsPerSecondPerIp, this.options.acceptBurstPerIp);
    const tls = this.options.tls;
    this.tls = tls === null ? null : new TlsAcceptor({ material: tls.material, handshakeTimeoutMs: tls.handshakeTimeoutMs, clock: this.options.clock });
    this.refusals = {
      total: new Refusal('TOO_MANY_CONNECTIONS', `the server holds its maximum of ${this.options.maxConnections} connections`),
      perIp: new Refusal('TOO_MANY_CONNECTIONS', `the server holds its maximum of ${this.options.maxConnectionsPerIp} connections from your address`),
      tlsOnly: new Refusal('AUTH_REQUIRED', 'this server accepts TLS connections only: connect with tls'),
      acceptRate: new Refusal('RATE_LIMITED', `more than ${this.options.acceptsPerSecondPerIp} new connections a second from your address`),
      authTimeout: Refusal.of(helloTimedOut(true, this.options.authTimeoutMs)),
      helloTimeout: Refusal.of(helloTimedOut(false, this.options.authTimeoutMs)),
    };
  }

  /** TLS certificates reloaded: new connections use them, open ones keep what they shook hands with. */
  setTlsMaterial(material: TlsMaterial): void {
    this.tls?.setMaterial(material);
  }

  listen(port: number, host = DEFAULT_HOST): Promise<{ port: number; host: string }> {
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
    socket.on('error', (error) => this.options.logger.debug('transport.socket_error', { error }));
    const address = normalizeAddress(socket.remoteAddress ?? '');
    if (!this.acceptGate.take(address, this.options.clock.monotonicMs())) {
      this.refuseAtOnce(socket, address, 'accept_rate', this.refusals.acceptRate);
      return;
    }
    const refusal = this.admit(address, socket);
    if (this.tls === null) {
      this.start(socket, address, refusal);
      return;
    }
    if (refusal !== null) {
      // No TLS handshake for a socket that will be refused anyway: that is the work a storm wants.
      this.refuseAtOnce(socket, address, this.reasonOf(refusal), refusal);
      return;
    }
    const required = this.options.tls!.required;
    void this.tls.accept(socket).then((accepted) => {
      if (accepted.kind === 'dropped') {
        this.handshakesFailed++;
        this.options.logger.debug('transport.tls.dropped', { address, reason: accepted.reason });
        return;
      }
      if (accepted.kind === 'plaintext' && required) {
        this.refuse(accepted.socket, address, this.refusals.tlsOnly);
        return;
      }
      this.start(accepted.socket, address, null);
    });
  };

  private reasonOf(refusal: Refusal): RefusedReason {
    if (refusal === this.refusals.total) return 'total';
    if (refusal === this.refusals.tlsOnly) return 'tls_only';
    return 'per_ip';
  }

  /** Closes a socket at accept without a word (no ERROR frame: on a TLS port it would need a handshake first). */
  private refuseAtOnce(socket: Socket, address: string, reason: RefusedReason, refusal: Refusal): void {
    this.refusedByReason[reason]++;
    this.noteRefusal(address, refusal);
    socket.destroy();
  }

  /** Takes a connection slot for the socket, or says why not (the socket then holds no slot). */
  private admit(address: string, socket: Socket): Refusal | null {
    const { maxConnections, maxConnectionsPerIp } = this.options;
    if (this.admitted >= maxConnections) return this.refusals.total;
    const fromAddress = this.admittedByAddress.get(address) ?? 0;
    if (fromAddress >= maxConnectionsPerIp) return this.refusals.perIp;
    this.admitted++;
    this.admittedByAddress.set(address, fromAddress + 1);
    socket.once('close', () => {
      this.admitted--;
      const left = (this.admittedByAddress.get(address) ?? 1) - 1;
      if (left > 0) this.admittedByAddress.set(address, left);
      else this.admittedByAddress.delete(address);
    });
    return null;
  }

  private start(socket: Socket, address: string, refusal: Refusal | null): void {
    if (refusal !== null) {
      this.refuse(socket, address, refusal);
      return;
    }
    if (this.closing !== null || socket.destroyed) {
      socket.destroy();
      return;
    }
    const connection = new Connection(this.nextConnectionId++, socket, this.broker, this.options, this);
    this.connections.add(connection);
    this.connectionsTotal++;
    // A socket handed over by the TLS sniffer is paused with its first bytes put back.
    socket.resume();
    this.options.logger.info('transport.connection.open', {
      connection: connection.id,
      address: socket.remoteAddress,
      port: socket.remotePort,
      tls: connection.tls,
    });
  }

  /** Says why in an ERROR frame, then closes. */
  private refuse(socket: Socket, address: string, refusal: Refusal): void {
    this.refusedByReason[this.reasonOf(refusal)]++;
    this.noteRefusal(address, refusal);
    socket.on('error', () => undefined);
    this.refused.add(socket);
    socket.once('close', () => this.refused.delete(socket));
    socket.end(refusal.frame);
    // Read (and drop) what the client still sends, so that its FIN is seen and the socket closes.
    socket.on('data', () => undefined);
    socket.resume();
    this.options.clock.schedule(REFUSED_LINGER_MS, () => socket.destroy());
  }

  /** Counts a refusal, and logs it at most once per REJECTED_LOG_INTERVAL_MS with the count since. */
  private noteRefusal(address: string, refusal: Refusal): void {
    this.connectionsRejected++;
    this.rejected(refusal.code);
    this.rejectedUnlogged++;
    const nowMs = this.options.clock.monotonicMs();
    if (nowMs - this.rejectedLoggedAtMs >= REJECTED_LOG_INTERVAL_MS) {
      this.options.logger.warn('transport.connection.rejected', {
        address,
        code: refusal.code,
        message: refusal.message,
        connections: this.admitted,
        // This one and those since the last line (not logged one by one).
        rejected: this.rejectedUnlogged,
      });
      this.rejectedLoggedAtMs = nowMs;
      this.rejectedUnlogged = 0;
    }
  }

  rejected(code: ErrorCode): void {
    this.options.rejections?.count(code, 'tcp');
  }

  admitHandshake(): boolean {
    if (!this.handshakeTurnResetScheduled) {
      this.handshakeTurnResetScheduled = true;
      // Runs before the immediates of connections that were turned away this turn: they were
      // scheduled later, so each finds the budget fresh.
      setImmediate(this.resetHandshakeTurn);
    }
    if (this.handshakesThisTurn >= HANDSHAKES_PER_TURN_MAX) {
      this.handshakesDeferred++;
      return false;
    }
    this.handshakesThisTurn++;
    return true;
  }

  loginTimedOut(): Refusal {
    return this.options.security?.authenticator.enabled === true ? this.refusals.authTimeout : this.refusals.helloTimeout;
  }

  private readonly resetHandshakeTurn = (): void => {
    this.handshakeTurnResetScheduled = false;
    this.handshakesThisTurn = 0;
  };

  connectionClosed(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    const stats = connection.stats();
    this.closedBytesIn += stats.bytesIn;
    this.closedBytesOut += stats.bytesOut;
  }

  throttled(): void {
    this.throttledTurns++;
  }

  slowConsumer(): void {
    this.slowConsumersTotal++;
  }

  private scheduleSweep(): void {
    const { heartbeatIntervalMs, slowConsumerGraceMs } = this.options;
    const periodMs = Math.max(SWEEP_MS_MIN, Math.min(heartbeatIntervalMs, slowConsumerGraceMs) / SWEEPS_PER_INTERVAL);
    const dueMs = this.options.clock.monotonicMs() + periodMs;
    this.sweepTimer = this.options.clock.schedule(periodMs, () => {
      const nowMs = this.options.clock.monotonicMs();
      const lateMs = nowMs - dueMs;
      if (lateMs > heartbeatIntervalMs) {
        // The broker itself stood still (SIGSTOP, a frozen VM, a long pause): the clients' frames
        // wait unread in the socket buffers, so silence measured across the stall is not theirs.
        // Their clocks start again now; the next sweep judges them.
        this.options.logger.warn('transport.stalled', { stalledMs: Math.round(lateMs), connections: this.connections.size });
        for (const connection of this.connections) connection.excuseStall(nowMs);
      } else {
        for (const connection of this.connections) connection.sweep(nowMs);
      }
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
      refusedByReason: { ...this.refusedByReason },
      tlsHandshakesDeferred: this.tls?.handshakesDeferred ?? 0,
      handshakesFailed: this.handshakesFailed,
      slowConsumersTotal: this.slowConsumersTotal,
      handshakesDeferred: this.handshakesDeferred,
      throttledTurns: this.throttledTurns,
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
    for (const socket of this.refused) socket.destroy();
    await Promise.all([...this.connections].map((connection) => connection.shutdown(this.options.closeTimeoutMs)));
    await stopped;
    this.options.logger.info('transport.closed', { connectionsTotal: this.connectionsTotal });
  }
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client: IPv4 peers on a dual-stack socket come mapped. */
function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}
