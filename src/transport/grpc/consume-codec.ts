/**
 * A ConsumeResponse of deliveries as protobuf bytes, written by hand: the hot half of a Consume
 * stream (a response per burst of deliveries, up to 256 KiB). Field by field what protobuf-es
 * writes for `{ messages: deliveries.map(deliveryToProto) }` (implicit zero fields left out, the
 * headers as map entries in the record's order, so a name given twice keeps its last value as the
 * general path's record does), without a message object per delivery or reflection. A decoder
 * reads the same message either way; test/grpc/consume-codec.test.ts checks it against protobuf-es.
 */
import type { Delivery } from '../../broker/types.js';
import { varintBytes, writeVarint } from './publish-codec.js';

const MS_PER_SECOND = 1000;
const NANOS_PER_MS = 1_000_000;

/** Field tags of ferry.v1.Message (proto/ferry/v1/messages.proto) and of its parts. */
const TAG = {
  responseMessages: 0x12, // ConsumeResponse.messages = 2, length-delimited
  topic: 0x0a, // 1
  partition: 0x10, // 2
  offset: 0x18, // 3
  publishTime: 0x22, // 4
  key: 0x2a, // 5
  header: 0x32, // 6, a map entry
  value: 0x3a, // 7
  deliveryCount: 0x40, // 8
  entryKey: 0x0a, // a map entry's key = 1
  entryValue: 0x12, // a map entry's value = 2
  seconds: 0x08, // google.protobuf.Timestamp.seconds = 1, a varint
  nanos: 0x10, // Timestamp.nanos = 2
} as const;

function lengthField(bytes: number): number {
  return 1 + varintBytes(bytes) + bytes;
}

function timestampBytes(ms: number): number {
  const seconds = Math.floor(ms / MS_PER_SECOND);
  const nanos = (ms - seconds * MS_PER_SECOND) * NANOS_PER_MS;
  return (seconds === 0 ? 0 : 1 + varintBytes(seconds)) + (nanos === 0 ? 0 : 1 + varintBytes(nanos));
}

function messageBytes(delivery: Delivery, topicBytes: number): number {
  let size = topicBytes === 0 ? 0 : lengthField(topicBytes);
  if (delivery.partition !== 0) size += 1 + varintBytes(delivery.partition);
  if (delivery.offset !== 0) size += 1 + varintBytes(delivery.offset);
  size += lengthField(timestampBytes(delivery.timestampMs));
  if (delivery.key !== null) size += lengthField(delivery.key.length);
  for (const [name, value] of delivery.headers) size += lengthField(lengthField(Buffer.byteLength(name)) + lengthField(Buffer.byteLength(value)));
  if (delivery.value.length !== 0) size += lengthField(delivery.value.length);
  if (delivery.deliveryCount !== 0) size += 1 + varintBytes(delivery.deliveryCount);
  return size;
}

function writeString(buf: Buffer, pos: number, tag: number, text: string): number {
  buf[pos++] = tag;
  const bytes = Buffer.byteLength(text);
  pos = writeVarint(buf, pos, bytes);
  return pos + buf.write(text, pos, bytes, 'utf8');
}

function writeBytes(buf: Buffer, pos: number, tag: number, bytes: Uint8Array): number {
  buf[pos++] = tag;
  pos = writeVarint(buf, pos, bytes.length);
  buf.set(bytes, pos);
  return pos + bytes.length;
}

function writeMessage(buf: Buffer, pos: number, delivery: Delivery, topic: Buffer): number {
  if (topic.length !== 0) pos = writeBytes(buf, pos, TAG.topic, topic);
  if (delivery.partition !== 0) {
    buf[pos++] = TAG.partition;
    pos = writeVarint(buf, pos, delivery.partition);
  }
  if (delivery.offset !== 0) {
    buf[pos++] = TAG.offset;
    pos = writeVarint(buf, pos, delivery.offset);
  }
  const seconds = Math.floor(delivery.timestampMs / MS_PER_SECOND);
  const nanos = (delivery.timestampMs - seconds * MS_PER_SECOND) * NANOS_PER_MS;
  buf[pos++] = TAG.publishTime;
  pos = writeVarint(buf, pos, timestampBytes(delivery.timestampMs));
  if (seconds !== 0) {
    buf[pos++] = TAG.seconds;
    pos = writeVarint(buf, pos, seconds);
  }
  if (nanos !== 0) {
    buf[pos++] = TAG.nanos;
    pos = writeVarint(buf, pos, nanos);
  }
  if (delivery.key !== null) pos = writeBytes(buf, pos, TAG.key, delivery.key);
  for (const [name, value] of delivery.headers) {
    buf[pos++] = TAG.header;
    pos = writeVarint(buf, pos, lengthField(Buffer.byteLength(name)) + lengthField(Buffer.byteLength(value)));
    pos = writeString(buf, pos, TAG.entryKey, name);
    pos = writeString(buf, pos, TAG.entryValue, value);
  }
  if (delivery.value.length !== 0) pos = writeBytes(buf, pos, TAG.value, delivery.value);
  if (delivery.deliveryCount !== 0) {
    buf[pos++] = TAG.deliveryCount;
    pos = writeVarint(buf, pos, delivery.deliveryCount);
  }
  return pos;
}

/**
 * `{ messages: deliveries }` as a ConsumeResponse, with `prefix` bytes left free at the start (a
 * gRPC envelope's five); null when a delivery holds what only the general encoder writes (a
 * timestamp before 1970, whose seconds are a negative int64). `allocate` gives the buffer written
 * into (a reused one: fast-consume.ts).
 */
export function encodeDeliveries(deliveries: readonly Delivery[], prefix = 0, allocate: (bytes: number) => Buffer = Buffer.allocUnsafe): Buffer | null {
  const sizes = new Array<number>(deliveries.length);
  // Each delivery's topic as bytes, made once per change of topic (a batch is nearly always one topic).
  const topics = new Array<Buffer>(deliveries.length);
  let topic: Buffer | null = null;
  let length = 0;
  for (let i = 0; i < deliveries.length; i++) {
    const delivery = deliveries[i]!;
    if (delivery.timestampMs < 0) return null;
    if (topic === null || delivery.topic !== deliveries[i - 1]!.topic) topic = Buffer.from(delivery.topic, 'utf8');
    topics[i] = topic;
    const size = messageBytes(delivery, topic.length);
    sizes[i] = size;
    length += lengthField(size);
  }
  const buf = allocate(prefix + length);
  let pos = prefix;
  for (let i = 0; i < deliveries.length; i++) {
    buf[pos++] = TAG.responseMessages;
    pos = writeVarint(buf, pos, sizes[i]!);
    pos = writeMessage(buf, pos, deliveries[i]!, topics[i]!);
  }
  return buf;
}
