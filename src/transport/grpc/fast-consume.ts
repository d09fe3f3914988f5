/**
 * MessageService.Consume without connect's stream machinery, for the form streaming clients send:
 * gRPC over HTTP/2, uncompressed. The request envelopes are read off the stream and decoded with
 * protobuf-es (one per turn of a consumer's acks: few), the ConsumeSession runs exactly as on the
 * general path, and its responses are framed by hand, the deliveries encoded by consume-codec.ts.
 * Profiled, a drain through connect spent more of the broker's time encoding responses by
 * reflection and in per-message async iteration than in the broker's delivery itself.
 *
 * Errors end the call with the trailers connect writes (toConnectError, setTrailerStatus). Anything
 * else (gRPC-Web, the Connect protocol, compression) goes to connect.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Code, ConnectError } from '@connectrpc/connect';
import { setTrailerStatus } from '@connectrpc/connect/protocol-grpc';
import type { Logger } from '../../platform/logger.js';
import type { BrokerApi } from '../../broker/types.js';
import { ConsumeRequestSchema, ConsumeResponseSchema } from '../../generated/ferry/v1/messages_pb.js';
import type { ConsumeInput, ConsumeOutput } from './consume-session.js';
import { decodeAckRequest } from './ack-request-codec.js';
import type { ConsumerRegistry } from './consumers.js';
import { encodeDeliveries } from './consume-codec.js';
import { ResponseBuffers } from './response-buffers.js';
import { deliveryToProto } from './convert.js';
import { toConnectError } from './errors.js';
import { GRPC_MESSAGE_BYTES_MAX } from './limits.js';
import { openConsumeSession } from './message-service.js';

export const CONSUME_PATH = '/ferry.v1.MessageService/Consume';
const METHOD_NAME = 'ferry.v1.MessageService/Consume';
/** gRPC's length-prefixed envelope: a flags byte and a 32-bit big-endian length. */
const ENVELOPE_BYTES = 5;
const FLAG_COMPRESSED = 0x01;
/** Decoded requests waiting for the session at most before the stream is paused (the session reads them as they come). */
const QUEUED_REQUESTS_MAX = 64;

export interface FastConsumeDeps {
  /** The broker as the caller of the request may use it. */
  broker: (req: IncomingMessage) => BrokerApi;
  registry: ConsumerRegistry;
  logger: Logger;
  /** Aborted when the broker shuts down: every open call ends UNAVAILABLE. */
  shutdown: AbortSignal;
}

/** The Consume calls the fast path takes: gRPC over HTTP/2 without compression. */
export function fastConsumeAccepts(req: IncomingMessage): boolean {
  if (req.method !== 'POST' || req.httpVersionMajor !== 2) return false;
  const type = req.headers['content-type'];
  if (type !== 'application/grpc' && type !== 'application/grpc+proto') return false;
  const encoding = req.headers['grpc-encoding'];
  return encoding === undefined || encoding === 'identity';
}

/** Serves one Consume call until the session ends, the client cancels, or the broker shuts down. */
export async function serveConsume(req: IncomingMessage, res: ServerResponse, deps: FastConsumeDeps): Promise<void> {
  const call = new AbortController();
  const onShutdown = (): void => call.abort(deps.shutdown.reason);
  // A cancelled call (reset stream, closed connection) ends the session without a status to send.
  const onClose = (): void => call.abort(new Error('the client cancelled the call'));
  if (deps.shutdown.aborted) onShutdown();
  else deps.shutdown.addEventListener('abort', onShutdown);
  res.once('close', onClose);
  const requests = new RequestEnvelopes(req);
  const buffers = new ResponseBuffers();
  try {
    const session = openConsumeSession(deps, req);
    for await (const output of session.run(requests, call.signal)) {
      if (res.destroyed) break;
      writeHeaders(res);
      const framed = frame(output, buffers);
      // Once written (the socket has the bytes), the buffer encodes a later burst.
      const written = res.write(framed, (error?: Error | null) => {
        if (error === undefined || error === null) buffers.give(framed);
      });
      if (!written) await drained(res);
    }
    end(res, null);
  } catch (error) {
    end(res, toConnectError(error, deps.logger, METHOD_NAME));
  } finally {
    deps.shutdown.removeEventListener('abort', onShutdown);
    res.off('close', onClose);
    requests.stop();
  }
}

function writeHeaders(res: ServerResponse): void {
  if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/grpc+proto' });
}

