/**
 * Cluster mode of the client: one connection per broker (keyed by address, found again by node
 * id), a picture of the cluster (metadata.ts), and the routing of each request to the broker that
 * leads its topic. A request that meets NOT_LEADER, a lost connection or a timeout is sent again
 * to the leader as now known, within the request's own timeout (retry-policy.ts says which
 * requests may be repeated); a subscription whose broker is lost, or that its broker ends with
 * NOT_LEADER, is made again on the topic's leader, and the client is told (its settles sent to the
 * old broker may never have been applied).
 *
 * The picture is refreshed with METADATA on NOT_LEADER (unless the refusal names the leader), when
 * a connection closes, when a leader fails a request, and on demand. A broker that does not know
 * METADATA (no cluster support: it treats the request as an error and closes the connection) is a
 * single broker leading every topic; it is asked once, on a fresh connection, and never again.
 *
 * A broker that has gone silent while requests wait on it (frozen: SIGSTOP, a paused VM) sends no
 * reset, so nothing closes its connection until heartbeats run out. The router notices the silence
 * sooner, asks another broker, and closes the connection itself when that broker says the silent
 * one is dead or has lost its topics, so the requests waiting there are sent to the new leader.
 */
import { decodeMetadataOk, encodeMetadata, type MetadataResponse } from '../protocol/codec-metadata.js';
import { decodeSubscribed, encodeSubscribe, encodeUnsubscribe } from '../protocol/codec-subscribe.js';
import { FerryError, isFerryError } from '../errors.js';
import { FRAME_TYPES } from '../protocol/frame.js';
import { addressKey, parseServer } from './address.js';
import type { ClientConnection } from './connection.js';
import { Link, type LinkOwner } from './link.js';
import { leaderHint, MetadataCache, type ClusterMetadata } from './metadata.js';
import { LeaderWaits, type LeaderMark } from './leader-waits.js';
import { backoffDelayMs, type ResolvedClientOptions } from './options.js';
import { mayHaveApplied, publishGiveUpError, routeBackoffMs, shouldRetry, sleep, withDeadline, type CallKind } from './retry-policy.js';
import type { Subscription } from './subscription.js';

/** Longest wait for one broker's METADATA answer before asking another: a live broker answers in a round trip. */
const METADATA_TIMEOUT_MS = 2_000;
/** Shortest connect timeout of a dial made close to a request's deadline. */
const DIAL_TIMEOUT_MS_MIN = 100;
/** How often silent connections are looked for. */
const SILENCE_CHECK_MS = 500;
/** A connection with requests waiting and no frame for this long is suspect (its broker may be frozen). */
const SILENCE_SUSPECT_MS = 1_000;
/** Retries in a row sent at once to a leader a refusal named; then a pause (two brokers naming each other while an election settles). */
const NAMED_LEADER_HOPS_MAX = 2;

/** What the router needs from the client. */
export interface RouterHost {
  beforeFlush(connection: ClientConnection): void;
  /** A subscription that could not be made again, or that its broker ended: end it with `error`. */
  subscriptionLost(subscription: Subscription, error: FerryError): void;
  /** A subscription was taken off its broker (lost, or the topic led elsewhere) and is made again. */
  subscriptionMoved(subscription: Subscription, error: FerryError): void;
  /** An ERROR without a request that is the application's to know (a failed ack). */
  notice(error: FerryError): void;
  /** A request was sent again after a failure. */
  countRetry(): void;
}

function closedError(cause?: unknown): FerryError {
  return new FerryError('CONNECTION_CLOSED', 'the client is closed', cause === undefined ? {} : { cause });
}

function asFerryError(error: unknown): FerryError {
  return error instanceof FerryError ? error : new FerryError('INTERNAL', String(error), { cause: error });
}

function requestMetadata(connection: ClientConnection): Promise<MetadataResponse> {
  return connection.request((w, id) => encodeMetadata(w, id, { topics: [] }), FRAME_TYPES.METADATA_OK, decodeMetadataOk);
}

