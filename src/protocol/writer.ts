/**
 * FrameWriter: encodes frames back to back into one reusable buffer, so that everything a peer
 * sends in one event-loop turn leaves in a single socket write. Payload primitives write in place
 * (no per-field allocation); `take()` hands the bytes over and keeps the buffer for the next turn.
 *
 * Appendable frames (DELIVER per subscription, PUBLISH per topic) stay open while consecutive
 * items for the same key arrive, so many messages share one header; any other frame, or `take()`,
 * closes them.
 */
import assert from 'node:assert/strict';
import { FerryError } from '../errors.js';
import { FRAME_HEADER_BYTES, writeFrameHeader } from './frame.js';
import {
  APPEND_FRAME_BYTES_TARGET,
  FRAME_BYTES_MAX_DEFAULT,
  PROTOCOL_VERSION,
  SHORT_STRING_BYTES_MAX,
  U64_SAFE_MAX,
} from './limits.js';

/**
 * Capacity of a new writer: a handshake and a few replies. Most connections of a connection storm
 * (or idle ones) never need more, and 10,000 connections then hold 40 MiB less than at
 * INITIAL_BYTES each; a busy one grows by doubling within its first turns.
 */
const STARTING_BYTES = 4 * 1024;
/** Capacity once a connection has handed a buffer over: a turn's worth of replies without growing. */
const INITIAL_BYTES = 64 * 1024;
/** Capacity kept across turns after a burst; beyond it the buffer shrinks back so one burst does not pin memory. */
const RETAINED_BYTES_MAX = 4 * 1024 * 1024;
/**
 * Buffers given back by `release()` (the socket has written them) and kept for reuse: every byte
 * allocated per turn is external memory that only a full garbage collection gives back, so a busy
 * connection that allocated a fresh buffer each turn made V8 run one every few dozen milliseconds.
 */
const SPARE_BUFFERS_MAX = 2;
/** Below this a taken turn is copied out of Node's shared pool rather than handing the buffer over. */
const COPY_OUT_BYTES_MAX = 4 * 1024;
/** `bytesAttached` copies payloads below this (a copy is cheaper than a part of its own); larger ones go out as they are. */
export const ATTACH_BYTES_MIN = 64 * 1024;
const U32_LIMIT = 0x1_0000_0000;
const NO_FRAME = -1;

export class FrameWriter {
  private buf: Buffer;
  private pos = 0;
  private readonly spare: Buffer[] = [];
  /** Header offset of the frame being written, or NO_FRAME. */
  private frameStart = NO_FRAME;
  private frameType = 0;
  private frameFlags = 0;
  private frameRequestId = 0;
  /** Open appendable frame: type (0 = none), key, count field position and item count. */
  private appendType = 0;
  private appendKey: number | string = 0;
  private appendCountOffset = 0;
  private appendCount = 0;
  /** Payloads sent as they are (`bytesAttached`): each goes out after the bytes before `at`. */
  private attached: Array<{ at: number; bytes: Buffer }> = [];
  private attachedBytes = 0;
  /** `attached.length` when the frame being written began: what an aborted frame drops. */
  private frameAttachedFrom = 0;
  /** Frames completed since the last take(). */
  frames = 0;
  /** Version written into headers; set to the negotiated one after the handshake. */
  version = PROTOCOL_VERSION;
  /** The peer's frame limit: a frame that would exceed it is rolled back and refused. */
  frameBytesMax = FRAME_BYTES_MAX_DEFAULT;

  constructor(initialBytes = STARTING_BYTES) {
    this.buf = Buffer.allocUnsafeSlow(initialBytes);
  }

  /** Bytes written and not yet taken. */
  get length(): number {
    return this.pos + this.attachedBytes;
  }

  // ---- frames ----

  beginFrame(type: number, requestId: number, flags = 0): void {
    this.closeAppendable();
    assert.equal(this.frameStart, NO_FRAME, 'beginFrame inside a frame');
    this.ensure(FRAME_HEADER_BYTES);
    this.frameStart = this.pos;
    this.frameType = type;
    this.frameFlags = flags;
    this.frameRequestId = requestId;
    this.frameAttachedFrom = this.attached.length;
    this.pos += FRAME_HEADER_BYTES;
  }

