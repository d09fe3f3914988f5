/**
 * A watch on a key prefix over the gateway's streaming `/v3/watch`: newline-delimited JSON objects
 * (`{"result": WatchResponse}`, or `{"error": ...}` before the stream ends). The watch survives
 * broken streams: it opens a new one, on the next endpoint, from the revision after the last one it
 * delivered, so each event reaches the listener once and in revision order. When that revision has
 * been compacted away it says so (`compacted`) and goes on from the oldest revision kept; the caller
 * reads the prefix again and skips events at or below that read's revision.
 */
import assert from 'node:assert/strict';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { REQUIRE_LEADER_HEADER, type Caller } from './caller.js';
import { isTlsFailure, tlsFailure } from './connector.js';
import { EtcdError } from './errors.js';
import type { Endpoint } from './endpoint.js';
import { gatewayError } from './http.js';
import {
  RESPONSE_BYTES_MAX,
  WATCH_CREATE_TIMEOUT_MS,
  WATCH_IDLE_MS_DEFAULT,
  WATCH_RETRY_MS_MAX,
  WATCH_RETRY_MS_MIN,
  WATCH_SOCKET_KEEPALIVE_MS,
} from './limits.js';
import { badResponse, decodeHeader, decodeKeyValue, encodeBytes, int, prefixRangeEnd, type JsonWatchResponse, type KeyValue } from './wire.js';

export interface WatchOptions {
  /** First revision to deliver; by default, changes after the watch is created. */
  fromRevision?: number;
  /** A stream silent this long is opened again (see WATCH_IDLE_MS_DEFAULT). */
  idleMs?: number;
}

export interface WatchEvent {
  type: 'put' | 'delete';
  /** For a delete: the key and the revision of the delete (`modRevision`); the value is empty. */
  kv: KeyValue;
}

export type WatchUpdate =
  /** Events of one or more whole revisions; `revision` is the last one's. */
  | { type: 'events'; events: WatchEvent[]; revision: number }
  /** Events below `compactRevision` are gone: read the prefix again; events from it on follow. */
  | { type: 'compacted'; compactRevision: number };

/** Called once per update, never concurrently; the next update waits for a returned promise. */
export type WatchListener = (update: WatchUpdate) => void | Promise<void>;

/** Why a stream ended. */
type StreamEnd =
  | { kind: 'broken'; reason: string }
  /** Silent for idleMs: opened again at once, on the same endpoint (not a failure). */
  | { kind: 'idle' }
  | { kind: 'compacted'; compactRevision: number }
  | { kind: 'listener-failed'; error: Error }
  | { kind: 'closed' };


export class Watch {
  /** Resolves once a stream is created (later changes will be delivered) or the watch is closed. */
  readonly ready: Promise<void>;
  /** Resolves when the watch ends: undefined after close(), the listener's error if it threw. */
  readonly done: Promise<Error | undefined>;
  private markReady!: () => void;
  /** First revision the next stream asks for; undefined: "from now" (until a stream is created). */
  private nextRevision: number | undefined;
  private closed = false;
  private delivering = false;
  private current: ClientRequest | undefined = undefined;
  private wake: (() => void) | undefined = undefined;
  private readonly idleMs: number;
  private readonly rangeEnd: string;

  constructor(
    private readonly caller: Caller,
    readonly prefix: string,
    options: WatchOptions,
    private readonly listener: WatchListener,
    private readonly clock: Clock,
    private readonly logger: Logger,
    onDone: () => void,
  ) {
    if (options.fromRevision !== undefined && (!Number.isSafeInteger(options.fromRevision) || options.fromRevision < 1)) {
      throw new EtcdError('ETCD_REJECTED', `watch: fromRevision must be an integer >= 1, got ${options.fromRevision}`);
    }
    this.nextRevision = options.fromRevision;
    this.idleMs = options.idleMs ?? WATCH_IDLE_MS_DEFAULT;
    this.rangeEnd = encodeBytes(prefixRangeEnd(prefix));
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.done = this.run().finally(() => {
      this.markReady();
      onDone();
    });
  }

