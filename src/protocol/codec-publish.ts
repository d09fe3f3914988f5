/**
 * PUBLISH and PUBLISH_OK. A PUBLISH frame is appendable: a client may add consecutive messages
 * for the same topic to an open frame (FrameWriter.canAppend) so one header and one topic name
 * serve many messages.
 *
 * PUBLISH payload:  topic string16, tagged section, count u32, then per message:
 *   flags u8 (bit 0: partition present, bit 1: key present), [partition u32], [key bytes],
 *   header count u16, per header (name string16, value string32), value bytes, tagged section.
 */
import { FRAME_TYPES } from './frame.js';
import { HEADERS_COUNT_MAX, PUBLISH_MESSAGES_MAX } from './limits.js';
import { REACHED_WIRE, type WireReached, type PublishOk, type PublishRequest, type WireHeader, type WirePublishMessage } from './messages.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

export const MESSAGE_FLAG = { partition: 0x01, key: 0x02 } as const;

/** Bytes of one PUBLISH_OK result: partition u32 + offset u64. */
const RESULT_BYTES = 12;

export const EMPTY_HEADERS: WireHeader[] = [];
Object.freeze(EMPTY_HEADERS);

/** Opens a PUBLISH frame for `topic`; messages are then added with `writePublishMessage`. */
export function beginPublish(w: FrameWriter, requestId: number, topic: string): void {
  w.beginAppendable(FRAME_TYPES.PUBLISH, requestId, topic);
  try {
    w.string16(topic);
  } catch (error) {
    w.discardFrame();
    throw error;
  }
  w.u8(0);
  w.itemCountField();
}

/** Appends one message to the open PUBLISH frame; on an encoding error the partial message is removed. */
export function writePublishMessage(w: FrameWriter, message: WirePublishMessage): void {
  const itemStart = w.offset;
  try {
    writeMessageFields(w, message);
  } catch (error) {
    w.rollbackItem(itemStart);
    throw error;
  }
  w.itemAppended();
}

function writeMessageFields(w: FrameWriter, message: WirePublishMessage): void {
  const key = message.key ?? null;
  const hasPartition = message.partition !== undefined;
  w.u8((hasPartition ? MESSAGE_FLAG.partition : 0) | (key !== null ? MESSAGE_FLAG.key : 0));
  if (hasPartition) w.u32(message.partition!);
  if (key !== null) w.bytes(key);
  writeHeaders(w, message.headers);
  w.bytes(message.value);
  w.u8(0);
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

export function readHeaders(r: PayloadReader): WireHeader[] {
  const count = r.u16();
  if (count === 0) return EMPTY_HEADERS;
  if (count > HEADERS_COUNT_MAX) throw malformed(`${count} headers exceed ${HEADERS_COUNT_MAX}`);
  const headers: WireHeader[] = [];
  for (let i = 0; i < count; i++) headers.push([r.string16(), r.string32()]);
  return headers;
}

/** A whole PUBLISH frame (closed, so nothing else is appended to it). */
export function encodePublish(w: FrameWriter, requestId: number, request: PublishRequest): void {
  beginPublish(w, requestId, request.topic);
  for (const message of request.messages) writePublishMessage(w, message);
  w.closeAppendable();
}

export function decodePublish(r: PayloadReader): PublishRequest {
  const topic = r.string16();
  r.skipTagged();
  const count = r.u32();
  if (count > PUBLISH_MESSAGES_MAX) throw malformed(`${count} messages exceed ${PUBLISH_MESSAGES_MAX}`);
  const messages: WirePublishMessage[] = [];
  for (let i = 0; i < count; i++) {
    const flags = r.u8();
    const partition = flags & MESSAGE_FLAG.partition ? r.u32() : undefined;
    const key = flags & MESSAGE_FLAG.key ? r.bytes() : null;
    const headers = readHeaders(r);
    const value = r.bytes();
    r.skipTagged();
    const message: WirePublishMessage = { key, value };
    if (headers.length > 0) message.headers = headers;
    if (partition !== undefined) message.partition = partition;
    messages.push(message);
  }
  r.done();
  return { topic, messages };
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
  w.u8(0);
  w.endFrame();
}

/** The part of a broker publish result the encoder reads. */
export interface PublishResultSource {
  partition: number;
  offset: number;
  durability: WireReached;
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
  for (let i = start; i < start + count; i++) if (results[i]!.durability !== 'synced') synced = false;
  w.beginFrame(FRAME_TYPES.PUBLISH_OK, requestId);
  w.u8(synced ? REACHED_WIRE.synced : REACHED_WIRE.written);
  w.u32(count);
  for (let i = start; i < start + count; i++) {
    w.u32(results[i]!.partition);
    w.u64(results[i]!.offset);
  }
  w.u8(0);
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
  r.skipTagged();
  r.done();
  return { durability: reached === REACHED_WIRE.synced ? 'synced' : 'written', partitions, offsets };
}
