/**
 * AccessGuard: authorization in one place for every transport. `guard.for(view)` is the BrokerApi
 * one client sees: each call checked against the caller's grants, looked up per call.
 * The rest: docs/INTERNALS.md.
 */
import type { Logger } from '../platform/logger.js';
import { silentLogger } from '../platform/logger.js';
import { FerryError, type ErrorCode } from '../errors.js';
import { ForwardingSubscription, required } from '../broker/forwarding.js';
import type { BrokerApi, DeliverySink, GroupInfo, PublishMessage, PublishResult, RedriveOptions, RedriveResult, StartPosition, SubscribeOptions, Subscription, TopicConfig, TopicInfo, SubscriptionCloseOptions } from '../broker/types.js';
import type { Authenticator, Principal } from './authenticator.js';
import type { Action, Resource } from './policy.js';
import type { PublishQuota } from './quota.js';
import type { AuditEvent } from './audit.js';

/** A sink that can be told why its subscription was withdrawn (transports implement it). */
export interface RevocableSink extends DeliverySink {
  /** The consume grant is gone: the subscription is closed and no delivery follows. */
  revoked?(error: FerryError): void;
}

export interface GuardOptions {
  /** Per-user publish rate quota; absent: unlimited. */
  quota?: PublishQuota | null;
  logger?: Logger;
}

/** Who is calling, as the guard needs it. */
export interface AccessView {
  /** null: not authenticated (allowed everything only while authentication is off). */
  principal: Principal | null;
  /** The client's address: the quota's key when there is no principal. */
  address: string;
  /** Hears every refusal (FORBIDDEN, RATE_LIMITED), e.g. to count it. */
  onReject?: (code: ErrorCode) => void;
  /** The broker the checked calls go to. */
  inner: BrokerApi;
}

export class AccessGuard {
  private readonly live = new Set<GuardedSubscription>();
  private readonly stopListening: () => void;
  readonly quota: PublishQuota | null;
  readonly logger: Logger;

  constructor(
    readonly authenticator: Authenticator,
    options: GuardOptions = {},
  ) {
    this.quota = options.quota ?? null;
    this.logger = options.logger ?? silentLogger;
    this.stopListening = authenticator.onChange(() => this.recheck());
  }

  /** `view.inner` as `view.principal` may use it. */
  for(view: AccessView): BrokerApi {
    return new GuardedBroker(this, view.inner, view);
  }

  /** Open subscriptions (for tests and the admin view). */
  get subscriptionCount(): number {
    return this.live.size;
  }

  /** Ends every open subscription whose consume grant is gone; returns how many ended. */
  recheck(): number {
    let revoked = 0;
    for (const subscription of [...this.live]) {
      if (subscription.permitted()) continue;
      revoked++;
      subscription.revoke();
    }
    if (revoked > 0) this.logger.warn('security.subscriptions.revoked', { count: revoked });
    return revoked;
  }

  /**
   * RATE_LIMITED when the caller's publish quota is used up right now, else null; takes nothing. A
   * transport asks before it assembles a PUBLISH, so a refused one is dropped as it arrives.
   */
  publishRefusal(view: Pick<AccessView, 'principal' | 'address'>): FerryError | null {
    const quota = this.quota;
    if (quota === null) return null;
    const key = quotaKey(view);
    if (!quota.exhausted(key)) return null;
    return quotaError(quota, key);
  }

  track(subscription: GuardedSubscription): void {
    this.live.add(subscription);
  }

  untrack(subscription: GuardedSubscription): void {
    this.live.delete(subscription);
  }

  close(): void {
    this.stopListening();
  }
}

/** Refusals remembered per client view, so that a client repeating a forbidden request costs no new error (and stack trace) each time. */
const REFUSALS_CACHED_MAX = 64;

class GuardedBroker implements BrokerApi {
  private readonly auth: Authenticator;
  private readonly refusals = new Map<string, FerryError>();

