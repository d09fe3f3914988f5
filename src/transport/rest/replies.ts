/**
 * How the REST endpoints answer: JSON bodies written in one call with their length, and errors in
 * the HTTP port's shape `{error: {code, message}}` with the status their Ferry code means
 * (transport/http/status.ts), `Retry-After` on 429 and 503, and `WWW-Authenticate` on 401.
 */
import type { ServerResponse } from 'node:http';
import { isFerryError, type FerryError } from '../../errors.js';
import type { Logger } from '../../platform/logger.js';
import { statusForCode } from '../http/status.js';
import { BUSY_RETRY_AFTER_S } from './limits.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** A refusal the REST layer makes itself (route, method, body), with the Ferry code it reports. */
export class RestProblem extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Headers of the answer, as name, value pairs (`allow` on a 405). */
    readonly headers?: readonly string[],
  ) {
    super(message);
  }
}

/**
 * Bodies up to this many bytes (every publish answer) get their header list from a cache, one list
 * per length: node:http reads the list without keeping or changing it.
 */
const CACHED_HEADERS_BYTES_MAX = 256;
const headersByLength: Array<readonly string[] | undefined> = [];

function jsonHeaders(bytes: number): readonly string[] {
  if (bytes > CACHED_HEADERS_BYTES_MAX) return ['content-type', JSON_TYPE, 'content-length', String(bytes), 'cache-control', 'no-store'];
  return (headersByLength[bytes] ??= ['content-type', JSON_TYPE, 'content-length', String(bytes), 'cache-control', 'no-store']);
}

/**
 * Answers `text` as JSON: the status line, the headers as one flat list (no header object, no
 * setHeader per header) and the body go out as one string, in one write.
 */
export function sendJson(res: ServerResponse, status: number, text: string, extra?: readonly string[]): void {
  const headers = jsonHeaders(Buffer.byteLength(text));
  res.writeHead(status, extra === undefined ? (headers as string[]) : [...headers, ...extra]);
  res.end(text);
}

/** Answers `error`; a 5xx that is not a known busy state is logged (the server's failure, not the caller's). */
export function sendError(res: ServerResponse, error: unknown, logger: Logger, path: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof RestProblem) {
    sendJson(res, error.status, JSON.stringify({ error: { code: error.code, message: error.message } }), error.status === 413 ? closing(res) : error.headers);
    return;
  }
  if (!isFerryError(error)) {
    logger.error('rest.request_failed', { path, error });
    sendJson(res, 500, JSON.stringify({ error: { code: 'INTERNAL', message: 'internal error' } }));
    return;
  }
  const status = statusForCode(error.code);
  if (status >= 500 && status !== 503) logger.error('rest.request_failed', { path, error });
  const body = JSON.stringify({ error: { code: error.code, message: error.message, ...(error.detail === undefined ? {} : { detail: error.detail }) } });
  sendJson(res, status, body, extraHeaders(res, status, error));
}

/**
 * `connection: close` for an HTTP/1.1 request whose body is refused unread (too large): Node would
 * otherwise read all of it to keep the connection. HTTP/2 has no such header (a stream is reset).
 */
function closing(res: ServerResponse): string[] | undefined {
  return res.req?.httpVersionMajor === 1 ? ['connection', 'close'] : undefined;
}

function extraHeaders(res: ServerResponse, status: number, error: FerryError): string[] | undefined {
  if (status === 401) return ['www-authenticate', 'Bearer realm="ferry", Basic realm="ferry", charset="UTF-8"'];
  if (status === 429) {
    const retryAfterMs = error.detail?.['retryAfterMs'];
    const seconds = typeof retryAfterMs === 'number' ? Math.max(1, Math.ceil(retryAfterMs / 1000)) : BUSY_RETRY_AFTER_S;
    return ['retry-after', String(seconds)];
  }
  if (status === 503) return ['retry-after', String(BUSY_RETRY_AFTER_S)];
  // A body refused as too large may still be arriving: close rather than read it all.
  if (status === 413) return closing(res);
  return undefined;
}
