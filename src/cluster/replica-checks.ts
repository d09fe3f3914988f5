/**
 * A leader's checks of its followers' logs (docs/CLUSTERING.md, "Replica digests"): on request
 * (`ferry topics verify`) every follower, and in the background one follower per interval, round
 * robin, so the cost is bounded whatever the number of topics' followers, and not while a follower
 * copies the leader's segments (CATCH_UP_QUIET_MS). A follower whose log
 * differs below the high watermark, or that met damage while hashing, is counted
 * (`ferry_replica_mismatches_total`), taken out of the in-sync set through etcd, and only then told
 * to cut the log back to the first differing range and fetch it again (REPLICA_REPAIR): it cannot
 * join the in-sync set again before its fetches show the cut.
 */
import type { ClientConnection } from '../client/connection.js';
import type { Clock, TimerHandle } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { FRAME_TYPES } from '../protocol/frame.js';
import { encodeReplicaRepair, type ReplicaVerification, type TopicVerification } from '../protocol/codec-digest.js';
import { verifyReplica } from './replica-verifier.js';
import type { TopicLeader } from './topic-leader.js';

export interface ReplicaChecksOptions {
  topic: string;
  nodeId: string;
  leader: TopicLeader;
  clock: Clock;
  logger: Logger;
  /** One follower is checked per this interval in the background; 0: no background checks. */
  intervalMs: number;
  /** A connection to a broker of the cluster. */
  connect(nodeId: string): Promise<ClientConnection>;
  /** Told of each mismatch found (a counter). */
  onMismatch(): void;
}

export class ReplicaChecks {
  private timer: TimerHandle | null = null;
  private next = 0;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;

  constructor(private readonly options: ReplicaChecksOptions) {}

  /** Starts the background checks. */
  start(): void {
    if (this.options.intervalMs > 0) this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.timer = null;
  }

  private arm(): void {
    if (this.stopped) return;
    this.timer = this.options.clock.schedule(this.options.intervalMs, () => {
      this.timer = null;
      // A leader that stepped down checks nothing more.
      if (!this.options.leader.active) return;
      // A follower is copying this leader's segments: the check waits for the next interval.
      if (this.options.leader.servingCatchUp) return this.arm();
      const followers = this.options.leader.followerIds().sort();
      if (followers.length === 0) return this.arm();
      const replicaId = followers[this.next++ % followers.length]!;
      this.serialized(() => this.check(replicaId)).then(
        () => this.arm(),
        (error: unknown) => {
          this.options.logger.warn('cluster.verify.failed', { topic: this.options.topic, replica: replicaId, error });
          this.arm();
        },
      );
    });
  }

  /** Every follower compared with this leader's logs below the high watermark (and repaired where they differ). */
  async verifyAll(): Promise<TopicVerification> {
    const leader = this.options.leader;
    const replicas: ReplicaVerification[] = [];
    for (const replicaId of leader.followerIds().sort()) replicas.push(await this.serialized(() => this.check(replicaId)));
    return { topic: this.options.topic, leader: this.options.nodeId, epoch: leader.epoch, ok: replicas.every((replica) => replica.status === 'ok'), replicas };
  }

  /** One check at a time per topic: background and requested checks never hash the same logs at once. */
  private serialized<T>(task: () => Promise<T>): Promise<T> {
    const run = this.running.then(task);
    this.running = run.catch(() => undefined);
    return run;
  }

  private async check(replicaId: string): Promise<ReplicaVerification> {
    const leader = this.options.leader;
    const subject = { topic: this.options.topic, nodeId: this.options.nodeId, epoch: leader.epoch, logs: leader.logMap, highWatermark: (logId: string) => leader.highWatermark(logId) };
    const verdict = await verifyReplica(() => this.options.connect(replicaId), subject, replicaId);
    const cuts = new Map<string, number>();
    for (const log of verdict.logs) if (log.firstDifference !== undefined) cuts.set(log.logId, log.firstDifference.fromOffset);
    if (cuts.size > 0) {
      this.options.onMismatch();
      this.options.logger.warn('cluster.replica.mismatch', { topic: this.options.topic, replica: replicaId, logs: verdict.logs.filter((log) => log.status !== 'ok') });
      await this.repair(replicaId, cuts);
    }
    return verdict;
  }

  /** Out of the in-sync set first (etcd), then the cut: an in-sync replica always holds everything committed. */
  private async repair(replicaId: string, cuts: Map<string, number>): Promise<void> {
    const leader = this.options.leader;
    leader.holdOut(replicaId, cuts);
    if (!(await leader.removeFromInSync([replicaId], `${replicaId} differs from the leader below the high watermark`))) return;
    const connection = await this.options.connect(replicaId);
    await connection.request(
      (w, id) => encodeReplicaRepair(w, id, { topic: this.options.topic, replicaId: this.options.nodeId, epoch: leader.epoch, logs: [...cuts].map(([logId, fromOffset]) => ({ logId, fromOffset })) }),
      FRAME_TYPES.OK,
      () => undefined,
    );
    this.options.logger.info('cluster.replica.repair_sent', { topic: this.options.topic, replica: replicaId, logs: Object.fromEntries(cuts) });
  }
}