  /** Completes the frame; if it exceeds the peer's limit it is removed and FRAME_TOO_LARGE thrown. */
  endFrame(): void {
    assert.notEqual(this.frameStart, NO_FRAME, 'endFrame outside a frame');
    let frameBytes = this.pos - this.frameStart;
    for (let i = this.frameAttachedFrom; i < this.attached.length; i++) frameBytes += this.attached[i]!.bytes.length;
    if (frameBytes > this.frameBytesMax) {
      this.abortFrame();
      throw new FerryError('FRAME_TOO_LARGE', `frame of ${frameBytes} bytes exceeds the limit of ${this.frameBytesMax}`, {
        detail: { frameBytes, frameBytesMax: this.frameBytesMax },
      });
    }
    writeFrameHeader(
      this.buf,
      this.frameStart,
      this.version,
      this.frameType,
      this.frameFlags,
      this.frameRequestId,
      frameBytes - FRAME_HEADER_BYTES,
    );
    this.frameStart = NO_FRAME;
    this.frames++;
  }

  /**
   * Drops a plain frame left half written by an encoding error. An open appendable frame is kept:
   * its items are complete (a failed item is rolled back with rollbackItem).
   */
  abortFrame(): void {
    if (this.frameStart === NO_FRAME || this.appendType !== 0) return;
    this.pos = this.frameStart;
    this.frameStart = NO_FRAME;
    this.dropAttached(this.frameAttachedFrom);
  }

  private dropAttached(from: number): void {
    while (this.attached.length > from) this.attachedBytes -= this.attached.pop()!.bytes.length;
  }

  /** Drops whatever frame is being written, appendable or not (its preamble failed to encode). */
  discardFrame(): void {
    if (this.frameStart === NO_FRAME) return;
    this.pos = this.frameStart;
    this.frameStart = NO_FRAME;
    this.appendType = 0;
    this.dropAttached(this.frameAttachedFrom);
  }

  /** Writes a frame with an empty payload (PING, PONG, OK, LIST_TOPICS). */
  emptyFrame(type: number, requestId: number): void {
    this.beginFrame(type, requestId);
    this.endFrame();
  }

  // ---- appendable frames ----

  /** True when the open appendable frame has this type and key and room for more. */
  canAppend(type: number, key: number | string, itemBytes = 0): boolean {
    return (
      this.appendType === type &&
      this.appendKey === key &&
      this.pos - this.frameStart < APPEND_FRAME_BYTES_TARGET &&
      this.pos - this.frameStart + itemBytes <= this.frameBytesMax
    );
  }

  /** Starts an appendable frame; the caller writes its preamble, then calls `itemCountField()`. */
  beginAppendable(type: number, requestId: number, key: number | string): void {
    this.beginFrame(type, requestId);
    this.appendType = type;
    this.appendKey = key;
    this.appendCount = 0;
  }

  /** Reserves the u32 item count of the open appendable frame (patched when it closes). */
  itemCountField(): void {
    this.appendCountOffset = this.pos;
    this.u32(0);
  }

  /** Counts one item the caller has just written into the open appendable frame. */
  itemAppended(): void {
    this.appendCount++;
  }

  /** The preamble of a frame of one topic's items: the topic (a topic that does not encode drops the frame), no tagged fields, the item count. */
  topicPreamble(topic: string): void {
    try {
      this.string16(topic);
    } catch (error) {
      this.discardFrame();
      throw error;
    }
    this.u8(0);
    this.itemCountField();
  }

  /** Writes one item into the open appendable frame with `write`; an item that fails to encode is rolled back and its error rethrown. */
  appendItem<T>(item: T, write: (w: FrameWriter, item: T) => void): void {
    const itemStart = this.pos;
    try {
      write(this, item);
    } catch (error) {
      this.rollbackItem(itemStart);
      throw error;
    }
    this.appendCount++;
  }

  /** Removes a partly written item (from `itemStart`) after an encoding error. */
  rollbackItem(itemStart: number): void {
    assert.ok(itemStart >= this.frameStart && itemStart <= this.pos);
    this.pos = itemStart;
  }

  get openAppendType(): number {
    return this.appendType;
  }

  /** Request id of the frame being written or the open appendable frame. */
  get openRequestId(): number {
    return this.frameRequestId;
  }

