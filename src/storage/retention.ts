/**
 * Which segments retention deletes: whole segments, oldest first, never the active (last) one.
 * A segment goes when any configured bound says so — its newest record is older than `ageMs`, the
 * log is larger than `bytesMax`, or it holds more than `recordsMax` records — and deletion stops at
 * the first segment no bound condemns, so the log stays a contiguous range of offsets.
 */
import type { RetentionPolicy } from './types.js';

export interface RetentionCandidate {
  sizeBytes: number;
  recordCount: number;
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
