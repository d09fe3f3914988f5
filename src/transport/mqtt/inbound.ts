/**
 * What a client publishes: PUBLISH at QoS 0, 1 and 2 and PUBREL, stored in the Ferry topic named by
 * the topic's first level. A PUBACK (QoS 1) or PUBREC (QoS 2) is sent only once the broker's publish
 * resolved, so for an `always` topic only after fdatasync, and acknowledgements go out in the order
 * the publishes came (MQTT-4.6.0-2), whatever order the topics resolve in.
 *
 * QoS 2 is exactly once: a packet id awaiting PUBREL is not stored twice on this connection, and
 * the message carries a Ferry message id made of the client id, the packet id and a digest of the
 * topic and payload, so a copy sent again (DUP) after a broker restart is recognised by the
 * topic's dedup window. A first send (DUP 0) that matches an earlier message within the window is a
 * new message that merely looks alike (a packet id used again), and is stored anyway.
 *
 * A publish the broker refuses (no such topic, not allowed) is answered with its reason code in
 * 5.0 (QoS 1 and 2; QoS 0 is dropped, as nothing answers it); 3.1.1 has no way to say so, and
 * MQTT-3.3.5-2 leaves the server acknowledging or closing: the connection is closed, so that a
 * refused message is never taken for a delivered one.
 */
import { createHash } from 'node:crypto';
import type { IPublishPacket, IPubrelPacket, Packet } from 'mqtt-packet';
import type { BrokerApi, Header, PublishMessage, PublishResult } from '../../broker/types.js';
import { FerryError } from '../../errors.js';
import type { Logger } from '../../platform/logger.js';
import { TOPIC_ALIASES_MAX } from './limits.js';
import { messageOfPublish, publisherHeader } from './messages.js';
import { REASON, reasonOf, type ReasonCode } from './reason-codes.js';
import type { TopicMap } from './topic-map.js';
import { topicNameProblem } from './topics.js';

/** A protocol violation: the connection is closed (5.0: after a DISCONNECT with the code). */
export class MqttProtocolError extends Error {
  constructor(
    readonly reason: ReasonCode,
    message: string,
  ) {
    super(message);
  }
}

export interface InboundPort {
  write(packet: Packet): void;
  /** Closes the connection because of `error` (a refused publish on 3.1.1, a protocol error). */
  fail(error: MqttProtocolError): void;
  /** Stops reading while the publishes awaiting the broker fill the window; resumes when they drain. */
  setReadPaused(paused: boolean): void;
}

export interface InboundOptions {
  broker: BrokerApi;
  clientId: string;
  protocolVersion: number;
  topicBytesMax: number;
  /** Where each topic name is stored (the first level, or the operator's prefixes). */
  topicMap: TopicMap;
  /** QoS 1 and 2 publishes awaiting the broker at most (the receive maximum announced). */
  inflightMax: number;
  nowMs(): number;
  logger: Logger;
  /** Told of every stored publish with its retain flag set (retained.ts). */
  onRetain?(topic: string, packet: IPublishPacket): void;
}

interface PendingAck {
  packet: Packet | null;
}

export class Inbound {
  private readonly aliases = new Map<number, string>();
  /** QoS 2 packet ids received and not yet released, with the reason code their PUBREC carries. */
  private readonly awaitingRelease = new Map<number, Promise<ReasonCode>>();
  private readonly acks: PendingAck[] = [];
  private waiting = 0;
  /** This client's `mqtt-client-id` header, shared by its messages. */
  private readonly publisher: Header;

  constructor(
    private readonly options: InboundOptions,
    private readonly port: InboundPort,
  ) {
    this.publisher = publisherHeader(options.clientId);
  }

  publish(packet: IPublishPacket): void {
    const topic = this.resolveTopic(packet);
    if (packet.qos === 2 && packet.messageId !== undefined && this.awaitingRelease.has(packet.messageId)) {
      // Sent again before PUBREL: stored already, answer with the first one's outcome.
      const first = this.awaitingRelease.get(packet.messageId)!;
      this.answerInOrder(first.then((reason) => ({ cmd: 'pubrec', messageId: packet.messageId!, ...this.reasonField(reason) }) as Packet));
      return;
    }
    const stored = this.store(topic, packet);
    if (packet.qos === 0) {
      stored.catch((error: unknown) => this.refused(error, packet, topic));
      return;
    }
    if (packet.qos === 1) {
      this.pubackOnce(stored, packet, topic);
      return;
    }
    const reason = stored.then(
      () => REASON.success as ReasonCode,
      (error: unknown) => {
        this.refused(error, packet, topic);
        return reasonOf(error);
      },
    );
    const messageId = packet.messageId!;
    this.awaitingRelease.set(messageId, reason);
    // A refused QoS 2 publish is over with its PUBREC: the id may be used again at once (MQTT-4.3.3).
    void reason.then((code) => {
      if (code >= REASON.unspecifiedError) this.awaitingRelease.delete(messageId);
    });
    this.answerInOrder(reason.then((code) => ({ cmd: 'pubrec', messageId, ...this.reasonField(code) }) as Packet));
  }

