/**
 * MessageService.Publish without connect's general machinery, for the forms nearly every caller
 * sends: gRPC over HTTP/2 (one uncompressed message), and the Connect protocol's unary JSON or
 * protobuf (uncompressed). The body is read whole, decoded by publish-codec.ts, stored through
 * the same `publishMessages` as the general path, and answered in the same bytes; errors become
 * the same statuses (toConnectError, then connect's own gRPC trailers and Connect error JSON).
 * Profiled, a unary call through connect spent most of its time on the way rather than in the
 * broker: a per-call abort controller and headers objects, async iterables for a one-message
 * body, interceptors, and protobuf reflection.
 *
 * Anything else (compression, another content type, a deliver_at time, a request the codec
 * declines, a caller to refuse) goes to connect, with the bytes already read handed back as the
 * body: the fast path never answers differently, it only answers sooner.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { create, toBinary, toJsonString } from '@bufbuild/protobuf';
import type { ConnectError } from '@connectrpc/connect';
import { errorToJsonBytes, codeToHttpStatus } from '@connectrpc/connect/protocol-connect';
import { setTrailerStatus } from '@connectrpc/connect/protocol-grpc';
import type { Logger } from '../../platform/logger.js';
import { readRequestBody } from '../http/request-body.js';
import type { BrokerApi, PublishResult } from '../../broker/types.js';
import { PublishResponseSchema } from '../../generated/ferry/v1/messages_pb.js';
import { CONNECT_JSON_OPTIONS, publishResultToProto } from './convert.js';
import { toConnectError } from './errors.js';
import { GRPC_MESSAGE_BYTES_MAX } from './limits.js';
import { allSynced, startPublish } from './message-service.js';
import { decodePublishBinary, decodePublishJson, encodePublishResponseBinary, encodePublishResponseJson, type DecodedPublish } from './publish-codec.js';

export const PUBLISH_PATH = '/ferry.v1.MessageService/Publish';
const METHOD_NAME = 'ferry.v1.MessageService/Publish';
/** gRPC's length-prefixed envelope: a flags byte and a 32-bit big-endian length. */
const ENVELOPE_BYTES = 5;

type Form = 'grpc' | 'json' | 'proto';

export interface FastPublishDeps {
  /** The broker as the caller of the request may use it. */
  broker: (req: IncomingMessage) => BrokerApi;
  logger: Logger;
}

/** The form of a Publish request the fast path takes, or null. */
export function fastPublishForm(req: IncomingMessage): Form | null {
  if (req.method !== 'POST') return null;
  const type = req.headers['content-type'];
  if (type === 'application/grpc' || type === 'application/grpc+proto') {
    const encoding = req.headers['grpc-encoding'];
    return req.httpVersionMajor === 2 && (encoding === undefined || encoding === 'identity') ? 'grpc' : null;
  }
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return null;
  if (type === 'application/json' || type === 'application/json; charset=utf-8') return 'json';
  if (type === 'application/proto') return 'proto';
  return null;
}

/**
 * Serves one Publish in `form`; `general` serves it through connect instead, given the body (the
 * bytes read so far, then the rest of the request). Without a promise of its own, as the REST
 * publish: the body is read by listeners, the messages handed to the broker, and the answer
 * written when the broker's promise settles (each promise and async frame per call showed in the
 * collector's share of a loaded broker).
 */
export function servePublish(
  req: IncomingMessage,
  res: ServerResponse,
  form: Form,
  deps: FastPublishDeps,
  general: (body: AsyncIterable<Uint8Array>) => Promise<void>,
): Promise<void> | undefined {
  // A declared length past the largest message: the general path refuses it before the body comes.
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > GRPC_MESSAGE_BYTES_MAX + ENVELOPE_BYTES) return general(req);
  readRequestBody(req, GRPC_MESSAGE_BYTES_MAX + ENVELOPE_BYTES, (read) => {
    // Past the limit: the general path reads the rest when it is ready for it.
    if (Array.isArray(read)) req.pause();
    try {
      publishBody(req, res, form, deps, general, read);
    } catch (error) {
      // A bug here must cost this call, never the process (a listener's throw would end it).
      failed(res, form, deps, error);
    }
  });
  return undefined;
}

