/**
 * PUBLISH and PUBLISH_OK. A PUBLISH frame is appendable: a client may add consecutive messages
 * for the same topic to an open frame (FrameWriter.canAppend) so one header and one topic name
 * serve many messages.
 *
 * PUBLISH payload:  topic string16, tagged section (tag 1 `asBroker` u8: the messages carry
 *   broker-written `ferry-*` headers; needs the replicate grant), count u32, then per message:
 *   flags u8 (bit 0: partition present, bit 1: key present), [partition u32], [key bytes],
 *   header count u16, per header (name string16, value string32), value bytes, tagged section.
 */
import { FRAME_TYPES } from './frame.js';
import { HEADERS_COUNT_MAX, PUBLISH_MESSAGES_MAX } from './limits.js';
import { REACHED_WIRE, type WireReached, type PublishOk, type PublishRequest, type WireHeader, type WirePublishMessage } from './messages.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

export const MESSAGE_FLAG = { partition: 0x01, key: 0x02 } as const;
/** Tagged fields of the PUBLISH request itself. */
const REQUEST_TAG = { asBroker: 1 } as const;
/** Per-message tagged fields of PUBLISH. */
const MESSAGE_TAG = { id: 1, delayMs: 2, deliverAtMs: 3 } as const;
/** Tagged fields of PUBLISH_OK. */
const RESULT_TAG = { duplicates: 1, deliverAtMs: 2 } as const;

/** Headers a PUBLISH message may list on the wire (its u16 count); past HEADERS_COUNT_MAX the broker refuses the request. */
const PUBLISH_HEADERS_DECODED_MAX = 0xffff;

/** Bytes of one PUBLISH_OK result: partition u32 + offset u64. */
const RESULT_BYTES = 12;

export const EMPTY_HEADERS: WireHeader[] = [];
Object.freeze(EMPTY_HEADERS);

/**
 * Opens a PUBLISH frame for `topic`; messages are then added with `writePublishMessage`. `asBroker`
 * (a broker of a cluster writing dead letters and redrives to another) opens a frame no ordinary
 * publish is appended to.
 */
export function beginPublish(w: FrameWriter, requestId: number, topic: string, asBroker = false): void {
  if (!asBroker) {
    w.beginAppendable(FRAME_TYPES.PUBLISH, requestId, topic);
    w.topicPreamble(topic);
    return;
  }
  w.beginAppendable(FRAME_TYPES.PUBLISH, requestId, `\0as-broker\0${topic}`);
  try {
    w.string16(topic);
  } catch (error) {
    w.discardFrame();
    throw error;
  }
  const tagged = w.taggedBegin();
  w.tagU8(REQUEST_TAG.asBroker, 1);
  w.taggedEnd(tagged, 1);
  w.itemCountField();
}

function visitRequest(tag: number, r: PayloadReader, request: { asBroker: boolean }): void {
  if (tag === REQUEST_TAG.asBroker) request.asBroker = r.u8() === 1;
}

/** Appends one message to the open PUBLISH frame; on an encoding error the partial message is removed. */
export function writePublishMessage(w: FrameWriter, message: WirePublishMessage): void {
  w.appendItem(message, writeMessageFields);
}

function writeMessageFields(w: FrameWriter, message: WirePublishMessage): void {
  const key = message.key ?? null;
  const hasPartition = message.partition !== undefined;
  w.u8((hasPartition ? MESSAGE_FLAG.partition : 0) | (key !== null ? MESSAGE_FLAG.key : 0));
  if (hasPartition) w.u32(message.partition!);
  if (key !== null) w.bytes(key);
  writeHeaders(w, message.headers);
  w.bytes(message.value);
  if (message.id === undefined && message.delayMs === undefined && message.deliverAtMs === undefined) {
    w.u8(0);
    return;
  }
  const tagged = w.taggedBegin();
  let count = 0;
  if (message.id !== undefined) (w.tagString(MESSAGE_TAG.id, message.id), count++);
  if (message.delayMs !== undefined) (w.tagU32(MESSAGE_TAG.delayMs, message.delayMs), count++);
  if (message.deliverAtMs !== undefined) (w.tagU64(MESSAGE_TAG.deliverAtMs, message.deliverAtMs), count++);
  w.taggedEnd(tagged, count);
}

