/**
 * The first moments of a connection on a port with TLS: read the first byte to tell a TLS client
 * (a handshake record, 0x16) from a plaintext one (a Ferry frame starts with 0xFE), then either
 * run the TLS handshake on the same socket or hand the plaintext socket on, with the byte put back.
 * Bounded by `handshakeTimeoutMs` from the accept: a client that sends nothing, or stalls in the
 * handshake, is dropped.
 */
import type { Socket } from 'node:net';
import { TLSSocket, type SecureContext } from 'node:tls';
import type { Clock } from '../../platform/clock.js';
import { TLS_HANDSHAKE_RECORD } from '../../security/tls.js';

export interface TlsAcceptOptions {
  secureContext: SecureContext;
  /** Ask clients for a certificate (a CA is configured: mutual TLS maps its CN to a user). */
  requestCert: boolean;
  handshakeTimeoutMs: number;
  clock: Clock;
}

export type Accepted =
  | { kind: 'tls'; socket: TLSSocket }
  | { kind: 'plaintext'; socket: Socket }
  /** Gone before it was classified, failed the handshake or ran out of time; the socket is destroyed. */
  | { kind: 'dropped'; reason: string };

export function acceptTls(socket: Socket, options: TlsAcceptOptions): Promise<Accepted> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (result: Accepted): void => {
      if (done) return;
      done = true;
      timer.cancel();
      socket.off('data', onFirstData);
      socket.off('close', onClose);
      if (result.kind === 'dropped') socket.destroy();
      resolve(result);
    };
    const timer = options.clock.schedule(options.handshakeTimeoutMs, () => finish({ kind: 'dropped', reason: `no TLS handshake within ${options.handshakeTimeoutMs} ms` }));
    const onClose = (): void => finish({ kind: 'dropped', reason: 'closed before the handshake' });
    const onFirstData = (chunk: Buffer): void => {
      socket.off('data', onFirstData);
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] !== TLS_HANDSHAKE_RECORD) {
        finish({ kind: 'plaintext', socket });
        return;
      }
      // The TLS socket reads the bytes put back before anything new from the wire.
      const secure = new TLSSocket(socket, {
        isServer: true,
        secureContext: options.secureContext,
        requestCert: options.requestCert,
        // An untrusted client certificate is judged after the handshake, where the client can be
        // told why (AUTH_FAILED); a client without one may still log in with a password.
        rejectUnauthorized: false,
      });
      secure.once('secure', () => finish({ kind: 'tls', socket: secure }));
      secure.once('error', (error: Error) => finish({ kind: 'dropped', reason: `TLS handshake failed: ${error.message}` }));
    };
    socket.on('error', () => undefined);
    socket.on('data', onFirstData);
    socket.once('close', onClose);
  });
}
