/**
 * The admin JSON API: broker info and health, topics, groups, messages, dead letters and
 * connections. Every handler is a thin call into BrokerApi; bodies and query strings are checked
 * here and turned into INVALID_ARGUMENT errors that name the field. docs/OPERATIONS.md lists the
 * endpoints.
 */
import type { IncomingMessage } from 'node:http';
import type { ClusterChangeRequest, ClusterChangeResult } from '../protocol/codec-cluster-change.js';
import type { Clock } from '../platform/clock.js';
import { FerryError } from '../errors.js';
import type { BrokerApi, Header, PublishMessage, RedriveOptions, StartPosition, TopicConfig } from '../broker/types.js';
import { browse, BROWSE_LIMIT_DEFAULT } from './browse.js';
import type { ClusterView } from './cluster-view.js';
import type { ConnectionSource, ConnectionView } from './hooks.js';
import { Reply, type HttpRouter } from './http.js';
import { takeSnapshot, type TopicView } from './snapshot.js';
import type { Traffic } from './traffic.js';

export interface AdminInfo {
  name: string;
  version: string;
  node: string;
  pid: number;
  startedAtMs: number;
  dir: string | null;
  /** Where the Ferry protocol listens (null when it does not, e.g. embedded). */
  tcp: { host: string; port: number } | null;
  http: { host: string; port: number } | null;
}

/** Whether the broker takes work (/readyz), and why not. */
export interface Readiness {
  ready: boolean;
  /** 'ready', 'recovering', 'shutting down', 'not joined' or 'etcd unreachable'. */
  status: string;
  reason?: string;
}

export interface AdminContext {
  /** The broker the API drives; throws BROKER_BUSY while recovery runs. */
  broker(req: IncomingMessage): BrokerApi;
  /** The broker without traffic counting: browsing must not count as consuming. */
  rawBroker(req: IncomingMessage): BrokerApi;
  readiness(): Readiness;
  info(): AdminInfo;
  /** GET /api/cluster. */
  cluster(req: IncomingMessage): Promise<ClusterView>;
  /** POST /api/cluster/reassign and /drain; INVALID_ARGUMENT on a single broker. */
  changeCluster(req: IncomingMessage, request: ClusterChangeRequest): Promise<ClusterChangeResult>;
  clock: Clock;
  traffic: Traffic;
  connections(): ConnectionSource | null;
  /** Whether the request's caller may see the whole broker (admin on every topic, or security off). */
  seesBrokerWide(req: IncomingMessage): boolean;
}

/** Keys accepted when creating a topic: a typo is an error, not a silently ignored setting. */
const TOPIC_CONFIG_KEYS = new Set(['partitions', 'durability', 'syncIntervalMs', 'retention', 'segmentBytes', 'dedupWindowMs', 'replicas', 'minInSync']);

export function registerApi(router: HttpRouter, context: AdminContext): void {
  registerBrokerRoutes(router, context);
  registerTopicRoutes(router, context);
  registerGroupRoutes(router, context);
}

/** Health, the index, the broker's own state and the cluster's. */
function registerBrokerRoutes(router: HttpRouter, context: AdminContext): void {
  router
    .route('GET', '/healthz', () => ({ status: 'ok' }))
    .route('GET', '/readyz', () => readyz(context))
    .route('GET', '/api', () => apiIndex(router))
    .route('GET', '/api/info', () => ({ ...context.info(), ready: context.readiness().ready, uptimeMs: context.clock.nowMs() - context.info().startedAtMs }))
    .route('GET', '/api/overview', ({ req }) => overview(context, req))
    .route('GET', '/api/cluster', ({ req }) => context.cluster(req))
    .route('POST', '/api/cluster/reassign', async (request) => {
      const body = objectBody(await request.body());
      return context.changeCluster(request.req, { op: 'reassign', topic: stringField(body, 'topic'), replace: stringField(body, 'replace'), with: stringField(body, 'with') });
    })
    .route('POST', '/api/cluster/drain', async (request) => context.changeCluster(request.req, { op: 'drain', node: stringField(objectBody(await request.body()), 'node') }))
    .route('GET', '/api/connections', () => connections(context));
}