function visitMessage(tag: number, r: PayloadReader, message: WirePublishMessage): void {
  if (tag === MESSAGE_TAG.id) message.id = r.string32();
  else if (tag === MESSAGE_TAG.delayMs) message.delayMs = r.u32();
  else if (tag === MESSAGE_TAG.deliverAtMs) message.deliverAtMs = r.u64();
}

export function writeHeaders(w: FrameWriter, headers: readonly WireHeader[] | undefined): void {
  if (headers === undefined || headers.length === 0) {
    w.u16(0);
    return;
  }
  w.u16(headers.length);
  for (const [name, value] of headers) {
    w.string16(name);
    w.string32(value);
  }
}

/**
 * A message's headers. `countMax` is HEADERS_COUNT_MAX where more is a broken peer (a delivery);
 * a publish reads up to what its u16 count can say (bounded by the frame, which is whole in memory
 * already) and leaves the limit to the broker, which refuses that one request HEADERS_TOO_LARGE.
 */
export function readHeaders(r: PayloadReader, countMax: number = HEADERS_COUNT_MAX): WireHeader[] {
  const count = r.u16();
  if (count === 0) return EMPTY_HEADERS;
  if (count > countMax) throw malformed(`${count} headers exceed ${countMax}`);
  const headers: WireHeader[] = [];
  for (let i = 0; i < count; i++) headers.push([r.string16(), r.string32()]);
  return headers;
}

/** A whole PUBLISH frame (closed, so nothing else is appended to it). */
export function encodePublish(w: FrameWriter, requestId: number, request: PublishRequest): void {
  beginPublish(w, requestId, request.topic, request.asBroker === true);
  for (const message of request.messages) writePublishMessage(w, message);
  w.closeAppendable();
}

export function decodePublish(r: PayloadReader): PublishRequest {
  const topic = r.string16();
  const flags = { asBroker: false };
  r.tagged(visitRequest, flags);
  const count = r.u32();
  if (count > PUBLISH_MESSAGES_MAX) throw malformed(`${count} messages exceed ${PUBLISH_MESSAGES_MAX}`);
  const messages: WirePublishMessage[] = [];
  for (let i = 0; i < count; i++) {
    const flags = r.u8();
    const partition = flags & MESSAGE_FLAG.partition ? r.u32() : undefined;
    const key = flags & MESSAGE_FLAG.key ? r.bytes() : null;
    const headers = readHeaders(r, PUBLISH_HEADERS_DECODED_MAX);
    const value = r.bytes();
    const message: WirePublishMessage = { key, value };
    r.tagged(visitMessage, message);
    if (headers.length > 0) message.headers = headers;
    if (partition !== undefined) message.partition = partition;
    messages.push(message);
  }
  r.done();
  return flags.asBroker ? { topic, messages, asBroker: true } : { topic, messages };
}

/** PUBLISH_OK payload: reached u8, count u32, per message (partition u32, offset u64), tagged section. */
export function encodePublishOk(w: FrameWriter, requestId: number, ok: PublishOk): void {
  w.beginFrame(FRAME_TYPES.PUBLISH_OK, requestId);
  w.u8(REACHED_WIRE[ok.durability]);
  const count = ok.partitions.length;
  w.u32(count);
  for (let i = 0; i < count; i++) {
    w.u32(ok.partitions[i]!);
    w.u64(ok.offsets[i]!);
  }
  writeResultTags(w, ok.duplicates ?? [], ok.deliverAtMs ?? []);
  w.endFrame();
}

