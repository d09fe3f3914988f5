/**
 * FerryClient: the public face of the SDK. It owns one connection at a time, replaces it after a
 * loss (backoff with jitter, bounded) and re-establishes subscriptions on the new one.
 * The rest: docs/INTERNALS.md.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { FerryError, isFerryError } from '../errors.js';
import { FRAME_TYPES } from '../protocol/frame.js';
import { decodeTopicInfo, decodeTopicList, encodeCreateTopic, encodeTopicName } from '../protocol/codec-topics.js';
import { decodeSubscribed, encodeSubscribe, encodeUnsubscribe } from '../protocol/codec-subscribe.js';
import type { DeliverBatch, WireDurability, WirePublishMessage, WireRetention, WireTopicConfig, WireTopicInfo } from '../protocol/messages.js';
import { ClientConnection, type ConnectionHandler } from './connection.js';
import {
  checkRedriveLimit,
  describeGroup,
  listGroups,
  redriveOnce,
  redriveRequest,
  resetGroup,
  REDRIVE_CHUNK_MESSAGES,
  type GroupInfo,
  type RedriveOptions,
  type RedriveResult,
} from './groups.js';
import { backoffDelayMs, resolveClientOptions, type ConnectOptions, type ResolvedClientOptions } from './options.js';
import { publishMany, publishOne, toWireMessage, type BatchMessage, type PublishOptions, type PublishResult } from './publish.js';
import { Subscription, toStartPosition, type StartFrom, type SubscribeOptions } from './subscription.js';

export interface TopicOptions {
  partitions?: number;
  durability?: WireDurability;
  syncIntervalMs?: number;
  retention?: WireRetention;
  segmentBytes?: number;
  /** How long the broker remembers a message id (exactly-once publish); default 2 minutes. */
  dedupWindowMs?: number;
}

export type TopicInfo = WireTopicInfo;

/** Reasons a reconnect gives up at once instead of retrying. */
const GIVE_UP_CODES: ReadonlySet<string> = new Set(['AUTH_FAILED', 'AUTH_REQUIRED', 'UNSUPPORTED_VERSION']);
/** Requests that may wait for a reconnection at once: beyond it they fail rather than pile up. */
const WAITING_REQUESTS_MAX = 100_000;
/** Random bytes of a client's id for generated message ids: 72 bits, so two clients never collide. */
const CLIENT_ID_BYTES = 9;
/** Largest prefetch: the broker's credit limit keeps per-subscription memory bounded. */
export const PREFETCH_MAX = 65_535;
export const PREFETCH_DEFAULT = 256;

type State = 'connected' | 'reconnecting' | 'closing' | 'closed';

interface Waiter {
  resolve(connection: ClientConnection): void;
  reject(error: unknown): void;
}

export class FerryClient extends EventEmitter implements ConnectionHandler {
  private state: State = 'connected';
  private connection: ClientConnection | null = null;
  private readonly subscriptions = new Set<Subscription>();
  private readonly byWireId = new Map<number, Subscription>();
  private readonly creditDirtySet = new Set<Subscription>();
  private waiting: Waiter[] = [];
  private reconnectTimer: NodeJS.Timeout | null = null;
  private wakeReconnect: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  /** Prefix of the message ids this client generates (retryPublishes). */
  readonly clientId = randomBytes(CLIENT_ID_BYTES).toString('base64url');
  private messageSequence = 0;
  private retried = 0;

  private constructor(private readonly options: ResolvedClientOptions) {
    super();
  }

  /** Publish calls sent again after a lost connection (retryPublishes). */
  get publishesRetried(): number {
    return this.retried;
  }

  /** Connects and completes the handshake; rejects with CONNECTION_REFUSED if the server is not there. */
  static async connect(options: ConnectOptions = {}): Promise<FerryClient> {
    const client = new FerryClient(resolveClientOptions(options));
    client.connection = await ClientConnection.open(client.options, client);
    return client;
  }

  get isConnected(): boolean {
    return this.state === 'connected' && this.connection !== null;
  }

  /** The server's HELLO_OK (version, limits, heartbeat interval) on the current connection. */
  get server(): ClientConnection['hello'] {
    return this.connection?.hello ?? null;
  }

  // ---- topics ----

  createTopic(name: string, options: TopicOptions = {}): Promise<TopicInfo> {
    const config: Partial<WireTopicConfig> = { ...options };
    return this.withConnection((c) => c.request((w, id) => encodeCreateTopic(w, id, { name, config }), FRAME_TYPES.TOPIC_INFO, decodeTopicInfo));
  }

