/**
 * Buffers that batches are encoded into before their one write call, reused once the write has
 * settled. A new buffer per batch was external memory that V8 frees only when a collection finds
 * the buffer dead: at 140 MB/s of appends that is tens of MiB of resident memory waiting between
 * collections. The tail cache copies a written batch into its own ring, so nothing else keeps a
 * batch's buffer once its write has settled.
 *
 * One pool serves every log of a broker; it keeps only buffers that are free, up to a byte bound,
 * so a broker with many logs holds no more than the bound however many logs once wrote.
 */
import assert from 'node:assert/strict';

/** Free buffers kept, by capacity, for all logs together. */
export const WRITE_BUFFER_POOL_BYTES_MAX = 8 * 1024 * 1024;
/** A buffer larger than this (a batch of unusually large records) is used once and not kept. */
export const WRITE_BUFFER_BYTES_MAX = 4 * 1024 * 1024;
/** Smallest buffer handed out: small batches share a few capacities instead of one each. */
export const WRITE_BUFFER_BYTES_MIN = 64 * 1024;

export class WriteBufferPool {
  /** Free buffers, each of a power-of-two capacity (at least WRITE_BUFFER_BYTES_MIN). */
  private readonly free: Buffer[] = [];
  private freeBytesValue = 0;

  constructor(readonly bytesMax: number = WRITE_BUFFER_POOL_BYTES_MAX) {
    assert.ok(Number.isSafeInteger(bytesMax) && bytesMax >= 0, 'the write buffer pool bound is a byte count');
  }

  /** Bytes held in free buffers. */
  get freeBytes(): number {
    return this.freeBytesValue;
  }

  /**
   * A buffer of at least `bytes` bytes, to be given back with `give` once no write uses it. Its
   * contents are arbitrary.
   */
  take(bytes: number): Buffer {
    assert.ok(Number.isSafeInteger(bytes) && bytes > 0, 'a batch has bytes');
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const length = this.free[i]!.length;
      if (length >= bytes && (best < 0 || length < this.free[best]!.length)) best = i;
    }
    if (best >= 0) {
      const buffer = this.free[best]!;
      this.free[best] = this.free[this.free.length - 1]!;
      this.free.pop();
      this.freeBytesValue -= buffer.length;
      return buffer;
    }
    return Buffer.allocUnsafeSlow(capacityFor(bytes));
  }

  /** Gives back a buffer `take` returned, once the write that used it has settled. */
  give(buffer: Buffer): void {
    assert.ok(!this.free.includes(buffer), 'a buffer is given back once');
    if (buffer.length > WRITE_BUFFER_BYTES_MAX || this.freeBytesValue + buffer.length > this.bytesMax) return;
    this.free.push(buffer);
    this.freeBytesValue += buffer.length;
  }
}

function capacityFor(bytes: number): number {
  if (bytes > WRITE_BUFFER_BYTES_MAX) return bytes;
  let capacity = WRITE_BUFFER_BYTES_MIN;
  while (capacity < bytes) capacity *= 2;
  return capacity;
}