function publishBody(
  req: IncomingMessage,
  res: ServerResponse,
  form: Form,
  deps: FastPublishDeps,
  general: (body: AsyncIterable<Uint8Array>) => Promise<void>,
  read: Buffer | Buffer[] | null,
): void {
  // The client reset the stream or closed the connection mid-body: nobody waits for an answer.
  if (read === null) {
    res.destroy();
    return;
  }
  // Past the largest message the general path decides (it refuses with RESOURCE_EXHAUSTED).
  const body = Array.isArray(read) ? null : read;
  const decoded = body === null ? null : decode(form, body);
  if (decoded === null) {
    general(body === null ? rest(read as Buffer[], req) : once(body)).then(undefined, (error: unknown) => failed(res, form, deps, error));
    return;
  }
  let stored: Promise<PublishResult[]>;
  try {
    stored = startPublish(deps.broker(req), decoded);
  } catch (error) {
    sendError(res, form, toConnectError(error, deps.logger, METHOD_NAME));
    return;
  }
  stored.then(
    (results) => {
      try {
        sendResults(res, form, results, allSynced(results));
      } catch (error) {
        failed(res, form, deps, error);
      }
    },
    (error: unknown) => sendError(res, form, toConnectError(error, deps.logger, METHOD_NAME)),
  );
}

/** A failure of this code rather than of the call: logged, and answered as an internal error if nothing was sent yet. */
function failed(res: ServerResponse, form: Form, deps: FastPublishDeps, error: unknown): void {
  deps.logger.error('http.request_failed', { path: PUBLISH_PATH, error });
  if (res.headersSent) res.destroy();
  else sendError(res, form, toConnectError(error, deps.logger, METHOD_NAME));
}

function decode(form: Form, body: Buffer): DecodedPublish | null {
  if (form === 'json') return decodePublishJson(body.toString('utf8'));
  if (form === 'proto') return decodePublishBinary(body);
  if (body.length < ENVELOPE_BYTES || body[0] !== 0 || body.readUInt32BE(1) !== body.length - ENVELOPE_BYTES) return null;
  return decodePublishBinary(body.subarray(ENVELOPE_BYTES));
}

function sendResults(res: ServerResponse, form: Form, results: PublishResult[], synced: boolean): void {
  if (form === 'json') {
    const text = encodePublishResponseJson(results, synced) ?? toJsonString(PublishResponseSchema, responseMessage(results, synced), CONNECT_JSON_OPTIONS);
    const bytes = Buffer.byteLength(text);
    // HTTP/1.1 takes the headers as one flat list, shared by every answer of the same length.
    res.writeHead(200, res.req.httpVersionMajor === 1 ? jsonHeaders(bytes) : { 'content-type': 'application/json', 'content-length': bytes });
    res.end(text);
    return;
  }
  const prefix = form === 'grpc' ? ENVELOPE_BYTES : 0;
  let payload = encodePublishResponseBinary(results, synced, prefix);
  if (payload === null) {
    const encoded = toBinary(PublishResponseSchema, responseMessage(results, synced));
    payload = Buffer.alloc(prefix + encoded.length);
    payload.set(encoded, prefix);
  }
  if (form === 'proto') {
    res.writeHead(200, { 'content-type': 'application/proto', 'content-length': payload.length });
    res.end(payload);
    return;
  }
  payload[0] = 0;
  payload.writeUInt32BE(payload.length - ENVELOPE_BYTES, 1);
  res.writeHead(200, { 'content-type': 'application/grpc+proto' });
  res.write(payload);
  res.addTrailers({ 'grpc-status': '0' });
  res.end();
}

/** Answers up to this many bytes (a publish of a few messages) get a header list from the cache, one per length. */
const CACHED_HEADERS_BYTES_MAX = 512;
const jsonHeadersByLength: Array<string[] | undefined> = [];

/** A JSON answer's headers as node:http's flat list (it reads the list without keeping or changing it). */
function jsonHeaders(bytes: number): string[] {
  if (bytes > CACHED_HEADERS_BYTES_MAX) return ['content-type', 'application/json', 'content-length', String(bytes)];
  return (jsonHeadersByLength[bytes] ??= ['content-type', 'application/json', 'content-length', String(bytes)]);
}

function responseMessage(results: PublishResult[], synced: boolean) {
  return create(PublishResponseSchema, { results: results.map(publishResultToProto), synced });
}

/** The error as connect answers it: gRPC headers then the status in trailers, or the Connect protocol's error JSON and status. */
function sendError(res: ServerResponse, form: Form, error: ConnectError): void {
  if (form === 'grpc') {
    const trailers = new Headers();
    setTrailerStatus(trailers, error);
    res.writeHead(200, { 'content-type': 'application/grpc+proto' });
    res.addTrailers(Object.fromEntries(trailers));
    res.end();
    return;
  }
  const body = errorToJsonBytes(error, CONNECT_JSON_OPTIONS);
  res.writeHead(codeToHttpStatus(error.code), { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

async function* once(body: Buffer): AsyncGenerator<Uint8Array> {
  yield body;
}

/** The chunks already read, then the rest of the request. */
async function* rest(chunks: Buffer[], req: IncomingMessage): AsyncGenerator<Uint8Array> {
  yield* chunks;
  yield* req as AsyncIterable<Buffer>;
}
