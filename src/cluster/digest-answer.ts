/**
 * A replica's answer to REPLICA_DIGEST: the digests of the ranges asked for, cut to what its logs
 * hold (docs/CLUSTERING.md, "Replica digests"). Damage met while hashing (a CRC that fails below
 * the replica's end) is answered as such, with its range, and reported to the replica itself, which
 * may then not run for leader until it is repaired.
 */
import { isFerryError } from '../errors.js';
import type { DigestLogResponse, ReplicaDigestRequest, ReplicaDigestResponse } from '../protocol/codec-digest.js';
import type { ReplicaLog } from '../storage/types.js';

export type DamageListener = (logId: string, damage: { fromOffset: number; toOffset: number }) => void;

export async function answerDigests(lookup: (logId: string) => ReplicaLog | undefined, request: ReplicaDigestRequest, onDamage: DamageListener): Promise<ReplicaDigestResponse> {
  const logs: DigestLogResponse[] = [];
  for (const asked of request.logs) {
    const log = lookup(asked.logId);
    if (log === undefined) {
      logs.push({ logId: asked.logId, present: false, startOffset: 0, endOffset: 0, fromOffset: asked.fromOffset, toOffset: asked.fromOffset, ranges: [], damage: null });
      continue;
    }
    const endOffset = log.writtenOffset + 1;
    const fromOffset = Math.min(Math.max(asked.fromOffset, log.startOffset), endOffset);
    const toOffset = Math.max(fromOffset, Math.min(asked.toOffset, endOffset));
    const answer: DigestLogResponse = { logId: asked.logId, present: true, startOffset: log.startOffset, endOffset, fromOffset, toOffset, ranges: [], damage: null };
    try {
      answer.ranges = await log.digests({ fromOffset, toOffset, spanRecords: asked.spanRecords });
    } catch (error) {
      if (!isFerryError(error, 'CORRUPT_RANGE')) throw error;
      const detail = (error.detail ?? {}) as { fromOffset?: unknown; toOffset?: unknown };
      const from = typeof detail.fromOffset === 'number' ? detail.fromOffset : fromOffset;
      const to = typeof detail.toOffset === 'number' ? detail.toOffset : Math.max(from, toOffset - 1);
      answer.damage = { fromOffset: from, toOffset: to };
      onDamage(asked.logId, answer.damage);
    }
    logs.push(answer);
  }
  return { logs };
}
