/**
 * FerryClient: the public face of the SDK. One server: one connection at a time, replaced after a
 * loss; several servers (or a broker in cluster mode): a ClusterRouter routes each request to its
 * topic's leader (cluster-router.ts). The rest: docs/INTERNALS.md.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { FerryError, isFerryError } from '../errors.js';
import { FRAME_TYPES } from '../protocol/frame.js';
import { decodeTopicInfo, decodeTopicList, encodeCreateTopic, encodeTopicName } from '../protocol/codec-topics.js';
import { decodeSubscribed, encodeSubscribe, encodeUnsubscribe } from '../protocol/codec-subscribe.js';
import type { WirePublishMessage, WireTopicInfo } from '../protocol/messages.js';
import { addressKey } from './address.js';
import { ClusterRouter, type RouterHost } from './cluster-router.js';
import { clusterStatus, type ClusterStatus } from './cluster-status.js';
import { decodeClusterChangeOk, encodeClusterChange, type ClusterChangeResult } from '../protocol/codec-cluster-change.js';
import type { ClientConnection } from './connection.js';
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
import { GIVE_UP_CODES, Link, openFirst, type LinkOwner } from './link.js';
import type { ClusterMetadata } from './metadata.js';
import { backoffDelayMs, resolveClientOptions, type ConnectOptions, type ResolvedClientOptions } from './options.js';
import { publishMany, publishOne, toWireMessage, type BatchMessage, type PublishBatchOptions, type PublishOptions, type PublishResult } from './publish.js';
import type { CallKind } from './retry-policy.js';
import { Subscription, toStartPosition, type StartFrom, type SubscribeOptions, type SubscriptionHost, type SubscriptionMovedEvent } from './subscription.js';
import { topicConfig, type TopicOptions } from './topic-options.js';
import { UdpPublisher, type UdpPublishOptions } from './udp.js';
import { ClientTracing, traced } from './tracing.js';
import { requestVerify, type TopicVerification } from './verify.js';

export type { TopicOptions };
/** A topic: its settings, and per partition its offsets (and in a cluster: leader, epoch, replicas, in-sync set, high watermark, each replica's end offset and lag). */
export type TopicInfo = WireTopicInfo;
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

export class FerryClient extends EventEmitter implements LinkOwner, RouterHost, SubscriptionHost {
  private state: State = 'connected';
  /** One server: the connection to it (null while reconnecting). */
  private link: Link | null = null;
  /** Several servers, or a broker in cluster mode: the connections to the brokers and the routing. */
  private router: ClusterRouter | null = null;
  private readonly subscriptions = new Set<Subscription>();
  private readonly creditDirtySet = new Set<Subscription>();
  private waiting: Waiter[] = [];
  private reconnectTimer: NodeJS.Timeout | null = null;
  private wakeReconnect: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  /** Prefix of the message ids this client generates (retryPublishes, cluster mode). */
  readonly clientId = randomBytes(CLIENT_ID_BYTES).toString('base64url');
  private messageSequence = 0;
  private retried = 0;
  /** UDP sockets of publishUdp, one per broker host. */
  private readonly udpPublishers = new Map<string, UdpPublisher>();

  private constructor(
    private readonly options: ResolvedClientOptions,
    /** Producer and consumer spans (client/tracing.ts); null without @opentelemetry/api or with `tracing: false`. */
    readonly tracing: ClientTracing | null,
  ) {
    super();
  }

  /** Publish calls (and other requests) sent again after a lost connection or a leader change. */
  get publishesRetried(): number {
    return this.retried;
  }

  /**
   * Connects to the first server that answers (in the order given) and completes the handshake;
   * rejects with CONNECTION_REFUSED if none is there. Several servers, or a broker announcing
   * cluster mode, make a cluster client: it learns the brokers and leaders before resolving.
   */
  static async connect(options: ConnectOptions = {}): Promise<FerryClient> {
    const resolved = resolveClientOptions(options);
    const client = new FerryClient(resolved, resolved.tracing ? await ClientTracing.load() : null);
    const link = await openFirst(client.options, client);
    if (client.options.servers.length === 1 && !link.announcedCluster) client.link = link;
    else client.router = await ClusterRouter.start(client.options, client, link);
    return client;
  }

