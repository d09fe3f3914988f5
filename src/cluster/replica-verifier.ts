/**
 * The leader's comparison of a follower's logs with its own below the high watermark, by digests
 * (storage/log-digest.ts): it asks the follower for the digests of at most DIGEST_FANOUT ranges
 * covering the log, computes its own over the same ranges, and narrows the first range that
 * differs, DIGEST_FANOUT times per round trip, down to DIGEST_SPAN_MIN offsets. A log of n records
 * costs about log64(n / 16) round trips; equal logs cost one.
 */
import type { ClientConnection } from '../client/connection.js';
import { FerryError } from '../errors.js';
import { FRAME_TYPES } from '../protocol/frame.js';
import {
  decodeReplicaDigestOk,
  encodeReplicaDigest,
  type DigestLogResponse,
  type LogVerification,
  type ReplicaVerification,
} from '../protocol/codec-digest.js';
import { DIGEST_FANOUT, DIGEST_LEAF_RECORDS, DIGEST_SPAN_MIN, type RangeDigest } from '../storage/log-digest.js';
import type { ReplicaLog } from '../storage/types.js';

export interface VerifySubject {
  topic: string;
  /** The leader's node id and epoch (sent with each request). */
  nodeId: string;
  epoch: number;
  /** The leader's logs of the topic. */
  logs: ReadonlyMap<string, ReplicaLog>;
  highWatermark(logId: string): number;
}

/** The first span of a comparison: whole leaves, at most DIGEST_FANOUT ranges over `records`. */
export function firstSpan(records: number): number {
  let span = DIGEST_LEAF_RECORDS;
  while (Math.ceil(records / span) > DIGEST_FANOUT) span *= DIGEST_FANOUT;
  return span;
}

/** The span of the next level down. */
function nextSpan(span: number): number {
  return Math.max(DIGEST_SPAN_MIN, Math.floor(span / DIGEST_FANOUT));
}

/** The first of `theirs` that differs from `mine` (a missing or extra range differs too), or null. */
export function firstDifference(mine: readonly RangeDigest[], theirs: readonly RangeDigest[]): { fromOffset: number; toOffset: number } | null {
  const length = Math.max(mine.length, theirs.length);
  for (let i = 0; i < length; i++) {
    const a = mine[i];
    const b = theirs[i];
    if (a === undefined || b === undefined) return a ?? b!;
    if (a.fromOffset !== b.fromOffset || a.toOffset !== b.toOffset || !a.digest.equals(b.digest)) return { fromOffset: Math.min(a.fromOffset, b.fromOffset), toOffset: Math.max(a.toOffset, b.toOffset) };
  }
  return null;
}

/** Asks a replica for the digests of one log's ranges (a REPLICA_DIGEST round trip). */
export type AskDigests = (logId: string, range: { fromOffset: number; toOffset: number; spanRecords: number }) => Promise<DigestLogResponse>;

function askOver(connection: ClientConnection, subject: VerifySubject): AskDigests {
  return async (logId, range) => {
    const answer = await connection.request(
      (w, id) => encodeReplicaDigest(w, id, { topic: subject.topic, replicaId: subject.nodeId, epoch: subject.epoch, logs: [{ logId, ...range }] }),
      FRAME_TYPES.REPLICA_DIGEST_OK,
      decodeReplicaDigestOk,
    );
    const log = answer.logs.find((entry) => entry.logId === logId);
    if (log === undefined) throw new FerryError('INTERNAL', `the digest answer lacks log ${logId}`);
    return log;
  };
}

/** Compares one log of a replica (asked through `ask`) with the leader's `log` below the high watermark. */
export async function compareLog(ask: AskDigests, subject: Pick<VerifySubject, 'highWatermark'>, logId: string, log: ReplicaLog): Promise<LogVerification> {
  const top = { fromOffset: log.startOffset, toOffset: Math.min(subject.highWatermark(logId), log.writtenOffset + 1) };
  let asked = { ...top, spanRecords: firstSpan(Math.max(0, top.toOffset - top.fromOffset)) };
  let compared = top;
  let roundTrips = 0;
  let narrowing: { fromOffset: number; toOffset: number } | null = null;
  for (;;) {
    const theirs = await ask(logId, asked);
    roundTrips++;
    if (roundTrips === 1) compared = { fromOffset: theirs.fromOffset, toOffset: theirs.toOffset };
    if (!theirs.present) {
      const status = top.toOffset > top.fromOffset ? 'missing' : 'ok';
      return { logId, status, ...top, roundTrips };
    }
    if (theirs.damage !== null) {
      return { logId, status: 'damaged', ...compared, firstDifference: { fromOffset: theirs.damage.fromOffset, toOffset: theirs.damage.toOffset + 1 }, roundTrips };
    }
    const mine = theirs.toOffset > theirs.fromOffset ? await log.digests({ fromOffset: theirs.fromOffset, toOffset: theirs.toOffset, spanRecords: asked.spanRecords }) : [];
    const differs = firstDifference(mine, theirs.ranges);
    if (differs === null) {
      // A range that differed a round ago and agrees now changed meanwhile (a cut): report it as it was.
      return narrowing === null ? { logId, status: 'ok', ...compared, roundTrips } : { logId, status: 'mismatch', ...compared, firstDifference: narrowing, roundTrips };
    }
    narrowing = differs;
    if (asked.spanRecords <= DIGEST_SPAN_MIN) return { logId, status: 'mismatch', ...compared, firstDifference: differs, roundTrips };
    asked = { ...differs, spanRecords: nextSpan(asked.spanRecords) };
  }
}

/**
 * Compares every log of `subject` on follower `replicaId` (reached by `connection`). A failure to
 * reach it is a verdict too ('unreachable'), not an exception.
 */
export async function verifyReplica(connect: () => Promise<ClientConnection>, subject: VerifySubject, replicaId: string): Promise<ReplicaVerification> {
  const logs: LogVerification[] = [];
  try {
    const ask = askOver(await connect(), subject);
    for (const [logId, log] of [...subject.logs].sort(([a], [b]) => a.localeCompare(b))) logs.push(await compareLog(ask, subject, logId, log));
  } catch (error) {
    return { nodeId: replicaId, status: 'unreachable', error: error instanceof Error ? error.message : String(error), logs };
  }
  const ok = logs.every((log) => log.status === 'ok');
  return { nodeId: replicaId, status: ok ? 'ok' : 'mismatch', logs };
}
