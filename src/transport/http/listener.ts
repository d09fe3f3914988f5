/**
 * One port for HTTP/1.1 and HTTP/2, so gRPC (HTTP/2 only), gRPC-Web, the Connect protocol, the
 * admin API and the dashboard share the HTTP port.
 * The rest: docs/INTERNALS.md.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  createSecureServer,
  createServer as createHttp2Server,
  type Http2SecureServer,
  type Http2Server,
  type Http2Session,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type SecureServerOptions,
  type Settings,
} from 'node:http2';
import type { Duplex } from 'node:stream';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from '../../platform/logger.js';
import { FerryError } from '../../errors.js';
import { normaliseRequestTarget } from './request-path.js';

/** What an HTTP/2 client sends before anything else (RFC 9113, section 3.4). */
export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * Open connections on the HTTP port at once (the TCP server's default too); Node closes any past
 * it at accept, so a connection flood cannot exhaust file descriptors.
 */
export const HTTP_CONNECTIONS_MAX = 10_000;
/**
 * Open connections on the HTTP port from one IP address at most: the TCP port's default
 * (server.maxConnectionsPerIp), for the same reason — one host must not take every slot. Past it
 * a connection is closed at accept, before TLS or HTTP is spoken (there is no cheap way to say why).
 */
export const HTTP_CONNECTIONS_PER_IP_MAX = 1_000;
/** At most one `http.connection.rejected` line per this interval: a connection storm must not become a log storm. */
const REJECTED_LOG_INTERVAL_MS = 1_000;
/** A connection that has sent no (or not enough) bytes to be classified in this long is dropped (slowloris). */
const FIRST_BYTES_TIMEOUT_MS = 10_000;
/** A client that has not sent its HTTP/1.1 request headers in this time is dropped (slowloris). */
const HEADERS_TIMEOUT_MS = 10_000;
/** Time close() leaves open requests and streams to finish before their sockets are destroyed. */
const CLOSE_GRACE_MS = 2_000;
/**
 * HTTP/2 flow-control windows for what clients send. The protocol's default (64 KiB) makes a
 * client wait for a WINDOW_UPDATE after every 64 KiB, i.e. within every batch of 1 KiB messages;
 * 4 MiB per stream and 16 MiB per connection let a publisher keep several 1,000-message batches in
 * flight. They bound what a client may send ahead of being read, not what the server buffers in
 * total (maxSessionMemory does).
 */
const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
const SESSION_WINDOW_BYTES = 16 * 1024 * 1024;
/**
 * Memory one HTTP/2 session may hold in Node's buffers before it is refused (MiB). Node's default,
 * 10, is less than one 16 MiB message (GRPC_MESSAGE_BYTES_MAX); 32 leaves room for one such
 * message beside the ordinary traffic of a multiplexed gRPC connection.
 */
const SESSION_MEMORY_MIB_MAX = 32;

const HTTP2_SETTINGS: Settings = { initialWindowSize: STREAM_WINDOW_BYTES };

/** A request handler; HTTP/2 requests arrive as compatibility objects with the same surface. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => unknown;

export interface MultiplexedListenOptions {
  port: number;
  host: string;
  logger: Logger;
  /**
   * Certificates and keys (node:tls options): serve HTTPS, with HTTP/2 or HTTP/1.1 chosen by ALPN.
   * Absent: plaintext, HTTP/2 told apart by its preface.
   */
  tls?: SecureServerOptions;
  /** Open connections from one IP address at most (default HTTP_CONNECTIONS_PER_IP_MAX). */
  connectionsPerIpMax?: number;
  /** Called for each connection refused at accept (counted as TOO_MANY_CONNECTIONS in ferry_rejections_total). */
  onRefused?: () => void;
  /** An HTTP/1.1 Upgrade request (a WebSocket); absent: the socket is closed, as Node does without a handler. */
  onUpgrade?: UpgradeHandler;
}

/** Takes over the socket of an Upgrade request (or destroys it). */
export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface HttpListener {
  port: number;
  host: string;
  /** Stops accepting, lets open requests finish for a grace period, then destroys what is left. */
  close(): Promise<void>;
  /** HTTPS only: new connections use this certificate and key from now on; open ones keep theirs. */
  setSecureContext(tls: SecureServerOptions): void;
}