/** Topics and their messages. */
function registerTopicRoutes(router: HttpRouter, context: AdminContext): void {
  router
    .route('GET', '/api/topics', ({ req }) => takeSnapshot(context.broker(req)).topics.map(topicSummary))
    .route('POST', '/api/topics', async (request) => {
      const body = objectBody(await request.body());
      const name = stringField(body, 'name');
      const config: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(body)) {
        if (key === 'name') continue;
        if (!TOPIC_CONFIG_KEYS.has(key)) throw new FerryError('INVALID_ARGUMENT', `unknown topic setting "${key}"; known: ${[...TOPIC_CONFIG_KEYS].join(', ')}`);
        config[key] = value;
      }
      return new Reply(201, await context.broker(request.req).createTopic(name, config as Partial<TopicConfig>));
    })
    .route('GET', '/api/topics/:topic', ({ req, params }) => describeTopic(context.broker(req), params['topic']!))
    .route('DELETE', '/api/topics/:topic', async ({ req, params }) => {
      await context.broker(req).deleteTopic(params['topic']!);
      return { deleted: params['topic'] };
    })
    .route('POST', '/api/topics/:topic/purge', async ({ req, params }) => {
      // Until the broker can truncate a log in place, a purge recreates the topic with its settings;
      // its groups go with it (docs/OPERATIONS.md).
      const broker = context.broker(req);
      const name = params['topic']!;
      const info = broker.describeTopic(name);
      const removedGroups = info.groups;
      await broker.deleteTopic(name);
      await broker.createTopic(name, info.config);
      return { purged: name, removedGroups };
    })

    .route('GET', '/api/topics/:topic/messages', async ({ req, params, query }) => {
      const partition = intParam(query, 'partition', 0) ?? 0;
      const limit = intParam(query, 'limit', 1) ?? BROWSE_LIMIT_DEFAULT;
      const fromOffset = intParam(query, 'offset', 0);
      const fromTimeMs = timeParam(query, 'time');
      const key = query.get('key') ?? undefined;
      context.broker(req); // BROKER_BUSY until recovery finished, like every other call
      return browse(context.rawBroker(req), context.clock, params['topic']!, {
        partition,
        limit,
        ...(fromOffset === undefined ? {} : { fromOffset }),
        ...(fromTimeMs === undefined ? {} : { fromTimeMs }),
        ...(key === undefined || key === '' ? {} : { key }),
      });
    })
    .route('POST', '/api/topics/:topic/messages', async ({ req, params, body }) => {
      const message = publishBody(objectBody(await body()));
      const [result] = await context.broker(req).publish(params['topic']!, [message]);
      return new Reply(201, { topic: params['topic'], ...result });
    });
}

/** Queue groups, dead letters and redrive. */
function registerGroupRoutes(router: HttpRouter, context: AdminContext): void {
  router
    .route('GET', '/api/groups', ({ req }) =>
      takeSnapshot(context.broker(req)).topics.flatMap((topic) => topic.groups.filter((group) => !group.internal)),
    )
    .route('GET', '/api/topics/:topic/groups', ({ req, params }) => context.broker(req).listGroups?.(params['topic']!) ?? [])
    .route('GET', '/api/topics/:topic/groups/:group', ({ req, params }) => describeGroup(context.broker(req), params['topic']!, params['group']!))
    .route('POST', '/api/topics/:topic/groups/:group/reset', async ({ req, params, body }) => {
      const broker = context.broker(req);
      if (broker.resetGroup === undefined) throw new FerryError('INVALID_ARGUMENT', 'this broker cannot reset groups');
      return broker.resetGroup(params['topic']!, params['group']!, startPosition(objectBody(await body())['to']));
    })

    .route('GET', '/api/dead-letters', ({ req }) => deadLetters(context.broker(req)))
    .route('POST', '/api/topics/:topic/redrive', async ({ req, params, body }) => {
      const broker = context.broker(req);
      if (broker.redrive === undefined) throw new FerryError('INVALID_ARGUMENT', 'this broker cannot redrive');
      return broker.redrive(params['topic']!, redriveOptions(objectBody(await body())));
    });
}

/** 200 `{status: 'ready'}`, else 503 with the status and the reason. */
function readyz(context: AdminContext): unknown {
  const readiness = context.readiness();
  return readiness.ready ? { status: 'ready' } : new Reply(503, { status: readiness.status, reason: readiness.reason });
}

