/**
 * HELLO: the protocol version both peers speak, who the client is (a TLS client certificate, or
 * HELLO's user and password or token), and the HELLO_OK that sets the frame limits of the session.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { BrokerApi } from '../../broker/types.js';
import { FerryError } from '../../errors.js';
import { encodeHelloOk } from '../../protocol/codec-session.js';
import type { FrameDecoder } from '../../protocol/decoder.js';
import { FRAME_BYTES_MAX_MIN, FRAME_HEADER_BYTES, SUPPORTED_VERSIONS } from '../../protocol/limits.js';
import type { HelloRequest } from '../../protocol/messages.js';
import type { FrameWriter } from '../../protocol/writer.js';
import type { Authenticator, Principal } from '../../security/authenticator.js';
import { presentedCertificate } from '../../security/tls.js';
import type { ResolvedServerOptions, TcpSecurity } from './options.js';

/** The highest protocol version the client offers and this server speaks, or UNSUPPORTED_VERSION. */
export function negotiateVersion(hello: HelloRequest): number {
  let version = 0;
  for (const offered of hello.versions) if (SUPPORTED_VERSIONS.includes(offered) && offered > version) version = offered;
  if (version === 0) {
    throw new FerryError('UNSUPPORTED_VERSION', `no common protocol version (client offers ${hello.versions.join(', ')})`, {
      detail: { supported: [...SUPPORTED_VERSIONS] },
    });
  }
  return version;
}

/** Where a logged-in client's requests go, and who it is (null: authentication is off). */
export interface Login {
  broker: BrokerApi;
  principal: Principal | null;
}

/**
 * The login HELLO asks for under the server's security: at once when authentication is off (the
 * guard's view of the broker for anyone, or the broker itself without security), else a promise
 * that checks the credentials (slowly, after failures).
 */
export function login(security: TcpSecurity | null, broker: BrokerApi, socket: Socket, hello: HelloRequest, address: string): Login | Promise<Login> {
  if (security === null) return { broker, principal: null };
  if (!security.authenticator.enabled) return { broker: security.guard.for({ principal: null, address, inner: broker }), principal: null };
  return authenticate(security.authenticator, socket, hello, address).then((principal) => ({
    broker: security.guard.for({ principal, address, inner: broker }),
    principal,
  }));
}

/** No HELLO within the timeout (a silent socket, half a frame, a slowloris). */
export function helloTimedOut(authRequired: boolean, timeoutMs: number): FerryError {
  return new FerryError(authRequired ? 'AUTH_REQUIRED' : 'HANDSHAKE_REQUIRED', `no HELLO${authRequired ? ' with credentials' : ''} within ${timeoutMs} ms`);
}

/** A frame over the pre-login limit, said so: the client is to wait for HELLO_OK before sending large frames. */
export function tooLargeBeforeLogin(error: FerryError, frameBytesMax: number): FerryError {
  const frameBytes = error.detail?.['frameBytes'];
  return new FerryError('FRAME_TOO_LARGE', `a frame of ${String(frameBytes)} bytes before login exceeds the pre-login limit of ${frameBytesMax} bytes; send HELLO and wait for HELLO_OK first`, {
    detail: { frameBytes, frameBytesMax, beforeLogin: true },
  });
}

/** Who this is: the TLS client certificate's user, else HELLO's user and password or token. */
async function authenticate(authenticator: Authenticator, socket: Socket, hello: HelloRequest, address: string): Promise<Principal> {
  const certificate = socket instanceof TLSSocket ? presentedCertificate(socket) : null;
  if (certificate !== null) return authenticator.certificateLogin(certificate, address);
  const { user, password, authToken: token } = hello;
  if (token !== undefined) return authenticator.authenticate({ token }, address);
  if (user === undefined || password === undefined) {
    throw new FerryError('AUTH_REQUIRED', 'this server requires authentication: send a user and password, a token, or a client certificate');
  }
  return authenticator.authenticate({ user, password }, address);
}

/**
 * Writes HELLO_OK and sets the session's frame limits: replies no larger than the client accepts
 * (within the server's), requests up to the server's full limit now that the login is done.
 */
export function writeHelloOk(writer: FrameWriter, decoder: FrameDecoder, id: number, version: number, hello: HelloRequest, options: ResolvedServerOptions): void {
  writer.version = version;
  const clientFrameBytesMax = hello.frameBytesMax ?? options.maxFrameBytes;
  writer.frameBytesMax = Math.max(FRAME_BYTES_MAX_MIN, Math.min(clientFrameBytesMax, options.maxFrameBytes));
  decoder.frameBytesMax = options.maxFrameBytes;
  encodeHelloOk(writer, id, {
    version,
    serverName: options.serverName,
    frameBytesMax: options.maxFrameBytes,
    payloadBytesMax: options.maxFrameBytes - FRAME_HEADER_BYTES,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    ...(options.cluster === null ? {} : { clusterNodeId: options.cluster.nodeId }),
  });
}
