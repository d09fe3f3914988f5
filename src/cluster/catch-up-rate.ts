/**
 * The bound on what replicas catching up from their leaders' segments copy: at most
 * `cluster.replicaCatchUpBytesPerSec` over every topic of the broker (docs/CLUSTERING.md, "Catch-up
 * from the leader's segments"). Each copied chunk is paid for after it arrives: the next copy waits
 * until the bytes so far fit the rate, so over any stretch of time T at most rate × T bytes plus one
 * chunk are copied. A chunk is never larger than one second's worth.
 */
import type { Clock } from '../platform/clock.js';
import { CATCH_UP_CHUNK_BYTES_MAX } from './limits.js';

export class CatchUpRate {
  /** When the bytes copied so far are paid for (monotonic ms). */
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

  /** Accounts for `bytes` just copied; resolves when the next copy may start. */
  async spend(bytes: number): Promise<void> {
    if (this.bytesPerSec === undefined || bytes <= 0) return;
    const now = this.clock.monotonicMs();
    this.paidUntilMs = Math.max(now, this.paidUntilMs) + (bytes * 1000) / this.bytesPerSec;
    const waitMs = this.paidUntilMs - now;
    if (waitMs > 0) await new Promise<void>((resolve) => this.clock.schedule(waitMs, resolve));
  }
}
