/**
 * The subscriptions of one connection: SUBSCRIBE, UNSUBSCRIBE and CREDIT, and the deliveries their
 * sinks (server-subscription.ts) queue as DELIVER frames; sinks refused for a backed-up socket wait
 * here until it drains.
 */
import type { BrokerApi, Delivery } from '../../broker/types.js';
import { FerryError, isFerryError, type ErrorCode } from '../../errors.js';
import { encodeError } from '../../protocol/codec-session.js';
import { appendDelivery, decodeCredit, decodeSubscribe, encodeSubscribed } from '../../protocol/codec-subscribe.js';
import { FRAME_TYPES } from '../../protocol/frame.js';
import type { SubscribeRequest } from '../../protocol/messages.js';
import type { ResolvedServerOptions } from './options.js';
import type { RequestContext } from './request-context.js';
import { Refusal } from './refusal.js';
import { ServerSubscription, type SinkOwner } from './server-subscription.js';

/** Partitions a resuming stream may name: far above the broker's partition limit, so a huge index is malformed intent. */
const RESUME_PARTITIONS_MAX = 65_536;

/** What the subscriptions need from their connection beyond what every request handler does. */
export interface SubscriptionsHost extends RequestContext {
  /** The connection's id, for logs. */
  readonly id: number;
  /** Past the handshake and not draining or closed. */
  readonly open: boolean;
  readonly options: Pick<ResolvedServerOptions, 'subscriptionsMax' | 'subscriptionUnackedMax'>;
  /** True while the socket is below its high-water mark and the connection is open. */
  acceptsDeliveries(): boolean;
  /** An ERROR with this code was sent (counted for the metrics); `refusal`: it answers a request (counted for the turn's throttle). */
  rejected(code: ErrorCode, refusal: boolean): void;
}

export class ConnectionSubscriptions implements SinkOwner {
  private readonly byWireId = new Map<number, ServerSubscription>();
  private readonly paused = new Set<ServerSubscription>();
  private nextWireId = 1;
  private tooMany: Refusal | null = null;

  constructor(private readonly host: SubscriptionsHost) {}

  subscribe(id: number): void {
    const host = this.host;
    if (this.byWireId.size >= host.options.subscriptionsMax) {
      // Refused before the request is decoded, with a frame encoded once (refusal.ts): a client
      // looping on SUBSCRIBE costs a frame header and a copy per refusal.
      this.tooMany ??= new Refusal('TOO_MANY_SUBSCRIPTIONS', `a connection holds at most ${host.options.subscriptionsMax} subscriptions`);
      host.rejected(this.tooMany.code, true);
      this.tooMany.write(host.writer, id);
      host.replied();
      return;
    }
    const request = decodeSubscribe(host.reader);
    const sink = new ServerSubscription(this.nextWireId++, request.topic, request.group, this, host.options.subscriptionUnackedMax);
    // The initial credit counts against the cap like any grant; a larger ask is clamped, not refused.
    request.credit = sink.admitCredit(request.credit);
    this.byWireId.set(sink.wireId, sink);
    host.requestsStarted(1);
    let pending;
    try {
      pending = host.broker.subscribe(request.topic, subscribeOptions(request), sink);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (subscription) => {
        host.requestsFinished(1);
        if (sink.closing || host.closed) {
          this.byWireId.delete(sink.wireId);
          subscription.close().catch(() => undefined);
          return;
        }
        sink.subscription = subscription;
        encodeSubscribed(host.writer, id, { subscriptionId: sink.wireId });
        sink.announce();
        host.replied();
        if (sink.paused) {
          sink.paused = false;
          this.paused.delete(sink);
          subscription.resume();
        }
      },
      (error: unknown) => {
        host.requestsFinished(1);
        this.byWireId.delete(sink.wireId);
        sink.closing = true;
        host.requestFailed(id, error);
      },
    );
  }

  unsubscribe(id: number, wireId: number): void {
    const sink = this.byWireId.get(wireId);
    if (sink === undefined) throw new FerryError('UNKNOWN_SUBSCRIPTION', `no subscription ${wireId} on this connection`);
    this.byWireId.delete(wireId);
    this.paused.delete(sink);
    this.host.run(id, sink.close(), () => this.host.writer.emptyFrame(FRAME_TYPES.OK, id));
  }

