/**
 * The first moments of a connection on a port with TLS: read the first byte to tell a TLS client
 * (a handshake record, 0x16) from a plaintext one (a Ferry frame starts with 0xFE), then either
 * run the TLS handshake on the same socket or hand the plaintext socket on, with the byte put back.
 * Bounded by `handshakeTimeoutMs` from the accept: a client that sends nothing, or stalls in the
 * handshake, is dropped.
 *
 * The handshake runs in a tls.Server that never listens: the sniffed socket is handed to it as a
 * new connection, so client certificates are verified (`authorized`) exactly as on any TLS port.
 */
import type { Socket } from 'node:net';
import { createServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Clock } from '../../platform/clock.js';
import { TLS_HANDSHAKE_RECORD, type TlsMaterial } from '../../security/tls.js';

export interface TlsAcceptOptions {
  material: TlsMaterial;
  handshakeTimeoutMs: number;
  clock: Clock;
}

export type Accepted =
  | { kind: 'tls'; socket: TLSSocket }
  | { kind: 'plaintext'; socket: Socket }
  /** Gone before it was classified, failed the handshake or ran out of time; the socket is destroyed. */
  | { kind: 'dropped'; reason: string };

/** A raw socket is known to the TLS server's events by its peer address and port (unique while it is open). */
function peerKey(socket: Socket): string {
  return `${socket.remoteAddress ?? ''}|${socket.remotePort ?? 0}`;
}

/**
 * TLS handshakes started per event-loop turn, as HELLOs are (server.ts HANDSHAKES_PER_TURN_MAX):
 * each costs the broker's thread a key exchange, and a storm of them started in one turn would
 * hold up every established connection. The rest start in the next turns, in arrival order.
 */
export const TLS_HANDSHAKES_PER_TURN_MAX = 16;

export class TlsAcceptor {
  private readonly server: TlsServer;
  private readonly handshaking = new Map<string, (result: Accepted) => void>();
  /** Sockets whose handshake waits for a later turn. */
  private readonly waiting: Socket[] = [];
  private startedThisTurn = 0;
  private turnScheduled = false;
  /** Handshakes started a turn late (ferry_tls_handshakes_deferred_total). */
  handshakesDeferred = 0;

  constructor(private readonly options: TlsAcceptOptions) {
    this.server = createServer({
      ...options.material,
      // Asked for when a CA is configured (mutual TLS); an untrusted one is judged after the
      // handshake, where the client can be told why (AUTH_FAILED), and a client without one may
      // still log in with a password.
      requestCert: options.material.ca !== undefined,
      rejectUnauthorized: false,
      // Our own timer covers the whole time from accept, first byte included.
      handshakeTimeout: 0,
    });
    this.server.on('secureConnection', (socket: TLSSocket) => this.handshaking.get(peerKey(socket))?.({ kind: 'tls', socket }));
    this.server.on('tlsClientError', (error: Error, socket: TLSSocket) =>
      this.handshaking.get(peerKey(socket))?.({ kind: 'dropped', reason: `TLS handshake failed: ${error.message}` }),
    );
  }

  /** Starts the handshake this turn if the budget allows, else queues it for the next. */
  private startHandshake(socket: Socket): void {
    if (!this.turnScheduled) {
      this.turnScheduled = true;
      setImmediate(this.nextTurn);
    }
    if (this.startedThisTurn >= TLS_HANDSHAKES_PER_TURN_MAX) {
      this.handshakesDeferred++;
      this.waiting.push(socket);
      return;
    }
    this.startedThisTurn++;
    // The TLS socket reads the bytes put back before anything new from the wire.
    if (!socket.destroyed) this.server.emit('connection', socket);
  }

  private readonly nextTurn = (): void => {
    this.turnScheduled = false;
    this.startedThisTurn = 0;
    const ready = this.waiting.splice(0, TLS_HANDSHAKES_PER_TURN_MAX);
    for (const socket of ready) this.startHandshake(socket);
  };

  /** New handshakes use this certificate and key from now on (a reload); finished ones keep theirs. */
  setMaterial(material: TlsMaterial): void {
    this.server.setSecureContext({ ...material });
  }

  accept(socket: Socket): Promise<Accepted> {
    const key = peerKey(socket);
    return new Promise((resolve) => {
      let done = false;
      const finish = (result: Accepted): void => {
        if (done) return;
        done = true;
        timer.cancel();
        this.handshaking.delete(key);
        socket.off('data', onFirstData);
        socket.off('close', onClose);
        if (result.kind === 'dropped') socket.destroy();
        resolve(result);
      };
      const timer = this.options.clock.schedule(this.options.handshakeTimeoutMs, () =>
        finish({ kind: 'dropped', reason: `no TLS handshake within ${this.options.handshakeTimeoutMs} ms` }),
      );
      const onClose = (): void => finish({ kind: 'dropped', reason: 'closed before the handshake finished' });
      const onFirstData = (chunk: Buffer): void => {
        socket.off('data', onFirstData);
        socket.pause();
        socket.unshift(chunk);
        if (chunk[0] !== TLS_HANDSHAKE_RECORD) {
          finish({ kind: 'plaintext', socket });
          return;
        }
        this.handshaking.set(key, finish);
        this.startHandshake(socket);
      };
      socket.on('data', onFirstData);
      socket.once('close', onClose);
    });
  }
}