  /** Completes the open appendable frame, if any, so nothing more is appended to it. */
  closeAppendable(): void {
    if (this.appendType === 0) return;
    this.appendType = 0;
    this.buf.writeUInt32BE(this.appendCount, this.appendCountOffset);
    this.endFrame();
  }

  /**
   * Everything written since the last call, as one buffer the caller may hold (e.g. until the socket
   * has written it), or null when nothing was written.
   */
  take(): Buffer | null {
    if (this.attached.length > 0) return Buffer.concat(this.takeParts()!);
    this.closeAppendable();
    assert.equal(this.frameStart, NO_FRAME, 'take inside a frame');
    if (this.pos === 0) return null;
    const used = this.pos;
    if (used <= COPY_OUT_BYTES_MAX) {
      this.pos = 0;
      this.frames = 0;
      // A few replies: copy them out (small copies come from Node's pool) and keep the buffer.
      const out = Buffer.allocUnsafe(used);
      this.buf.copy(out, 0, 0, used);
      return out;
    }
    return this.handOver();
  }

  /**
   * Everything written since the last call, in the order it is to be sent: pieces of the writer's
   * buffer and, between them, the payloads attached as they are (`bytesAttached`); null when nothing
   * was written. The first part is the writer's own, for `release()` once every part is written.
   */
  takeParts(): Buffer[] | null {
    if (this.attached.length === 0) {
      const out = this.take();
      return out === null ? null : [out];
    }
    this.closeAppendable();
    assert.equal(this.frameStart, NO_FRAME, 'take inside a frame');
    const own = this.handOver();
    const parts: Buffer[] = [];
    let from = 0;
    for (const { at, bytes } of this.attached) {
      if (at > from) parts.push(own.subarray(from, at));
      parts.push(bytes);
      from = at;
    }
    if (from < own.length) parts.push(own.subarray(from));
    this.attached = [];
    this.attachedBytes = 0;
    return parts;
  }

  /** Hands the buffer itself over (no copy) and continues in a spare one; `release()` returns it. */
  private handOver(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.pos = 0;
    this.frames = 0;
    const capacity = Math.min(Math.max(this.buf.length, INITIAL_BYTES), RETAINED_BYTES_MAX);
    const spare = this.spare.pop();
    this.buf = spare !== undefined && spare.length >= capacity ? spare : Buffer.allocUnsafeSlow(capacity);
    return out;
  }

  /**
   * Gives back a buffer returned by `take()` once nothing reads it any more (the socket's write
   * callback), so the next turns reuse it instead of allocating.
   */
  release(taken: Buffer): void {
    const whole = taken.buffer;
    // Only whole buffers this writer allocated (offset 0, own ArrayBuffer) of a size worth keeping.
    if (taken.byteOffset !== 0 || whole.byteLength < INITIAL_BYTES || whole.byteLength > RETAINED_BYTES_MAX) return;
    if (this.spare.length >= SPARE_BUFFERS_MAX || whole === this.buf.buffer) return;
    this.spare.push(Buffer.from(whole, 0, whole.byteLength));
  }

  /** Discards everything not yet taken (the connection is gone). */
  reset(): void {
    this.attached = [];
    this.attachedBytes = 0;
    this.pos = 0;
    this.frames = 0;
    this.frameStart = NO_FRAME;
    this.appendType = 0;
  }

  // ---- payload primitives ----

  get offset(): number {
    return this.pos;
  }