  credit(id: number): void {
    for (const grant of decodeCredit(this.host.reader)) {
      try {
        const sink = this.sinkFor(grant.subscriptionId);
        const count = sink.admitCredit(grant.count);
        if (count > 0) sink.subscription!.grantCredit(count);
      } catch (error) {
        this.host.requestFailed(id, error);
      }
    }
  }

  sinkFor(wireId: number): ServerSubscription {
    const sink = this.byWireId.get(wireId);
    if (sink === undefined || sink.subscription === null || sink.closing) {
      throw new FerryError('UNKNOWN_SUBSCRIPTION', `no subscription ${wireId} on this connection`, { detail: { subscriptionId: wireId } });
    }
    return sink;
  }

  /** Every subscription, still held (a connection cut off closes them, and forgets them once its socket closes). */
  all(): IterableIterator<ServerSubscription> {
    return this.byWireId.values();
  }

  /** Forgets every subscription and returns them, for the caller to close. */
  detachAll(): ServerSubscription[] {
    const sinks = [...this.byWireId.values()];
    this.byWireId.clear();
    this.paused.clear();
    return sinks;
  }

  /** The socket drained: sinks that refused deliveries may deliver again. */
  resumePaused(): void {
    if (this.paused.size === 0 || !this.host.open) return;
    const sinks = [...this.paused];
    this.paused.clear();
    for (const sink of sinks) {
      sink.paused = false;
      if (sink.subscription === null || sink.closing) continue;
      // resume() may deliver at once and refill the socket: stop as soon as it is backed up again.
      sink.subscription.resume();
    }
  }

  stats(): Array<{ id: number; topic: string; group: string | undefined; delivered: number }> {
    return [...this.byWireId.values()].map((sink) => ({ id: sink.wireId, topic: sink.topic, group: sink.group, delivered: sink.delivered }));
  }

  // ---- SinkOwner ----

  queueDelivery(sink: ServerSubscription, delivery: Delivery): void {
    const host = this.host;
    if (host.closed) return;
    try {
      appendDelivery(host.writer, sink.wireId, sink.topic, delivery);
    } catch (error) {
      host.logger.error('transport.delivery_failed', { connection: host.id, subscription: sink.wireId, error });
      host.requestFailed(0, error);
    }
    host.replied();
  }

  acceptsDeliveries(): boolean {
    return this.host.acceptsDeliveries();
  }

  notePaused(sink: ServerSubscription): void {
    if (sink.paused) return;
    sink.paused = true;
    this.paused.add(sink);
  }

  settleFailed(sink: ServerSubscription, error: unknown): void {
    if (this.host.closed) return;
    // ACK and NACK have no reply; a failure is reported with request id 0 and the subscription.
    const detail = { subscriptionId: sink.wireId };
    const typed = isFerryError(error) ? new FerryError(error.code, error.message, { detail: { ...error.detail, ...detail } }) : error;
    this.host.requestFailed(0, typed);
  }

  /**
   * The broker ended a subscription (its topic was deleted: UNKNOWN_SUBSCRIPTION), or the guard
   * withdrew it (FORBIDDEN): the client hears it as an ERROR naming the subscription.
   */
  subscriptionEnded(sink: ServerSubscription, reason: string, code: ErrorCode = 'UNKNOWN_SUBSCRIPTION'): void {
    if (this.byWireId.get(sink.wireId) !== sink) return;
    this.byWireId.delete(sink.wireId);
    this.paused.delete(sink);
    void sink.close().catch(() => undefined);
    if (this.host.closed || !sink.announced) return;
    this.host.rejected(code, false);
    encodeError(this.host.writer, 0, { code, message: reason, detail: { subscriptionId: sink.wireId, ended: true } });
    this.host.replied();
  }
}

/** The broker's subscribe options for a SUBSCRIBE: a resuming stream's positions become partitionOffsets. */
function subscribeOptions(request: SubscribeRequest): Parameters<BrokerApi['subscribe']>[1] {
  const { topic: _topic, resumeOffsets, ...options } = request;
  if (resumeOffsets === undefined || request.group !== undefined) return options;
  const partitionOffsets: number[] = [];
  for (const [partition, offset] of resumeOffsets) {
    if (partition < RESUME_PARTITIONS_MAX) partitionOffsets[partition] = offset;
  }
  return { ...options, partitionOffsets };
}