  constructor(
    private readonly guard: AccessGuard,
    private readonly inner: BrokerApi,
    private readonly view: AccessView,
  ) {
    this.auth = guard.authenticator;
  }

  private refuse(code: ErrorCode, error: FerryError): never {
    this.view.onReject?.(code);
    this.auth.audit.refused(this.view.principal?.name ?? null, this.view.address, code, error.message);
    throw error;
  }

  /** An admin action done: the audit log says who did it from where. */
  private audited<T>(event: AuditEvent, fields: Record<string, unknown>, done: Promise<T>): Promise<T> {
    return done.then((result) => {
      this.auth.audit.record(event, { user: this.view.principal?.name ?? null, address: this.view.address, ...fields });
      return result;
    });
  }

  private check(action: Action, resource: Resource): void {
    if (this.auth.allows(this.view.principal, action, resource)) return;
    const key = `${action}\0${resource.topic}\0${resource.group ?? ''}`;
    let error = this.refusals.get(key);
    if (error === undefined) {
      try {
        this.auth.authorize(this.view.principal, action, resource);
        return; // allowed after all (the users changed in between)
      } catch (thrown) {
        error = thrown as FerryError;
      }
      if (this.refusals.size >= REFUSALS_CACHED_MAX) this.refusals.clear();
      this.refusals.set(key, error);
    }
    this.refuse('FORBIDDEN', error);
  }

  private checkVisible(topic: string): void {
    if (!this.auth.sees(this.view.principal, topic)) {
      this.refuse('FORBIDDEN', new FerryError('FORBIDDEN', `${this.view.principal?.name ?? 'anonymous'} has no grant on topic ${topic}`));
    }
  }

