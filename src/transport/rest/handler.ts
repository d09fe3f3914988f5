/**
 * The REST endpoints of the HTTP port (docs/HTTP.md), served before the admin router sees the
 * request: one string split, no URL object, no reflection on the way to `broker.publish`.
 *
 *   POST /v1/topics/{topic}/messages          the body is one message's value
 *   POST /v1/topics/{topic}/messages:batch    newline-delimited values, or a JSON array
 *   GET  /v1/topics/{topic}/events            Server-Sent Events (event-streams.ts)
 *   POST /v1/topics/{topic}/groups/{g}/acks   acks of a group's events
 *
 * The broker comes from `broker()` per request: in the broker process that is the caller's view
 * through the security guard (permissions, quota), over the publish batcher (publish-batcher.ts)
 * and the observed broker (limits, metrics), as for every other way in.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FerryError } from '../../errors.js';
import { ADMISSION_CEILINGS, type AdmissionLimits } from '../../broker/limits.js';
import type { BrokerApi, PublishResult } from '../../broker/types.js';
import type { Logger } from '../../platform/logger.js';
import { ackIds, EventStreams } from './event-streams.js';
import { ACKS_BODY_BYTES_MAX, BATCH_BODY_BYTES_MAX } from './limits.js';
import { batchMessages, singleMessage } from './message-input.js';
import { RestProblem, sendError, sendJson } from './replies.js';

/** Where the REST endpoints live: every path under it is theirs. */
export const REST_PATH_PREFIX = '/v1/';

export interface RestHandlerOptions {
  /** The broker as the current request's caller may use it; may throw (AUTH_REQUIRED, BROKER_BUSY). */
  broker: () => BrokerApi;
  /** The configured publish limits: a single message's body is refused past recordBytesMax unread. */
  limits?: () => AdmissionLimits;
  logger: Logger;
}

export interface RestHandler {
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** Open Server-Sent Events streams. */
  readonly streams: EventStreams;
  /** Ends every event stream (their subscriptions close; unacked group messages go back). */
  close(): Promise<void>;
}

type Route = 'publish' | 'batch' | 'events' | 'acks';

const ALLOWED: Record<Route, string> = { publish: 'POST', batch: 'POST', events: 'GET', acks: 'POST' };

export function createRestHandler(options: RestHandlerOptions): RestHandler {
  const { logger } = options;
  const streams = new EventStreams(logger);
  const limits = options.limits ?? (() => ADMISSION_CEILINGS);

  const serve = async (req: IncomingMessage, res: ServerResponse, url: string): Promise<void> => {
    const queryAt = url.indexOf('?');
    const path = queryAt < 0 ? url : url.slice(0, queryAt);
    const query = queryAt < 0 ? null : new URLSearchParams(url.slice(queryAt + 1));
    const { route, topic, group } = routeOf(path);
    if (req.method !== ALLOWED[route]) {
      res.setHeader('allow', ALLOWED[route]);
      throw new RestProblem(405, 'INVALID_ARGUMENT', `${req.method} is not allowed on ${path} (${ALLOWED[route]} is)`);
    }
    // Before the body is read: an unauthenticated or refused caller sends it for nothing.
    const broker = options.broker();
    switch (route) {
      case 'publish': {
        const recordBytesMax = limits().recordBytesMax;
        const body = await readBody(req, recordBytesMax, 'RECORD_TOO_LARGE');
        const [result] = await broker.publish(topic, [singleMessage(req.headers, query, body)]);
        sendJson(res, result!.deliverAtMs === undefined ? 200 : 202, resultJson(result!));
        return;
      }
      case 'batch': {
        const body = await readBody(req, BATCH_BODY_BYTES_MAX, 'BATCH_TOO_LARGE');
        const results = await broker.publish(topic, batchMessages(req.headers, query, body));
        const delayed = results.every((result) => result.deliverAtMs !== undefined);
        sendJson(res, delayed ? 202 : 200, `{"results":[${results.map(resultJson).join(',')}]}`);
        return;
      }
      case 'events':
        await streams.open(broker, topic, query ?? new URLSearchParams(), req, res);
        return;
      case 'acks': {
        // The caller must be allowed to consume the group (or administer the topic); an unknown group is 404.
        if (broker.describeGroup === undefined) throw new FerryError('INVALID_ARGUMENT', 'this broker has no queue groups');
        broker.describeGroup(topic, group);
        const ids = ackIds(await readBody(req, ACKS_BODY_BYTES_MAX, 'BATCH_TOO_LARGE'), req.headers['content-type']);
        sendJson(res, 200, JSON.stringify(await streams.ack(topic, group, ids)));
        return;
      }
    }
  };

  return {
    streams,
    handle: async (req, res) => {
      const url = req.url ?? '/';
      try {
        await serve(req, res, url);
      } catch (error) {
        sendError(res, error, logger, url);
      }
    },
    close: () => streams.close(),
  };
}

/** The route of a path under /v1/; 404 for any other. */
function routeOf(path: string): { route: Route; topic: string; group: string } {
  // '', 'v1', 'topics', topic, verb[, group, 'acks']
  const parts = path.split('/');
  if (parts[2] === 'topics' && parts.length >= 5) {
    const topic = decode(parts[3]!);
    const verb = parts[4];
    if (parts.length === 5) {
      if (verb === 'messages') return { route: 'publish', topic, group: '' };
      // The listener writes the path canonically, with ':' escaped.
      if (verb === 'messages%3Abatch' || verb === 'messages:batch') return { route: 'batch', topic, group: '' };
      if (verb === 'events') return { route: 'events', topic, group: '' };
    } else if (parts.length === 7 && verb === 'groups' && parts[6] === 'acks') {
      return { route: 'acks', topic, group: decode(parts[5]!) };
    }
  }
  throw new RestProblem(404, 'NOT_FOUND', `no endpoint ${path} (docs/HTTP.md lists them)`);
}

function decode(segment: string): string {
  return segment.includes('%') ? decodeURIComponent(segment) : segment;
}

/** `{partition, offset, durability}` (and `duplicate`, `deliverAtMs` when they apply), written by hand: it is the hot path's answer. */
function resultJson(result: PublishResult): string {
  let text = `{"partition":${result.partition},"offset":${result.offset},"durability":"${result.durability}"`;
  if (result.duplicate === true) text += ',"duplicate":true';
  if (result.deliverAtMs !== undefined) text += `,"deliverAtMs":${result.deliverAtMs}`;
  return text + '}';
}

/**
 * The request body, at most `bytesMax`: past it (declared or sent) the request is refused with
 * `code` (413) and the rest is not read.
 */
function readBody(req: IncomingMessage, bytesMax: number, code: 'RECORD_TOO_LARGE' | 'BATCH_TOO_LARGE'): Promise<Buffer> {
  const tooLarge = (bytes: number): FerryError => new FerryError(code, `the request body of ${bytes} bytes is over ${bytesMax} bytes`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > bytesMax) return Promise.reject(tooLarge(declared));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes > bytesMax) {
        cleanup();
        reject(tooLarge(bytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, bytes));
    };
    const onClose = (): void => {
      cleanup();
      reject(new RestProblem(400, 'INVALID_ARGUMENT', 'the request ended before its body'));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onClose);
      req.off('close', onClose);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onClose);
    req.on('close', onClose);
  });
}