  /** The last revision whose events were all delivered (0 before the first stream is created). */
  get revision(): number {
    return this.nextRevision === undefined ? 0 : this.nextRevision - 1;
  }

  /** Stops the watch; no update is delivered after the returned promise resolves. */
  async close(): Promise<void> {
    this.closed = true;
    this.current?.destroy();
    this.wake?.();
    // Called from the listener itself, the loop cannot end before the listener returns.
    if (!this.delivering) await this.done;
  }

  private async run(): Promise<Error | undefined> {
    let endpoint = this.caller.streamEndpoint();
    let retryMs = WATCH_RETRY_MS_MIN;
    let failures = 0;
    while (!this.closed) {
      const created = { value: false };
      const end = await this.stream(endpoint, created);
      if (created.value) {
        if (failures > 0) this.logger.info('cluster.etcd.watch_resumed', { prefix: this.prefix, endpoint: endpoint.url, fromRevision: this.nextRevision });
        failures = 0;
        retryMs = WATCH_RETRY_MS_MIN;
      }
      if (end.kind === 'closed' || this.closed) return undefined;
      if (end.kind === 'listener-failed') {
        this.logger.error('cluster.etcd.watch_listener_failed', { prefix: this.prefix, error: end.error });
        return end.error;
      }
      if (end.kind === 'idle') {
        this.logger.debug('cluster.etcd.watch_idle_reopened', { prefix: this.prefix, endpoint: endpoint.url, fromRevision: this.nextRevision });
        continue;
      }
      if (end.kind === 'compacted') {
        this.logger.warn('cluster.etcd.watch_compacted', { prefix: this.prefix, wanted: this.nextRevision, compactRevision: end.compactRevision });
        const failed = await this.deliver({ type: 'compacted', compactRevision: end.compactRevision });
        if (failed !== undefined) return failed;
        this.nextRevision = end.compactRevision;
        continue;
      }
      failures += 1;
      const fields = { prefix: this.prefix, endpoint: endpoint.url, reason: end.reason, fromRevision: this.nextRevision };
      if (failures === 1) this.logger.warn('cluster.etcd.watch_broken', fields);
      else this.logger.debug('cluster.etcd.watch_broken', fields);
      endpoint = this.caller.streamEndpoint({ endpoint, reason: end.reason });
      await this.pause(retryMs);
      retryMs = Math.min(retryMs * 2, WATCH_RETRY_MS_MAX);
    }
    return undefined;
  }

