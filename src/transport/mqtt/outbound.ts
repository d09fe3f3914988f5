/**
 * What a client receives: its subscriptions (each one broker subscription, or one per topic for a
 * first-level wildcard), the QoS 1 and 2 messages sent and not yet acknowledged, and their packet
 * identifiers. Flow control: each broker subscription has credit for the whole window, and the
 * sink is unwritable while the client's window (the server's inflight limit, lowered by a 5.0
 * client's receive maximum) is full or its socket backed up; each PUBACK (QoS 1) or PUBREC (QoS 2)
 * acknowledges the message to the broker (a queue group settles it) and gives its credit back.
 */
import type { IPublishPacket, IPubrelPacket, QoS } from 'mqtt-packet';
import type { BrokerApi, Delivery, Subscription, SubscribeOptions } from '../../broker/types.js';
import type { Logger } from '../../platform/logger.js';
import { MQTT_TOPIC_HEADER } from './limits.js';
import { publishedQos, publishedRetained, publisherOf, publishOfDelivery, remainingLifeMs } from './messages.js';
import type { RetainedMessage } from './retained.js';
import type { TopicMap } from './topic-map.js';
import { sessionGroupName, shareGroupName, topicMatches, type ParsedFilter } from './topics.js';

/** One SUBSCRIBE entry as the client holds it. */
export interface FilterSubscription extends ParsedFilter {
  /** The filter as subscribed (with `$share/…`), the key of UNSUBSCRIBE. */
  raw: string;
  qos: QoS;
  /** Queue group name for a persistent session or a shared subscription; absent: a stream from now. */
  group?: string;
  /** 5.0 no-local: messages this client published are not sent back to it. */
  noLocal?: boolean;
  /** 5.0 retain-as-published: a message keeps the retain flag it was published with. */
  retainAsPublished?: boolean;
  /** 5.0 subscription identifier: sent back on every PUBLISH this subscription matches. */
  subscriptionId?: number;
}

interface Entry {
  wanted: FilterSubscription;
  subscriptions: Subscription[];
}

interface InFlight {
  /** Null for a retained message sent on subscribe: nothing to settle. */
  subscription: Subscription | null;
  partition: number;
  offset: number;
  /** QoS 2: PUBREC came, PUBREL sent, waiting for PUBCOMP. */
  released: boolean;
}

/** What the outbound side needs of its connection. */
export interface OutboundPort {
  /** False when the packet was not sent: larger than the client's maximum packet size (5.0), so discarded (MQTT-3.1.2-25). */
  write(packet: IPublishPacket | IPubrelPacket): boolean;
  /** The socket takes more now (not backed up). */
  writable(): boolean;
  readonly protocolVersion: number;
  nowMs(): number;
}

export interface OutboundOptions {
  broker: BrokerApi;
  clientId: string;
  /** Persistent session: subscriptions are durable queue groups per client id and filter. */
  persistent: boolean;
  /** QoS 1 and 2 messages unacknowledged at most. */
  windowMax: number;
  /** Which Ferry topics a filter reads (the first level, or the operator's prefixes). */
  topicMap: TopicMap;
  logger: Logger;
}

const PACKET_ID_MAX = 0xffff;

export class Outbound {
  private readonly entries = new Map<string, Entry>();
  private readonly inFlight = new Map<number, InFlight>();
  private nextPacketId = 1;
  private port: OutboundPort | null = null;

  constructor(private readonly options: OutboundOptions) {}

  get subscriptionCount(): number {
    return this.entries.size;
  }

  /** The filters held (a persistent session stores them). */
  filters(): FilterSubscription[] {
    return [...this.entries.values()].map((entry) => entry.wanted);
  }

  attach(port: OutboundPort): void {
    this.port = port;
  }

  /** The group a filter reads through in this session, if any. */
  groupOf(parsed: ParsedFilter): string | undefined {
    if (parsed.shareGroup !== null) return shareGroupName(parsed.shareGroup, parsed.filter);
    return this.options.persistent ? sessionGroupName(this.options.clientId, parsed.filter) : undefined;
  }

