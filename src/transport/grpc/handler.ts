/**
 * The Ferry API as one Node request handler: TopicService and MessageService over gRPC, gRPC-Web and
 * Connect (binary or JSON), on whatever server calls it; other paths go to `fallback`.
 * The rest: docs/INTERNALS.md.
 */
import { setMaxListeners } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Code, ConnectError, createConnectRouter, type Interceptor } from '@connectrpc/connect';
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from '@connectrpc/connect-node';
import type { UniversalHandler, UniversalServerRequest } from '@connectrpc/connect/protocol';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { BrokerApi } from '../../broker/types.js';
import { MessageService } from '../../generated/ferry/v1/messages_pb.js';
import { TopicService } from '../../generated/ferry/v1/topics_pb.js';
import { ConsumerRegistry } from './consumers.js';
import { callValues, requestOfValues } from './call-request.js';
import { CONNECT_JSON_OPTIONS } from './convert.js';
import { toConnectError } from './errors.js';
import type { HttpHandler } from '../http/listener.js';
import { GRPC_MESSAGE_BYTES_MAX, RESPONSE_COMPRESS_BYTES_MIN } from './limits.js';
import { CONSUME_PATH, fastConsumeAccepts, serveConsume } from './fast-consume.js';
import { fastPublishForm, PUBLISH_PATH, servePublish } from './fast-publish.js';
import { messageService } from './message-service.js';
import { topicService } from './topic-service.js';

export interface GrpcHandlerOptions {
  /** The broker the API drives, as the request's caller may use it; may throw BROKER_BUSY while it recovers. */
  broker: (req: IncomingMessage) => BrokerApi;
  clock: Clock;
  logger: Logger;
  /** Requests for any other path (the admin API and dashboard). Default: 404. */
  fallback?: HttpHandler;
  /** Where consumer ids come from (randomness is passed in, not a hidden global); default: 128 random bits. */
  newConsumerId?: () => string;
  /** Called before every call with its request; throws (AUTH_REQUIRED, AUTH_FAILED) to refuse an unauthenticated caller. */
  authenticate?: (req: IncomingMessage) => void;
}

export interface GrpcHandler {
  /** Serves the Ferry services; passes every other request to the fallback. */
  readonly handle: HttpHandler;
  /** Ends open Consume streams and closes pull consumers (their messages go back to the groups). */
  close(): Promise<void>;
}

export function createGrpcHandler(options: GrpcHandlerOptions): GrpcHandler {
  const registry = new ConsumerRegistry(options.newConsumerId);
  const shutdown = new AbortController();
  // Every call in progress listens on it (connect links each call's signal to it and unlinks when
  // the call ends): their number is bounded by connections and streams, not by Node's leak warning.
  setMaxListeners(0, shutdown.signal);
  const router = createConnectRouter({
    interceptors: [ferryErrors(options.logger), ...(options.authenticate === undefined ? [] : [authenticated(options.authenticate)])],
    acceptCompression: [compressionGzip, compressionBrotli],
    readMaxBytes: GRPC_MESSAGE_BYTES_MAX,
    // Compressed requests are accepted (gzip, br); responses are never compressed (see the limit).
    compressMinBytes: RESPONSE_COMPRESS_BYTES_MIN,
    writeMaxBytes: GRPC_MESSAGE_BYTES_MAX,
    jsonOptions: CONNECT_JSON_OPTIONS,
    shutdownSignal: shutdown.signal,
  });
  router.service(TopicService, topicService(options.broker));
  router.service(MessageService, messageService({ broker: options.broker, registry, clock: options.clock, logger: options.logger }));
  // Methods are found by exact path (one Map lookup); the listener has normalised it already.
  const methods = new Map(router.handlers.map((method) => [method.requestPath, method]));
  const fallback = options.fallback ?? notFound;
  const publishDeps = { broker: options.broker, logger: options.logger };
  const consumeDeps = { broker: options.broker, registry, logger: options.logger, shutdown: shutdown.signal };
  const handle: HttpHandler = (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const method = methods.get(path);
    if (method === undefined) return fallback(req, res);
    const refusal = refusalOf(options, method, req);
    if (path === PUBLISH_PATH && refusal === null) {
      const form = fastPublishForm(req);
      if (form !== null) return servePublish(req, res, form, publishDeps, (body) => serveCall(method, req, res, null, options.logger, body));
    }
    if (path === CONSUME_PATH && refusal === null && fastConsumeAccepts(req)) return serveConsume(req, res, consumeDeps);
    return serveCall(method, req, res, refusal, options.logger);
  };
  return {
    handle,
    async close() {
      shutdown.abort(new ConnectError('the broker is shutting down', Code.Unavailable));
      await Promise.all(registry.values().map((consumer) => consumer.close()));
    },
  };
}

/** The refusal of an unauthenticated caller, as the call's error; null when the call may proceed. */
function refusalOf(options: GrpcHandlerOptions, method: UniversalHandler, req: IncomingMessage): ConnectError | null {
  if (options.authenticate === undefined) return null;
  try {
    options.authenticate(req);
    return null;
  } catch (error) {
    return toConnectError(error, options.logger, `${method.service.typeName}/${method.method.name}`);
  }
}

/** Runs one call through connect; a refused call never has its body read. */
async function serveCall(
  method: UniversalHandler,
  req: IncomingMessage,
  res: ServerResponse,
  refusal: ConnectError | null,
  logger: Logger,
  /** The body when the fast path has read (some of) it already (fast-publish.ts). */
  body?: AsyncIterable<Uint8Array>,
): Promise<void> {
  let request: UniversalServerRequest = universalRequestFromNodeRequest(req, res, undefined, callValues(req));
  if (body !== undefined) request = { ...request, body };
  if (refusal !== null) {
    // connect sets aside a buffer of the declared length before reading: it gets no length to trust.
    request.header.delete('content-length');
    request = { ...request, body: failingBody(refusal) };
    // Once answered, whatever the client still sends is read and dropped, never kept.
    res.once('finish', () => req.resume());
  }
  try {
    await universalResponseToNodeResponse(await method(request), res);
  } catch (error) {
    // A call the client gave up on (reset stream, closed socket) is not the server's failure.
    if (ConnectError.from(error).code === Code.Aborted) return;
    logger.error('grpc.call_failed', { method: `${method.service.typeName}/${method.method.name}`, error });
  }
}

/** A request body whose first read fails with `error`: connect answers the call with it. */
async function* failingBody(error: ConnectError): AsyncGenerator<Uint8Array> {
  throw error;
}

function notFound(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(404);
  res.end();
}

/**
 * Every error leaving a handler becomes a gRPC status with a ferry.v1.ErrorDetail, whether the
 * handler threw it at once (unary) or while streaming (Consume).
 */
function ferryErrors(logger: Logger): Interceptor {
  return (next) => async (request) => {
    const method = `${request.service.typeName}/${request.method.name}`;
    try {
      const response = await next(request);
      if (!response.stream) return response;
      return { ...response, message: mapStreamErrors(response.message, logger, method) };
    } catch (error) {
      throw toConnectError(error, logger, method);
    }
  };
}

/** Refuses every call of an unauthenticated caller, settles by consumer id included (inside ferryErrors). */
function authenticated(authenticate: (req: IncomingMessage) => void): Interceptor {
  return (next) => async (request) => {
    authenticate(requestOfValues(request.contextValues));
    return next(request);
  };
}

async function* mapStreamErrors<T>(messages: AsyncIterable<T>, logger: Logger, method: string): AsyncGenerator<T> {
  try {
    yield* messages;
  } catch (error) {
    throw toConnectError(error, logger, method);
  }
}