  /** QoS 1, the common case, without a promise per step: the PUBACK's slot is filled straight from the store's outcome. */
  private pubackOnce(stored: Promise<unknown>, packet: IPublishPacket, topic: string): void {
    const slot = this.reserve();
    const messageId = packet.messageId!;
    const v5 = this.options.protocolVersion === 5;
    stored.then(
      () => this.fill(slot, v5 ? { cmd: 'puback', messageId, reasonCode: REASON.success } : { cmd: 'puback', messageId }),
      (error: unknown) => {
        this.refused(error, packet, topic);
        this.fill(slot, v5 ? { cmd: 'puback', messageId, reasonCode: reasonOf(error) } : { cmd: 'puback', messageId });
      },
    );
  }

  pubrel(packet: IPubrelPacket): void {
    const messageId = packet.messageId!;
    const known = this.awaitingRelease.get(messageId);
    this.awaitingRelease.delete(messageId);
    const reason = known === undefined ? REASON.packetIdentifierNotFound : REASON.success;
    this.answerInOrder(Promise.resolve({ cmd: 'pubcomp', messageId, ...this.reasonField(reason) } as Packet));
  }

  private reasonField(reason: ReasonCode): { reasonCode?: number } {
    // 5.0 always carries it (a success is then the short form); 3.1.1 has none.
    return this.options.protocolVersion === 5 ? { reasonCode: reason } : {};
  }

  /** The topic name, through the 5.0 topic alias; a bad one is a protocol error. */
  private resolveTopic(packet: IPublishPacket): string {
    let topic = packet.topic;
    const alias = packet.properties?.topicAlias;
    if (alias !== undefined) {
      if (alias === 0 || alias > TOPIC_ALIASES_MAX) throw new MqttProtocolError(REASON.topicAliasInvalid, `topic alias ${alias} is outside 1..${TOPIC_ALIASES_MAX}`);
      if (topic === '') {
        const known = this.aliases.get(alias);
        if (known === undefined) throw new MqttProtocolError(REASON.protocolError, `topic alias ${alias} was never set`);
        topic = known;
      } else {
        this.aliases.set(alias, topic);
      }
    }
    const problem = topicNameProblem(topic, this.options.topicBytesMax);
    if (problem !== null) throw new MqttProtocolError(REASON.topicNameInvalid, problem);
    return topic;
  }

  private store(topic: string, packet: IPublishPacket): Promise<unknown> {
    const ferryTopic = this.options.topicMap.ferryTopicOf(topic);
    if (ferryTopic === null) return Promise.reject(new FerryError('UNKNOWN_TOPIC', `the first level of '${topic.slice(0, 200)}' is not a Ferry topic name`));
    const message = messageOfPublish(packet, topic, this.options.nowMs(), this.publisher);
    const stored: Promise<unknown> = packet.qos === 2 ? this.storeOnce(ferryTopic, message, packet) : this.options.broker.publish(ferryTopic, [message]);
    if (packet.retain && this.options.onRetain !== undefined) {
      const onRetain = this.options.onRetain;
      return stored.then((result) => {
        onRetain(topic, packet);
        return result;
      });
    }
    return stored;
  }

  /** QoS 2: stored with its Ferry message id; a first send that the dedup window takes for a repeat is stored again without one. */
  private async storeOnce(ferryTopic: string, message: PublishMessage, packet: IPublishPacket): Promise<PublishResult> {
    const id = exactlyOnceId(this.options.clientId, packet.messageId!, message);
    const [result] = await this.options.broker.publish(ferryTopic, [{ ...message, id }]);
    if (result!.duplicate !== true || packet.dup) return result!;
    const [again] = await this.options.broker.publish(ferryTopic, [message]);
    return again!;
  }

  private refused(error: unknown, packet: IPublishPacket, topic: string): void {
    this.options.logger.debug('mqtt.publish_refused', { clientId: this.options.clientId, topic: topic.slice(0, 200), qos: packet.qos, error });
    if (this.options.protocolVersion !== 5) this.port.fail(new MqttProtocolError(reasonOf(error), `publish to '${topic.slice(0, 200)}' refused: ${(error as Error).message}`));
  }

  /** Writes `answer` after every earlier one; pauses reading while the window is full. */
  private answerInOrder(answer: Promise<Packet>): void {
    const slot = this.reserve();
    void answer.then((packet) => this.fill(slot, packet));
  }

  /** A place in the order of answers; pauses reading while the window is full. */
  private reserve(): PendingAck {
    const slot: PendingAck = { packet: null };
    this.acks.push(slot);
    this.waiting++;
    if (this.waiting >= this.options.inflightMax) this.port.setReadPaused(true);
    return slot;
  }

  private fill(slot: PendingAck, packet: Packet): void {
    slot.packet = packet;
    this.flush();
  }

  private flush(): void {
    while (this.acks.length > 0 && this.acks[0]!.packet !== null) {
      const slot = this.acks.shift()!;
      this.waiting--;
      this.port.write(slot.packet!);
    }
    if (this.waiting < this.options.inflightMax) this.port.setReadPaused(false);
  }
}

/** The Ferry message id of a QoS 2 publish: the same for every copy of it the client sends. */
function exactlyOnceId(clientId: string, packetId: number, message: PublishMessage): string {
  const digest = createHash('sha256');
  for (const [name, value] of message.headers ?? []) if (name !== 'mqtt-expires-at') digest.update(name).update('\u0000').update(value).update('\u0000');
  digest.update(message.value);
  return `mqtt:${clientId}:${packetId}:${digest.digest('hex').slice(0, 32)}`;
}
