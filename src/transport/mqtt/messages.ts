/**
 * An MQTT PUBLISH as a Ferry message and back. The full topic name, the QoS and the 5.0
 * properties that matter to a receiver ride in `mqtt-*` headers; user properties are plain headers
 * (name → value, a repeated name as repeated headers), so a native or gRPC consumer reads them as
 * sent, and a native publish's headers reach MQTT 5.0 subscribers as user properties.
 */
import type { IPublishPacket, QoS, UserProperties } from 'mqtt-packet';
import type { Delivery, Header, PublishMessage } from '../../broker/types.js';
import {
  MQTT_CLIENT_ID_HEADER,
  MQTT_CONTENT_TYPE_HEADER,
  MQTT_CORRELATION_DATA_HEADER,
  MQTT_EXPIRES_AT_HEADER,
  MQTT_PAYLOAD_FORMAT_HEADER,
  MQTT_QOS_HEADER,
  MQTT_RESPONSE_TOPIC_HEADER,
  MQTT_RETAIN_HEADER,
  MQTT_TOPIC_HEADER,
} from './limits.js';

const MQTT_HEADER_PREFIX = 'mqtt-';

/** Header pairs are never changed once made: the ones every message of a kind carries are made once, not per message. */
const QOS_HEADERS: readonly Header[] = [
  [MQTT_QOS_HEADER, '0'],
  [MQTT_QOS_HEADER, '1'],
  [MQTT_QOS_HEADER, '2'],
];
const RETAIN_HEADER: Header = [MQTT_RETAIN_HEADER, '1'];

/** The `mqtt-client-id` header of a publisher: made once per connection and passed to messageOfPublish. */
export function publisherHeader(clientId: string): Header {
  return [MQTT_CLIENT_ID_HEADER, clientId];
}

/**
 * The headers of the last plain publish (no properties, not retained) of a connection: the next one
 * to the same topic at the same QoS shares them (headers are never changed once made), so a
 * publisher sending to one topic makes no header arrays per message.
 */
export interface PlainHeaders {
  topic: string;
  qos: number;
  headers: readonly Header[];
}

/**
 * The Ferry message of an inbound PUBLISH by `publisher` (publisherHeader; its topic already
 * resolved and checked); `nowMs` stamps a message expiry. `plain`, when given, is the connection's
 * PlainHeaders: used and updated for a plain publish.
 */
export function messageOfPublish(packet: IPublishPacket, topic: string, nowMs: number, publisher: Header, plain?: PlainHeaders): PublishMessage {
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
  if (plain !== undefined && packet.properties === undefined && !packet.retain) {
    if (plain.topic !== topic || plain.qos !== packet.qos || plain.headers.length === 0) {
      plain.topic = topic;
      plain.qos = packet.qos;
      plain.headers = [[MQTT_TOPIC_HEADER, topic], QOS_HEADERS[packet.qos] ?? [MQTT_QOS_HEADER, String(packet.qos)], publisher];
    }
    return { headers: plain.headers, value: payload };
  }
  const headers: Header[] = [[MQTT_TOPIC_HEADER, topic], QOS_HEADERS[packet.qos] ?? [MQTT_QOS_HEADER, String(packet.qos)], publisher];
  if (packet.retain) headers.push(RETAIN_HEADER);
  const properties = packet.properties;
  if (properties !== undefined) {
    if (properties.contentType !== undefined) headers.push([MQTT_CONTENT_TYPE_HEADER, properties.contentType]);
    if (properties.responseTopic !== undefined) headers.push([MQTT_RESPONSE_TOPIC_HEADER, properties.responseTopic]);
    if (properties.correlationData !== undefined) headers.push([MQTT_CORRELATION_DATA_HEADER, properties.correlationData.toString('base64')]);
    if (properties.payloadFormatIndicator === true) headers.push([MQTT_PAYLOAD_FORMAT_HEADER, '1']);
    if (properties.messageExpiryInterval !== undefined) headers.push([MQTT_EXPIRES_AT_HEADER, String(nowMs + properties.messageExpiryInterval * 1000)]);
    for (const [name, value] of Object.entries(properties.userProperties ?? {})) {
      for (const one of Array.isArray(value) ? value : [value]) headers.push([name, one]);
    }
  }
  return { headers, value: payload };
}

/** The header's value, or undefined. */
function header(headers: readonly Header[], name: string): string | undefined {
  for (const [key, value] of headers) if (key === name) return value;
  return undefined;
}

/** The client id of the MQTT client that published the message; undefined for any other publish. */
export function publisherOf(delivery: Delivery): string | undefined {
  return header(delivery.headers, MQTT_CLIENT_ID_HEADER);
}

/** Whether the message was published with the retain flag. */
export function publishedRetained(delivery: Delivery): boolean {
  return header(delivery.headers, MQTT_RETAIN_HEADER) === '1';
}

/** The QoS a message was published with; a native publish (confirmed, at least once) counts as 1. */
export function publishedQos(delivery: Delivery): QoS {
  const qos = header(delivery.headers, MQTT_QOS_HEADER);
  return qos === '0' ? 0 : qos === '2' ? 2 : 1;
}

/** Milliseconds until the message expires (at least 1 while it lives), 0 when it has expired, or undefined when it never does. */
export function remainingLifeMs(delivery: Delivery, nowMs: number): number | undefined {
  const expiresAt = header(delivery.headers, MQTT_EXPIRES_AT_HEADER);
  if (expiresAt === undefined) return undefined;
  const left = Number(expiresAt) - nowMs;
  return Number.isFinite(left) ? Math.max(0, left) : undefined;
}

/** The PUBLISH of a delivery, for a client of `protocolVersion`; `qos` already the lower of the subscription's and the message's. */
export function publishOfDelivery(
  delivery: Delivery,
  options: { topic: string; qos: QoS; messageId: number; protocolVersion: number; retain: boolean; nowMs: number; subscriptionId?: number | undefined },
): IPublishPacket {
  const packet: IPublishPacket = { cmd: 'publish', topic: options.topic, payload: delivery.value, qos: options.qos, dup: delivery.deliveryCount > 1 && options.qos > 0, retain: options.retain };
  if (options.qos > 0) packet.messageId = options.messageId;
  if (options.protocolVersion === 5) {
    const properties = propertiesOf(delivery.headers);
    const lifeMs = remainingLifeMs(delivery, options.nowMs);
    if (lifeMs !== undefined) properties.messageExpiryInterval = Math.max(1, Math.ceil(lifeMs / 1000));
    if (options.subscriptionId !== undefined) properties.subscriptionIdentifier = options.subscriptionId;
    if (Object.keys(properties).length > 0) packet.properties = properties;
  }
  return packet;
}

function propertiesOf(headers: readonly Header[]): NonNullable<IPublishPacket['properties']> {
  const properties: NonNullable<IPublishPacket['properties']> = {};
  let user: UserProperties | undefined;
  for (const [name, value] of headers) {
    if (name.startsWith(MQTT_HEADER_PREFIX)) {
      if (name === MQTT_CONTENT_TYPE_HEADER) properties.contentType = value;
      else if (name === MQTT_RESPONSE_TOPIC_HEADER) properties.responseTopic = value;
      else if (name === MQTT_CORRELATION_DATA_HEADER) properties.correlationData = Buffer.from(value, 'base64');
      else if (name === MQTT_PAYLOAD_FORMAT_HEADER) properties.payloadFormatIndicator = true;
      continue;
    }
    user ??= {};
    const previous = user[name];
    user[name] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  if (user !== undefined) properties.userProperties = user;
  return properties;
}