  /** Subscribes (replacing an existing subscription of the same filter, as MQTT-3.8.4-3 asks). */
  async subscribe(wanted: FilterSubscription): Promise<void> {
    const previous = this.entries.get(wanted.raw);
    if (previous !== undefined) {
      previous.wanted = wanted;
      return;
    }
    const topics = this.topicsOf(wanted.filter);
    const entry: Entry = { wanted, subscriptions: [] };
    this.entries.set(wanted.raw, entry);
    try {
      for (const topic of topics) {
        const subscription = await this.subscribeTopic(entry, topic, topics.length > 1);
        if (subscription !== null) entry.subscriptions.push(subscription);
      }
    } catch (error) {
      this.entries.delete(wanted.raw);
      await this.closeEntry(entry);
      throw error;
    }
  }

  /** A literal first level names one topic (refused by the broker when unknown); a wildcard reads every topic there is now; prefixes map (topic-map.ts). */
  private topicsOf(filter: string): string[] {
    return this.options.topicMap.topicsOfFilter(filter, () => this.options.broker.listTopics().map((info) => info.name));
  }

  /** Null when one of several topics a wildcard reads refuses this client: the others still serve it. */
  private async subscribeTopic(entry: Entry, topic: string, oneOfMany: boolean): Promise<Subscription | null> {
    const group = entry.wanted.group;
    const subscribeOptions: SubscribeOptions = { from: { kind: 'latest' }, credit: this.options.windowMax, ...(group === undefined ? {} : { group }) };
    const holder: { subscription: Subscription | null } = { subscription: null };
    const sink = {
      deliver: (delivery: Delivery): void => this.deliver(entry, holder.subscription!, delivery),
      writable: (): boolean => holder.subscription !== null && this.port !== null && this.inFlight.size < this.options.windowMax && this.port.writable(),
    };
    try {
      holder.subscription = await this.options.broker.subscribe(topic, subscribeOptions, sink);
    } catch (error) {
      if (oneOfMany) return null;
      throw error;
    }
    holder.subscription.resume();
    return holder.subscription;
  }

  private deliver(entry: Entry, subscription: Subscription, delivery: Delivery): void {
    const port = this.port;
    // Not writable while detached, so not expected; left in flight, the close gives it back to its group.
    if (port === null) return;
    const wanted = entry.wanted;
    const topic = this.mqttTopicOf(delivery);
    if (!topicMatches(wanted.filter, topic) || remainingLifeMs(delivery, port.nowMs()) === 0 || (wanted.noLocal === true && publisherOf(delivery) === this.options.clientId)) {
      this.settle(subscription, delivery.partition, delivery.offset);
      return;
    }
    const qos = Math.min(wanted.qos, publishedQos(delivery)) as QoS;
    const messageId = qos === 0 ? 0 : this.allocatePacketId();
    const retain = wanted.retainAsPublished === true && publishedRetained(delivery);
    const sent = port.write(publishOfDelivery(delivery, { topic, qos, messageId, protocolVersion: port.protocolVersion, retain, nowMs: port.nowMs(), subscriptionId: wanted.subscriptionId }));
    if (qos === 0 || !sent) this.settle(subscription, delivery.partition, delivery.offset);
    else this.inFlight.set(messageId, { subscription, partition: delivery.partition, offset: delivery.offset, released: false });
  }

  /** The `mqtt-topic` header, else (a native publish) the Ferry topic's MQTT name. */
  private mqttTopicOf(delivery: Delivery): string {
    for (const [name, value] of delivery.headers) if (name === MQTT_TOPIC_HEADER) return value;
    return this.options.topicMap.mqttNameOf(delivery.topic);
  }

  private allocatePacketId(): number {
    // The window (at most 65,535) keeps a free id: the search ends.
    while (this.inFlight.has(this.nextPacketId)) this.nextPacketId = (this.nextPacketId % PACKET_ID_MAX) + 1;
    const id = this.nextPacketId;
    this.nextPacketId = (this.nextPacketId % PACKET_ID_MAX) + 1;
    return id;
  }

  /**
   * The message is the client's: settle it with the broker and give its credit back. Done after the
   * current call returns (a microtask), so a delivery settled at once (QoS 0, a filtered-out one)
   * never grants credit from inside the broker's own delivery loop.
   */
  private settle(subscription: Subscription | null, partition: number, offset: number): void {
    if (subscription === null) return;
    this.settling.push({ subscription, partition, offset });
    if (this.settling.length === 1) queueMicrotask(this.flushSettles);
  }