  createTopic(name: string, config?: Partial<TopicConfig>): Promise<TopicInfo> {
    try {
      this.check('admin', { topic: name });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.audited('topic.created', { topic: name }, this.inner.createTopic(name, config));
  }

  deleteTopic(name: string): Promise<void> {
    try {
      this.check('admin', { topic: name });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.audited('topic.deleted', { topic: name }, this.inner.deleteTopic(name));
  }

  listTopics(): TopicInfo[] {
    return this.inner
      .listTopics()
      .filter((info) => this.auth.sees(this.view.principal, info.name))
      .map((info) => this.withVisibleGroups(info));
  }

  describeTopic(name: string): TopicInfo {
    this.checkVisible(name);
    return this.withVisibleGroups(this.inner.describeTopic(name));
  }

  /**
   * A topic's groups as listGroups shows them: all to an admin of the topic (or a broker of the
   * cluster, replicate), else those the caller may consume.
   */
  private withVisibleGroups(info: TopicInfo): TopicInfo {
    const principal = this.view.principal;
    const topic = { topic: info.name };
    if (info.groups.length === 0 || this.auth.allows(principal, 'admin', topic) || this.auth.allows(principal, 'replicate', topic)) return info;
    const groups = info.groups.filter((group) => this.auth.allows(principal, 'consume', { topic: info.name, group }));
    return groups.length === info.groups.length ? info : { ...info, groups };
  }

  publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    try {
      this.check('publish', { topic });
      this.takeQuota(messages.length);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.inner.publish(topic, messages);
  }

  /** Broker headers (dead letters, redrives from another broker) only from a user with the replicate grant. */
  publishAsBroker(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    try {
      this.check('replicate', { topic });
      this.takeQuota(messages.length);
      return required(this.inner, 'publishAsBroker')(topic, messages);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  private takeQuota(count: number): void {
    const quota = this.guard.quota;
    if (quota === null) return;
    const key = quotaKey(this.view);
    if (quota.take(key, count)) return;
    this.refuse('RATE_LIMITED', quotaError(quota, key));
  }

  async subscribe(topic: string, options: SubscribeOptions, sink: DeliverySink): Promise<Subscription> {
    const resource: Resource = options.group === undefined ? { topic } : { topic, group: options.group };
    this.check('consume', resource);
    // A group's dead letters are written by the broker: naming another topic must not be a way to publish there.
    if (options.deadLetterTopic !== undefined) this.check('publish', { topic: options.deadLetterTopic });
    // Nor may a new group make the broker create a dead-letter topic its caller could not create.
    const inner = await this.inner.subscribe(topic, { ...options, mayCreateTopic: this.mayCreateTopic }, sink);
    const guarded = new GuardedSubscription(this.guard, inner, sink as RevocableSink, this.view.principal, resource);
    if (!guarded.permitted()) {
      // Revoked while the subscribe was in flight.
      await inner.close();
      this.check('consume', resource);
    }
    this.guard.track(guarded);
    return guarded;
  }

  /** Whether this caller may create `topic` (admin on it); a no is counted as a refusal. */
  private readonly mayCreateTopic = (topic: string): boolean => {
    if (this.auth.allows(this.view.principal, 'admin', { topic })) return true;
    this.view.onReject?.('FORBIDDEN');
    return false;
  };

  listGroups(topic: string): GroupInfo[] {
    this.checkVisible(topic);
    const groups = required(this.inner, 'listGroups')(topic);
    if (this.auth.allows(this.view.principal, 'admin', { topic })) return groups;
    return groups.filter((group) => this.auth.allows(this.view.principal, 'consume', { topic, group: group.name }));
  }

  describeGroup(topic: string, group: string): GroupInfo {
    if (!this.auth.allows(this.view.principal, 'admin', { topic })) this.check('consume', { topic, group });
    return required(this.inner, 'describeGroup')(topic, group);
  }

  resetGroup(topic: string, group: string, to: StartPosition): Promise<GroupInfo> {
    try {
      this.check('admin', { topic });
      return this.audited('group.reset', { topic, group, to }, required(this.inner, 'resetGroup')(topic, group, to));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  redrive(deadLetterTopic: string, options?: RedriveOptions): Promise<RedriveResult> {
    try {
      this.check('admin', { topic: deadLetterTopic });
      return this.audited('redrive', { topic: deadLetterTopic, options: options ?? {} }, required(this.inner, 'redrive')(deadLetterTopic, options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** A per-client view: closing it must not close the broker everyone shares. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The quota's bucket: the user's, or the client address's when there is no principal. */
function quotaKey(view: Pick<AccessView, 'principal' | 'address'>): string {
  return view.principal === null ? `address:${view.address}` : `user:${view.principal.name}`;
}

function quotaError(quota: PublishQuota, key: string): FerryError {
  const retryAfterMs = quota.retryAfterMs(key);
  return new FerryError('RATE_LIMITED', `publish quota of ${quota.messagesPerSecond} messages/s exceeded; retry in ${retryAfterMs} ms`, { detail: { retryAfterMs } });
}

/** A subscription the guard can withdraw; everything else passes through. */
class GuardedSubscription extends ForwardingSubscription {
  private closing: Promise<void> | null = null;

  constructor(
    private readonly guard: AccessGuard,
    inner: Subscription,
    private readonly sink: RevocableSink,
    private readonly principal: Principal | null,
    private readonly resource: Resource,
  ) {
    super(inner);
  }

  permitted(): boolean {
    return this.guard.authenticator.allows(this.principal, 'consume', this.resource);
  }

  /** Closes the subscription and tells the transport why. */
  revoke(): void {
    const who = this.principal?.name ?? 'anonymous';
    const what = this.resource.group === undefined ? this.resource.topic : `${this.resource.topic} (group ${this.resource.group})`;
    const error = new FerryError('FORBIDDEN', `${who} may no longer consume ${what}`);
    this.close().catch((failure: unknown) => this.guard.logger.warn('security.revoke.close_failed', { error: failure }));
    if (this.sink.revoked !== undefined) this.sink.revoked(error);
    else this.sink.ended?.(error.message);
  }

  override close(options?: SubscriptionCloseOptions): Promise<void> {
    this.guard.untrack(this);
    return (this.closing ??= this.inner.close(options));
  }
}
