/**
 * The end of a cluster run checks the replicas by digests, as an operator's `ferry topics verify`
 * would: the leader compares every follower with its own logs below the high watermark. Where one
 * differs, the leader has already taken it out of the in-sync set and told it to fetch the range
 * again; the run waits for the in-sync set to fill and verifies again, a few rounds at most. A
 * difference found is a finding of the run unless the scenario damaged replicas itself (bit flips),
 * where finding and repairing it is what is tested.
 */
import type { FerryClient, TopicVerification } from '../../src/client/index.js';
import type { ChaosCluster } from './chaos-cluster.js';

/** Verifications (each followed by a wait for the in-sync set) before the run gives up. */
const VERIFY_ROUNDS_MAX = 5;
/** A verify refused (no leader for a moment, a leader still opening the topic) is asked again after this long. */
const VERIFY_RETRY_MS = 1_000;

export interface FinalVerification {
  /** What the first verification found. */
  first: TopicVerification | null;
  /** What the last one found: OK, or what stayed different. */
  last: TopicVerification | null;
  rounds: number;
  errors: string[];
}

export async function verifyReplicas(admin: FerryClient, cluster: ChaosCluster, topic: string, inSyncTimeoutMs: number): Promise<FinalVerification> {
  const result: FinalVerification = { first: null, last: null, rounds: 0, errors: [] };
  while (result.rounds < VERIFY_ROUNDS_MAX && result.last?.ok !== true) {
    result.rounds++;
    try {
      const verification = await admin.verifyTopic(topic);
      result.first ??= verification;
      result.last = verification;
      if (!verification.ok) await cluster.waitInSync(topic, inSyncTimeoutMs);
    } catch (error) {
      result.errors.push((error as Error).message);
      await new Promise((resolve) => setTimeout(resolve, VERIFY_RETRY_MS));
    }
  }
  return result;
}

/** Each replica that differed and where, as one line. */
export function differences(verification: TopicVerification | null): string {
  if (verification === null) return 'no verification';
  const replicas = verification.replicas.filter((replica) => replica.status !== 'ok');
  return replicas
    .map((replica) => {
      const logs = replica.logs.filter((log) => log.status !== 'ok').map((log) => `${log.logId} ${log.status}${log.firstDifference === undefined ? '' : ` from ${log.firstDifference.fromOffset}`}`);
      return `${replica.nodeId}: ${replica.status}${logs.length > 0 ? ` (${logs.join(', ')})` : ''}`;
    })
    .join('; ');
}