  private readonly settling: Array<{ subscription: Subscription; partition: number; offset: number }> = [];

  private readonly flushSettles = (): void => {
    const settled = this.settling.splice(0);
    for (const { subscription, partition, offset } of settled) {
      subscription.ack(partition, offset).catch((error: unknown) => this.options.logger.debug('mqtt.ack_failed', { error }));
      subscription.grantCredit(1);
    }
  };

  /**
   * The retained messages of a new subscription, marked retained (MQTT-3.3.1-8); QoS 1 and 2 ones
   * take a packet id like any other (they do not wait for the window: a subscription's retained
   * messages are few, one per topic).
   */
  sendRetained(messages: readonly RetainedMessage[], wanted: FilterSubscription): void {
    const port = this.port;
    if (port === null) return;
    for (const message of messages) {
      const qos = Math.min(wanted.qos, message.qos) as QoS;
      const packet: IPublishPacket = { cmd: 'publish', topic: message.topic, payload: message.payload, qos, dup: false, retain: true };
      if (qos > 0) {
        packet.messageId = this.allocatePacketId();
        this.inFlight.set(packet.messageId, { subscription: null, partition: 0, offset: 0, released: false });
      }
      if (port.protocolVersion === 5) {
        const properties = { ...message.properties, ...(wanted.subscriptionId === undefined ? {} : { subscriptionIdentifier: wanted.subscriptionId }) };
        if (Object.keys(properties).length > 0) packet.properties = properties;
      }
      if (!port.write(packet) && packet.messageId !== undefined) this.inFlight.delete(packet.messageId);
    }
  }

  /** PUBACK (QoS 1). False when the id is not in flight. */
  puback(messageId: number): boolean {
    const sent = this.inFlight.get(messageId);
    if (sent === undefined || sent.released) return false;
    this.inFlight.delete(messageId);
    this.settle(sent.subscription, sent.partition, sent.offset);
    this.resume();
    return true;
  }

  /** PUBREC (QoS 2): the client has it; settle now and answer PUBREL. False when the id is not in flight. */
  pubrec(messageId: number): boolean {
    const sent = this.inFlight.get(messageId);
    if (sent === undefined) return false;
    if (!sent.released) {
      sent.released = true;
      this.settle(sent.subscription, sent.partition, sent.offset);
    }
    if (this.port !== null) this.port.write(this.port.protocolVersion === 5 ? { cmd: 'pubrel', messageId, reasonCode: 0 } : { cmd: 'pubrel', messageId });
    return true;
  }

  /** PUBCOMP (QoS 2): the packet id is free again. */
  pubcomp(messageId: number): boolean {
    const sent = this.inFlight.get(messageId);
    if (sent === undefined || !sent.released) return false;
    this.inFlight.delete(messageId);
    this.resume();
    return true;
  }

  /** The socket drained, or the window opened: let every subscription deliver again. */
  resume(): void {
    for (const entry of this.entries.values()) for (const subscription of entry.subscriptions) subscription.resume();
  }

  /** False when the client held no such subscription. */
  async unsubscribe(raw: string): Promise<boolean> {
    const entry = this.entries.get(raw);
    if (entry === undefined) return false;
    this.entries.delete(raw);
    await this.closeEntry(entry);
    return true;
  }

  private async closeEntry(entry: Entry): Promise<void> {
    const closing = entry.subscriptions.map((subscription) => subscription.close());
    entry.subscriptions = [];
    await Promise.allSettled(closing);
  }

  /**
   * The connection is gone: every broker subscription closes; unacknowledged messages of a queue
   * group go back to it and wait (on disk) for the client, the rest is forgotten.
   */
  async detach(): Promise<void> {
    this.port = null;
    this.inFlight.clear();
    const entries = [...this.entries.values()];
    await Promise.allSettled(entries.map((entry) => this.closeEntry(entry)));
  }

  /** A persistent session resumed on a new connection: its filters subscribe again (their groups kept what came meanwhile). */
  async reattach(port: OutboundPort, wanted: readonly FilterSubscription[]): Promise<void> {
    this.port = port;
    this.entries.clear();
    for (const one of wanted) {
      try {
        await this.subscribe(one);
      } catch (error) {
        this.options.logger.warn('mqtt.session.resubscribe_failed', { clientId: this.options.clientId, filter: one.raw, error });
      }
    }
  }
}
