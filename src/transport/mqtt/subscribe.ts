/**
 * SUBSCRIBE and UNSUBSCRIBE: each filter checked (form, length, the client's subscription limit),
 * subscribed through the guard (consume on the Ferry topic, and on the group for a persistent or
 * shared subscription), answered with one reason code per filter; a persistent session's filters
 * are written before the SUBACK, and a new subscription gets the retained messages it matches.
 */
import type { ISubackPacket, ISubscribePacket, ISubscription, IUnsubackPacket, IUnsubscribePacket, Packet, QoS } from 'mqtt-packet';
import { isFerryError } from '../../errors.js';
import type { Logger } from '../../platform/logger.js';
import { MqttProtocolError } from './inbound.js';
import type { FilterSubscription, Outbound } from './outbound.js';
import { REASON, reasonOf, SUBACK_V4_FAILURE } from './reason-codes.js';
import type { RetainedStore } from './retained.js';
import type { SessionRegistry } from './sessions.js';
import { parseFilter, topicFilterProblem } from './topics.js';

/**
 * What SUBSCRIBE and UNSUBSCRIBE need of a connection (connection.ts's MqttConnection is one):
 * declared here so the connection depends on this module and not the other way round.
 */
export interface SubscribingConnection {
  readonly clientId: string;
  readonly protocolVersion: number;
  /** The session's expiry when it is persistent; 0 when it ends with the connection. */
  readonly persistentExpirySeconds: number;
  readonly outbound: Outbound | null;
  readonly context: {
    readonly limits: { readonly topicBytesMax: number; readonly subscriptionsMax: number };
    readonly logger: Logger;
    readonly retained: RetainedStore;
    readonly sessions: SessionRegistry;
  };
  write(packet: Packet): boolean;
}

export async function handleSubscribe(connection: SubscribingConnection, packet: ISubscribePacket): Promise<void> {
  const granted: number[] = [];
  // 5.0: one subscription identifier for every filter of the packet, sent back on the PUBLISHes they match.
  const subscriptionId = connection.protocolVersion === 5 ? packet.properties?.subscriptionIdentifier : undefined;
  for (const wanted of packet.subscriptions) granted.push(await subscribeOne(connection, wanted, subscriptionId));
  await storeFilters(connection);
  const v5 = connection.protocolVersion === 5;
  const answer: ISubackPacket = { cmd: 'suback', messageId: packet.messageId!, granted: v5 ? granted : granted.map((code) => (code > 2 ? SUBACK_V4_FAILURE : code)) };
  connection.write(answer);
}

/** The granted QoS, or the reason code of the refusal. */
async function subscribeOne(connection: SubscribingConnection, wanted: ISubscription, subscriptionId: number | undefined): Promise<number> {
  const { limits, logger } = connection.context;
  const outbound = connection.outbound!;
  const parsed = parseFilter(wanted.topic);
  if (parsed === null || topicFilterProblem(parsed.filter, limits.topicBytesMax) !== null) return REASON.topicFilterInvalid;
  const isNew = !outbound.filters().some((existing) => existing.raw === wanted.topic);
  if (isNew && outbound.subscriptionCount >= limits.subscriptionsMax) return REASON.quotaExceeded;
  if (parsed.shareGroup !== null && wanted.nl === true) throw new MqttProtocolError(REASON.protocolError, 'no-local on a shared subscription (MQTT-3.8.3-4)');
  const qos = Math.min(wanted.qos, 2) as QoS;
  const group = outbound.groupOf(parsed);
  const subscription: FilterSubscription = { ...parsed, raw: wanted.topic, qos, ...(group === undefined ? {} : { group }) };
  if (connection.protocolVersion === 5) {
    if (wanted.nl === true) subscription.noLocal = true;
    if (wanted.rap === true) subscription.retainAsPublished = true;
    if (subscriptionId !== undefined) subscription.subscriptionId = subscriptionId;
  }
  try {
    await outbound.subscribe(subscription);
  } catch (error) {
    logger.debug('mqtt.subscribe_refused', { clientId: connection.clientId, filter: wanted.topic.slice(0, 200), error });
    // A filter naming no topic is an invalid filter here (0x8F); not allowed is 0x87.
    return isFerryError(error, 'UNKNOWN_TOPIC') ? REASON.topicFilterInvalid : reasonOf(error);
  }
  // Retain handling (5.0): 0 send retained messages, 1 only for a new subscription, 2 never; a shared subscription gets none (MQTT-4.8.2).
  const retainHandling = wanted.rh ?? 0;
  if (parsed.shareGroup === null && (retainHandling === 0 || (retainHandling === 1 && isNew))) {
    outbound.sendRetained(connection.context.retained.matching(parsed.filter), subscription);
  }
  return qos;
}

export async function handleUnsubscribe(connection: SubscribingConnection, packet: IUnsubscribePacket): Promise<void> {
  const codes: number[] = [];
  for (const raw of packet.unsubscriptions) codes.push((await connection.outbound!.unsubscribe(raw)) ? REASON.success : REASON.noSubscriptionExisted);
  await storeFilters(connection);
  const answer: IUnsubackPacket = { cmd: 'unsuback', messageId: packet.messageId!, granted: connection.protocolVersion === 5 ? codes : [] };
  connection.write(answer);
}

/** A persistent session's filters, written before the answer so an acknowledged subscription survives a restart. */
async function storeFilters(connection: SubscribingConnection): Promise<void> {
  const expirySeconds = connection.persistentExpirySeconds;
  if (expirySeconds === 0) return;
  await connection.context.sessions.store(connection.clientId, expirySeconds, connection.outbound!.filters());
}