  async deleteTopic(name: string): Promise<void> {
    await this.withConnection((c) =>
      c.request((w, id) => encodeTopicName(w, FRAME_TYPES.DELETE_TOPIC, id, name), FRAME_TYPES.OK, () => undefined),
    );
  }

  listTopics(): Promise<TopicInfo[]> {
    return this.withConnection((c) => c.request((w, id) => w.emptyFrame(FRAME_TYPES.LIST_TOPICS, id), FRAME_TYPES.TOPIC_LIST, decodeTopicList));
  }

  describeTopic(name: string): Promise<TopicInfo> {
    return this.withConnection((c) =>
      c.request((w, id) => encodeTopicName(w, FRAME_TYPES.DESCRIBE_TOPIC, id, name), FRAME_TYPES.TOPIC_INFO, decodeTopicInfo),
    );
  }

  // ---- publishing ----

  /** Publishes one message; resolves when the broker confirms it per the topic's durability. */
  publish(topic: string, value: Buffer | string | Uint8Array, options: PublishOptions = {}): Promise<PublishResult> {
    let message;
    try {
      message = toWireMessage(value, options);
    } catch (error) {
      return Promise.reject(error);
    }
    const coalesce = this.options.coalescePublishes;
    if (this.options.retryPublishes !== null) {
      this.assignId(message);
      return this.retrying(performance.now(), (c) => publishOne(c, topic, message, coalesce));
    }
    const connection = this.connection;
    if (connection !== null && this.state === 'connected') return publishOne(connection, topic, message, coalesce);
    return this.whenConnected().then((c) => publishOne(c, topic, message, coalesce));
  }

  /** Publishes several messages in one frame; resolves with one result per message, in order. */
  publishBatch(topic: string, messages: readonly BatchMessage[]): Promise<PublishResult[]> {
    let wire;
    try {
      wire = messages.map((message) => toWireMessage(message.value, message));
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.options.retryPublishes !== null) {
      for (const message of wire) this.assignId(message);
      return this.retrying(performance.now(), (c) => publishMany(c, topic, wire));
    }
    return this.withConnection((c) => publishMany(c, topic, wire));
  }

  /** retryPublishes: a message without an id gets `<clientId>-<sequence>`, unique to this client. */
  private assignId(message: WirePublishMessage): void {
    message.id ??= `${this.clientId}-${++this.messageSequence}`;
  }

  /**
   * Sends, and sends again on each new connection while the attempt fails with CONNECTION_CLOSED,
   * the client is not closing, and the first send is younger than retryPublishes.windowMs. Only a
   * send that failed is repeated: waiting for a connection (which fails only when the client gives
   * up or closes) is not, so this never spins.
   */
  private async retrying<T>(firstSentMs: number, send: (connection: ClientConnection) => Promise<T>): Promise<T> {
    const windowMs = this.options.retryPublishes!.windowMs;
    for (;;) {
      const connection = this.connection !== null && this.state === 'connected' ? this.connection : await this.whenConnected();
      try {
        return await send(connection);
      } catch (error) {
        if (!isFerryError(error, 'CONNECTION_CLOSED') || this.state === 'closing' || this.state === 'closed') throw error;
        const ageMs = performance.now() - firstSentMs;
        if (ageMs >= windowMs) {
          throw new FerryError('CONNECTION_CLOSED', `connection lost; not retried: first sent ${Math.round(ageMs)} ms ago, beyond retryPublishes.windowMs (${windowMs} ms)`, {
            cause: error,
          });
        }
        this.retried++;
      }
    }
  }

  // ---- queue groups and dead letters ----

  /** Every queue group of a topic, with its state. */
  listGroups(topic: string): Promise<GroupInfo[]> {
    return this.withConnection((c) => listGroups(c, topic));
  }

  /** One group: pending, in flight, ack floor per partition, redelivered and dead-lettered totals, oldest unacked age, lag. */
  describeGroup(topic: string, group: string): Promise<GroupInfo> {
    return this.withConnection((c) => describeGroup(c, topic, group));
  }