function overview(context: AdminContext, req: IncomingMessage): unknown {
  const readiness = context.readiness();
  const ready = readiness.ready;
  // A cluster member without etcd still serves: its figures are worth showing.
  const snapshot = ready || readiness.status === 'etcd unreachable' ? takeSnapshot(context.broker(req)) : null;
  const notReady = ready ? {} : { notReady: { status: readiness.status, reason: readiness.reason } };
  if (!context.seesBrokerWide(req)) {
    // A user short of admin on every topic sees its own topics' figures, not the process, the
    // connections, the pid or the data directory.
    const visible = new Set(snapshot?.topics.map((topic) => topic.info.name) ?? []);
    const info = { ...context.info(), pid: null, dir: null };
    return { timeMs: context.clock.nowMs(), ready, ...notReady, info, totals: snapshot?.totals ?? null, traffic: context.traffic.totals((topic) => visible.has(topic)), server: null, process: null };
  }
  const server = context.connections()?.stats() ?? null;
  return {
    timeMs: context.clock.nowMs(),
    ready,
    ...notReady,
    info: context.info(),
    totals: snapshot?.totals ?? null,
    traffic: context.traffic.totals(),
    server,
    process: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed, uptimeMs: Math.round(process.uptime() * 1000) },
  };
}

function topicSummary(view: TopicView): Record<string, unknown> {
  return {
    name: view.info.name,
    partitions: view.info.partitions.length,
    durability: view.info.config.durability,
    retention: view.info.config.retention,
    messages: view.messages,
    appended: view.appended,
    bytes: view.bytes,
    segments: view.segments,
    groups: view.groups.filter((group) => !group.internal).map((group) => group.name),
    deadLetter: view.deadLetter,
    deadLetterWaiting: view.deadLetterWaiting,
  };
}

function describeTopic(broker: BrokerApi, name: string): unknown {
  const info = broker.describeTopic(name);
  // The whole snapshot: whether this is a dead-letter topic depends on other topics' groups.
  const view = takeSnapshot(broker).topics.find((topic) => topic.info.name === name);
  if (view === undefined) throw new FerryError('UNKNOWN_TOPIC', `unknown topic ${name}`);
  return { ...topicSummary(view), config: info.config, partitions: info.partitions, groups: view.groups };
}

function describeGroup(broker: BrokerApi, topic: string, group: string): unknown {
  if (broker.describeGroup === undefined) throw new FerryError('INVALID_ARGUMENT', 'this broker cannot describe groups');
  return broker.describeGroup(topic, group);
}

function deadLetters(broker: BrokerApi): unknown {
  const snapshot = takeSnapshot(broker);
  return snapshot.topics
    .filter((topic) => topic.deadLetter)
    .map((topic) => ({
      topic: topic.info.name,
      messages: topic.messages,
      waiting: topic.deadLetterWaiting,
      bytes: topic.bytes,
      sources: snapshot.topics.flatMap((source) =>
        source.groups.filter((group) => !group.internal && group.config.deadLetterTopic === topic.info.name).map((group) => ({ topic: group.topic, group: group.name, deadLetteredTotal: group.deadLetteredTotal })),
      ),
    }));
}

function connections(context: AdminContext): unknown {
  const source = context.connections();
  if (source === null) return [];
  return source.connectionStats().map((stats: ConnectionView) => ({
    ...stats,
    backedUpMs: stats.backedUpMs ?? 0,
    slowConsumer: (stats.backedUpMs ?? 0) > 0,
  }));
}

// ---- request parsing --------------------------------------------------------------------------

function objectBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new FerryError('INVALID_ARGUMENT', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (typeof value !== 'string' || value === '') throw new FerryError('INVALID_ARGUMENT', `"${name}" must be a non-empty string`);
  return value;
}

function optionalInt(body: Record<string, unknown>, name: string): number | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new FerryError('INVALID_ARGUMENT', `"${name}" must be a non-negative integer`);
  return value;
}

function intParam(query: URLSearchParams, name: string, min: number): number | undefined {
  const text = query.get(name);
  if (text === null || text === '') return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new FerryError('INVALID_ARGUMENT', `query parameter ${name} must be an integer of at least ${min}, got "${text}"`);
  return value;
}

