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
 *
 * Consecutive QoS 0 and 1 publishes (not retained) to one Ferry topic, as one socket read brings
 * them, are stored by one broker publish (`flushBatch` at the end of the read, or as soon as a
 * publish of another kind, topic or packet comes), and their PUBACKs are filled from its one
 * outcome: one store call, one promise and one reaction per batch instead of per message. A batch
 * refused with a code that means nothing was written (PUBLISH_VALIDATION_CODES, e.g. one message's
 * reserved header) is stored again message by message, so only the offending one is refused.
 */
import { createHash } from 'node:crypto';
import type { IPublishPacket, IPubrelPacket, Packet } from 'mqtt-packet';
import { PUBLISH_VALIDATION_CODES } from '../../broker/limits.js';
import type { BrokerApi, Header, PublishMessage, PublishResult } from '../../broker/types.js';
import { FerryError, isFerryError } from '../../errors.js';
import type { Logger } from '../../platform/logger.js';
import { PUBLISH_BATCH_BYTES_MAX, PUBLISH_BATCH_MESSAGES_MAX, TOPIC_ALIASES_MAX } from './limits.js';
import { messageOfPublish, publisherHeader, type PlainHeaders } from './messages.js';
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

/** A place in the order of answers: the answers to `count` publishes, null until they are known. */
interface PendingAnswer {
  packets: Packet[] | null;
  count: number;
}

/** Consecutive plain QoS 0 and 1 publishes to one Ferry topic, stored by one broker publish. */
interface OpenBatch {
  ferryTopic: string;
  messages: PublishMessage[];
  packets: IPublishPacket[];
  /** Each packet's topic name (through its alias). */
  topics: string[];
  bytes: number;
  /** The PUBACKs of its QoS 1 publishes; null while it has none. */
  answer: PendingAnswer | null;
}

export class Inbound {
  private readonly aliases = new Map<number, string>();
  /** QoS 2 packet ids received and not yet released, with the reason code their PUBREC carries. */
  private readonly awaitingRelease = new Map<number, Promise<ReasonCode>>();
  private readonly acks: PendingAnswer[] = [];
  private waiting = 0;
  /** This client's `mqtt-client-id` header, shared by its messages. */
  private readonly publisher: Header;
  /** The publishes gathered for one store call (flushBatch sends them). */
  private open: OpenBatch | null = null;
  /** The headers of the last plain publish, shared by the next one to the same topic at the same QoS. */
  private readonly plainHeaders: PlainHeaders = { topic: '', qos: 0, headers: [] };

  constructor(
    private readonly options: InboundOptions,
    private readonly port: InboundPort,
  ) {
    this.publisher = publisherHeader(options.clientId);
  }

  publish(packet: IPublishPacket): void {
    const topic = this.resolveTopic(packet);
    if (packet.qos !== 2 && !packet.retain) {
      const ferryTopic = this.options.topicMap.ferryTopicOf(topic);
      if (ferryTopic !== null) {
        this.gather(ferryTopic, topic, packet);
        return;
      }
    }
    this.flushBatch();
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
    const slot = this.reserve(1);
    this.waited(1);
    const messageId = packet.messageId!;
    const v5 = this.options.protocolVersion === 5;
    stored.then(
      () => this.fill(slot, [v5 ? { cmd: 'puback', messageId, reasonCode: REASON.success } : { cmd: 'puback', messageId }]),
      (error: unknown) => {
        this.refused(error, packet, topic);
        this.fill(slot, [v5 ? { cmd: 'puback', messageId, reasonCode: reasonOf(error) } : { cmd: 'puback', messageId }]);
      },
    );
  }

