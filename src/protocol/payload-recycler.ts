/**
 * The buffers a FrameDecoder assembles payloads in when a frame spans socket reads, reused once the
 * receiver gives a payload back (FrameDecoder.recycle). A follower's fetch answers are such frames,
 * up to FETCH_BYTES_MAX each, and each lived until its batches were written (and synced, with
 * durability `always`): long enough to outlive a scavenge, so every one waited for a full
 * collection, and tens of MiB of dead payloads stayed resident between collections
 * (docs/CLUSTERING.md, "Memory"). A payload never given back is simply collected.
 */

/** Free buffers kept for reuse, per decoder, at most. */
export const RECYCLED_PAYLOAD_BYTES_MAX = 8 * 1024 * 1024;
/** Payloads smaller than this are allocated as before: a scavenge frees them cheaply. */
export const RECYCLED_PAYLOAD_BYTES_MIN = 64 * 1024;

export class PayloadRecycler {
  private readonly free: Buffer[] = [];
  private freeBytes = 0;
  /** Buffers handed out and not given back yet: only these are taken back, once each. */
  private readonly lent = new WeakSet<object>();

  /** A buffer of exactly `length` bytes (its contents arbitrary). */
  take(length: number): Buffer {
    if (length < RECYCLED_PAYLOAD_BYTES_MIN) return Buffer.allocUnsafe(length);
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const capacity = this.free[i]!.length;
      if (capacity >= length && (best < 0 || capacity < this.free[best]!.length)) best = i;
    }
    let whole: Buffer;
    if (best >= 0) {
      whole = this.free[best]!;
      this.free[best] = this.free[this.free.length - 1]!;
      this.free.pop();
      this.freeBytes -= whole.length;
    } else {
      whole = Buffer.allocUnsafeSlow(length);
    }
    this.lent.add(whole.buffer);
    return whole.subarray(0, length);
  }

  /**
   * Takes back a payload `take` returned, once nothing reads it any more. Anything else (a view of
   * a socket read, a payload given back already) is ignored.
   */
  give(payload: Buffer): void {
    const whole = payload.buffer;
    if (payload.byteOffset !== 0 || !this.lent.has(whole)) return;
    this.lent.delete(whole);
    if (this.freeBytes + whole.byteLength > RECYCLED_PAYLOAD_BYTES_MAX) return;
    this.free.push(Buffer.from(whole, 0, whole.byteLength));
    this.freeBytes += whole.byteLength;
  }

  /** Bytes held in free buffers. */
  get freeBytesHeld(): number {
    return this.freeBytes;
  }
}
