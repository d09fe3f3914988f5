/**
 * Callers waiting for an offset of one log to be committed (covered by the high watermark). Appends
 * resolve in offset order, so waiters arrive in order and are settled from the front.
 */
import type { FerryError } from '../errors.js';

interface Waiter {
  /** Settled once the high watermark is past this offset. */
  offset: number;
  resolve(): void;
  reject(error: FerryError): void;
}

export class CommitWaiters {
  private waiters: Waiter[] = [];
  private head = 0;

  get size(): number {
    return this.waiters.length - this.head;
  }

  /** Resolves once `highWatermark` (as later passed to `advance`) is past `offset`. */
  wait(offset: number, highWatermark: number): Promise<void> {
    if (offset < highWatermark) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waiter = { offset, resolve, reject };
      const last = this.waiters[this.waiters.length - 1];
      if (last === undefined || this.head === this.waiters.length || last.offset <= offset) {
        this.waiters.push(waiter);
        return;
      }
      // Out of order (a duplicate publish answered from the index): keep the queue sorted.
      let at = this.waiters.length;
      while (at > this.head && this.waiters[at - 1]!.offset > offset) at--;
      this.waiters.splice(at, 0, waiter);
    });
  }

  /** Settles every waiter below the new high watermark. */
  advance(highWatermark: number): void {
    const waiters = this.waiters;
    let head = this.head;
    while (head < waiters.length && waiters[head]!.offset < highWatermark) {
      waiters[head]!.resolve();
      head++;
    }
    if (head === waiters.length) {
      this.waiters = [];
      this.head = 0;
    } else {
      this.head = head;
    }
  }

  /** Fails every waiter (leadership lost). */
  failAll(error: FerryError): void {
    const waiters = this.waiters.slice(this.head);
    this.waiters = [];
    this.head = 0;
    for (const waiter of waiters) waiter.reject(error);
  }
}
