/**
 * Authentication and authorization on the HTTP port (admin API, dashboard, gRPC and Connect, REST).
 * Each request is authenticated once, before its handler runs — by its TLS client certificate,
 * an `Authorization: Basic` user and password, or an `Authorization: Bearer` token — and the
 * caller is left on the request itself: every handler passes the request to brokerForRequest
 * (and its kin) to get the guard's view for that caller. No async context carries it: an
 * AsyncLocalStorage, once entered, turns on promise hooks for the whole process, and every
 * promise any request makes (a REST publish's included) pays for them.
 *
 * Without credentials only the public paths answer (probes, the dashboard's own files); /metrics
 * needs a login with the metrics grant (or admin on every topic) whenever authentication is on;
 * an /api/ request gets 401 with `WWW-Authenticate: Basic`, so a browser asks for a login once
 * and the dashboard's calls carry it from then on; a gRPC call fails UNAUTHENTICATED. With
 * authentication off, everything passes as before.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { BrokerApi } from '../broker/types.js';
import type { Logger } from '../platform/logger.js';
import { FerryError, isFerryError, type ErrorCode } from '../errors.js';
import type { Authenticator, Credentials, Principal } from './authenticator.js';
import type { AccessGuard } from './guard.js';
import type { Rejections } from './rejections.js';
import { presentedCertificate, type PresentedCertificate } from './tls.js';

/** Longest Authorization header read: a token or a user and password, base64; more is not a credential. */
const AUTHORIZATION_CHARS_MAX = 4096;
/** Where the admin API lives: every path there needs a login. */
const API_PATH = '/api';
/** Admin API paths that show the whole broker rather than topics, and need admin on every topic (`*`). */
const BROKER_WIDE_PATHS: ReadonlySet<string> = new Set(['/api/connections', '/api/cluster', '/api/cluster/reassign', '/api/cluster/drain']);
/** Prometheus' scrape path: it names every topic and group, so it needs the metrics grant (or admin on `*`). */
const METRICS_PATH = '/metrics';

interface RequestAuth {
  principal: Principal | null;
  /** Why the request is not authenticated (AUTH_REQUIRED, AUTH_FAILED); null when it is, or needs not be. */
  error: FerryError | null;
  address: string;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => unknown;

/** Where wrap leaves the caller of a request. */
const REQUEST_AUTH = Symbol('ferry.requestAuth');
type AuthenticatedRequest = IncomingMessage & { [REQUEST_AUTH]?: RequestAuth };

/**
 * Where an HTTP/1.1 connection keeps the guarded broker of its last caller: the connection's next
 * request from the same user (or, anonymous, from the same address: the connection's) reuses it
 * instead of building a view per request.
 */
const CONNECTION_BROKER = Symbol('ferry.connectionBroker');
interface ConnectionBroker {
  user: string | null;
  inner: BrokerApi;
  broker: BrokerApi;
}
type ConnectionSocket = { [CONNECTION_BROKER]?: ConnectionBroker };

export class HttpSecurity {

  constructor(
    readonly authenticator: Authenticator,
    readonly guard: AccessGuard,
    private readonly rejections: Rejections | null,
    private readonly logger: Logger,
  ) {}

  /** The port's request handler, with every request authenticated first and its caller left on the request. */
  wrap(handler: Handler): (req: IncomingMessage, res: ServerResponse) => unknown {
    return (req, res) => {
      const auth = this.authenticate(req);
      if (auth instanceof Promise) return auth.then((known) => this.serve(known, handler, req, res));
      return this.serve(auth, handler, req, res);
    };
  }

  private serve(auth: RequestAuth, handler: Handler, req: IncomingMessage, res: ServerResponse): unknown {
    // The listener has already decoded and normalised the path (transport/http/request-path.ts):
    // this check and the router see the same one, however the client spelled it.
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    if (path === API_PATH || path.startsWith(API_PATH + '/') || path === METRICS_PATH) {
      const refusal = auth.error ?? (path === METRICS_PATH ? this.metricsRefusal(auth.principal) : this.brokerWideRefusal(path, auth.principal));
      if (refusal !== null) {
        this.authenticator.audit.refused(auth.principal?.name ?? null, auth.address, refusal.code, `${req.method ?? 'GET'} ${path}: ${refusal.message}`);
        this.refuse(res, refusal);
        return undefined;
      }
    }
    (req as AuthenticatedRequest)[REQUEST_AUTH] = auth;
    return handler(req, res);
  }

  /**
   * The broker as the request's caller may use it. Throws the request's authentication failure, or
   * AUTH_REQUIRED for a request the wrapper never saw (fail closed).
   */
  brokerForRequest(inner: BrokerApi, req: IncomingMessage): BrokerApi {
    const auth = this.checked((req as AuthenticatedRequest)[REQUEST_AUTH]);
    // HTTP/2 requests share their session's socket (a proxy of it): only HTTP/1.1 connections keep one.
    if (req.httpVersionMajor !== 1) return this.guarded(inner, auth);
    const socket = req.socket as ConnectionSocket;
    const user = auth.principal?.name ?? null;
    const kept = socket[CONNECTION_BROKER];
    if (kept !== undefined && kept.user === user && kept.inner === inner) return kept.broker;
    const broker = this.guarded(inner, auth);
    socket[CONNECTION_BROKER] = { user, inner, broker };
    return broker;
  }

