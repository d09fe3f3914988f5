/**
 * UDP ingest datagrams (docs/PROTOCOL.md, "UDP ingest"): one message per datagram, in a compact
 * binary form (the frame magic and a version, the topic, an optional key and headers, then the
 * value up to the datagram's end) or a plain-text form for shells (`topic value`). Shared by the
 * server (src/transport/udp) and the client's publishUdp, so both read the same bytes the same way.
 * Nothing is confirmed: a datagram is stored whole or dropped.
 */
import { FerryError } from '../errors.js';
import { FRAME_MAGIC } from './frame.js';
import { HEADERS_COUNT_MAX, NAME_BYTES_MAX, NAME_PATTERN } from './limits.js';
import type { WireHeader } from './messages.js';
import { RESERVED_HEADER_PREFIX } from './reserved-headers.js';

/** Version byte of the binary form; a datagram with another is malformed (there is no reply to negotiate in). */
export const UDP_DATAGRAM_VERSION = 1;
/** Largest UDP payload over IPv4 (65,535 − 8 bytes of UDP header − 20 of IP header): no datagram is longer. */
export const UDP_DATAGRAM_BYTES_MAX = 65_507;
/** Bytes before the topic: magic (2), version, flags, topic length. */
export const UDP_BINARY_PREFIX_BYTES = 5;
/** Longest header name: its length is one byte. */
const HEADER_NAME_BYTES_MAX = 0xff;
/** Longest key and header value: their lengths are two bytes (a datagram is shorter anyway). */
const SHORT_FIELD_BYTES_MAX = 0xffff;

export const UDP_FLAGS = {
  /** A u16-length key follows the topic. */
  KEY: 0x01,
  /** A u8 count of headers follows (after the key). */
  HEADERS: 0x02,
} as const;
const KNOWN_FLAGS = UDP_FLAGS.KEY | UDP_FLAGS.HEADERS;

/** Header names a datagram may not set: the broker's own, `ferry-priority` included (reserved-headers.ts). */
export { RESERVED_HEADER_PREFIX };

export interface UdpMessage {
  topic: string;
  key: Buffer | null;
  headers: WireHeader[];
  value: Buffer;
}

function malformed(why: string): never {
  throw new FerryError('MALFORMED_FRAME', `UDP datagram: ${why}`);
}

function checkTopic(topic: string): void {
  if (topic.length === 0 || Buffer.byteLength(topic) > NAME_BYTES_MAX || !NAME_PATTERN.test(topic)) {
    malformed(`topic ${JSON.stringify(topic.slice(0, 64))} is not a topic name (letters, digits, '.', '_', '-'; at most ${NAME_BYTES_MAX} bytes)`);
  }
}

/** True when the datagram starts with the binary form's magic (text never does: 0xFE is not UTF-8). */
export function isBinaryDatagram(datagram: Buffer): boolean {
  return datagram.length >= 2 && datagram.readUInt16BE(0) === FRAME_MAGIC;
}

/** Reads either form; throws MALFORMED_FRAME naming what is wrong. The value and key share the datagram's memory. */
export function decodeUdpDatagram(datagram: Buffer): UdpMessage {
  return isBinaryDatagram(datagram) ? decodeBinary(datagram) : decodeText(datagram);
}

function decodeBinary(datagram: Buffer): UdpMessage {
  if (datagram.length < UDP_BINARY_PREFIX_BYTES) malformed('shorter than its fixed prefix');
  const version = datagram[2]!;
  if (version !== UDP_DATAGRAM_VERSION) malformed(`version ${version}; this broker reads version ${UDP_DATAGRAM_VERSION}`);
  const flags = datagram[3]!;
  if ((flags & ~KNOWN_FLAGS) !== 0) malformed(`unknown flags 0x${flags.toString(16)}`);
  let at = UDP_BINARY_PREFIX_BYTES;
  const take = (bytes: number, what: string): number => {
    if (at + bytes > datagram.length) malformed(`${what} runs past the datagram's end`);
    const start = at;
    at += bytes;
    return start;
  };
  const topicBytes = datagram[4]!;
  const topicStart = take(topicBytes, 'the topic');
  const topic = datagram.toString('latin1', topicStart, at);
  checkTopic(topic);
  let key: Buffer | null = null;
  if ((flags & UDP_FLAGS.KEY) !== 0) {
    const keyBytes = datagram.readUInt16BE(take(2, 'the key length'));
    const keyStart = take(keyBytes, 'the key');
    key = datagram.subarray(keyStart, at);
  }
  const headers: WireHeader[] = [];
  if ((flags & UDP_FLAGS.HEADERS) !== 0) {
    const count = datagram[take(1, 'the header count')]!;
    if (count > HEADERS_COUNT_MAX) malformed(`${count} headers; at most ${HEADERS_COUNT_MAX}`);
    for (let i = 0; i < count; i++) {
      const nameBytes = datagram[take(1, 'a header name length')]!;
      if (nameBytes === 0) malformed('an empty header name');
      const nameStart = take(nameBytes, 'a header name');
      const name = datagram.toString('utf8', nameStart, at);
      if (name.toLowerCase().startsWith(RESERVED_HEADER_PREFIX)) malformed(`header ${name}: names starting with ${RESERVED_HEADER_PREFIX} are the broker's`);
      const valueBytes = datagram.readUInt16BE(take(2, 'a header value length'));
      const valueStart = take(valueBytes, 'a header value');
      headers.push([name, datagram.toString('utf8', valueStart, at)]);
    }
  }
  return { topic, key, headers, value: datagram.subarray(at) };
}

