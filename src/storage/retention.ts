/**
 * Which segments retention deletes: whole segments, oldest first, never the active (last) one.
 * A segment goes when any configured bound says so — its newest record is older than `ageMs`, the
 * log is larger than `bytesMax`, or it holds more than `recordsMax` records — and deletion stops at
 * the first segment no bound condemns, so the log stays a contiguous range of offsets.
 *
 * Ages are measured on an AgeClock, not on the wall clock (docs/RELIABILITY.md, "Wall-clock steps").
 */
import type { Clock } from '../platform/clock.js';
import type { RetentionPolicy } from './types.js';

export interface RetentionCandidate {
  sizeBytes: number;
  recordCount: number;
  /** The newest record's timestamp, on the log's AgeClock. */
  maxTimestampMs: number;
}

/** How many of the oldest `segments` (the last one is active) the policy deletes at `nowMs`. */
export function selectRetentionVictims(segments: readonly RetentionCandidate[], policy: RetentionPolicy, nowMs: number): number {
  let bytes = 0;
  let records = 0;
  for (const segment of segments) {
    bytes += segment.sizeBytes;
    records += segment.recordCount;
  }
  let victims = 0;
  while (victims < segments.length - 1) {
    const segment = segments[victims]!;
    const tooOld = policy.ageMs !== undefined && segment.maxTimestampMs < nowMs - policy.ageMs;
    const tooBig = policy.bytesMax !== undefined && bytes > policy.bytesMax;
    const tooMany = policy.recordsMax !== undefined && records > policy.recordsMax;
    if (!tooOld && !tooBig && !tooMany) break;
    bytes -= segment.sizeBytes;
    records -= segment.recordCount;
    victims++;
  }
  return victims;
}

/**
 * The clock segment ages (retention by age, rolling by age) are measured on while a log is open:
 * it reads as the wall clock did when the log opened, then advances with the monotonic clock. A
 * record's wall-clock timestamp is translated when its batch is written, by the difference of the
 * two clocks at that moment. So a wall-clock step while the log is open moves no age: a forward
 * step deletes nothing early, and a backward one keeps nothing longer.
 *
 * A segment found at open is as old as its newest timestamp: by the wall clock at open, or as the
 * log's `stampAgeMs` reads it (the broker's record of the clock's steps on this boot). A timestamp
 * ahead of the clock (it was stepped back since, or a record was given a future time) counts as
 * "now", so that however far the clock went back, a segment is kept at most `ageMs` longer, never
 * indefinitely.
 */
export class AgeClock {
  private readonly wallAtOpenMs: number;
  private readonly monoAtOpenMs: number;

  constructor(private readonly clock: Clock) {
    this.wallAtOpenMs = clock.nowMs();
    this.monoAtOpenMs = clock.monotonicMs();
  }

  nowMs(): number {
    return this.wallAtOpenMs + (this.clock.monotonicMs() - this.monoAtOpenMs);
  }

  /** A record's timestamp found at open, on this clock (never later than now): see the class comment. */
  fromStored(stampMs: number, stampAgeMs: ((stampMs: number) => number) | null): number {
    const ageMs = stampAgeMs === null ? this.clock.nowMs() - stampMs : stampAgeMs(stampMs);
    return this.nowMs() - Math.max(0, ageMs);
  }

  /** A wall-clock timestamp of a record written just now, on this clock (never later than now). */
  fromWall(timestampMs: number): number {
    const nowMs = this.nowMs();
    return Math.min(nowMs, timestampMs - (this.clock.nowMs() - nowMs));
  }
}
