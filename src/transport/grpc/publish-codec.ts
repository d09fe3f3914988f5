/**
 * A hand-written codec for the hottest call, MessageService.Publish: PublishRequest decoded from
 * protobuf or Connect JSON, PublishResponse encoded to both, without protobuf-es reflection
 * (which costs about a microsecond per field, i.e. most of a 1,000-message publish's CPU).
 *
 * It is a fast path, not a second implementation: a decoder returns null for anything it does
 * not handle exactly as protobuf-es would (compressed or several envelopes, groups, a deliver_at
 * time, invalid UTF-8, JSON beyond the plain form, base64 other than the standard padded one),
 * and the call then goes to connect unchanged. Field checks stay in convert.ts
 * (`publishMessageFromProto`), shared by both paths.
 */
import { isUtf8 } from 'node:buffer';
import type { PublishMessage } from '../../generated/ferry/v1/messages_pb.js';
import type { PublishResult } from '../../broker/types.js';

/** The fields of a decoded PublishRequest, shaped like the generated message (what convert.ts reads). */
export interface DecodedPublish {
  topic: string;
  messages: PublishMessage[];
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
const UINT32_MAX = 0xffff_ffff;
const BASE64_PAD = 0x3d; // '='

class Decline extends Error {}
const DECLINE = new Decline('not on the fast path');

/** A protobuf reader over one buffer; throws DECLINE on anything unusual. */
class Reader {
  pos = 0;
  constructor(readonly buf: Buffer, readonly end = buf.length) {}

  varint(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.end) throw DECLINE;
      const byte = this.buf[this.pos++]!;
      // Values past 2^53 do not fit a number exactly: the general path reads them.
      if (shift === 49 && byte > 0x0f) throw DECLINE;
      result += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return result;
      shift += 7;
    }
  }

  uint32(): number {
    const value = this.varint();
    if (value > UINT32_MAX) throw DECLINE;
    return value;
  }

  bytes(): Buffer {
    const length = this.varint();
    const start = this.pos;
    if (start + length > this.end) throw DECLINE;
    this.pos += length;
    return this.buf.subarray(start, start + length);
  }

  string(): string {
    const bytes = this.bytes();
    if (!isUtf8(bytes)) throw DECLINE;
    return bytes.toString('utf8');
  }

  skip(wire: number): void {
    if (wire === WIRE_VARINT) this.varint();
    else if (wire === WIRE_LEN) this.bytes();
    else if (wire === WIRE_FIXED64) this.advance(8);
    else if (wire === WIRE_FIXED32) this.advance(4);
    else throw DECLINE;
  }

  private advance(bytes: number): void {
    if (this.pos + bytes > this.end) throw DECLINE;
    this.pos += bytes;
  }
}

/** A PublishRequest's protobuf bytes; null: leave it to connect. */
export function decodePublishBinary(bytes: Buffer): DecodedPublish | null {
  try {
    const reader = new Reader(bytes);
    const decoded: DecodedPublish = { topic: '', messages: [] };
    while (reader.pos < reader.end) {
      const tag = reader.varint();
      const field = Math.floor(tag / 8);
      const wire = tag & 7;
      if (field === 1 && wire === WIRE_LEN) decoded.topic = reader.string();
      else if (field === 2 && wire === WIRE_LEN) decoded.messages.push(decodeMessage(reader.bytes()));
      else reader.skip(wire);
    }
    return decoded;
  } catch (error) {
    if (error === DECLINE) return null;
    throw error;
  }
}

function newMessage(): PublishMessage {
  return { $typeName: 'ferry.v1.PublishMessage', headers: {}, value: EMPTY, id: '', delayMs: 0 } as PublishMessage;
}

const EMPTY = Buffer.alloc(0);

function decodeMessage(bytes: Buffer): PublishMessage {
  const reader = new Reader(bytes);
  const message = newMessage();
  while (reader.pos < reader.end) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === WIRE_LEN && field === 1) message.key = reader.bytes();
    else if (wire === WIRE_LEN && field === 2) decodeHeader(reader.bytes(), message.headers);
    else if (wire === WIRE_LEN && field === 3) message.value = reader.bytes();
    else if (wire === WIRE_LEN && field === 4) message.id = reader.string();
    else if (wire === WIRE_VARINT && field === 5) message.delayMs = reader.uint32();
    else if (field === 6) throw DECLINE; // deliver_at: rare, and the general path reads timestamps
    else if (wire === WIRE_VARINT && field === 7) message.partition = reader.uint32();
    else if (wire === WIRE_VARINT && field === 8) message.priority = reader.uint32();
    else if (field >= 1 && field <= 8) throw DECLINE; // a known field with another wire type (packed, ...)
    else reader.skip(wire);
  }
  return message;
}

function decodeHeader(bytes: Buffer, headers: Record<string, string>): void {
  const reader = new Reader(bytes);
  let name = '';
  let value = '';
  while (reader.pos < reader.end) {
    const tag = reader.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === WIRE_LEN) name = reader.string();
    else if (field === 2 && wire === WIRE_LEN) value = reader.string();
    else throw DECLINE;
  }
  headers[name] = value;
}