type RequestListener = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

/**
 * The handler as the servers call it. The HTTP/2 compatibility objects stand in for
 * IncomingMessage/ServerResponse (see above). Every handler sees the canonical path only
 * (request-path.ts): checks and routing agree on it.
 */
function requestListener(handler: HttpHandler, logger: Logger): RequestListener {
  return (req, res) => {
    const target = normaliseRequestTarget(req.url);
    if (!target.ok) {
      refuse(res as ServerResponse, 400, target.reason);
      return;
    }
    req.url = target.url;
    // Called at once (node:http calls its listener from the parser too): a handler that answers
    // without waiting, as the REST publish does, costs no promise here.
    let pending: unknown;
    try {
      pending = handler(req as IncomingMessage, res as ServerResponse);
    } catch (error) {
      handlerFailed(error, target.path, res as ServerResponse, logger);
      return;
    }
    if (isThenable(pending)) pending.then(undefined, (error: unknown) => handlerFailed(error, target.path, res as ServerResponse, logger));
  };
}

/** A handler's bug must cost one request, never the process (an unhandled rejection ends it). */
function handlerFailed(error: unknown, path: string, res: ServerResponse, logger: Logger): void {
  logger.error('http.request_failed', { path, error });
  if (res.headersSent) res.destroy();
  else refuse(res, 500, 'internal error', 'INTERNAL');
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** What accepts the port's connections, and how the inner servers start and stop with it. */
interface Servers {
  outer: NetServer | Http2Server;
  /** The TLS server, when the port speaks HTTPS. */
  secure: Http2SecureServer | null;
  startInner: () => void;
  closeInner: () => void;
}

/** Hooks the listener keeps on every connection: admission, and tracking for close. */
interface ConnectionHooks {
  admit: (socket: Socket) => boolean;
  track: (socket: Socket) => void;
  trackSession: (session: Http2Session) => void;
}

export function listenMultiplexed(handler: HttpHandler, options: MultiplexedListenOptions): Promise<HttpListener> {
  const onRequest = requestListener(handler, options.logger);
  const admit = perAddressLimit(options.connectionsPerIpMax ?? HTTP_CONNECTIONS_PER_IP_MAX, options.logger, options.onRefused);
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const trackSession = (session: Http2Session): void => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', (error) => options.logger.debug('http.session_error', { error }));
    session.setLocalWindowSize(SESSION_WINDOW_BYTES);
  };

  const { outer, secure, startInner, closeInner } = createServers(options, onRequest, { admit, track, trackSession });
  outer.maxConnections = HTTP_CONNECTIONS_MAX;
  return new Promise((resolve, reject) => {
    outer.once('error', reject);
    outer.listen(options.port, options.host, () => {
      outer.off('error', reject);
      outer.on('error', (error) => options.logger.error('http.server_error', { error }));
      startInner();
      const address = outer.address();
      const bound = typeof address === 'object' && address !== null ? { port: address.port, host: address.address } : { port: options.port, host: options.host };
      let closing: Promise<void> | null = null;
      resolve({
        ...bound,
        setSecureContext: (tls) => {
          if (secure === null) throw new FerryError('INVALID_ARGUMENT', 'this HTTP port does not speak TLS');
          secure.setSecureContext({ ...options.tls, ...tls });
        },
        close: () =>
          (closing ??= new Promise<void>((done) => {
            outer.close(() => done());
            closeInner();
            // GOAWAY: clients finish their streams and open no new ones here.
            for (const session of sessions) session.close();
            const timer = setTimeout(() => {
              for (const socket of sockets) socket.destroy();
            }, CLOSE_GRACE_MS);
            timer.unref();
          })),
      });
    });
  });
}