/** A time as ms since the epoch or an ISO 8601 date. */
function timeParam(query: URLSearchParams, name: string): number | undefined {
  const text = query.get(name);
  if (text === null || text === '') return undefined;
  const value = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isSafeInteger(value)) throw new FerryError('INVALID_ARGUMENT', `query parameter ${name} must be ms since the epoch or an ISO 8601 time, got "${text}"`);
  return value;
}

function bytesField(value: unknown, name: string, encoding: unknown): Buffer {
  if (typeof value !== 'string') throw new FerryError('INVALID_ARGUMENT', `"${name}" must be a string`);
  if (encoding === undefined || encoding === 'text') return Buffer.from(value, 'utf8');
  if (encoding === 'base64') return Buffer.from(value, 'base64');
  throw new FerryError('INVALID_ARGUMENT', '"encoding" must be "text" or "base64"');
}

/** `{value, encoding?, key?, headers?: {name: value} | [[name, value]], partition?}`. */
function publishBody(body: Record<string, unknown>): PublishMessage {
  const value = bytesField(body['value'], 'value', body['encoding']);
  const key = body['key'] === undefined || body['key'] === null ? null : bytesField(body['key'], 'key', undefined);
  const rawHeaders = body['headers'] ?? {};
  let headers: Header[];
  if (Array.isArray(rawHeaders)) {
    headers = rawHeaders.map((pair) => {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw new FerryError('INVALID_ARGUMENT', '"headers" as a list must hold [name, value] string pairs');
      }
      return [pair[0], pair[1]] as const;
    });
  } else if (typeof rawHeaders === 'object' && rawHeaders !== null) {
    headers = Object.entries(rawHeaders).map(([name, headerValue]) => {
      if (typeof headerValue !== 'string') throw new FerryError('INVALID_ARGUMENT', `header "${name}" must have a string value`);
      return [name, headerValue] as const;
    });
  } else {
    throw new FerryError('INVALID_ARGUMENT', '"headers" must be an object of name: value or a list of [name, value]');
  }
  const partition = optionalInt(body, 'partition');
  return { value, key, headers, ...(partition === undefined ? {} : { partition }) };
}

/** `"earliest"`, `"latest"`, `{offset}`, `{timestampMs}` or `{time: ISO}`. */
function startPosition(to: unknown): StartPosition {
  if (to === 'earliest' || to === 'latest') return { kind: to };
  if (typeof to === 'object' && to !== null) {
    const position = to as Record<string, unknown>;
    const offset = optionalInt(position, 'offset');
    if (offset !== undefined) return { kind: 'offset', offset };
    const timestampMs = optionalInt(position, 'timestampMs');
    if (timestampMs !== undefined) return { kind: 'timestamp', timestampMs };
    if (typeof position['time'] === 'string' && Number.isSafeInteger(Date.parse(position['time']))) return { kind: 'timestamp', timestampMs: Date.parse(position['time']) };
  }
  throw new FerryError('INVALID_ARGUMENT', '"to" must be "earliest", "latest", {"offset": n}, {"timestampMs": n} or {"time": "ISO 8601"}');
}

function redriveOptions(body: Record<string, unknown>): RedriveOptions {
  const options: RedriveOptions = {};
  const limit = optionalInt(body, 'limit');
  const fromOffset = optionalInt(body, 'fromOffset');
  const toOffset = optionalInt(body, 'toOffset');
  if (limit !== undefined) options.limit = limit;
  if (fromOffset !== undefined) options.fromOffset = fromOffset;
  if (toOffset !== undefined) options.toOffset = toOffset;
  const header = body['header'];
  if (header !== undefined) {
    if (!Array.isArray(header) || header.length !== 2 || typeof header[0] !== 'string' || typeof header[1] !== 'string') {
      throw new FerryError('INVALID_ARGUMENT', '"header" must be a [name, value] pair of strings');
    }
    options.header = [header[0], header[1]];
  }
  return options;
}

/** What `GET /api` answers: every JSON route of this port, and where the rest is described. */
function apiIndex(router: HttpRouter): unknown {
  return {
    name: 'ferry admin API',
    docs: 'docs/OPERATIONS.md, "Admin API"',
    routes: router.endpoints().map(({ method, pattern }) => ({ method, path: pattern })),
    also: { metrics: 'GET /metrics', dashboard: 'GET /', grpc: 'POST /ferry.v1.<Service>/<Method> (docs/GRPC.md)' },
  };
}
