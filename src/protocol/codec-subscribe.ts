/**
 * Consuming: SUBSCRIBE, SUBSCRIBED, DELIVER, ACK, NACK, CREDIT, UNSUBSCRIBE. DELIVER, ACK, NACK and
 * CREDIT are appendable (FrameWriter.canAppend): everything one peer produces for a subscription in
 * one event-loop turn shares one frame. Layouts are in docs/PROTOCOL.md.
 */
import { FerryError } from '../errors.js';
import { FRAME_HEADER_BYTES, FRAME_TYPES } from './frame.js';
import { SETTLE_ENTRIES_MAX } from './limits.js';
import {
  START_KIND_WIRE,
  type AckBatch,
  type CreditGrant,
  type DeliverBatch,
  type NackBatch,
  type SubscribeRequest,
  type Subscribed,
  type WireDelivery,
  type WireHeader,
  type WireStartPosition,
} from './messages.js';
import { MESSAGE_FLAG, readHeaders, writeHeaders } from './codec-publish.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

const SUBSCRIBE_FLAG = { group: 0x01 } as const;
const SUBSCRIBE_TAG = { resumeOffsets: 1, ackTimeoutMs: 2, backoffMs: 3, deliveriesMax: 4, deadLetterTopic: 5 } as const;
/** Backoff steps listed in one SUBSCRIBE. */
const BACKOFF_STEPS_MAX = 1024;
/** Resume positions listed in one SUBSCRIBE: one per partition. */
const RESUME_OFFSETS_MAX = 65_536;
/** Bytes per entry: ACK (partition u32, offset u64), NACK (+ delayMs u32 + tagged count u8), CREDIT (id u32, count u32). */
const ACK_ENTRY_BYTES = 12;
const NACK_ENTRY_BYTES = 17;
const CREDIT_ENTRY_BYTES = 8;
/** CREDIT frames batch grants for every subscription of a connection: one appendable key. */
const CREDIT_APPEND_KEY = 0;

/** startKind u8, then position u64 for the offset and timestamp kinds (SUBSCRIBE, RESET_GROUP). */
export function writeStartPosition(w: FrameWriter, from: WireStartPosition): void {
  w.u8(START_KIND_WIRE[from.kind]);
  if (from.kind === 'offset') w.u64(from.offset);
  else if (from.kind === 'timestamp') w.u64(from.timestampMs);
}

export function readStartPosition(r: PayloadReader): WireStartPosition {
  const kind = r.u8();
  switch (kind) {
    case START_KIND_WIRE.earliest:
      return { kind: 'earliest' };
    case START_KIND_WIRE.latest:
      return { kind: 'latest' };
    case START_KIND_WIRE.offset:
      return { kind: 'offset', offset: r.u64() };
    case START_KIND_WIRE.timestamp:
      return { kind: 'timestamp', timestampMs: r.u64() };
    default:
      throw malformed(`unknown start position kind ${kind}`);
  }
}

export function encodeSubscribe(w: FrameWriter, requestId: number, request: SubscribeRequest): void {
  w.beginFrame(FRAME_TYPES.SUBSCRIBE, requestId);
  w.string16(request.topic);
  w.u8(request.group !== undefined ? SUBSCRIBE_FLAG.group : 0);
  if (request.group !== undefined) w.string16(request.group);
  writeStartPosition(w, request.from);
  w.u32(request.credit);
  const tagged = w.taggedBegin();
  let count = 0;
  if (request.resumeOffsets !== undefined) {
    const at = w.tagBegin(SUBSCRIBE_TAG.resumeOffsets);
    w.u32(request.resumeOffsets.length);
    for (const [partition, offset] of request.resumeOffsets) {
      w.u32(partition);
      w.u64(offset);
    }
    w.tagEnd(at);
    count++;
  }
  if (request.ackTimeoutMs !== undefined) (w.tagU32(SUBSCRIBE_TAG.ackTimeoutMs, request.ackTimeoutMs), count++);
  if (request.backoffMs !== undefined) {
    const at = w.tagBegin(SUBSCRIBE_TAG.backoffMs);
    w.u32(request.backoffMs.length);
    for (const delayMs of request.backoffMs) w.u32(delayMs);
    w.tagEnd(at);
    count++;
  }
  if (request.deliveriesMax !== undefined) (w.tagU32(SUBSCRIBE_TAG.deliveriesMax, request.deliveriesMax), count++);
  if (request.deadLetterTopic !== undefined) (w.tagString(SUBSCRIBE_TAG.deadLetterTopic, request.deadLetterTopic), count++);
  w.taggedEnd(tagged, count);
  w.endFrame();
}