  /** One stream, from opening it to its end; `created` is set once etcd confirms it. */
  private async stream(endpoint: Endpoint, created: { value: boolean }): Promise<StreamEnd> {
    const createRequest = {
      key: encodeBytes(this.prefix),
      range_end: this.rangeEnd,
      progress_notify: true,
      ...(this.nextRevision === undefined ? {} : { start_revision: String(this.nextRevision) }),
    };
    const req = this.caller.connector.request(endpoint, '/v3/watch', { 'content-type': 'application/json', ...REQUIRE_LEADER_HEADER }, 'own');
    this.current = req;
    req.on('socket', (socket) => socket.setKeepAlive(true, WATCH_SOCKET_KEEPALIVE_MS));
    let timer: TimerHandle | undefined = undefined;
    let timedOut: 'idle' | 'create' | undefined = undefined;
    // Bounds the wait for the next message: creation first, then silence; off while the listener runs.
    const arm = (ms: number | undefined): void => {
      timer?.cancel();
      if (ms === undefined) return;
      timer = this.clock.schedule(ms, () => {
        timedOut = created.value ? 'idle' : 'create';
        req.destroy();
      });
    };
    arm(WATCH_CREATE_TIMEOUT_MS);
    try {
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        req.once('response', resolve);
        req.once('error', reject);
        req.end(JSON.stringify({ create_request: createRequest }));
      });
      req.on('error', () => {}); // later errors end the iteration below
      return await this.readLines(response, endpoint, created, arm);
    } catch (error) {
      if (this.closed) return { kind: 'closed' };
      if (timedOut === 'idle') return { kind: 'idle' };
      if (timedOut === 'create') return { kind: 'broken', reason: `not created within ${WATCH_CREATE_TIMEOUT_MS} ms` };
      if (isTlsFailure(error)) return { kind: 'broken', reason: tlsFailure(error, endpoint).message };
      return { kind: 'broken', reason: error instanceof Error ? error.message : String(error) };
    } finally {
      (timer as TimerHandle | undefined)?.cancel();
      req.destroy();
      this.current = undefined;
    }
  }

  private async readLines(response: IncomingMessage, endpoint: Endpoint, created: { value: boolean }, arm: (ms: number | undefined) => void): Promise<StreamEnd> {
    response.setEncoding('utf8');
    let buffer = '';
    for await (const chunk of response as AsyncIterable<string>) {
      buffer += chunk;
      if (buffer.length > RESPONSE_BYTES_MAX) return { kind: 'broken', reason: `a watch message exceeds ${RESPONSE_BYTES_MAX} bytes` };
      for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line === '') continue;
        arm(undefined);
        const end = await this.handleLine(line, endpoint, created);
        if (end !== undefined) return end;
        if (this.closed) return { kind: 'closed' };
        arm(created.value ? this.idleMs : WATCH_CREATE_TIMEOUT_MS);
      }
    }
    return { kind: 'broken', reason: `the stream ended (HTTP ${response.statusCode})` };
  }

  /** Handles one message of the stream; returns how the stream ends if it does. */
  private async handleLine(line: string, endpoint: Endpoint, created: { value: boolean }): Promise<StreamEnd | undefined> {
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return { kind: 'broken', reason: badResponse(`a watch line is not JSON: ${line.slice(0, 200)}`, endpoint.url).message };
    }
    const error = gatewayError(json, endpoint);
    if (error !== undefined) return { kind: 'broken', reason: error.message };
    const result = (json['result'] ?? {}) as JsonWatchResponse;
    try {
      const compactRevision = int(result.compact_revision, 'compact_revision');
      if (result.canceled === true || compactRevision > 0) {
        return compactRevision > 0 ? { kind: 'compacted', compactRevision } : { kind: 'broken', reason: `etcd cancelled the watch: ${result.cancel_reason ?? 'no reason given'}` };
      }
      const headerRevision = decodeHeader(result.header).revision;
      if (result.created === true) {
        created.value = true;
        // Without a start revision the stream delivers what comes after the store's revision now.
        this.nextRevision ??= headerRevision + 1;
        this.markReady();
        return undefined;
      }
      const events = (result.events ?? []).map(decodeEvent).filter((event) => event.kv.modRevision >= this.nextRevision!);
      if (events.length === 0) {
        // A progress notification: etcd sends one only once every earlier event was sent.
        if ((result.events ?? []).length === 0) this.nextRevision = Math.max(this.nextRevision!, headerRevision + 1);
        return undefined;
      }
      for (let i = 1; i < events.length; i++) assert.ok(events[i]!.kv.modRevision >= events[i - 1]!.kv.modRevision, 'watch events come in revision order');
      const revision = events[events.length - 1]!.kv.modRevision;
      const failed = await this.deliver({ type: 'events', events, revision });
      if (failed !== undefined) return { kind: 'listener-failed', error: failed };
      this.nextRevision = revision + 1;
      return undefined;
    } catch (decodeError) {
      if (decodeError instanceof EtcdError) return { kind: 'broken', reason: decodeError.message };
      throw decodeError;
    }
  }

  /** Runs the listener; returns its error, if it threw. */
  private async deliver(update: WatchUpdate): Promise<Error | undefined> {
    if (this.closed) return undefined;
    this.delivering = true;
    try {
      await this.listener(update);
      return undefined;
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    } finally {
      this.delivering = false;
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.clock.schedule(ms, () => {
        this.wake = undefined;
        resolve();
      });
      this.wake = () => {
        timer.cancel();
        this.wake = undefined;
        resolve();
      };
    });
  }
}

function decodeEvent(event: NonNullable<JsonWatchResponse['events']>[number]): WatchEvent {
  if (event.kv === undefined) throw badResponse('a watch event without kv');
  return { type: event.type === 'DELETE' ? 'delete' : 'put', kv: decodeKeyValue(event.kv) };
}