  /** True when the client routes by topic leader (several servers, or a broker in cluster mode). */
  get isCluster(): boolean {
    return this.router !== null;
  }

  get isConnected(): boolean {
    if (this.state !== 'connected') return false;
    return this.router !== null ? this.router.isConnected : this.link !== null;
  }

  /** The server's HELLO_OK (version, limits, heartbeat interval) on the current connection. */
  get server(): ClientConnection['hello'] {
    return this.router !== null ? this.router.hello : (this.link?.connection.hello ?? null);
  }

  // ---- topics ----

  createTopic(name: string, options: TopicOptions = {}): Promise<TopicInfo> {
    let config;
    try {
      config = topicConfig(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.send(null, 'once', (c) => c.request((w, id) => encodeCreateTopic(w, id, { name, config }), FRAME_TYPES.TOPIC_INFO, decodeTopicInfo));
  }

  async deleteTopic(name: string): Promise<void> {
    await this.send(null, 'once', (c) => c.request((w, id) => encodeTopicName(w, FRAME_TYPES.DELETE_TOPIC, id, name), FRAME_TYPES.OK, () => undefined));
  }

  listTopics(): Promise<TopicInfo[]> {
    return this.send(null, 'idempotent', (c) => c.request((w, id) => w.emptyFrame(FRAME_TYPES.LIST_TOPICS, id), FRAME_TYPES.TOPIC_LIST, decodeTopicList));
  }

  /** A topic's settings and partitions; in a cluster (asked of its leader) each partition's replication state too. */
  describeTopic(name: string): Promise<TopicInfo> {
    return this.send(name, 'idempotent', (c) =>
      c.request((w, id) => encodeTopicName(w, FRAME_TYPES.DESCRIBE_TOPIC, id, name), FRAME_TYPES.TOPIC_INFO, decodeTopicInfo),
    );
  }

  // ---- cluster ----

  /**
   * The brokers and which one leads each topic, freshly asked. A single broker (no cluster) is
   * one broker with node id '' leading every topic.
   */
  async metadata(): Promise<ClusterMetadata> {
    const known = this.router !== null ? await this.router.metadata() : null;
    if (known !== null && (known.cluster || known.topics.length > 0)) return known;
    // A single broker (one that does not know METADATA included) leads every topic it has.
    const address = known?.brokers[0]?.address ?? addressKey(this.options.servers[0]!);
    const topics = (await this.listTopics()).map((info) => ({ topic: info.name, leader: '', address, epoch: 0 }));
    return { cluster: false, brokers: [{ nodeId: '', address, alive: this.isConnected }], topics };
  }

  /** Per broker: node id, address, alive, topics led, and its replicas' lag summed over the topics (from describeTopic). */
  async clusterStatus(): Promise<ClusterStatus> {
    return clusterStatus(await this.metadata(), (topic) => this.describeTopic(topic));
  }

  /** Starts moving `topic`'s replica on broker `replace` to broker `with`: the new one catches up and joins the in-sync set, then the old one is dropped (describeTopic shows the progress). Needs the admin grant on the topic. */
  reassignReplica(topic: string, move: { replace: string; with: string }): Promise<ClusterChangeResult> {
    return this.send(null, 'once', (c) =>
      c.request((w, id) => encodeClusterChange(w, id, { op: 'reassign', topic, replace: move.replace, with: move.with }), FRAME_TYPES.CLUSTER_CHANGE_OK, decodeClusterChangeOk),
    );
  }

  /** Starts moving every replica (and so every leadership) off broker `node`, before it is retired. Needs the admin grant on every topic. */
  drainBroker(node: string): Promise<ClusterChangeResult> {
    return this.send(null, 'once', (c) => c.request((w, id) => encodeClusterChange(w, id, { op: 'drain', node }), FRAME_TYPES.CLUSTER_CHANGE_OK, decodeClusterChangeOk));
  }

  /** Its leader compares every replica of `topic` below the high watermark (OK, or the first differing range per replica and log); differing replicas are repaired. */
  verifyTopic(topic: string): Promise<TopicVerification> {
    return this.send(topic, 'idempotent', (c) => requestVerify(c, topic));
  }

  // ---- publishing ----

  /** Publishes one message; resolves when the broker confirms it per the topic's durability. */
  publish(topic: string, value: Buffer | string | Uint8Array, options: PublishOptions = {}): Promise<PublishResult> {
    const trace = this.tracing === null ? null : this.tracing.publish(topic, value, options.headers, 'tcp');
    let message;
    try {
      message = toWireMessage(value, trace === null ? options : { ...options, headers: trace.headers });
    } catch (error) {
      trace?.failed(error);
      return Promise.reject(error);
    }
    return trace === null ? this.publishWire(topic, message) : traced(this.publishWire(topic, message), [trace], [message]);
  }

  private publishWire(topic: string, message: WirePublishMessage): Promise<PublishResult> {
    const coalesce = this.options.coalescePublishes;
    if (this.router !== null) {
      this.assignId(message);
      return this.router.call(topic, 'publish', (c) => publishOne(c, topic, message, coalesce));
    }
    if (this.options.retryPublishes !== null) {
      this.assignId(message);
      return this.retrying(performance.now(), (c) => publishOne(c, topic, message, coalesce));
    }
    const connection = this.link?.connection;
    if (connection !== undefined && this.state === 'connected') return publishOne(connection, topic, message, coalesce);
    return this.whenConnected().then((c) => publishOne(c, topic, message, coalesce));
  }

  /** Publishes several messages in one frame; resolves with one result per message, in order. */
  publishBatch(topic: string, messages: readonly BatchMessage[], options: PublishBatchOptions = {}): Promise<PublishResult[]> {
    const asBroker = options.asBroker === true;
    const traces = this.tracing === null ? null : messages.map((message) => this.tracing!.publish(topic, message.value, message.headers, 'tcp'));
    let wire: WirePublishMessage[];
    try {
      wire = messages.map((message, i) => toWireMessage(message.value, traces?.[i] ? { ...message, headers: traces[i].headers } : message));
    } catch (error) {
      for (const trace of traces ?? []) trace?.failed(error);
      return Promise.reject(error);
    }
    if (this.router !== null || this.options.retryPublishes !== null) for (const message of wire) this.assignId(message);
    let sent: Promise<PublishResult[]>;
    if (this.router !== null) sent = this.router.call(topic, 'publish', (c) => publishMany(c, topic, wire, asBroker));
    else if (this.options.retryPublishes !== null) sent = this.retrying(performance.now(), (c) => publishMany(c, topic, wire, asBroker));
    else sent = this.withConnection((c) => publishMany(c, topic, wire, asBroker));
    return traces === null ? sent : traced(sent, traces, wire);
  }

  /**
   * Sends one message over UDP to the broker's ingest port (ConnectOptions.udpPort), fire and
   * forget: nothing is confirmed, and a datagram is stored whole or dropped (docs/PROTOCOL.md, "UDP
   * ingest"). In a cluster it goes to the topic's leader as last learned. Returns false when the
   * datagram was dropped here (the socket's send queue was full); throws at once for bad input.
   */
  publishUdp(topic: string, value: Buffer | string | Uint8Array, options: UdpPublishOptions = {}): boolean {
    if (this.state === 'closing' || this.state === 'closed') throw new FerryError('CONNECTION_CLOSED', 'the client is closed');
    const host = this.router?.leaderHost(topic) ?? this.options.host;
    let publisher = this.udpPublishers.get(host);
    if (publisher === undefined) {
      publisher = new UdpPublisher({ host, port: this.options.udpPort });
      this.udpPublishers.set(host, publisher);
    }
    const trace = this.tracing === null ? null : this.tracing.publish(topic, value, options.headers, 'udp');
    if (trace === null) return publisher.publishUdp(topic, value, options);
    try {
      const handed = publisher.publishUdp(topic, value, { ...options, headers: trace.headers });
      trace.sent(handed);
      return handed;
    } catch (error) {
      trace.failed(error);
      throw error;
    }
  }

  /** A message without an id gets `<clientId>-<sequence>`, unique to this client, so that a retry is stored once. */
  private assignId(message: WirePublishMessage): void {
    message.id ??= `${this.clientId}-${++this.messageSequence}`;
  }

  /**
   * retryPublishes (one server): sends, and sends again on each new connection while the attempt
   * fails with CONNECTION_CLOSED, the client is not closing, and the first send is younger than
   * retryPublishes.windowMs. Only a send that failed is repeated: waiting for a connection (which
   * fails only when the client gives up or closes) is not, so this never spins.
   */
  private async retrying<T>(firstSentMs: number, send: (connection: ClientConnection) => Promise<T>): Promise<T> {
    const windowMs = this.options.retryPublishes!.windowMs;
    for (;;) {
      const connection = this.link !== null && this.state === 'connected' ? this.link.connection : await this.whenConnected();
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
    return this.send(topic, 'idempotent', (c) => listGroups(c, topic));
  }

  /** One group: pending, in flight, ack floor per partition, redelivered and dead-lettered totals, oldest unacked age, lag. */
  describeGroup(topic: string, group: string): Promise<GroupInfo> {
    return this.send(topic, 'idempotent', (c) => describeGroup(c, topic, group));
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
    return this.send(topic, 'idempotent', (c) => resetGroup(c, topic, group, position));
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
      // A repeated chunk moves nothing twice: the dead-letter topic remembers what moved.
      const result = await this.send(deadLetterTopic, 'idempotent', (c) => redriveOnce(c, { ...request, limit: chunk }));
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
    const settings = Object.fromEntries(Object.entries({ ackTimeoutMs, backoffMs, deliveriesMax, deadLetterTopic }).filter(([, value]) => value !== undefined));
    const subscription = new Subscription(topic, options.group, prefetch, toStartPosition(options.from, options.group), this, settings);
    if (this.router !== null) await this.router.subscribe(subscription);
    else await this.withConnection((c) => this.subscribeOn(c, subscription));
    this.subscriptions.add(subscription);
    return subscription;
  }

  /** One server: sends SUBSCRIBE; the reply attaches the subscription synchronously, before any DELIVER that follows it. */
  private subscribeOn(connection: ClientConnection, subscription: Subscription): Promise<void> {
    const request = subscription.subscribeRequest();
    return connection.request(
      (w, id) => encodeSubscribe(w, id, request),
      FRAME_TYPES.SUBSCRIBED,
      (r) => {
        const { subscriptionId } = decodeSubscribed(r);
        const link = this.link;
        if (link === null || connection !== link.connection || subscription.isClosed) {
          // Closed meanwhile: let the server drop it too.
          connection.request((w, id) => encodeUnsubscribe(w, id, subscriptionId), FRAME_TYPES.OK, () => undefined).catch(() => undefined);
          return;
        }
        subscription.attach(connection, subscriptionId);
        link.subscriptions.set(subscriptionId, subscription);
      },
    );
  }

  // ---- SubscriptionHost ----

  creditDirty(subscription: Subscription): void {
    this.creditDirtySet.add(subscription);
    subscription.currentConnection?.scheduleFlush();
  }

  unsubscribe(connection: ClientConnection, wireId: number): Promise<void> {
    if (this.router !== null) return this.router.unsubscribe(connection, wireId);
    if (this.link?.connection === connection) this.link.subscriptions.delete(wireId);
    return connection.request((w, id) => encodeUnsubscribe(w, id, wireId), FRAME_TYPES.OK, () => undefined);
  }

  subscriptionClosed(subscription: Subscription): void {
    this.subscriptions.delete(subscription);
    this.creditDirtySet.delete(subscription);
  }

  // ---- LinkOwner (one server) and RouterHost ----

  linkNotice(link: Link, error: FerryError): void {
    const detail = error.detail;
    if (detail?.['ended'] === true && typeof detail['subscriptionId'] === 'number') {
      // The broker ended the subscription (its topic was deleted: UNKNOWN_SUBSCRIPTION; the
      // permission to consume was withdrawn: FORBIDDEN): end the iterator with the reason.
      const subscription = link.subscriptions.get(detail['subscriptionId']);
      if (subscription !== undefined) {
        link.subscriptions.delete(detail['subscriptionId']);
        this.subscriptionLost(subscription, error);
        return;
      }
    }
    this.emitError(error);
  }

  beforeFlush(connection: ClientConnection): void {
    if (this.creditDirtySet.size === 0) return;
    for (const subscription of this.creditDirtySet) {
      const attached = subscription.currentConnection;
      if (attached !== connection && attached !== null) continue; // another broker's connection flushes it
      if (attached !== null) subscription.writeCredit(connection);
      this.creditDirtySet.delete(subscription);
    }
  }

  linkClosed(link: Link, error: FerryError): void {
    if (link !== this.link) return;
    this.link = null;
    for (const subscription of this.subscriptions) {
      subscription.detach();
      this.creditDirtySet.delete(subscription);
    }
    if (this.state !== 'connected') return; // closing, or already reconnecting
    if (this.options.reconnect === null) {
      this.finish(error);
      return;
    }
    for (const subscription of this.subscriptions) if (!subscription.isClosed) this.subscriptionMoved(subscription, error);
    this.state = 'reconnecting';
    void this.reconnect(error);
  }

  subscriptionMoved(subscription: Subscription, error: FerryError): void {
    this.emit('subscriptionMoved', { subscription, topic: subscription.topic, group: subscription.group, generation: subscription.generation, error } satisfies SubscriptionMovedEvent);
  }

  subscriptionLost(subscription: Subscription, error: FerryError): void {
    this.subscriptions.delete(subscription);
    this.creditDirtySet.delete(subscription);
    subscription.fail(error);
    this.emitError(error);
  }

  notice(error: FerryError): void {
    this.emitError(error);
  }

  countRetry(): void {
    this.retried++;
  }

  // ---- reconnecting (one server) ----

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
      let link: Link;
      try {
        link = await Link.open(this.options, this.options.servers[0]!, this);
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
        link.connection.end();
        return;
      }
      this.link = link;
      this.state = 'connected';
      const waiting = this.waiting;
      this.waiting = [];
      for (const waiter of waiting) waiter.resolve(link.connection);
      await this.resubscribe(link.connection);
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
          if (connection !== this.link?.connection) return; // lost again: the next reconnect retries
          this.subscriptionLost(subscription, error instanceof FerryError ? error : new FerryError('INTERNAL', String(error), { cause: error }));
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
    if (this.state === 'connected' && this.link !== null) return Promise.resolve(this.link.connection);
    if (this.state !== 'reconnecting') return Promise.reject(new FerryError('CONNECTION_CLOSED', 'the client is closed'));
    if (this.waiting.length >= WAITING_REQUESTS_MAX) {
      return Promise.reject(new FerryError('CONNECTION_CLOSED', `reconnecting, and ${WAITING_REQUESTS_MAX} requests already wait`));
    }
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  private withConnection<T>(run: (connection: ClientConnection) => Promise<T>): Promise<T> {
    const link = this.link;
    if (link !== null && this.state === 'connected') return run(link.connection);
    return this.whenConnected().then(run);
  }

  /** A request about `topic` (null: any broker): routed to its leader in a cluster, else on the one connection. */
  private send<T>(topic: string | null, kind: CallKind, run: (connection: ClientConnection) => Promise<T>): Promise<T> {
    if (this.router === null) return this.withConnection(run);
    if (this.state !== 'connected') return Promise.reject(new FerryError('CONNECTION_CLOSED', 'the client is closed'));
    return this.router.call(topic, kind, run);
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

  /** Closes the subscriptions, waits (up to the request timeout) for in-flight requests to be answered, and closes the connections. Safe to call twice. */
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
    await Promise.all([...this.udpPublishers.values()].map((publisher) => publisher.close()));
    if (this.router !== null) await this.router.close();
    const link = this.link;
    if (link !== null) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.options.requestTimeoutMs);
      });
      await Promise.race([link.connection.whenIdle(), timeout]);
      clearTimeout(timer);
      this.link = null;
      link.connection.end();
    }
    this.finish(closedError);
  }

  private emitError(error: FerryError): void {
    // An 'error' event without a listener would throw: report only to those who listen.
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }
}

/**
 * Connects to Ferry: `await connect({ host, port })`, `await connect({ url: 'ferry://host:port' })`,
 * or a cluster: `await connect({ servers: ['h1:7701', 'h2:7702'] })`.
 */
export function connect(options: ConnectOptions = {}): Promise<FerryClient> {
  return FerryClient.connect(options);
}