export class ClusterRouter implements LinkOwner {
  /** Every link handed out and not yet closed. */
  private readonly registered = new Set<Link>();
  /** Links by address key (a broker reached under two names has two keys). */
  private readonly links = new Map<string, Link>();
  private readonly byNode = new Map<string, Link>();
  private readonly opening = new Map<string, Promise<Link>>();
  /** Addresses of brokers that do not know METADATA. */
  private readonly withoutMetadata = new Set<string>();
  private readonly seeds: string[];
  readonly cache = new MetadataCache();
  private refreshing: Promise<void> | null = null;
  /** Requests waiting to learn a topic's next leader; METADATA is asked for them while they wait. */
  private readonly leaderWaits = new LeaderWaits(() => this.refresh(performance.now() + METADATA_TIMEOUT_MS));
  private closed = false;
  private readonly silenceTimer: NodeJS.Timeout;

  private constructor(
    private readonly options: ResolvedClientOptions,
    private readonly host: RouterHost,
  ) {
    this.seeds = options.servers.map(addressKey);
    this.silenceTimer = setInterval(() => this.checkSilentLinks(), SILENCE_CHECK_MS);
    this.silenceTimer.unref();
  }

  /** Takes over the first connection (opened by the client) and learns the cluster through it. */
  static async start(options: ResolvedClientOptions, host: RouterHost, first: Link): Promise<ClusterRouter> {
    const router = new ClusterRouter(options, host);
    first.owner = router;
    const deadlineMs = performance.now() + options.requestTimeoutMs;
    try {
      router.register(await router.probe(first, deadlineMs));
    } catch (error) {
      await router.close();
      throw error;
    }
    // Learnt now so the first requests go straight to their leaders; a failure here is met again
    // (and reported) by the request that needs the answer.
    if (router.cache.version === 0) await router.refresh(deadlineMs).catch(() => undefined);
    return router;
  }

  get isConnected(): boolean {
    return !this.closed && this.anyOpen() !== null;
  }

  /** HELLO_OK of a current connection. */
  get hello(): ClientConnection['hello'] {
    return this.anyOpen()?.connection.hello ?? null;
  }

  // ---- requests ----

  /** Sends `run` to the leader of `topic` (any broker when null), sending again per `kind` until the request's timeout. */
  call<T>(topic: string | null, kind: CallKind, run: (connection: ClientConnection) => Promise<T>): Promise<T> {
    return this.callOnLink(topic, kind, (link) => run(link.connection));
  }

  private callOnLink<T>(topic: string | null, kind: CallKind, run: (link: Link) => Promise<T>): Promise<T> {
    const startMs = performance.now();
    const link = this.linkFor(topic);
    if (link === null) return this.retrying(topic, kind, run, startMs, undefined, null);
    if (topic !== null) link.routedTopics.add(topic);
    return run(link).catch((error: unknown) => this.retrying(topic, kind, run, startMs, error, link));
  }

  private async retrying<T>(
    topic: string | null,
    kind: CallKind,
    run: (link: Link) => Promise<T>,
    startMs: number,
    firstError: unknown,
    failedLink: Link | null,
  ): Promise<T> {
    const deadlineMs = startMs + this.options.requestTimeoutMs;
    let error = firstError;
    let link = failedLink;
    let sent = failedLink !== null;
    let hops = 0;
    let pauses = 0;
    // Whether a try of a publish may have been stored: then giving up says "unknown", not a refusal.
    let mayBeStored = false;
    for (;;) {
      if (error !== undefined) {
        if (this.closed) throw closedError(error);
        if (sent && mayHaveApplied(error)) mayBeStored = true;
        const last = error;
        const giveUp = (): unknown => (kind === 'publish' ? publishGiveUpError(topic, last, mayBeStored) : last);
        if (!shouldRetry(kind, error, sent)) throw giveUp();
        const before = topic === null ? undefined : this.cache.leader(topic);
        const failedOn: LeaderMark = { nodeId: link?.nodeId ?? before?.nodeId ?? '', epoch: before?.epoch ?? 0 };
        // A refusal naming the new leader is followed at once, NAMED_LEADER_HOPS_MAX times in a row
        // at most; otherwise a pause, doubling, that ends early once a new leader is learnt.
        const leaderKnown = this.learn(topic, link, error) && hops < NAMED_LEADER_HOPS_MAX;
        hops = leaderKnown ? hops + 1 : 0;
        const delayMs = leaderKnown ? 0 : routeBackoffMs(++pauses);
        if (performance.now() + delayMs >= deadlineMs) throw giveUp();
        if (delayMs > 0) await this.pause(topic, error, failedOn, delayMs);
        if (sent) this.host.countRetry();
      }
      try {
        link = await this.route(topic, deadlineMs);
      } catch (failure) {
        [error, link, sent] = [failure, null, false];
        continue;
      }
      if (topic !== null) link.routedTopics.add(topic);
      try {
        return await withDeadline(run(link), deadlineMs, `request to ${link.key}`);
      } catch (failure) {
        [error, sent] = [failure, true];
      }
    }
  }