function writeResultTags(w: FrameWriter, duplicates: readonly number[], deliverAt: ReadonlyArray<readonly [number, number]>): void {
  const tagged = w.taggedBegin();
  let count = 0;
  if (duplicates.length > 0) {
    const at = w.tagBegin(RESULT_TAG.duplicates);
    w.u32(duplicates.length);
    for (const index of duplicates) w.u32(index);
    w.tagEnd(at);
    count++;
  }
  if (deliverAt.length > 0) {
    const at = w.tagBegin(RESULT_TAG.deliverAtMs);
    w.u32(deliverAt.length);
    for (const [index, ms] of deliverAt) {
      w.u32(index);
      w.u64(ms);
    }
    w.tagEnd(at);
    count++;
  }
  w.taggedEnd(tagged, count);
}

function visitResults(tag: number, r: PayloadReader, ok: PublishOk): void {
  if (tag === RESULT_TAG.duplicates) {
    const count = r.u32();
    if (count > PUBLISH_MESSAGES_MAX) throw malformed(`${count} duplicates`);
    const duplicates: number[] = [];
    for (let i = 0; i < count; i++) duplicates.push(r.u32());
    ok.duplicates = duplicates;
  } else if (tag === RESULT_TAG.deliverAtMs) {
    const count = r.u32();
    if (count > PUBLISH_MESSAGES_MAX) throw malformed(`${count} delivery times`);
    const deliverAt: Array<readonly [number, number]> = [];
    for (let i = 0; i < count; i++) deliverAt.push([r.u32(), r.u64()]);
    ok.deliverAtMs = deliverAt;
  }
}

/** The part of a broker publish result the encoder reads. */
export interface PublishResultSource {
  partition: number;
  offset: number;
  durability: WireReached;
  duplicate?: boolean;
  deliverAtMs?: number;
}

/** PUBLISH_OK for `count` results starting at `start`: lets a server answer coalesced requests without copying. */
export function encodePublishOkFrom(
  w: FrameWriter,
  requestId: number,
  results: readonly PublishResultSource[],
  start: number,
  count: number,
): void {
  let synced = true;
  let special = false;
  for (let i = start; i < start + count; i++) {
    const result = results[i]!;
    if (result.durability !== 'synced') synced = false;
    if (result.duplicate === true || result.deliverAtMs !== undefined) special = true;
  }
  w.beginFrame(FRAME_TYPES.PUBLISH_OK, requestId);
  w.u8(synced ? REACHED_WIRE.synced : REACHED_WIRE.written);
  w.u32(count);
  for (let i = start; i < start + count; i++) {
    w.u32(results[i]!.partition);
    w.u64(results[i]!.offset);
  }
  if (!special) {
    w.u8(0);
  } else {
    const duplicates: number[] = [];
    const deliverAt: Array<readonly [number, number]> = [];
    for (let i = 0; i < count; i++) {
      const result = results[start + i]!;
      if (result.duplicate === true) duplicates.push(i);
      if (result.deliverAtMs !== undefined) deliverAt.push([i, result.deliverAtMs]);
    }
    writeResultTags(w, duplicates, deliverAt);
  }
  w.endFrame();
}

export function decodePublishOk(r: PayloadReader): PublishOk {
  const reached = r.u8();
  if (reached !== REACHED_WIRE.written && reached !== REACHED_WIRE.synced) throw malformed(`unknown durability ${reached}`);
  const count = r.u32();
  if (count > PUBLISH_MESSAGES_MAX) throw malformed(`${count} results exceed ${PUBLISH_MESSAGES_MAX}`);
  if (count * RESULT_BYTES > r.remaining) throw malformed(`${count} results do not fit the payload`);
  const partitions: number[] = new Array(count);
  const offsets: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    partitions[i] = r.u32();
    offsets[i] = r.u64();
  }
  const ok: PublishOk = { durability: reached === REACHED_WIRE.synced ? 'synced' : 'written', partitions, offsets };
  r.tagged(visitResults, ok);
  r.done();
  return ok;
}
