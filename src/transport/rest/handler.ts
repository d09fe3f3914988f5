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
import { readRequestBody } from '../http/request-body.js';
import { ackIds, EventStreams } from './event-streams.js';
import { ACKS_BODY_BYTES_MAX, BATCH_BODY_BYTES_MAX } from './limits.js';
import { batchMessages, singleMessage } from './message-input.js';
import { RestProblem, sendError, sendJson } from './replies.js';

/** Where the REST endpoints live: every path under it is theirs. */
export const REST_PATH_PREFIX = '/v1/';

export interface RestHandlerOptions {
  /** The broker as this request's caller may use it; may throw (AUTH_REQUIRED, BROKER_BUSY). */
  broker: (req: IncomingMessage) => BrokerApi;
  /** The configured publish limits: a single message's body is refused past recordBytesMax unread. */
  limits?: () => AdmissionLimits;
  logger: Logger;
}

export interface RestHandler {
  /** Serves one request; a promise while a route other than the single publish is being served. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<void> | undefined;
  /** Open Server-Sent Events streams. */
  readonly streams: EventStreams;
  /** Ends every event stream (their subscriptions close; unacked group messages go back). */
  close(): Promise<void>;
}

type Route = 'publish' | 'batch' | 'events' | 'acks';

const ALLOWED: Record<Route, string> = { publish: 'POST', batch: 'POST', events: 'GET', acks: 'POST' };

/** A request as routed: where it goes, and its query (null without one). */
interface Routed {
  route: Route;
  topic: string;
  group: string;
  url: string;
  query: URLSearchParams | null;
}

export function createRestHandler(options: RestHandlerOptions): RestHandler {
  const { logger } = options;
  const streams = new EventStreams(logger);
  const limits = options.limits ?? (() => ADMISSION_CEILINGS);

  const serve = async (req: IncomingMessage, res: ServerResponse, routed: Routed, broker: BrokerApi): Promise<void> => {
    const { topic, group, query } = routed;
    switch (routed.route) {
      case 'publish':
        return;
      case 'batch': {
        const body = await readBodyPromise(req, BATCH_BODY_BYTES_MAX, 'BATCH_TOO_LARGE');
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
        const ids = ackIds(await readBodyPromise(req, ACKS_BODY_BYTES_MAX, 'BATCH_TOO_LARGE'), req.headers['content-type']);
        sendJson(res, 200, JSON.stringify(await streams.ack(topic, group, ids)));
        return;
      }
    }
  };

  return {
    streams,
    handle: (req, res) => {
      const url = req.url ?? '/';
      let routed: Routed;
      let broker: BrokerApi;
      try {
        routed = routeRequest(req, url);
        // Before the body is read: an unauthenticated or refused caller sends it for nothing.
        broker = options.broker(req);
      } catch (error) {
        sendError(res, error, logger, url);
        return undefined;
      }
      if (routed.route === 'publish') {
        publishOne(req, res, routed, broker, limits().recordBytesMax, logger);
        return undefined;
      }
      return serve(req, res, routed, broker).catch((error: unknown) => sendError(res, error, logger, url));
    },
    close: () => streams.close(),
  };
}

/** Routes the request and checks its method; throws the refusal. */
function routeRequest(req: IncomingMessage, url: string): Routed {
  const queryAt = url.indexOf('?');
  const path = queryAt < 0 ? url : url.slice(0, queryAt);
  const query = queryAt < 0 ? null : new URLSearchParams(url.slice(queryAt + 1));
  const { route, topic, group } = routeOf(path);
  if (req.method !== ALLOWED[route]) {
    throw new RestProblem(405, 'INVALID_ARGUMENT', `${req.method} is not allowed on ${path} (${ALLOWED[route]} is)`, ['allow', ALLOWED[route]]);
  }
  return { route, topic, group, url, query };
}

/**
 * The hot path, without a promise of its own: the body is read by a listener, the message
 * published, and the answer written once, in one write, when the broker's promise settles.
 */
function publishOne(req: IncomingMessage, res: ServerResponse, routed: Routed, broker: BrokerApi, recordBytesMax: number, logger: Logger): void {
  readBody(req, recordBytesMax, 'RECORD_TOO_LARGE', (error, body) => {
    if (error !== null) {
      sendError(res, error, logger, routed.url);
      return;
    }
    let published: Promise<PublishResult[]>;
    try {
      published = broker.publish(routed.topic, [singleMessage(req.headers, routed.query, body!)]);
    } catch (thrown) {
      sendError(res, thrown, logger, routed.url);
      return;
    }
    published.then(
      (results) => sendJson(res, results[0]!.deliverAtMs === undefined ? 200 : 202, resultJson(results[0]!)),
      (failure: unknown) => sendError(res, failure, logger, routed.url),
    );
  });
}

/** Where every topic's endpoints live. */
const TOPICS_PREFIX = '/v1/topics/';

/** The route of a path under /v1/; 404 for any other. Read by index, without splitting the path. */
function routeOf(path: string): { route: Route; topic: string; group: string } {
  // /v1/topics/{topic}/{verb}, or /v1/topics/{topic}/groups/{group}/acks
  const topicEnd = path.startsWith(TOPICS_PREFIX) ? path.indexOf('/', TOPICS_PREFIX.length) : -1;
  if (topicEnd >= 0) {
    const topic = decode(path.slice(TOPICS_PREFIX.length, topicEnd));
    const verbEnd = path.indexOf('/', topicEnd + 1);
    if (verbEnd < 0) {
      const verb = path.slice(topicEnd + 1);
      if (verb === 'messages') return { route: 'publish', topic, group: '' };
      // The listener writes the path canonically, with ':' escaped.
      if (verb === 'messages%3Abatch' || verb === 'messages:batch') return { route: 'batch', topic, group: '' };
      if (verb === 'events') return { route: 'events', topic, group: '' };
    } else if (path.slice(topicEnd + 1, verbEnd) === 'groups') {
      const groupEnd = path.indexOf('/', verbEnd + 1);
      if (groupEnd >= 0 && path.slice(groupEnd + 1) === 'acks') return { route: 'acks', topic, group: decode(path.slice(verbEnd + 1, groupEnd)) };
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
 * The request body, at most `bytesMax`, to `done` (transport/http/request-body.ts): past it
 * (declared or sent) the request is refused with `code` (413) and the rest is not read. A request
 * that ends before its body (the client went away) is not answered: nobody is left to read it.
 */
function readBody(req: IncomingMessage, bytesMax: number, code: 'RECORD_TOO_LARGE' | 'BATCH_TOO_LARGE', done: (error: FerryError | null, body: Buffer | null) => void): void {
  const tooLarge = (bytes: number): FerryError => new FerryError(code, `the request body of ${bytes} bytes is over ${bytesMax} bytes`);
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > bytesMax) {
    done(tooLarge(declared), null);
    return;
  }
  readRequestBody(req, bytesMax, (read, bytes) => {
    if (read === null) return;
    if (Array.isArray(read)) done(tooLarge(bytes), null);
    else done(null, read);
  });
}

/** readBody as a promise, for the routes that are not the hot path; a request that ends early is refused (400). */
function readBodyPromise(req: IncomingMessage, bytesMax: number, code: 'RECORD_TOO_LARGE' | 'BATCH_TOO_LARGE'): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const onClose = (): void => reject(new RestProblem(400, 'INVALID_ARGUMENT', 'the request ended before its body'));
    req.once('close', onClose);
    readBody(req, bytesMax, code, (error, body) => {
      req.off('close', onClose);
      if (error !== null) reject(error);
      else resolve(body!);
    });
  });
}