  private guarded(inner: BrokerApi, auth: RequestAuth): BrokerApi {
    return this.guard.for({ principal: auth.principal, address: auth.address, inner, onReject: this.onReject });
  }

  private readonly onReject = (code: ErrorCode): void => this.count(code);

  /** For calls that reach no broker method (gRPC settles by consumer id): only authenticated callers. */
  requireAuthenticated(req: IncomingMessage): RequestAuth {
    return this.checked((req as AuthenticatedRequest)[REQUEST_AUTH]);
  }

  private checked(auth: RequestAuth | undefined): RequestAuth {
    const known = auth ?? { principal: null, error: new FerryError('AUTH_REQUIRED', 'authentication required'), address: '' };
    if (known.error !== null) {
      this.count(known.error.code);
      throw known.error;
    }
    return known;
  }

  /** The request's caller; a promise only while a password or token is being checked. */
  private authenticate(req: IncomingMessage): RequestAuth | Promise<RequestAuth> {
    const address = req.socket?.remoteAddress ?? '';
    if (!this.authenticator.enabled) return { principal: null, error: null, address };
    try {
      const certificate = peerCertificate(req);
      if (certificate !== null) return { principal: this.authenticator.certificateLogin(certificate, address), error: null, address };
      const credentials = credentialsFrom(req.headers.authorization);
      if (credentials === null) {
        return { principal: null, error: new FerryError('AUTH_REQUIRED', 'authentication required: send Authorization: Basic (user and password) or Bearer (token)'), address };
      }
      return this.authenticator.authenticate(credentials, address).then(
        (principal): RequestAuth => ({ principal, error: null, address }),
        (error: unknown) => this.failed(error, address),
      );
    } catch (error) {
      return this.failed(error, address);
    }
  }

  private failed(error: unknown, address: string): RequestAuth {
    if (isFerryError(error)) return { principal: null, error, address };
    this.logger.error('security.http.authenticate_failed', { error });
    return { principal: null, error: new FerryError('AUTH_FAILED', 'authentication failed'), address };
  }

  /** Whether the request's caller may see the whole broker: admin on every topic (or authentication off). */
  seesBrokerWide(req: IncomingMessage): boolean {
    const auth = (req as AuthenticatedRequest)[REQUEST_AUTH];
    return auth !== undefined && auth.error === null && this.authenticator.allows(auth.principal, 'admin', { topic: '*' });
  }

  private metricsRefusal(principal: Principal | null): FerryError | null {
    if (this.authenticator.allows(principal, 'metrics', { topic: '*' }) || this.authenticator.allows(principal, 'admin', { topic: '*' })) return null;
    return new FerryError('FORBIDDEN', `${principal?.name ?? 'anonymous'} may not read ${METRICS_PATH}: it needs the metrics grant (ferry users add NAME --metrics) or admin on every topic (*)`);
  }

  private brokerWideRefusal(path: string, principal: Principal | null): FerryError | null {
    if (!BROKER_WIDE_PATHS.has(path) || this.authenticator.allows(principal, 'admin', { topic: '*' })) return null;
    return new FerryError('FORBIDDEN', `${principal?.name ?? 'anonymous'} may not see ${path}: it needs admin on every topic (*)`);
  }

  private refuse(res: ServerResponse, error: FerryError): void {
    this.count(error.code);
    const status = error.code === 'FORBIDDEN' ? 403 : 401;
    const text = JSON.stringify({ error: { code: error.code, message: error.message } });
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
      ...(status === 401 ? { 'www-authenticate': 'Basic realm="ferry", charset="UTF-8"' } : {}),
    });
    res.end(text);
  }

  private count(code: ErrorCode): void {
    this.rejections?.count(code, 'http');
  }
}

/** The client certificate presented, when the request came over mutual TLS. */
function peerCertificate(req: IncomingMessage): PresentedCertificate | null {
  // HTTP/2 requests expose the session's socket through a proxy: test for the method, not the class.
  const socket = req.socket as Partial<TLSSocket> | undefined;
  if (socket === undefined || typeof socket.getPeerCertificate !== 'function') return null;
  return presentedCertificate(socket as TLSSocket);
}

/** `Basic base64(user:password)` or `Bearer token`; null without an Authorization header. */
export function credentialsFrom(header: string | undefined): Credentials | null {
  if (header === undefined || header === '') return null;
  if (header.length > AUTHORIZATION_CHARS_MAX) throw new FerryError('AUTH_FAILED', 'the Authorization header is too long');
  const space = header.indexOf(' ');
  const scheme = header.slice(0, space < 0 ? header.length : space).toLowerCase();
  const value = space < 0 ? '' : header.slice(space + 1).trim();
  if (scheme === 'bearer' && value !== '') return { token: value };
  if (scheme === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  throw new FerryError('AUTH_FAILED', 'the Authorization header must be Basic (user:password in base64) or Bearer (a token)');
}