  /** Adds a plain QoS 0 or 1 publish to the open batch (flushing it first when it is for another topic, or full). */
  private gather(ferryTopic: string, topic: string, packet: IPublishPacket): void {
    let batch = this.open;
    const message = messageOfPublish(packet, topic, this.options.nowMs(), this.publisher, this.plainHeaders);
    if (batch !== null && (batch.ferryTopic !== ferryTopic || batch.messages.length >= PUBLISH_BATCH_MESSAGES_MAX || batch.bytes + message.value.length > PUBLISH_BATCH_BYTES_MAX)) {
      this.flushBatch();
      batch = null;
    }
    batch ??= this.open = { ferryTopic, messages: [], packets: [], topics: [], bytes: 0, answer: null };
    batch.messages.push(message);
    batch.packets.push(packet);
    batch.topics.push(topic);
    batch.bytes += message.value.length;
    if (packet.qos === 1) {
      if (batch.answer === null) batch.answer = this.reserve(0);
      batch.answer.count++;
      this.waited(1);
    }
  }

  /** Stores the open batch with one broker publish; its PUBACKs go out, in their place, once that resolved. */
  flushBatch(): void {
    const batch = this.open;
    if (batch === null) return;
    this.open = null;
    this.publishTo(batch.ferryTopic, batch.messages).then(
      () => this.batchAnswered(batch, null),
      (error: unknown) => this.batchRefused(batch, error),
    );
  }

  /** The broker's publish, a synchronous throw (a refusal before any store) turned into its rejection. */
  private publishTo(ferryTopic: string, messages: PublishMessage[]): Promise<PublishResult[]> {
    try {
      return this.options.broker.publish(ferryTopic, messages);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Fills the batch's PUBACKs: each a success, or each refused with `error`'s reason (an array: one error per message). */
  private batchAnswered(batch: OpenBatch, errors: readonly unknown[] | null): void {
    const v5 = this.options.protocolVersion === 5;
    const packets: Packet[] = [];
    for (let index = 0; index < batch.packets.length; index++) {
      const packet = batch.packets[index]!;
      const error = errors === null ? undefined : errors[index];
      if (error !== undefined) this.refused(error, packet, batch.topics[index]!);
      if (packet.qos !== 1) continue;
      const messageId = packet.messageId!;
      if (!v5) packets.push({ cmd: 'puback', messageId });
      else packets.push({ cmd: 'puback', messageId, reasonCode: error === undefined ? REASON.success : reasonOf(error) });
    }
    if (batch.answer !== null) this.fill(batch.answer, packets);
  }

  /** A refused batch: one that wrote nothing is stored again message by message; otherwise every message shares the refusal. */
  private batchRefused(batch: OpenBatch, error: unknown): void {
    if (batch.messages.length === 1 || !isFerryError(error) || !PUBLISH_VALIDATION_CODES.has(error.code)) {
      this.batchAnswered(batch, batch.messages.map(() => error));
      return;
    }
    void Promise.allSettled(batch.messages.map((message) => this.publishTo(batch.ferryTopic, [message]))).then((outcomes) => {
      const errors = outcomes.map((outcome) => (outcome.status === 'rejected' ? (outcome.reason as unknown) : undefined));
      this.batchAnswered(batch, errors.some((failure) => failure !== undefined) ? errors : null);
    });
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
    const slot = this.reserve(1);
    this.waited(1);
    void answer.then((packet) => this.fill(slot, [packet]));
  }

  /** A place in the order of answers, for `count` publishes so far. */
  private reserve(count: number): PendingAnswer {
    const slot: PendingAnswer = { packets: null, count };
    this.acks.push(slot);
    return slot;
  }

  /** `count` more publishes await their answer; reading pauses while the window is full. */
  private waited(count: number): void {
    this.waiting += count;
    if (this.waiting >= this.options.inflightMax) this.port.setReadPaused(true);
  }

  private fill(slot: PendingAnswer, packets: Packet[]): void {
    slot.packets = packets;
    this.flush();
  }

  private flush(): void {
    while (this.acks.length > 0 && this.acks[0]!.packets !== null) {
      const slot = this.acks.shift()!;
      this.waiting -= slot.count;
      for (const packet of slot.packets!) this.port.write(packet);
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
