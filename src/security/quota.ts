/**
 * Per-user publish rate quota: a token bucket per key (the user's name, or the client's address
 * when authentication is off). A publish of n messages takes n tokens; the bucket refills at
 * `messagesPerSecond` up to `burstMessages`. A publish is admitted whenever the bucket is not
 * empty and may take it below zero: a batch larger than the burst still goes through, and the
 * debt makes the next ones wait, so the long-run rate is the quota whatever the batch sizes.
 */
import type { Clock } from '../platform/clock.js';

/** Buckets kept; the least recently used go first beyond it (a forgotten bucket starts full). */
export const QUOTA_BUCKETS_MAX = 100_000;

interface Bucket {
  tokens: number;
  lastMs: number;
}

export class PublishQuota {
  private readonly buckets = new Map<string, Bucket>();
  /** The key used last, whose bucket is already last in `buckets`' order. */
  private lastKey: string | null = null;

  constructor(
    readonly messagesPerSecond: number,
    readonly burstMessages: number,
    private readonly clock: Clock,
  ) {}

  /** Takes `count` tokens from `key`'s bucket; false (nothing taken) when it is empty. */
  take(key: string, count: number): boolean {
    const nowMs = this.clock.monotonicMs();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = { tokens: this.burstMessages, lastMs: nowMs };
      if (this.buckets.size >= QUOTA_BUCKETS_MAX) this.buckets.delete(this.buckets.keys().next().value!);
      this.buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(this.burstMessages, bucket.tokens + ((nowMs - bucket.lastMs) * this.messagesPerSecond) / 1000);
      bucket.lastMs = nowMs;
      // Moved to the end on each use, so the map's order is least recently used first; but the key
      // used last (one producer's run of publishes, one source's datagrams) is there already, and
      // skips the delete and insert that cost more than the rest of take().
      if (key !== this.lastKey) {
        this.buckets.delete(key);
        this.buckets.set(key, bucket);
      }
    }
    this.lastKey = key;
    if (bucket.tokens <= 0) return false;
    bucket.tokens -= count;
    return true;
  }

  /** Whether `key`'s bucket is empty now (a publish would be refused), without taking anything. */
  exhausted(key: string): boolean {
    return this.tokens(key) <= 0;
  }

  /** Milliseconds until `key` may publish again (0: now); for the RATE_LIMITED detail. */
  retryAfterMs(key: string): number {
    const tokens = this.tokens(key);
    if (tokens > 0) return 0;
    return Math.ceil(((1 - tokens) * 1000) / this.messagesPerSecond);
  }

  /** Tokens in `key`'s bucket now, refilled for the time since its last use (nothing is stored). */
  private tokens(key: string): number {
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return this.burstMessages;
    const elapsedMs = this.clock.monotonicMs() - bucket.lastMs;
    return Math.min(this.burstMessages, bucket.tokens + (elapsedMs * this.messagesPerSecond) / 1000);
  }
}