  /**
   * The pause before a retry. Waiting for a topic's leader (not for replicas to catch up), it ends
   * as soon as a new leader is learnt, and METADATA is asked every ROUTE_POLL_MS meanwhile
   * (leader-waits.ts).
   */
  private pause(topic: string | null, error: unknown, failedOn: LeaderMark, delayMs: number): Promise<void> {
    if (topic === null || isFerryError(error, 'NOT_ENOUGH_REPLICAS') || this.closed) return sleep(delayMs);
    return this.leaderWaits.wait(topic, failedOn, this.cache.leader(topic), delayMs);
  }

  /** What a failure says about the cluster; true when it names a leader other than the broker that failed. */
  private learn(topic: string | null, link: Link | null, error: unknown): boolean {
    if (!isFerryError(error) || topic === null) return false;
    if (error.code === 'NOT_LEADER' && link !== null) {
      const named = this.cache.notLeader(topic, { nodeId: link.nodeId, address: link.key }, leaderHint(error.detail));
      this.leaderWaits.learned((name) => this.cache.leader(name));
      return named;
    }
    if (error.code !== 'NOT_ENOUGH_REPLICAS') this.cache.markStale(topic);
    return false;
  }

  /** The host of the broker leading `topic` as last learned (UDP ingest goes there); null when not known. */
  leaderHost(topic: string): string | null {
    const address = this.cache.single ?? this.cache.leader(topic)?.address ?? null;
    return address === null ? null : parseServer(address).host;
  }

  /** The open link a request for `topic` goes to now, without waiting; null when it must be looked up. */
  private linkFor(topic: string | null): Link | null {
    if (this.closed) return null;
    const single = this.cache.single;
    if (single !== null) return this.cache.singleStale ? null : this.openAt(single);
    if (topic === null) return this.anyOpen();
    const entry = this.cache.leader(topic);
    if (entry === undefined || entry.stale || entry.address === null) return null;
    return (entry.nodeId === '' ? null : this.openNode(entry.nodeId)) ?? this.openAt(entry.address);
  }

  /** The link for `topic`, asking the cluster first when what is known will not do. */
  private async route(topic: string | null, deadlineMs: number): Promise<Link> {
    if (this.closed) throw closedError();
    const ready = this.linkFor(topic);
    if (ready !== null) return ready;
    if (topic === null && this.cache.single === null) return this.connectAny(deadlineMs);
    const entry = topic === null ? undefined : this.cache.leader(topic);
    const known = this.cache.single !== null ? !this.cache.singleStale : entry !== undefined && !entry.stale && entry.address !== null;
    if (!known) await this.refresh(deadlineMs);
    const single = this.cache.single;
    if (single !== null) return this.openLink(single, deadlineMs);
    if (topic === null) return this.connectAny(deadlineMs);
    const leader = this.cache.leader(topic);
    // A topic the cluster does not list: any broker answers for it (UNKNOWN_TOPIC, or where it is).
    if (leader === undefined) return this.connectAny(deadlineMs);
    if (leader.address === null) {
      throw new FerryError('NOT_LEADER', `topic ${topic} has no leader yet`, { detail: { topic, leader: null, address: null, epoch: leader.epoch } });
    }
    return this.openLink(leader.address, deadlineMs);
  }

  // ---- metadata ----

  /** Asks the cluster for its brokers and leaders (joining a refresh under way). */
  refresh(deadlineMs: number): Promise<void> {
    if (this.refreshing === null) {
      const refreshing = this.refreshOnce(deadlineMs, new Set());
      this.refreshing = refreshing;
      const done = (): void => {
        if (this.refreshing === refreshing) this.refreshing = null;
      };
      refreshing.then(done, done);
    }
    return this.refreshing;
  }

  /** The cluster as known after a fresh METADATA. */
  async metadata(): Promise<ClusterMetadata> {
    await this.refresh(performance.now() + this.options.requestTimeoutMs);
    return this.cache.snapshot();
  }

