/**
 * The first check on a new socket, before any TLS handshake or HELLO work: a per-source-address
 * accept rate (a token bucket per address). A connection storm from one address — each accepted
 * connection costs the broker's thread about 0.3 ms before it is even refused at its HELLO — is
 * turned away at the cost of a close. The per-address and total connection limits come next
 * (server.ts); together they bound what one address can make the broker do per second.
 */

/** Addresses tracked at most; past it the idle ones are forgotten (a full bucket is no state). */
export const ACCEPT_ADDRESSES_TRACKED_MAX = 10_000;

interface Bucket {
  tokens: number;
  updatedMs: number;
}

export class AcceptGate {
  private readonly buckets = new Map<string, Bucket>();

  /**
   * @param perSecond new connections per second one address may open on average; 0: no limit
   * @param burst connections one address may open at once
   */
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {}

  /** Whether `address` may open a connection now (a token is taken if so). */
  take(address: string, nowMs: number): boolean {
    if (this.perSecond === 0) return true;
    let bucket = this.buckets.get(address);
    if (bucket === undefined) {
      if (this.buckets.size >= ACCEPT_ADDRESSES_TRACKED_MAX) this.forgetFull(nowMs);
      bucket = { tokens: this.burst, updatedMs: nowMs };
      this.buckets.set(address, bucket);
    } else {
      bucket.tokens = Math.min(this.burst, bucket.tokens + ((nowMs - bucket.updatedMs) * this.perSecond) / 1000);
      bucket.updatedMs = nowMs;
    }
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Drops the buckets that have refilled (they hold nothing a new one would not); all of them if none has. */
  private forgetFull(nowMs: number): void {
    for (const [address, bucket] of this.buckets) {
      if (bucket.tokens + ((nowMs - bucket.updatedMs) * this.perSecond) / 1000 >= this.burst) this.buckets.delete(address);
    }
    if (this.buckets.size >= ACCEPT_ADDRESSES_TRACKED_MAX) this.buckets.clear();
  }
}
