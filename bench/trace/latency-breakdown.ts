/**
 * Where the time of each `always` publish went, from the harness's timestamps (sent, confirmed,
 * received) and the broker's file trace: the sync that confirmed the message is the last sync of
 * the log's descriptor to end at or before the confirmation, and the write it made durable is the
 * last write of that descriptor to start at or before the sync. Every part is then a difference of
 * two observed times; a message confirmed before any traced sync ended is left out.
 *
 * A log runs one sync pass at a time over everything written when it starts (log.ts, group
 * commit), with up to two writes in flight: `writeToSync` is how long a written batch waited for
 * the pass already running. When two writes come before one sync, a message is attributed to the
 * later one, so `beforeWrite` can be overstated by one write; W3's writes are small and mostly one
 * per pass.
 */
import assert from 'node:assert/strict';
import type { FileSpan } from './process-observer.js';

export const PARTS = ['beforeWrite', 'write', 'writeToSync', 'sync', 'syncToConfirm', 'confirmToReceipt'] as const;
export type Part = (typeof PARTS)[number];

/** Per message, in send order: epoch milliseconds. */
export interface MessageTimes {
  sentMs: Float64Array;
  confirmedMs: Float64Array;
  receivedMs: Float64Array;
}

export interface Breakdown {
  /** Indexes (into MessageTimes) of the messages broken down. */
  messages: number[];
  /** Milliseconds per part, one entry per broken-down message. */
  parts: Record<Part, number[]>;
}

/** The descriptor that wrote the most bytes: a topic's log, beside its group's small journal records. */
export function busiestWriter(writes: readonly FileSpan[]): number {
  const bytesByFd = new Map<number, number>();
  for (const [, , fd, bytes] of writes) bytesByFd.set(fd, (bytesByFd.get(fd) ?? 0) + bytes);
  let best = -1;
  let bestBytes = -1;
  for (const [fd, bytes] of bytesByFd) {
    if (bytes > bestBytes) {
      best = fd;
      bestBytes = bytes;
    }
  }
  assert.ok(best >= 0, 'no writes traced');
  return best;
}

/** Breaks down messages `from` (inclusive) to `to` (exclusive), which must be in send order. */
export function breakDown(times: MessageTimes, writes: readonly FileSpan[], syncs: readonly FileSpan[], fd: number, from: number, to: number): Breakdown {
  const ownSyncs = syncs.filter((span) => span[2] === fd).sort((a, b) => a[0] + a[1] - (b[0] + b[1]));
  const ownWrites = writes.filter((span) => span[2] === fd).sort((a, b) => a[0] - b[0]);
  const breakdown = emptyBreakdown();
  for (let index = from; index < to; index++) {
    const confirmedMs = times.confirmedMs[index]!;
    const sync = lastAtOrBefore(ownSyncs, (span) => span[0] + span[1], confirmedMs);
    if (sync === undefined) continue;
    const write = lastAtOrBefore(ownWrites, (span) => span[0], sync[0]);
    if (write === undefined) continue;
    const sentMs = times.sentMs[index]!;
    breakdown.messages.push(index);
    breakdown.parts.beforeWrite.push(write[0] - sentMs);
    breakdown.parts.write.push(write[1]);
    breakdown.parts.writeToSync.push(sync[0] - (write[0] + write[1]));
    breakdown.parts.sync.push(sync[1]);
    breakdown.parts.syncToConfirm.push(confirmedMs - (sync[0] + sync[1]));
    breakdown.parts.confirmToReceipt.push(times.receivedMs[index]! - confirmedMs);
  }
  return breakdown;
}

export function emptyBreakdown(): Breakdown {
  const parts = {} as Record<Part, number[]>;
  for (const part of PARTS) parts[part] = [];
  return { messages: [], parts };
}

/** The last span whose key is at most `limit`, in spans sorted by that key (binary search). */
function lastAtOrBefore(spans: readonly FileSpan[], key: (span: FileSpan) => number, limit: number): FileSpan | undefined {
  let low = 0;
  let high = spans.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (key(spans[middle]!) <= limit) low = middle + 1;
    else high = middle;
  }
  return low === 0 ? undefined : spans[low - 1];
}

/** How many of `startsMs` fall in each whole second after `originMs`, for `seconds` seconds (later ones count in the last). */
export function countBySecond(startsMs: Iterable<number>, originMs: number, seconds: number): number[] {
  const counts = new Array<number>(seconds).fill(0);
  for (const startMs of startsMs) {
    if (startMs < originMs) continue;
    counts[Math.min(seconds - 1, Math.floor((startMs - originMs) / 1000))]! += 1;
  }
  return counts;
}