/** HTTPS with ALPN choosing the protocol, or plaintext with HTTP/1.1 and HTTP/2 told apart by the preface. */
function createServers(options: MultiplexedListenOptions, onRequest: RequestListener, hooks: ConnectionHooks): Servers {
  const { admit, track, trackSession } = hooks;
  if (options.tls !== undefined) {
    const secure = createSecureServer({ ...options.tls, allowHTTP1: true, settings: HTTP2_SETTINGS, maxSessionMemory: SESSION_MEMORY_MIB_MAX }, onRequest);
    // Ahead of the TLS server's own listener: a refused socket never starts a handshake.
    secure.prependListener('connection', admit);
    secure.on('secureConnection', track);
    secure.on('session', trackSession);
    if (options.onUpgrade !== undefined) secure.on('upgrade', options.onUpgrade);
    return { outer: secure, secure, startInner: () => undefined, closeInner: () => undefined };
  }
  const http1 = createHttpServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 0 }, onRequest);
  const http2 = createHttp2Server({ settings: HTTP2_SETTINGS, maxSessionMemory: SESSION_MEMORY_MIB_MAX }, onRequest);
  http2.on('session', trackSession);
  if (options.onUpgrade !== undefined) http1.on('upgrade', options.onUpgrade);
  for (const server of [http1, http2]) server.on('error', (error) => options.logger.error('http.server_error', { error }));
  const net = createNetServer((socket) => {
    if (!admit(socket)) return;
    track(socket);
    routeByPreface(socket, http1, http2);
  });
  return {
    outer: net,
    secure: null,
    // node:http starts its connection tracking (headersTimeout checks, closeIdleConnections) on
    // 'listening'; this server never listens itself, so it is told when the port is open.
    startInner: () => http1.emit('listening'),
    closeInner: () => {
      http1.closeIdleConnections();
      http1.close();
      http2.close();
    },
  };
}

/** An answer of the port itself, in the admin API's error shape: `{error: {code, message}}`. */
function refuse(res: ServerResponse, status: number, message: string, code = 'INVALID_ARGUMENT'): void {
  const text = JSON.stringify({ error: { code, message } });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

/**
 * Counts open connections per IP address; a socket past the limit is destroyed and `false`
 * returned. Refusals are logged at most once per REJECTED_LOG_INTERVAL_MS, with their count.
 */
function perAddressLimit(connectionsPerIpMax: number, logger: Logger, onRefused: (() => void) | undefined): (socket: Socket) => boolean {
  const open = new Map<string, number>();
  let loggedAtMs = -Infinity;
  let unlogged = 0;
  return (socket) => {
    const address = normalizeAddress(socket.remoteAddress ?? '');
    const count = open.get(address) ?? 0;
    if (count >= connectionsPerIpMax) {
      socket.destroy();
      onRefused?.();
      unlogged++;
      const nowMs = performance.now();
      if (nowMs - loggedAtMs >= REJECTED_LOG_INTERVAL_MS) {
        logger.warn('http.connection.rejected', { address, connectionsPerIpMax, rejected: unlogged });
        loggedAtMs = nowMs;
        unlogged = 0;
      }
      return false;
    }
    open.set(address, count + 1);
    socket.once('close', () => {
      const left = (open.get(address) ?? 1) - 1;
      if (left > 0) open.set(address, left);
      else open.delete(address);
    });
    return true;
  };
}

/** `::ffff:10.0.0.1` and `10.0.0.1` are one client: IPv4 peers on a dual-stack socket come mapped (as in tcp/server.ts). */
function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}

/**
 * Reads until the bytes either are the HTTP/2 preface or cannot become it, then hands the socket
 * (with those bytes put back) to the matching server. Most HTTP/1.1 requests are decided by their
 * first byte ("GET", "POST": not "P" then "R").
 */
function routeByPreface(socket: Socket, http1: { emit(event: 'connection', socket: Socket): boolean }, http2: { emit(event: 'connection', socket: Socket): boolean }): void {
  let received: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), FIRST_BYTES_TIMEOUT_MS);
  timer.unref();
  const cleanup = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('close', cleanup);
  };
  const onError = (): void => {
    cleanup();
    socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
    const compared = Math.min(received.length, HTTP2_PREFACE.length);
    const matches = received.subarray(0, compared).equals(HTTP2_PREFACE.subarray(0, compared));
    if (matches && received.length < HTTP2_PREFACE.length) return;
    cleanup();
    socket.pause();
    socket.unshift(received);
    (matches ? http2 : http1).emit('connection', socket);
    // node:http reads the unshifted bytes through the stream interface: let them flow.
    if (!matches) socket.resume();
  };
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('close', cleanup);
}
