/**
 * The ConsumeRequest a draining consumer sends most: acks, credit and a request id, nothing else.
 * Decoded by hand into two arrays of numbers, without protobuf-es reflection, which builds a
 * Position message (a map lookup per field, a bigint offset) per ack: profiled on a drain with an
 * ack per message, that decoding was a third of what the broker allocated per delivery.
 *
 * A fast path, not a second implementation: anything else (start, nacks, rejects, touches, an
 * unknown field, an offset past 2^53, malformed bytes) returns null and the request is decoded by
 * protobuf-es as before. test/grpc/ack-request-codec.test.ts checks it against protobuf-es.
 */

/** A ConsumeRequest holding only acks, credit and a request id; ack i is (partitions[i], offsets[i]). */
export interface AckRequest {
  readonly kind: 'acks';
  /** Never set: a request with `start` is not an AckRequest (kept so both request forms read alike). */
  readonly start?: undefined;
  readonly credit: number;
  readonly requestId: number;
  readonly partitions: number[];
  readonly offsets: number[];
}

const WIRE_VARINT = 0;
const WIRE_LEN = 2;
const UINT32_MAX = 0xffff_ffff;
/** ConsumeRequest's fields on this path (proto/ferry/v1/messages.proto). */
const FIELD_CREDIT = 2;
const FIELD_ACKS = 3;
const FIELD_REQUEST_ID = 7;
/** Position's fields. */
const FIELD_PARTITION = 1;
const FIELD_OFFSET = 2;

/** A position past the end, or a value that is not exactly a number: the general decoder decides. */
const DECLINE = -1;

/** Reads a varint at `pos` into `out[0]` (value) and returns the position after it, or DECLINE. */
function varint(buf: Buffer, pos: number, end: number, out: number[]): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos >= end) return DECLINE;
    const byte = buf[pos++]!;
    // Past 2^53 a number is not exact: the general path reads (and refuses) it.
    if (shift === 49 && byte > 0x0f) return DECLINE;
    result += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) {
      out[0] = result;
      return pos;
    }
    shift += 7;
  }
}

/** The request as an AckRequest, or null when it is any other ConsumeRequest (or not one at all). */
export function decodeAckRequest(bytes: Buffer): AckRequest | null {
  const request: AckRequest = { kind: 'acks', credit: 0, requestId: 0, partitions: [], offsets: [] };
  const mutable = request as { credit: number; requestId: number };
  const value: number[] = [0];
  const end = bytes.length;
  let pos = 0;
  while (pos < end) {
    pos = varint(bytes, pos, end, value);
    if (pos === DECLINE) return null;
    const tag = value[0]!;
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === WIRE_VARINT && (field === FIELD_CREDIT || field === FIELD_REQUEST_ID)) {
      pos = varint(bytes, pos, end, value);
      if (pos === DECLINE || value[0]! > UINT32_MAX) return null;
      if (field === FIELD_CREDIT) mutable.credit = value[0]!;
      else mutable.requestId = value[0]!;
    } else if (wire === WIRE_LEN && field === FIELD_ACKS) {
      pos = varint(bytes, pos, end, value);
      if (pos === DECLINE) return null;
      const positionEnd = pos + value[0]!;
      if (positionEnd > end) return null;
      pos = decodePosition(bytes, pos, positionEnd, request, value);
      if (pos === DECLINE) return null;
    } else {
      return null;
    }
  }
  return request;
}

/** One Position (partition, offset; zero when absent, the last value when repeated) appended to the request. */
function decodePosition(bytes: Buffer, start: number, end: number, request: AckRequest, value: number[]): number {
  let partition = 0;
  let offset = 0;
  let pos = start;
  while (pos < end) {
    pos = varint(bytes, pos, end, value);
    if (pos === DECLINE) return DECLINE;
    const tag = value[0]!;
    if ((tag & 7) !== WIRE_VARINT) return DECLINE;
    const field = Math.floor(tag / 8);
    if (field !== FIELD_PARTITION && field !== FIELD_OFFSET) return DECLINE;
    pos = varint(bytes, pos, end, value);
    if (pos === DECLINE) return DECLINE;
    if (field === FIELD_PARTITION) {
      if (value[0]! > UINT32_MAX) return DECLINE;
      partition = value[0]!;
    } else {
      offset = value[0]!;
    }
  }
  request.partitions.push(partition);
  request.offsets.push(offset);
  return end;
}
