/**
 * Damage a replica found in its own logs, and its report to the leader (docs/CLUSTERING.md,
 * "Replica digests"). Damage below the replica's end (a CRC failure recovery kept, or one met while
 * hashing) bars the replica from elections until its leader has repaired it. The report asks that
 * leader to check it now (TOPIC_VERIFY) instead of at the leader's next background round, which may
 * be minutes away: the leader's check finds the damaged range, takes this replica out of the
 * in-sync set through etcd, and has it cut the range and fetch it again (REPLICA_REPAIR).
 *
 * One report at a time. A report the leader answered is done, whatever its verdict (the leader has
 * looked); one that could not reach a leader is sent again after DAMAGE_REPORT_RETRY_MS while the
 * damage stays, and when the replica starts following a (new) leader.
 */
import type { ClientConnection } from '../client/connection.js';
import { requestVerify } from '../client/verify.js';
import type { Clock, TimerHandle } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { DAMAGE_REPORT_RETRY_MS } from './limits.js';

export interface ReplicaDamageOptions {
  topic(): string;
  clock: Clock;
  logger: Logger;
  /** A connection to the leader this replica follows; null when it follows none right now. */
  connectToLeader(): Promise<ClientConnection> | null;
}

export class ReplicaDamage {
  private damagedNow = false;
  /** Damage noted and not yet looked at by a leader. */
  private unreported = false;
  private inFlight = false;
  private retry: TimerHandle | null = null;
  private closed = false;

  constructor(private readonly options: ReplicaDamageOptions) {}

  /** Damage found and not cut away yet: the replica may not run for leader, whatever etcd says. */
  get damaged(): boolean {
    return this.damagedNow;
  }

  /**
   * Damage was found in one of this replica's logs: at recovery, or while hashing for a leader's
   * check (`byLeader`: that leader is looking already, and repairs what it finds; no report).
   */
  noted(logId: string, damage: { fromOffset: number; toOffset: number }, byLeader = false): void {
    this.damagedNow = true;
    if (!byLeader) this.unreported = true;
    this.options.logger.error('cluster.replica.damaged', { topic: this.options.topic(), log: logId, ...damage, note: 'no election until the leader repairs it' });
    this.send();
  }

  /** This replica started following a leader: a report not made yet goes to it. */
  following(): void {
    if (this.unreported) this.send();
  }

  /** The leader is repairing this replica (cutting and fetching again): damaged until done. */
  repairing(): void {
    this.damagedNow = true;
  }

  /** The leader's repair is done: nothing is left to report. */
  repaired(): void {
    this.damagedNow = false;
    this.unreported = false;
    this.cancelRetry();
  }

  close(): void {
    this.closed = true;
    this.cancelRetry();
  }

  private send(): void {
    if (this.closed || this.inFlight || !this.unreported) return;
    const connecting = this.options.connectToLeader();
    if (connecting === null) return; // following() sends it once there is a leader
    this.inFlight = true;
    this.cancelRetry();
    const topic = this.options.topic();
    connecting.then((connection) => requestVerify(connection, topic)).then(
      (verification) => {
        this.inFlight = false;
        this.unreported = false;
        this.options.logger.info('cluster.replica.damage_reported', { topic, leader: verification.leader, epoch: verification.epoch, ok: verification.ok });
      },
      (error: unknown) => {
        this.inFlight = false;
        this.options.logger.warn('cluster.replica.damage_report_failed', { topic, error, retryInMs: DAMAGE_REPORT_RETRY_MS });
        this.armRetry();
      },
    );
  }

  private armRetry(): void {
    if (this.closed || this.retry !== null) return;
    this.retry = this.options.clock.schedule(DAMAGE_REPORT_RETRY_MS, () => {
      this.retry = null;
      this.send();
    });
  }

  private cancelRetry(): void {
    this.retry?.cancel();
    this.retry = null;
  }
}
