/**
 * Outbound topic aliases (5.0): the server names a topic once, with an alias, and sends later
 * PUBLISHes of it to the same client with the alias and an empty topic name. A client announces
 * how many aliases it takes (topic alias maximum in CONNECT, 0 or absent: none); the server
 * assigns at most that many, and at most OUTBOUND_TOPIC_ALIASES_MAX per connection, to the first
 * distinct topics it sends, and sends any further topic with its full name. Aliases live as long
 * as the connection (MQTT-3.3.2-7: they are not part of the session).
 */
import type { IPublishPacket } from 'mqtt-packet';
import { OUTBOUND_TOPIC_ALIASES_MAX } from './limits.js';

export class OutboundTopicAliases {
  private readonly aliases = new Map<string, number>();
  private readonly max: number;

  /** @param clientMax the client's topic alias maximum (0: it takes none) */
  constructor(clientMax: number) {
    this.max = Math.min(clientMax, OUTBOUND_TOPIC_ALIASES_MAX);
  }

  get assigned(): number {
    return this.aliases.size;
  }

  /**
   * Rewrites `packet` to use an alias where one is known or can be assigned. Returns the undo of a
   * new assignment (call it when the packet is not sent after all, so the client never learnt it),
   * else null.
   */
  apply(packet: IPublishPacket): (() => void) | null {
    if (this.max === 0) return null;
    const topic = packet.topic;
    const known = this.aliases.get(topic);
    if (known !== undefined) {
      packet.properties = { ...packet.properties, topicAlias: known };
      packet.topic = '';
      return null;
    }
    if (this.aliases.size >= this.max) return null;
    const alias = this.aliases.size + 1;
    this.aliases.set(topic, alias);
    packet.properties = { ...packet.properties, topicAlias: alias };
    return () => this.aliases.delete(topic);
  }
}
