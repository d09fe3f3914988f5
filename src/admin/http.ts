/**
 * The HTTP layer of the admin port: a small router (JSON routes with `:params`, plus mounted raw
 * handlers for /metrics, the dashboard's files and — later — gRPC), and `listenHttp`, the one place
 * the node:http server is created. Errors leave as JSON `{error: {code, message}}` with the Ferry
 * code and an HTTP status chosen from it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SecureServerOptions } from 'node:http2';
import type { Logger } from '../platform/logger.js';
import { listenMultiplexed, type HttpHandler, type UpgradeHandler } from '../transport/http/listener.js';
import { FerryError, isFerryError, type ErrorCode } from '../errors.js';
import { statusForCode } from '../transport/http/status.js';

/**
 * Largest request body: a test message of the storage's largest record (8 MiB) encoded in base64
 * (4/3) with JSON around it. Anything bigger is refused before it is buffered.
 */
export const REQUEST_BODY_BYTES_MAX = 12 * 1024 * 1024;

export { statusForCode };

/** What a JSON route receives. */
export interface ApiRequest {
  /** The request itself: where the security wrapper left its caller. */
  req: IncomingMessage;
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body ({} when empty). */
  body(): Promise<unknown>;
}

/** A route's answer: a value (sent as JSON with 200) or an explicit status. */
export class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

export type JsonHandler = (request: ApiRequest) => Promise<unknown> | unknown;
/** A raw handler for a path prefix; it writes the response itself. */
export type RawHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

interface Route {
  method: string;
  parts: string[];
  handler: JsonHandler;
}

export class HttpRouter {
  private readonly routes: Route[] = [];
  private readonly mounts: Array<{ prefix: string; handler: RawHandler }> = [];

  constructor(private readonly logger: Logger) {}

  /** A JSON route; `pattern` like `/api/topics/:topic`. */
  route(method: 'GET' | 'POST' | 'DELETE', pattern: string, handler: JsonHandler): this {
    this.routes.push({ method, parts: pattern.split('/').filter(Boolean), handler });
    return this;
  }

  /** The JSON routes, as registered: what a test walks to cover every endpoint. */
  endpoints(): Array<{ method: string; pattern: string }> {
    return this.routes.map((route) => ({ method: route.method, pattern: '/' + route.parts.join('/') }));
  }

  /** A raw handler for every path equal to `prefix` or under `prefix/` (longest prefix wins). */
  mount(prefix: string, handler: RawHandler): this {
    this.mounts.push({ prefix, handler });
    this.mounts.sort((a, b) => b.prefix.length - a.prefix.length);
    return this;
  }

  readonly handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    try {
      const method = req.method ?? 'GET';
      const match = this.match(method, url.pathname);
      if (match !== undefined) {
        if (method !== 'GET') checkJsonRequest(req);
        const result = await match.route.handler({ req, method, params: match.params, query: url.searchParams, body: () => readJsonBody(req) });
        if (result instanceof Reply) sendJson(res, result.status, result.body);
        else sendJson(res, 200, result);
        return;
      }
      if (this.routes.some((route) => matchParts(route.parts, url.pathname) !== undefined)) {
        throw new HttpProblem(405, `${method} is not allowed on ${url.pathname}`);
      }
      const mount = this.mounts.find(({ prefix }) => url.pathname === prefix || url.pathname.startsWith(prefix === '/' ? '/' : prefix + '/'));
      if (mount !== undefined) {
        await mount.handler(req, res, url);
        return;
      }
      throw new HttpProblem(404, `no endpoint ${method} ${url.pathname} (GET /api lists the API's routes)`);
    } catch (error) {
      this.fail(res, error, url);
    }
  };

  private match(method: string, path: string): { route: Route; params: Record<string, string> } | undefined {
    for (const route of this.routes) {
      if (route.method !== method) continue;
      const params = matchParts(route.parts, path);
      if (params !== undefined) return { route, params };
    }
    return undefined;
  }

  private fail(res: ServerResponse, error: unknown, url: URL): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    if (error instanceof HttpProblem) {
      sendJson(res, error.status, { error: { code: error.code, message: error.message } });
      return;
    }
    if (isFerryError(error)) {
      const status = statusForCode(error.code);
      // Request mistakes are the caller's; a 5xx is ours and is logged (once, here) with its code.
      if (status >= 500) this.logger.error('admin.request_failed', { path: url.pathname, error });
      sendJson(res, status, { error: { code: error.code, message: error.message, ...(error.detail === undefined ? {} : { detail: error.detail }) } });
      return;
    }
    this.logger.error('admin.request_failed', { path: url.pathname, error });
    sendJson(res, 500, { error: { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) } });
  }
}

/** An HTTP-level refusal (unknown path, method, body too large); `code` is a Ferry code: NOT_FOUND for a 404 unless given. */
export class HttpProblem extends Error {
  readonly code: ErrorCode;

  constructor(
    readonly status: number,
    message: string,
    code?: ErrorCode,
  ) {
    super(message);
    this.code = code ?? (status === 404 ? 'NOT_FOUND' : 'INVALID_ARGUMENT');
  }
}

function matchParts(parts: string[], path: string): Record<string, string> | undefined {
  const segments = path.split('/').filter(Boolean);
  if (segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    let segment: string;
    try {
      segment = decodeURIComponent(segments[i]!);
    } catch {
      return undefined;
    }
    if (part.startsWith(':')) params[part.slice(1)] = segment;
    else if (part !== segment) return undefined;
  }
  return params;
}

/**
 * Changes require a JSON content type: a browser cannot send one cross-origin without a CORS
 * preflight, which this server never approves, so another web page cannot drive the admin API.
 */
function checkJsonRequest(req: IncomingMessage): void {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) {
    throw new HttpProblem(415, `${req.method} requests must send content-type: application/json`);
  }
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > REQUEST_BODY_BYTES_MAX) throw new HttpProblem(413, `request body larger than ${REQUEST_BODY_BYTES_MAX} bytes`, 'BATCH_TOO_LARGE');
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > REQUEST_BODY_BYTES_MAX) throw new HttpProblem(413, `request body larger than ${REQUEST_BODY_BYTES_MAX} bytes`, 'BATCH_TOO_LARGE');
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new FerryError('INVALID_ARGUMENT', `request body is not JSON: ${(error as Error).message}`);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

export interface HttpListener {
  port: number;
  host: string;
  close(): Promise<void>;
  /** HTTPS only: new connections use this certificate from now on (a reload). */
  setSecureContext(tls: SecureServerOptions): void;
}

/**
 * Starts the admin port's HTTP server: the only place it is created. HTTP/1.1 and HTTP/2 (h2c, or
 * ALPN with `tls`) share the port, so gRPC and the Connect protocol are served beside the admin API
 * (src/transport/http/listener.ts; slowloris timeout and close grace period are kept there).
 */
export function listenHttp(
  handler: HttpHandler,
  options: { port: number; host: string; logger: Logger; tls?: SecureServerOptions; onRefused?: () => void; onUpgrade?: UpgradeHandler },
): Promise<HttpListener> {
  return listenMultiplexed(handler, options);
}
