/**
 * The buffers a Consume stream encodes its deliveries into, reused once HTTP/2 has written them.
 * Every response allocated fresh is external memory that only a full garbage collection gives
 * back: profiled on a drain, a new 256 KiB buffer per burst made V8 collect far more often than
 * the TCP port does, whose FrameWriter (protocol/writer.ts) keeps its written buffers for the same
 * reason. A buffer goes back only when its write has completed without an error: node:http2
 * queues the bytes themselves, not a copy, and completes the write once the socket has taken them.
 */
import { DELIVERY_BATCH_BYTES_MAX } from './limits.js';

/** Capacity of a new buffer: a burst at its bound and the encoding around it. */
const RESPONSE_BUFFER_BYTES = DELIVERY_BATCH_BYTES_MAX + 64 * 1024;
/** Written buffers kept for reuse at most: a burst being encoded, one being written, one spare. */
const SPARE_BUFFERS_MAX = 3;
/** A buffer above this (one very large message) is not kept: one such burst must not pin its memory. */
const RETAINED_BYTES_MAX = 4 * RESPONSE_BUFFER_BYTES;

export class ResponseBuffers {
  private readonly spare: ArrayBufferLike[] = [];
  /** Buffers made here and not dropped: only these may come back (never a slice of Node's shared pool). */
  private readonly owned = new Set<ArrayBufferLike>();

  /** `bytes` bytes to write a response into (uninitialised). */
  readonly take = (bytes: number): Buffer => {
    for (let i = 0; i < this.spare.length; i++) {
      const buffer = this.spare[i]!;
      if (buffer.byteLength < bytes) continue;
      this.spare.splice(i, 1);
      return Buffer.from(buffer, 0, bytes);
    }
    const buffer = Buffer.allocUnsafeSlow(Math.max(bytes, RESPONSE_BUFFER_BYTES)).buffer;
    this.owned.add(buffer);
    return Buffer.from(buffer, 0, bytes);
  };

  /** `written` (from take) has been written: its memory may be filled again. Anything else is ignored. */
  give(written: Buffer): void {
    const buffer = written.buffer;
    if (!this.owned.has(buffer)) return;
    if (this.spare.length < SPARE_BUFFERS_MAX && buffer.byteLength <= RETAINED_BYTES_MAX) this.spare.push(buffer);
    else this.owned.delete(buffer);
  }

  /** Buffers kept for reuse (for tests). */
  get spareCount(): number {
    return this.spare.length;
  }
}