  /**
   * Moves a group to a position: every message before it counts as settled, every one from it on
   * is pending again. In-flight deliveries and scheduled redeliveries are forgotten.
   */
  resetGroup(topic: string, group: string, to: StartFrom): Promise<GroupInfo> {
    let position;
    try {
      position = toStartPosition(to, group);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.withConnection((c) => resetGroup(c, topic, group, position));
  }

  /**
   * Moves dead letters back to the topics they came from (their ferry-dlq-topic header), oldest
   * first: all of them, or `limit`, an offset range, or those carrying a header. Resolves with how
   * many moved. Sent as requests of at most REDRIVE_CHUNK_MESSAGES each.
   */
  async redrive(deadLetterTopic: string, options: RedriveOptions = {}): Promise<RedriveResult> {
    const limit = checkRedriveLimit(options.limit);
    const request = redriveRequest(deadLetterTopic, options);
    let moved = 0;
    while (moved < limit) {
      const chunk = Math.min(REDRIVE_CHUNK_MESSAGES, limit - moved);
      const result = await this.withConnection((c) => redriveOnce(c, { ...request, limit: chunk }));
      moved += result.moved;
      if (result.moved < chunk) break;
    }
    return { moved };
  }

  // ---- consuming ----

  async subscribe(topic: string, options: SubscribeOptions = {}): Promise<Subscription> {
    const prefetch = options.prefetch ?? PREFETCH_DEFAULT;
    if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > PREFETCH_MAX) {
      throw new FerryError('INVALID_ARGUMENT', `prefetch must be an integer from 1 to ${PREFETCH_MAX}, got ${prefetch}`);
    }
    const { ackTimeoutMs, backoffMs, deliveriesMax, deadLetterTopic } = options;
    const settings = Object.fromEntries(
      Object.entries({ ackTimeoutMs, backoffMs, deliveriesMax, deadLetterTopic }).filter(([, value]) => value !== undefined),
    );
    const subscription = new Subscription(topic, options.group, prefetch, toStartPosition(options.from, options.group), this, settings);
    await this.withConnection((c) => this.subscribeOn(c, subscription));
    this.subscriptions.add(subscription);
    return subscription;
  }

  /** Sends SUBSCRIBE; the reply attaches the subscription synchronously, before any DELIVER that follows it. */
  private subscribeOn(connection: ClientConnection, subscription: Subscription): Promise<void> {
    const request = subscription.subscribeRequest();
    return connection.request(
      (w, id) => encodeSubscribe(w, id, request),
      FRAME_TYPES.SUBSCRIBED,
      (r) => {
        const { subscriptionId } = decodeSubscribed(r);
        if (connection !== this.connection || subscription.isClosed) {
          // Closed meanwhile: let the server drop it too.
          connection.request((w, id) => encodeUnsubscribe(w, id, subscriptionId), FRAME_TYPES.OK, () => undefined).catch(() => undefined);
          return;
        }
        subscription.attach(connection, subscriptionId);
        this.byWireId.set(subscriptionId, subscription);
      },
    );
  }

  // ---- SubscriptionHost ----

  creditDirty(subscription: Subscription): void {
    this.creditDirtySet.add(subscription);
    this.connection?.scheduleFlush();
  }

  flushNow(): void {
    this.connection?.flushNow();
  }

  unsubscribe(connection: ClientConnection, wireId: number): Promise<void> {
    this.byWireId.delete(wireId);
    return connection.request((w, id) => encodeUnsubscribe(w, id, wireId), FRAME_TYPES.OK, () => undefined);
  }

  subscriptionClosed(subscription: Subscription): void {
    this.subscriptions.delete(subscription);
    this.creditDirtySet.delete(subscription);
  }

  // ---- ConnectionHandler ----

  deliver(batch: DeliverBatch): void {
    this.byWireId.get(batch.subscriptionId)?.onDeliver(batch);
  }

  notice(error: FerryError): void {
    const detail = error.detail;
    if (detail?.['ended'] === true && typeof detail['subscriptionId'] === 'number') {
      // The broker ended the subscription (its topic was deleted: UNKNOWN_SUBSCRIPTION; the
      // permission to consume was withdrawn: FORBIDDEN): end the iterator with the reason.
      const subscription = this.byWireId.get(detail['subscriptionId']);
      if (subscription !== undefined) {
        this.byWireId.delete(detail['subscriptionId']);
        this.subscriptions.delete(subscription);
        this.creditDirtySet.delete(subscription);
        subscription.fail(error);
      }
    }
    this.emitError(error);
  }

  beforeFlush(connection: ClientConnection): void {
    if (this.creditDirtySet.size === 0) return;
    for (const subscription of this.creditDirtySet) subscription.writeCredit(connection);
    this.creditDirtySet.clear();
  }

  closed(connection: ClientConnection, error: FerryError): void {
    if (connection !== this.connection) return;
    this.connection = null;
    this.byWireId.clear();
    this.creditDirtySet.clear();
    for (const subscription of this.subscriptions) subscription.detach();
    if (this.state !== 'connected') return; // closing, or already reconnecting
    if (this.options.reconnect === null) {
      this.finish(error);
      return;
    }
    this.state = 'reconnecting';
    void this.reconnect(error);
  }

  // ---- reconnecting ----