function visitSubscribe(tag: number, r: PayloadReader, request: SubscribeRequest): void {
  switch (tag) {
    case SUBSCRIBE_TAG.ackTimeoutMs:
      request.ackTimeoutMs = r.u32();
      return;
    case SUBSCRIBE_TAG.backoffMs: {
      const count = r.u32();
      if (count > BACKOFF_STEPS_MAX) throw malformed(`${count} backoff steps`);
      const steps: number[] = [];
      for (let i = 0; i < count; i++) steps.push(r.u32());
      request.backoffMs = steps;
      return;
    }
    case SUBSCRIBE_TAG.deliveriesMax:
      request.deliveriesMax = r.u32();
      return;
    case SUBSCRIBE_TAG.deadLetterTopic:
      request.deadLetterTopic = r.string32();
      return;
    case SUBSCRIBE_TAG.resumeOffsets:
      break;
    default:
      return;
  }
  const count = r.u32();
  if (count > RESUME_OFFSETS_MAX) throw malformed(`${count} resume offsets`);
  const offsets: Array<readonly [number, number]> = [];
  for (let i = 0; i < count; i++) offsets.push([r.u32(), r.u64()]);
  request.resumeOffsets = offsets;
}

export function decodeSubscribe(r: PayloadReader): SubscribeRequest {
  const topic = r.string16();
  const flags = r.u8();
  const group = flags & SUBSCRIBE_FLAG.group ? r.string16() : undefined;
  const from = readStartPosition(r);
  const request: SubscribeRequest = { topic, from, credit: r.u32() };
  if (group !== undefined) request.group = group;
  r.tagged(visitSubscribe, request);
  r.done();
  return request;
}

export function encodeSubscribed(w: FrameWriter, requestId: number, subscribed: Subscribed): void {
  w.beginFrame(FRAME_TYPES.SUBSCRIBED, requestId);
  w.u32(subscribed.subscriptionId);
  w.u8(0);
  w.endFrame();
}

export function decodeSubscribed(r: PayloadReader): Subscribed {
  const subscribed = { subscriptionId: r.u32() };
  r.skipTagged();
  r.done();
  return subscribed;
}

/** UNSUBSCRIBE payload: subscription id u32, tagged section. */
export function encodeUnsubscribe(w: FrameWriter, requestId: number, subscriptionId: number): void {
  w.beginFrame(FRAME_TYPES.UNSUBSCRIBE, requestId);
  w.u32(subscriptionId);
  w.u8(0);
  w.endFrame();
}

export function decodeUnsubscribe(r: PayloadReader): number {
  const subscriptionId = r.u32();
  r.skipTagged();
  r.done();
  return subscriptionId;
}

// ---- DELIVER: subscription id u32, topic string16, tagged section, count u32, deliveries ----

/** The part of a delivery the encoder reads: the broker's Delivery satisfies it. */
export interface DeliverySource {
  partition: number;
  offset: number;
  timestampMs: number;
  deliveryCount: number;
  key: Uint8Array | null;
  headers: readonly WireHeader[];
  value: Uint8Array;
}

/** Appends one delivery, to the open DELIVER frame of this subscription or to a new one. */
export function appendDelivery(w: FrameWriter, subscriptionId: number, topic: string, d: DeliverySource): void {
  const itemBytes = deliveryBytesEstimate(d);
  if (itemBytes + FRAME_HEADER_BYTES + DELIVER_PREAMBLE_BYTES + topic.length * 3 > w.frameBytesMax) {
    throw new FerryError('RECORD_TOO_LARGE', `a delivery of about ${itemBytes} bytes exceeds the peer's frame limit`, {
      detail: { subscriptionId, partition: d.partition, offset: d.offset, frameBytesMax: w.frameBytesMax },
    });
  }
  if (!w.canAppend(FRAME_TYPES.DELIVER, subscriptionId, itemBytes)) {
    w.beginAppendable(FRAME_TYPES.DELIVER, 0, subscriptionId);
    w.u32(subscriptionId);
    w.topicPreamble(topic);
  }
  w.appendItem(d, writeDelivery);
}

function writeDelivery(w: FrameWriter, d: DeliverySource): void {
  const key = d.key;
  w.u8(key !== null ? MESSAGE_FLAG.key : 0);
  w.u32(d.partition);
  w.u64(d.offset);
  w.u64(d.timestampMs);
  w.u32(d.deliveryCount);
  if (key !== null) w.bytes(key);
  writeHeaders(w, d.headers);
  w.bytes(d.value);
  w.u8(0);
}

/** Fixed bytes of a DELIVER frame before its deliveries, besides the topic: id, topic length, tagged count, item count. */
const DELIVER_PREAMBLE_BYTES = 4 + 2 + 1 + 4;
/** Fixed bytes of one delivery: flags, partition, offset, timestamp, delivery count, header count, value length, tagged count. */
const DELIVERY_FIXED_BYTES = 1 + 4 + 8 + 8 + 4 + 2 + 4 + 1;

/** An upper bound of the encoded size of one delivery (header text counted at 3 bytes per character). */
export function deliveryBytesEstimate(d: DeliverySource): number {
  let bytes = DELIVERY_FIXED_BYTES + d.value.byteLength;
  if (d.key !== null) bytes += 4 + d.key.byteLength;
  for (const [name, value] of d.headers) bytes += 6 + (name.length + value.length) * 3;
  return bytes;
}

export function encodeDeliver(w: FrameWriter, batch: DeliverBatch): void {
  for (const delivery of batch.deliveries) appendDelivery(w, batch.subscriptionId, batch.topic, delivery);
  w.closeAppendable();
}