  private async refreshOnce(deadlineMs: number, avoid: ReadonlySet<Link>): Promise<void> {
    let lastError: unknown = new FerryError('CONNECTION_REFUSED', 'no server to ask');
    for (const key of this.candidates(avoid)) {
      if (this.closed) throw closedError();
      if (performance.now() >= deadlineMs) break;
      try {
        const link = await this.openLink(key, deadlineMs);
        if (link.metadata === 'unsupported') {
          this.cache.applySingle(link.key);
          return;
        }
        const answerBy = Math.min(deadlineMs, performance.now() + METADATA_TIMEOUT_MS);
        this.learnCluster(link, await withDeadline(requestMetadata(link.connection), answerBy, `METADATA from ${link.key}`));
        return;
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  /** Where to ask: open connections (the most recently heard first), then the known brokers (live first), then the servers given. */
  private *candidates(avoid: ReadonlySet<Link>): Generator<string> {
    const avoided = new Set<string>();
    for (const [key, link] of this.links) if (avoid.has(link)) avoided.add(key);
    const open = [...this.registered].filter((link) => link.isOpen && !avoid.has(link));
    open.sort((a, b) => a.connection.silentForMs - b.connection.silentForMs);
    const seen = new Set<string>();
    for (const key of [...open.map((link) => link.key), ...this.cache.brokerAddresses(), ...this.seeds]) {
      if (seen.has(key) || avoided.has(key)) continue;
      seen.add(key);
      yield key;
    }
  }

  private learnCluster(link: Link, response: MetadataResponse): void {
    link.metadata = 'supported';
    this.cache.apply(response, link.key);
    this.leaderWaits.learned((name) => this.cache.leader(name));
    if (response.nodeId === '') return;
    link.nodeId = response.nodeId;
    this.register(link);
    this.moveSubscriptions();
  }

  /**
   * A fresh connection to a broker that did not announce cluster mode: asks it METADATA once. A
   * broker without cluster support closes the connection over it; it is dialed again and never
   * asked again (a single broker, leading every topic).
   */
  private async probe(link: Link, deadlineMs: number): Promise<Link> {
    if (link.metadata !== 'unknown') return link;
    if (this.withoutMetadata.has(link.key)) {
      link.metadata = 'unsupported';
      return link;
    }
    try {
      const answerBy = Math.min(deadlineMs, performance.now() + METADATA_TIMEOUT_MS);
      this.learnCluster(link, await withDeadline(requestMetadata(link.connection), answerBy, `METADATA from ${link.key}`));
      return link;
    } catch (error) {
      if (!isFerryError(error, 'MALFORMED_FRAME') && !isFerryError(error, 'UNKNOWN_FRAME_TYPE')) {
        link.connection.destroy(asFerryError(error));
        throw error;
      }
    }
    this.withoutMetadata.add(link.key);
    link.connection.destroy(new FerryError('CONNECTION_CLOSED', 'the broker does not know METADATA'));
    const again = await Link.open(this.dialOptions(deadlineMs), parseServer(link.key), this);
    again.metadata = 'unsupported';
    this.cache.applySingle(again.key);
    return again;
  }

  // ---- links ----

  private openAt(key: string): Link | null {
    const link = this.links.get(key);
    return link !== undefined && link.isOpen ? link : null;
  }

  private openNode(nodeId: string): Link | null {
    const link = this.byNode.get(nodeId);
    return link !== undefined && link.isOpen ? link : null;
  }

  private anyOpen(): Link | null {
    for (const link of this.registered) if (link.isOpen) return link;
    return null;
  }

  private async connectAny(deadlineMs: number): Promise<Link> {
    const open = this.anyOpen();
    if (open !== null) return open;
    let lastError: unknown = new FerryError('CONNECTION_REFUSED', 'no server to connect to');
    for (const key of this.candidates(new Set())) {
      if (performance.now() >= deadlineMs) break;
      try {
        return await this.openLink(key, deadlineMs);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }

  /** The open link to `key`, dialing it (once, however many ask) when there is none. */
  private openLink(key: string, deadlineMs: number): Promise<Link> {
    const open = this.openAt(key);
    if (open !== null) return Promise.resolve(open);
    let opening = this.opening.get(key);
    if (opening === undefined) {
      const dialing = this.dial(key, deadlineMs);
      const clear = (): void => {
        if (this.opening.get(key) === dialing) this.opening.delete(key);
      };
      dialing.then(clear, clear);
      this.opening.set(key, dialing);
      opening = dialing;
    }
    return opening;
  }

  private dialOptions(deadlineMs: number): ResolvedClientOptions {
    const timeoutMs = Math.max(DIAL_TIMEOUT_MS_MIN, Math.min(this.options.connectTimeoutMs, Math.round(deadlineMs - performance.now())));
    return timeoutMs === this.options.connectTimeoutMs ? this.options : { ...this.options, connectTimeoutMs: timeoutMs };
  }

  private async dial(key: string, deadlineMs: number): Promise<Link> {
    if (this.closed) throw closedError();
    const link = await this.probe(await Link.open(this.dialOptions(deadlineMs), parseServer(key), this), deadlineMs);
    if (this.closed) {
      link.connection.end();
      throw closedError();
    }
    this.register(link);
    return link;
  }

  private register(link: Link): void {
    this.registered.add(link);
    this.links.set(link.key, link);
    if (link.nodeId === undefined) return;
    this.byNode.set(link.nodeId, link);
    const advertised = this.cache.addressOf(link.nodeId);
    if (advertised !== undefined && advertised !== link.key && this.openAt(advertised) === null) this.links.set(advertised, link);
  }

  /** Forgets `link` (another link may have taken its keys already); false when it was not registered. */
  private unregister(link: Link): boolean {
    if (!this.registered.delete(link)) return false;
    for (const [key, registered] of this.links) if (registered === link) this.links.delete(key);
    if (link.nodeId !== undefined && this.byNode.get(link.nodeId) === link) this.byNode.delete(link.nodeId);
    return true;
  }

  // ---- LinkOwner ----

  beforeFlush(connection: ClientConnection): void {
    this.host.beforeFlush(connection);
  }

  linkNotice(link: Link, error: FerryError): void {
    const wireId = error.detail?.['subscriptionId'];
    const subscription = typeof wireId === 'number' ? link.subscriptions.get(wireId) : undefined;
    if (subscription !== undefined && error.code === 'NOT_LEADER') {
      // The broker no longer leads the topic: the subscription moves to the new leader.
      link.subscriptions.delete(wireId as number);
      subscription.detach();
      this.learn(subscription.topic, link, error);
      this.host.subscriptionMoved(subscription, error);
      void this.resume(subscription, error);
      return;
    }
    if (subscription !== undefined && error.detail?.['ended'] === true) {
      link.subscriptions.delete(wireId as number);
      this.host.subscriptionLost(subscription, error);
      return;
    }
    if (error.code === 'BROKER_CLOSING' && error.detail === undefined) {
      // GOODBYE: the broker is shutting down (a controlled handover); its connection closes next.
      this.cache.markStaleAt(link.key, link.nodeId);
      return;
    }
    this.host.notice(error);
  }

  linkClosed(link: Link, error: FerryError): void {
    if (!this.unregister(link)) return;
    this.cache.markStaleAt(link.key, link.nodeId);
    const lost = [...link.subscriptions.values()];
    link.subscriptions.clear();
    for (const subscription of lost) {
      subscription.detach();
      this.host.subscriptionMoved(subscription, error);
      void this.resume(subscription, error);
    }
    if (!this.closed) this.refresh(performance.now() + this.options.requestTimeoutMs).catch(() => undefined);
  }

  // ---- subscriptions ----

  subscribe(subscription: Subscription): Promise<void> {
    return this.callOnLink(subscription.topic, 'subscribe', (link) => this.subscribeOn(link, subscription));
  }

  /** Sends SUBSCRIBE; the reply attaches the subscription synchronously, before any DELIVER that follows it. */
  private subscribeOn(link: Link, subscription: Subscription): Promise<void> {
    const connection = link.connection;
    const request = subscription.subscribeRequest();
    return connection.request(
      (w, id) => encodeSubscribe(w, id, request),
      FRAME_TYPES.SUBSCRIBED,
      (r) => {
        const { subscriptionId } = decodeSubscribed(r);
        if (subscription.isClosed || this.closed) {
          connection.request((w, id) => encodeUnsubscribe(w, id, subscriptionId), FRAME_TYPES.OK, () => undefined).catch(() => undefined);
          return;
        }
        subscription.attach(connection, subscriptionId);
        link.subscriptions.set(subscriptionId, subscription);
      },
    );
  }

  /**
   * Makes a subscription again on its topic's leader: each try is a routed SUBSCRIBE (retried
   * within the request timeout); tries repeat with the reconnect policy's backoff until it is
   * used up (one try when reconnecting is off).
   */
  private async resume(subscription: Subscription, cause: FerryError): Promise<void> {
    const policy = this.options.reconnect;
    const startedMs = performance.now();
    let error: unknown = cause;
    for (let attempt = 1; ; attempt++) {
      if (subscription.isClosed || this.closed) return;
      try {
        await this.subscribe(subscription);
        return;
      } catch (failure) {
        error = failure;
      }
      if (subscription.isClosed || this.closed) return;
      const retryable = isFerryError(error) && error.retryable;
      if (!retryable || policy === null || attempt >= policy.attemptsMax || performance.now() - startedMs > policy.durationMsMax) break;
      await sleep(backoffDelayMs(attempt, policy));
    }
    this.host.subscriptionLost(subscription, asFerryError(error));
  }

  unsubscribe(connection: ClientConnection, wireId: number): Promise<void> {
    for (const link of this.registered) if (link.connection === connection) link.subscriptions.delete(wireId);
    return connection.request((w, id) => encodeUnsubscribe(w, id, wireId), FRAME_TYPES.OK, () => undefined);
  }

  // ---- silent brokers ----

  private checkSilentLinks(): void {
    if (this.closed || this.refreshing !== null) return;
    const suspects = new Set<Link>();
    for (const link of this.registered) {
      if (!link.isOpen) continue;
      if (link.connection.inFlight === 0) link.routedTopics.clear();
      if (link.nodeId === undefined) continue;
      const silentMs = link.connection.silentForMs;
      const heartbeatMs = link.connection.hello?.heartbeatIntervalMs ?? 0;
      const waiting = link.connection.inFlight > 0 && silentMs > SILENCE_SUSPECT_MS;
      // A broker pings a subscriber it has sent nothing for one heartbeat interval.
      const consuming = link.subscriptions.size > 0 && silentMs > heartbeatMs + SILENCE_SUSPECT_MS;
      if (waiting || consuming) suspects.add(link);
    }
    if (suspects.size === 0) return;
    const refreshing = this.refreshOnce(performance.now() + 2 * METADATA_TIMEOUT_MS, suspects);
    this.refreshing = refreshing;
    const done = (): void => {
      if (this.refreshing === refreshing) this.refreshing = null;
    };
    refreshing.then(() => {
      done();
      for (const link of suspects) {
        if (!link.isOpen || !this.disowned(link)) continue;
        link.connection.destroy(new FerryError('CONNECTION_CLOSED', `broker ${link.nodeId} stopped answering and no longer leads its topics`));
      }
    }, done);
  }

  /** The cluster says `link`'s broker is dead, or that a topic of its requests or subscriptions has another leader. */
  private disowned(link: Link): boolean {
    const nodeId = link.nodeId!;
    if (this.cache.isAlive(nodeId) === false) return true;
    for (const topic of link.routedTopics) if (this.cache.ledElsewhere(topic, nodeId)) return true;
    for (const subscription of link.subscriptions.values()) if (this.cache.ledElsewhere(subscription.topic, nodeId)) return true;
    return false;
  }

  /**
   * After METADATA: a subscription on a broker that no longer leads its topic moves to the leader
   * (the old leader normally ends it with NOT_LEADER; this covers a notice that never came).
   */
  private moveSubscriptions(): void {
    for (const link of this.registered) {
      if (link.nodeId === undefined || !link.isOpen) continue;
      for (const [wireId, subscription] of link.subscriptions) {
        if (!this.cache.ledElsewhere(subscription.topic, link.nodeId) || this.cache.leader(subscription.topic)!.stale) continue;
        link.subscriptions.delete(wireId);
        subscription.detach();
        link.connection.request((w, id) => encodeUnsubscribe(w, id, wireId), FRAME_TYPES.OK, () => undefined).catch(() => undefined);
        const moved = new FerryError('NOT_LEADER', `broker ${link.nodeId} no longer leads ${subscription.topic}`);
        this.host.subscriptionMoved(subscription, moved);
        void this.resume(subscription, moved);
      }
    }
  }

  // ---- closing ----

  /** Waits (up to the request timeout) for answers to requests in flight, then closes every connection. */
  async close(): Promise<void> {
    this.closed = true;
    this.leaderWaits.close();
    clearInterval(this.silenceTimer);
    const links = [...this.registered].filter((link) => link.isOpen);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.options.requestTimeoutMs);
    });
    await Promise.race([Promise.all(links.map((link) => link.connection.whenIdle())), timeout]);
    clearTimeout(timer);
    for (const link of links) link.connection.end();
  }
}
