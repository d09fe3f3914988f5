/**
 * One HTTP exchange with one etcd endpoint's JSON gateway, over node:http (node:https for an
 * `https://` endpoint). It tells apart a failure before the request left (connection refused, a
 * TLS handshake refused: safe to send elsewhere) from one after (the request may have been
 * applied), which is what the retry policy in caller.ts needs and what fetch() hides.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Clock } from '../../platform/clock.js';
import { isTlsFailure, tlsFailure, type EtcdConnector } from './connector.js';
import { errorFromAnswer, EtcdError } from './errors.js';
import { RESPONSE_BYTES_MAX } from './limits.js';
import { badResponse } from './wire.js';
import type { Endpoint } from './endpoint.js';

/** Why an attempt got no answer; `sent` is whether the request reached the endpoint's socket. */
export class AttemptFailure extends Error {
  constructor(
    message: string,
    readonly sent: boolean,
    readonly timedOut: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AttemptFailure';
  }
}

export interface ExchangeOptions {
  connector: EtcdConnector;
  clock: Clock;
  timeoutMs: number;
  /** Extra headers (gRPC metadata travels as `Grpc-Metadata-*`). */
  headers?: Record<string, string>;
}

/**
 * POSTs `body` as JSON to `path` and resolves with the parsed answer. Rejects with an EtcdError when
 * etcd answered with an error (or something unreadable), with an AttemptFailure when it did not answer.
 */
export function postJson(endpoint: Endpoint, path: string, body: unknown, options: ExchangeOptions): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body), 'utf8');
    let connected = false;
    let settled = false;
    const finish = (error: Error | undefined, value?: unknown): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      if (error === undefined) resolve(value);
      else reject(error);
    };
    const req = options.connector.request(endpoint, path, { 'content-type': 'application/json', 'content-length': payload.length, ...options.headers }, 'pooled');
    const timer = options.clock.schedule(options.timeoutMs, () => {
      finish(new AttemptFailure(`no answer from ${endpoint.url} within ${Math.round(options.timeoutMs)} ms`, connected, true));
      req.destroy();
    });
    trackConnection(req, () => {
      connected = true;
    });
    req.on('error', (error) => finish(isTlsFailure(error) ? tlsFailure(error, endpoint) : new AttemptFailure(`${endpoint.url}: ${error.message}`, connected, false, { cause: error })));
    req.on('response', (res) => {
      readBody(res, endpoint)
        .then((text) => finish(undefined, parseAnswer(res.statusCode ?? 0, text, endpoint)))
        .catch((error: unknown) => finish(error instanceof EtcdError ? error : new AttemptFailure(`${endpoint.url}: ${String(error)}`, true, false, { cause: error })));
    });
    req.end(payload);
  });
}

/**
 * Calls `onConnected` once the request's socket is connected (at once for a reused one): for TLS,
 * once the handshake is done, since a request cannot leave before it.
 */
function trackConnection(req: ClientRequest, onConnected: () => void): void {
  req.on('socket', (socket) => {
    if (!socket.connecting) onConnected();
    else socket.once(socket instanceof TLSSocket ? 'secureConnect' : 'connect', onConnected);
  });
}

function readBody(res: IncomingMessage, endpoint: Endpoint): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    res.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > RESPONSE_BYTES_MAX) {
        res.destroy();
        reject(badResponse(`the answer exceeds ${RESPONSE_BYTES_MAX} bytes`, endpoint.url));
        return;
      }
      chunks.push(chunk);
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('the answer was cut off')));
  });
}

/**
 * The answer of a unary call, or of a streaming call the client ended after one message (lease
 * keepalive): `{"result": {...}}` lines, of which the first is the answer.
 */
function parseAnswer(status: number, text: string, endpoint: Endpoint): unknown {
  const firstLine = text.split('\n', 1)[0]!;
  let json: unknown;
  try {
    json = JSON.parse(firstLine);
  } catch {
    throw badResponse(`HTTP ${status}, not JSON: ${JSON.stringify(text.slice(0, 200))}`, endpoint.url);
  }
  if (json === null || typeof json !== 'object') throw badResponse(`HTTP ${status}, not an object`, endpoint.url);
  const error = gatewayError(json as Record<string, unknown>, endpoint);
  if (error !== undefined) throw error;
  if (status !== 200) throw badResponse(`HTTP ${status} without an error`, endpoint.url);
  const result = (json as { result?: unknown }).result;
  return result !== undefined && typeof result === 'object' ? result : json;
}

/**
 * The error in a gateway answer, if any: unary errors are `{"error": text, "code": grpc}`, errors in
 * a stream `{"error": {"grpc_code": n, "message": text}}`.
 */
export function gatewayError(json: Record<string, unknown>, endpoint: Endpoint): EtcdError | undefined {
  const error = json['error'];
  if (error === undefined) return undefined;
  if (typeof error === 'string') {
    const message = typeof json['message'] === 'string' ? json['message'] : error;
    return errorFromAnswer(typeof json['code'] === 'number' ? json['code'] : -1, message, endpoint.url);
  }
  if (error !== null && typeof error === 'object') {
    const fields = error as Record<string, unknown>;
    const message = typeof fields['message'] === 'string' ? fields['message'] : JSON.stringify(error);
    return errorFromAnswer(typeof fields['grpc_code'] === 'number' ? fields['grpc_code'] : -1, message, endpoint.url);
  }
  return badResponse(`an error of an unknown form: ${JSON.stringify(error)}`, endpoint.url);
}