/**
 * `topic value`: the topic up to the first space, the value after it, less one line end (`echo`
 * adds one). Embedded newlines stay in the value: one datagram is one message.
 */
function decodeText(datagram: Buffer): UdpMessage {
  const space = datagram.indexOf(0x20);
  if (space <= 0) malformed('plain text must be "topic value" (a topic, a space, the value)');
  const topic = datagram.toString('latin1', 0, space);
  checkTopic(topic);
  let end = datagram.length;
  if (end > space + 1 && datagram[end - 1] === 0x0a) end -= 1;
  if (end > space + 1 && datagram[end - 1] === 0x0d) end -= 1;
  return { topic, key: null, headers: [], value: datagram.subarray(space + 1, end) };
}

function bytesOf(data: Buffer | string | Uint8Array, what: string): Buffer {
  if (typeof data === 'string') return Buffer.from(data);
  if (data instanceof Uint8Array) return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  throw new FerryError('INVALID_ARGUMENT', `${what} must be a Buffer, a Uint8Array or a string`);
}

export interface UdpDatagramInput {
  topic: string;
  value: Buffer | string | Uint8Array;
  key?: Buffer | string | Uint8Array | null | undefined;
  headers?: Readonly<Record<string, string>> | undefined;
}

/** The binary form of one message; throws INVALID_ARGUMENT for a bad name or header, RECORD_TOO_LARGE beyond one datagram. */
export function encodeUdpDatagram(input: UdpDatagramInput): Buffer {
  const topic = input.topic;
  if (typeof topic !== 'string' || topic.length === 0 || Buffer.byteLength(topic) > NAME_BYTES_MAX || !NAME_PATTERN.test(topic)) {
    throw new FerryError('INVALID_ARGUMENT', `topic ${JSON.stringify(topic)} is not a topic name`);
  }
  const value = bytesOf(input.value, 'value');
  const key = input.key === undefined || input.key === null ? null : bytesOf(input.key, 'key');
  const headers: Array<[Buffer, Buffer]> = [];
  for (const name in input.headers) {
    const nameBytes = Buffer.from(name);
    const valueBytes = Buffer.from(String(input.headers[name]));
    if (nameBytes.length === 0 || nameBytes.length > HEADER_NAME_BYTES_MAX) throw new FerryError('INVALID_ARGUMENT', `header name ${JSON.stringify(name)} must have 1 to ${HEADER_NAME_BYTES_MAX} bytes`);
    if (name.toLowerCase().startsWith(RESERVED_HEADER_PREFIX)) throw new FerryError('INVALID_ARGUMENT', `header ${name}: names starting with ${RESERVED_HEADER_PREFIX} are the broker's`);
    if (valueBytes.length > SHORT_FIELD_BYTES_MAX) throw new FerryError('HEADERS_TOO_LARGE', `header ${name}: a value of ${valueBytes.length} bytes does not fit a datagram`);
    headers.push([nameBytes, valueBytes]);
  }
  if (headers.length > HEADERS_COUNT_MAX) throw new FerryError('HEADERS_TOO_LARGE', `${headers.length} headers; at most ${HEADERS_COUNT_MAX}`);
  if (key !== null && key.length > SHORT_FIELD_BYTES_MAX) throw new FerryError('KEY_TOO_LARGE', `a key of ${key.length} bytes does not fit a datagram`);
  let bytes = UDP_BINARY_PREFIX_BYTES + topic.length + value.length;
  if (key !== null) bytes += 2 + key.length;
  if (headers.length > 0) bytes += 1;
  for (const [name, text] of headers) bytes += 1 + name.length + 2 + text.length;
  if (bytes > UDP_DATAGRAM_BYTES_MAX) throw new FerryError('RECORD_TOO_LARGE', `a datagram of ${bytes} bytes; UDP carries at most ${UDP_DATAGRAM_BYTES_MAX}`);

  const datagram = Buffer.allocUnsafe(bytes);
  datagram.writeUInt16BE(FRAME_MAGIC, 0);
  datagram[2] = UDP_DATAGRAM_VERSION;
  datagram[3] = (key === null ? 0 : UDP_FLAGS.KEY) | (headers.length === 0 ? 0 : UDP_FLAGS.HEADERS);
  datagram[4] = topic.length;
  let at = UDP_BINARY_PREFIX_BYTES + datagram.write(topic, UDP_BINARY_PREFIX_BYTES, 'latin1');
  if (key !== null) {
    at = datagram.writeUInt16BE(key.length, at);
    at += key.copy(datagram, at);
  }
  if (headers.length > 0) {
    datagram[at++] = headers.length;
    for (const [name, text] of headers) {
      datagram[at++] = name.length;
      at += name.copy(datagram, at);
      at = datagram.writeUInt16BE(text.length, at);
      at += text.copy(datagram, at);
    }
  }
  at += value.copy(datagram, at);
  return datagram;
}