/** A Connect JSON PublishRequest in its plain form (`topic`, `messages` of `value`, `key`, `headers`, `id`, `partition`, `priority`, `delayMs`); null otherwise. */
export function decodePublishJson(text: string): DecodedPublish | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  try {
    if (!isObject(parsed)) return null;
    const decoded: DecodedPublish = { topic: '', messages: [] };
    for (const field in parsed) {
      const value = parsed[field];
      if (field === 'topic' && typeof value === 'string') decoded.topic = value;
      else if (field === 'messages' && Array.isArray(value)) for (const entry of value) decoded.messages.push(jsonMessage(entry));
      else return null;
    }
    return decoded;
  } catch (error) {
    if (error === DECLINE) return null;
    throw error;
  }
}

function jsonMessage(entry: unknown): PublishMessage {
  if (!isObject(entry)) throw DECLINE;
  const message = newMessage();
  for (const field in entry) {
    const value = entry[field];
    if (field === 'value') message.value = base64(value);
    else if (field === 'key') message.key = base64(value);
    else if (field === 'id' && typeof value === 'string') message.id = value;
    else if (field === 'headers' && isObject(value)) {
      for (const name in value) {
        const header = value[name];
        if (typeof header !== 'string') throw DECLINE;
        message.headers[name] = header;
      }
    } else if (field === 'partition') message.partition = jsonUint32(value);
    else if (field === 'priority') message.priority = jsonUint32(value);
    else if (field === 'delayMs') message.delayMs = jsonUint32(value);
    else throw DECLINE;
  }
  return message;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function base64(value: unknown): Buffer {
  const bytes = typeof value === 'string' ? decodeStandardBase64(value) : null;
  if (bytes === null) throw DECLINE;
  return bytes;
}

/**
 * The bytes of standard base64 with its padding (whole groups of four, `=` only as the last one
 * or two): what every encoder sends and protobuf-es reads the same way; null for any other text.
 * Node's decoder skips what is not base64 and stops at `=`, so a text is the standard form when
 * it holds neither URL-safe character (which Node also reads) and decodes to all the bytes its
 * length promises: at a fraction of a regular expression's cost on a 1 KiB value.
 */
export function decodeStandardBase64(text: string): Buffer | null {
  const length = text.length;
  if (length % 4 !== 0 || text.indexOf('-') >= 0 || text.indexOf('_') >= 0) return null;
  const padding = length === 0 || text.charCodeAt(length - 1) !== BASE64_PAD ? 0 : text.charCodeAt(length - 2) === BASE64_PAD ? 2 : 1;
  const bytes = Buffer.from(text, 'base64');
  return bytes.length === (length / 4) * 3 - padding ? bytes : null;
}

function jsonUint32(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > UINT32_MAX) throw DECLINE;
  return value;
}

// ---- PublishResponse -------------------------------------------------------------------------

/** Bytes a varint of `value` takes. */
export function varintBytes(value: number): number {
  let bytes = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    bytes++;
  }
  return bytes;
}

export function writeVarint(buf: Buffer, pos: number, value: number): number {
  while (value >= 0x80) {
    buf[pos++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[pos++] = value;
  return pos;
}

/**
 * A PublishResponse as protobuf, implicit zero fields left out as protobuf-es does; null when a
 * result carries a deliver time (delayed messages: the general encoder writes the timestamp).
 * `prefix` bytes are left free at the start (a gRPC envelope's five).
 */
export function encodePublishResponseBinary(results: readonly PublishResult[], synced: boolean, prefix = 0): Buffer | null {
  let length = 0;
  const sizes = new Array<number>(results.length);
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    if (result.deliverAtMs !== undefined) return null;
    let size = 0;
    if (result.partition !== 0) size += 1 + varintBytes(result.partition);
    if (result.offset !== 0) size += 1 + varintBytes(result.offset);
    if (result.duplicate === true) size += 2;
    sizes[i] = size;
    length += 1 + varintBytes(size) + size;
  }
  if (synced) length += 2;
  const buf = Buffer.allocUnsafe(prefix + length);
  let pos = prefix;
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    buf[pos++] = 0x0a; // results, field 1, length-delimited
    pos = writeVarint(buf, pos, sizes[i]!);
    if (result.partition !== 0) {
      buf[pos++] = 0x08;
      pos = writeVarint(buf, pos, result.partition);
    }
    if (result.offset !== 0) {
      buf[pos++] = 0x10;
      pos = writeVarint(buf, pos, result.offset);
    }
    if (result.duplicate === true) {
      buf[pos++] = 0x18;
      buf[pos++] = 1;
    }
  }
  if (synced) {
    buf[pos++] = 0x10; // synced, field 2
    buf[pos++] = 1;
  }
  return buf;
}

/** A PublishResponse as Connect JSON with every field printed (the handler's alwaysEmitImplicit); null for a delayed result. */
export function encodePublishResponseJson(results: readonly PublishResult[], synced: boolean): string | null {
  const parts = new Array<string>(results.length);
  for (let i = 0; i < results.length; i++) {
    const result = results[i]!;
    if (result.deliverAtMs !== undefined) return null;
    parts[i] = `{"partition":${result.partition},"offset":"${result.offset}","duplicate":${result.duplicate === true}}`;
  }
  return `{"results":[${parts.join(',')}],"synced":${synced}}`;
}