  private async reconnect(cause: FerryError): Promise<void> {
    const policy = this.options.reconnect!;
    const startedMs = performance.now();
    let error: unknown = cause;
    for (let attempt = 1; ; attempt++) {
      if (this.state !== 'reconnecting') return;
      if (attempt > policy.attemptsMax || performance.now() - startedMs > policy.durationMsMax) {
        this.finish(new FerryError('CONNECTION_CLOSED', `reconnecting gave up after ${attempt - 1} attempts`, { cause: error }));
        return;
      }
      const delayMs = backoffDelayMs(attempt, policy);
      this.emit('reconnecting', { attempt, delayMs, error });
      await this.sleep(delayMs);
      if (this.state !== 'reconnecting') return;
      let connection: ClientConnection;
      try {
        connection = await ClientConnection.open(this.options, this);
      } catch (failure) {
        if (isFerryError(failure) && GIVE_UP_CODES.has(failure.code)) {
          // The credentials no longer work (changed password, removed user): retrying cannot help.
          this.finish(failure);
          return;
        }
        error = failure;
        continue;
      }
      if (this.state !== 'reconnecting') {
        connection.end();
        return;
      }
      this.connection = connection;
      this.state = 'connected';
      const waiting = this.waiting;
      this.waiting = [];
      for (const waiter of waiting) waiter.resolve(connection);
      await this.resubscribe(connection);
      this.emit('reconnected', { attempt });
      return;
    }
  }

  private async resubscribe(connection: ClientConnection): Promise<void> {
    await Promise.all(
      [...this.subscriptions].map(async (subscription) => {
        if (subscription.isClosed) return;
        try {
          await this.subscribeOn(connection, subscription);
        } catch (error) {
          if (connection !== this.connection) return; // lost again: the next reconnect retries
          const lost = error instanceof FerryError ? error : new FerryError('INTERNAL', String(error), { cause: error });
          subscription.fail(lost);
          this.subscriptions.delete(subscription);
          this.emitError(lost);
        }
      }),
    );
  }

  private sleep(delayMs: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeReconnect = resolve;
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        this.wakeReconnect = null;
        resolve();
      }, delayMs);
    });
  }

  private whenConnected(): Promise<ClientConnection> {
    if (this.state === 'connected' && this.connection !== null) return Promise.resolve(this.connection);
    if (this.state !== 'reconnecting') return Promise.reject(new FerryError('CONNECTION_CLOSED', 'the client is closed'));
    if (this.waiting.length >= WAITING_REQUESTS_MAX) {
      return Promise.reject(new FerryError('CONNECTION_CLOSED', `reconnecting, and ${WAITING_REQUESTS_MAX} requests already wait`));
    }
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private withConnection<T>(run: (connection: ClientConnection) => Promise<T>): Promise<T> {
    const connection = this.connection;
    if (connection !== null && this.state === 'connected') return run(connection);
    return this.whenConnected().then(run);
  }

  // ---- closing ----

  /** The client is done for good: fail what waits, end the subscriptions, emit 'close'. */
  private finish(error: FerryError): void {
    if (this.state === 'closed') return;
    const gaveUp = this.state !== 'closing';
    this.state = 'closed';
    const waiting = this.waiting;
    this.waiting = [];
    for (const waiter of waiting) waiter.reject(error);
    for (const subscription of this.subscriptions) subscription.fail(error);
    this.subscriptions.clear();
    if (gaveUp) this.emitError(error);
    this.emit('close', gaveUp ? error : undefined);
  }

  /**
   * Closes the subscriptions, waits (up to the request timeout) for in-flight requests to be
   * answered, and closes the connection. Safe to call twice.
   */
  close(): Promise<void> {
    return (this.closing ??= this.closeOnce());
  }

  private async closeOnce(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closing';
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.wakeReconnect?.();
    const closedError = new FerryError('CONNECTION_CLOSED', 'the client is closed');
    const waiting = this.waiting;
    this.waiting = [];
    for (const waiter of waiting) waiter.reject(closedError);
    await Promise.allSettled([...this.subscriptions].map((subscription) => subscription.close()));
    const connection = this.connection;
    if (connection !== null) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.options.requestTimeoutMs);
      });
      await Promise.race([connection.whenIdle(), timeout]);
      clearTimeout(timer);
      this.connection = null;
      connection.end();
    }
    this.finish(closedError);
  }

  private emitError(error: FerryError): void {
    // An 'error' event without a listener would throw: report only to those who listen.
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}

/** Connects to a Ferry server: `await connect({ host, port })` or `await connect({ url: 'ferry://host:port' })`. */
export function connect(options: ConnectOptions = {}): Promise<FerryClient> {
  return FerryClient.connect(options);
}