/** The call's status in trailers (after the headers, when no response came before). */
function end(res: ServerResponse, error: ConnectError | null): void {
  if (res.destroyed || res.writableEnded) return;
  writeHeaders(res);
  if (error === null) {
    res.addTrailers({ 'grpc-status': '0' });
  } else {
    const trailers = new Headers();
    setTrailerStatus(trailers, error);
    res.addTrailers(Object.fromEntries(trailers));
  }
  res.end();
}

/** One response in its gRPC envelope. */
function frame(output: ConsumeOutput, buffers: ResponseBuffers): Buffer {
  let framed = output.deliveries === undefined ? null : encodeDeliveries(output.deliveries, ENVELOPE_BYTES, buffers.take);
  if (framed === null) {
    const response = output.deliveries === undefined ? output.response : { messages: output.deliveries.map(deliveryToProto) };
    const encoded = toBinary(ConsumeResponseSchema, create(ConsumeResponseSchema, response));
    framed = Buffer.allocUnsafe(ENVELOPE_BYTES + encoded.length);
    framed.set(encoded, ENVELOPE_BYTES);
  }
  framed[0] = 0;
  framed.writeUInt32BE(framed.length - ENVELOPE_BYTES, 1);
  return framed;
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * The request stream as decoded ConsumeRequests. A compressed envelope (no grpc-encoding was
 * agreed), one past GRPC_MESSAGE_BYTES_MAX, bytes that are not a ConsumeRequest, or a stream that
 * ends inside an envelope fail the call as connect's reader would.
 */
class RequestEnvelopes implements AsyncIterable<ConsumeInput> {
  private readonly queue: ConsumeInput[] = [];
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  private failure: ConnectError | null = null;
  private wake: (() => void) | null = null;
  private stopped = false;

  constructor(private readonly req: IncomingMessage) {
    req.on('data', this.onData);
    req.on('end', this.onEnd);
    req.on('error', this.onError);
  }

  /** The call is over: nothing more is read (what the client still sends is dropped). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.req.off('data', this.onData);
    this.req.off('end', this.onEnd);
    this.req.off('error', this.onError);
    this.req.on('error', () => undefined);
    this.req.resume();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ConsumeInput> {
    for (;;) {
      const next = this.queue.shift();
      if (next !== undefined) {
        if (this.queue.length < QUEUED_REQUESTS_MAX / 2 && this.req.isPaused() && !this.stopped) this.req.resume();
        yield next;
        continue;
      }
      if (this.failure !== null) throw this.failure;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.failure === null && this.pending.length >= ENVELOPE_BYTES) {
      const length = this.pending.readUInt32BE(1);
      if ((this.pending[0]! & FLAG_COMPRESSED) !== 0) this.fail(new ConnectError('a compressed message without an agreed grpc-encoding', Code.Internal));
      else if (length > GRPC_MESSAGE_BYTES_MAX) this.fail(new ConnectError(`message size ${length} is larger than configured readMaxBytes ${GRPC_MESSAGE_BYTES_MAX}`, Code.ResourceExhausted));
      else if (this.pending.length < ENVELOPE_BYTES + length) break;
      else this.decode(length);
    }
    if (this.queue.length >= QUEUED_REQUESTS_MAX) this.req.pause();
    this.wake?.();
  };

  private decode(length: number): void {
    const bytes = this.pending.subarray(ENVELOPE_BYTES, ENVELOPE_BYTES + length);
    this.pending = this.pending.subarray(ENVELOPE_BYTES + length);
    try {
      // A request of acks only (the common one) without reflection; any other by protobuf-es.
      this.queue.push(decodeAckRequest(bytes) ?? fromBinary(ConsumeRequestSchema, bytes));
    } catch (error) {
      this.fail(new ConnectError(`the request is not a ConsumeRequest: ${(error as Error).message}`, Code.InvalidArgument));
    }
  }

  private readonly onEnd = (): void => {
    if (this.pending.length > 0) this.fail(new ConnectError('the request stream ended inside a message', Code.InvalidArgument));
    this.ended = true;
    this.wake?.();
  };

  private readonly onError = (error: Error): void => {
    this.fail(new ConnectError(error.message, Code.Canceled));
    this.wake?.();
  };

  private fail(error: ConnectError): void {
    this.failure ??= error;
    this.pending = Buffer.alloc(0);
  }
}