  private ensure(bytes: number): void {
    const needed = this.pos + bytes;
    if (needed <= this.buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(needed, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  u8(value: number): void {
    this.ensure(1);
    this.buf[this.pos++] = value;
  }

  u16(value: number): void {
    this.ensure(2);
    this.buf.writeUInt16BE(value, this.pos);
    this.pos += 2;
  }

  u32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(value, this.pos);
    this.pos += 4;
  }

  /** A non-negative safe integer as a big-endian u64. */
  u64(value: number): void {
    assert.ok(Number.isSafeInteger(value) && value >= 0 && value <= U64_SAFE_MAX, 'u64 out of range');
    this.ensure(8);
    const high = Math.floor(value / U32_LIMIT);
    this.buf.writeUInt32BE(high, this.pos);
    this.buf.writeUInt32BE(value - high * U32_LIMIT, this.pos + 4);
    this.pos += 8;
  }

  /** Patches a u32 written earlier at `offset`. */
  patchU32(offset: number, value: number): void {
    this.buf.writeUInt32BE(value, offset);
  }

  patchU8(offset: number, value: number): void {
    this.buf[offset] = value;
  }

  /** Raw bytes without a length prefix. */
  raw(data: Uint8Array): void {
    this.ensure(data.byteLength);
    this.buf.set(data, this.pos);
    this.pos += data.byteLength;
  }

  /** u32 length + bytes. */
  bytes(data: Uint8Array): void {
    this.ensure(4 + data.byteLength);
    this.buf.writeUInt32BE(data.byteLength, this.pos);
    this.buf.set(data, this.pos + 4);
    this.pos += 4 + data.byteLength;
  }

  /**
   * u32 length + bytes, like `bytes`, but a payload of ATTACH_BYTES_MIN or more is not copied: it is
   * sent from `data` itself (`takeParts`), which must not change until the socket has written it.
   */
  bytesAttached(data: Buffer): void {
    if (data.byteLength < ATTACH_BYTES_MIN) return this.bytes(data);
    assert.ok(this.frameStart !== NO_FRAME && this.appendType === 0, 'attached inside a plain frame');
    this.u32(data.byteLength);
    this.attached.push({ at: this.pos, bytes: data });
    this.attachedBytes += data.byteLength;
  }

  /** u16 length + UTF-8; throws INVALID_ARGUMENT beyond 65,535 bytes. */
  string16(text: string): void {
    // Reserve the worst case (3 bytes per UTF-16 unit) so the text is encoded once, in place.
    this.ensure(2 + text.length * 3);
    const written = text.length === 0 ? 0 : this.buf.write(text, this.pos + 2, 'utf8');
    if (written > SHORT_STRING_BYTES_MAX) {
      throw new FerryError('INVALID_ARGUMENT', `string of ${written} bytes exceeds ${SHORT_STRING_BYTES_MAX}`);
    }
    this.buf.writeUInt16BE(written, this.pos);
    this.pos += 2 + written;
  }

  /** u32 length + UTF-8. */
  string32(text: string): void {
    this.ensure(4 + text.length * 3);
    const written = text.length === 0 ? 0 : this.buf.write(text, this.pos + 4, 'utf8');
    this.buf.writeUInt32BE(written, this.pos);
    this.pos += 4 + written;
  }

  // ---- tagged fields: (tag u8, length u32, value), preceded by a u8 count ----

  /** Starts a tagged section; returns the position of its count, for `taggedEnd`. */
  taggedBegin(): number {
    const at = this.pos;
    this.u8(0);
    return at;
  }

  /** Starts one tagged field; returns the position of its length, for `tagEnd`. */
  tagBegin(tag: number): number {
    this.u8(tag);
    const at = this.pos;
    this.u32(0);
    return at;
  }

  tagEnd(lengthAt: number): void {
    this.buf.writeUInt32BE(this.pos - lengthAt - 4, lengthAt);
  }

  taggedEnd(countAt: number, count: number): void {
    this.buf[countAt] = count;
  }

  /** Convenience for the common case of a single-number tagged field. */
  tagU32(tag: number, value: number): void {
    this.u8(tag);
    this.u32(4);
    this.u32(value);
  }

  tagU64(tag: number, value: number): void {
    this.u8(tag);
    this.u32(8);
    this.u64(value);
  }

  tagU8(tag: number, value: number): void {
    this.u8(tag);
    this.u32(1);
    this.u8(value);
  }

  tagString(tag: number, text: string): void {
    const at = this.tagBegin(tag);
    this.string32(text);
    this.tagEnd(at);
  }
}

/**
 * Writes `takeParts()` to a stream, in one writev when there are several (corked); `done` runs once
 * the last is written. Returns the bytes written.
 */
export function writeParts(stream: { write(data: Buffer, done?: () => void): boolean; cork(): void; uncork(): void }, parts: readonly Buffer[], done: () => void): number {
  let bytes = 0;
  if (parts.length > 1) stream.cork();
  for (let i = 0; i < parts.length; i++) {
    bytes += parts[i]!.length;
    stream.write(parts[i]!, i === parts.length - 1 ? done : undefined);
  }
  if (parts.length > 1) stream.uncork();
  return bytes;
}