export function decodeDeliver(r: PayloadReader): DeliverBatch {
  const subscriptionId = r.u32();
  const topic = r.string16();
  r.skipTagged();
  const count = r.u32();
  if (count > SETTLE_ENTRIES_MAX) throw malformed(`${count} deliveries`);
  const deliveries: WireDelivery[] = [];
  for (let i = 0; i < count; i++) {
    const flags = r.u8();
    const partition = r.u32();
    const offset = r.u64();
    const timestampMs = r.u64();
    const deliveryCount = r.u32();
    const key = flags & MESSAGE_FLAG.key ? r.bytes() : null;
    const headers = readHeaders(r);
    const value = r.bytes();
    r.skipTagged();
    deliveries.push({ partition, offset, timestampMs, deliveryCount, key, headers, value });
  }
  r.done();
  return { subscriptionId, topic, deliveries };
}

// ---- ACK / NACK: subscription id u32, tagged section, count u32, entries ----

/**
 * Opens (or continues) the appendable settle frame of `type` for a subscription. Fire-and-forget
 * frames (request id 0) and frames that want a SETTLED reply never share a frame: the reply
 * answers exactly the entries of its own frame.
 */
export function beginSettle(w: FrameWriter, type: number, subscriptionId: number, requestId = 0): void {
  if (w.canAppend(type, subscriptionId) && w.openRequestId === requestId) return;
  w.beginAppendable(type, requestId, subscriptionId);
  w.u32(subscriptionId);
  w.u8(0);
  w.itemCountField();
}

/**
 * Appends an ACK entry. With request id 0 it is fire-and-forget (failures come back as an ERROR
 * with request id 0); with a request id the frame is answered by one SETTLED.
 */
export function appendAck(w: FrameWriter, subscriptionId: number, partition: number, offset: number, requestId = 0): void {
  beginSettle(w, FRAME_TYPES.ACK, subscriptionId, requestId);
  w.u32(partition);
  w.u64(offset);
  w.itemAppended();
}

/**
 * Appends a NACK entry; delayMs 0 redelivers at once, NACK_DELAY_BACKOFF after the group's backoff.
 * Each entry ends with its own tagged section.
 */
export function appendNack(w: FrameWriter, subscriptionId: number, partition: number, offset: number, delayMs: number, requestId = 0): void {
  beginSettle(w, FRAME_TYPES.NACK, subscriptionId, requestId);
  w.u32(partition);
  w.u64(offset);
  w.u32(delayMs);
  w.u8(0);
  w.itemAppended();
}

export function readSettleHeader(r: PayloadReader, entryBytes: number): { subscriptionId: number; count: number } {
  const subscriptionId = r.u32();
  r.skipTagged();
  const count = r.u32();
  if (count > SETTLE_ENTRIES_MAX) throw malformed(`${count} entries exceed ${SETTLE_ENTRIES_MAX}`);
  if (count * entryBytes > r.remaining) throw malformed(`${count} entries do not fit the payload`);
  return { subscriptionId, count };
}

export function decodeAck(r: PayloadReader): AckBatch {
  const { subscriptionId, count } = readSettleHeader(r, ACK_ENTRY_BYTES);
  const partitions: number[] = new Array(count);
  const offsets: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    partitions[i] = r.u32();
    offsets[i] = r.u64();
  }
  r.done();
  return { subscriptionId, partitions, offsets };
}

export function decodeNack(r: PayloadReader): NackBatch {
  const { subscriptionId, count } = readSettleHeader(r, NACK_ENTRY_BYTES);
  const partitions: number[] = new Array(count);
  const offsets: number[] = new Array(count);
  const delaysMs: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    partitions[i] = r.u32();
    offsets[i] = r.u64();
    delaysMs[i] = r.u32();
    r.skipTagged();
  }
  r.done();
  return { subscriptionId, partitions, offsets, delaysMs };
}

// ---- CREDIT: tagged section, count u32, entries (subscription id u32, credit u32) ----

export function appendCredit(w: FrameWriter, subscriptionId: number, count: number): void {
  if (!w.canAppend(FRAME_TYPES.CREDIT, CREDIT_APPEND_KEY)) {
    w.beginAppendable(FRAME_TYPES.CREDIT, 0, CREDIT_APPEND_KEY);
    w.u8(0);
    w.itemCountField();
  }
  w.u32(subscriptionId);
  w.u32(count);
  w.itemAppended();
}

export function decodeCredit(r: PayloadReader): CreditGrant[] {
  r.skipTagged();
  const count = r.u32();
  if (count > SETTLE_ENTRIES_MAX) throw malformed(`${count} entries exceed ${SETTLE_ENTRIES_MAX}`);
  if (count * CREDIT_ENTRY_BYTES > r.remaining) throw malformed(`${count} entries do not fit the payload`);
  const grants: CreditGrant[] = [];
  for (let i = 0; i < count; i++) grants.push({ subscriptionId: r.u32(), count: r.u32() });
  r.done();
  return grants;
}
