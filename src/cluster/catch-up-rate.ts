/**
 * The bound on what replicas catching up from their leaders' segments copy: at most
 * `cluster.replicaCatchUpBytesPerSec` over every topic of the broker (docs/CLUSTERING.md, "Catch-up
 * from the leader's segments"). A chunk is paid for when it is asked for, and is asked for only once
 * every chunk asked for before is paid for; what it carried beyond or below what was asked is settled
 * when it arrives. So the chunks asked for over any stretch of time T carry at most rate × T bytes
 * plus one chunk, and the time a chunk spends being read, sent and checked runs within the time paid
 * for it rather than after it: a copy that keeps up runs at the rate. A chunk is never larger than
 * one second's worth.
 */
import type { Clock } from '../platform/clock.js';
import { CATCH_UP_CHUNK_BYTES_MAX } from './limits.js';

export class CatchUpRate {
  /** When the bytes asked for so far are paid for (monotonic ms). */
  private paidUntilMs = 0;

  /** `bytesPerSec` undefined: unbounded. */
  constructor(
    private readonly bytesPerSec: number | undefined,
    private readonly clock: Clock,
  ) {}

  /** Bytes one chunk may carry. */
  get chunkBytes(): number {
    return Math.max(1, Math.min(CATCH_UP_CHUNK_BYTES_MAX, this.bytesPerSec ?? CATCH_UP_CHUNK_BYTES_MAX));
  }

  /**
   * Resolves when a chunk may be asked for (every chunk asked for before is paid for), having paid
   * for it: returns the bytes it may carry (`chunkBytes`), to `settle` once it has arrived.
   */
  async reserve(): Promise<number> {
    const bytes = this.chunkBytes;
    if (this.bytesPerSec === undefined) return bytes;
    // Several topics share the bound: wait until nothing asked for is unpaid, then pay at once.
    for (let waitMs = this.paidUntilMs - this.clock.monotonicMs(); waitMs > 0; waitMs = this.paidUntilMs - this.clock.monotonicMs()) {
      await new Promise<void>((resolve) => this.clock.schedule(waitMs, resolve));
    }
    this.paidUntilMs = Math.max(this.clock.monotonicMs(), this.paidUntilMs) + this.msFor(bytes);
    return bytes;
  }

  /** A chunk asked for with `reserved` bytes carried `bytes`: the difference is paid for, or given back. */
  settle(reserved: number, bytes: number): void {
    if (this.bytesPerSec === undefined) return;
    this.paidUntilMs += this.msFor(bytes - reserved);
  }

  private msFor(bytes: number): number {
    return (bytes * 1000) / this.bytesPerSec!;
  }
}
