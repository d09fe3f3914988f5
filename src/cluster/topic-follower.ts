/**
 * A follower of one topic in one epoch. First it asks the leader where its last epoch ends for
 * every log and cuts each log back to there (KIP-101: never to the high watermark, which can be
 * behind what the leader kept); then it fetches in a loop, writing the leader's batches as they
 * are, and tells the leader how far its syncs reached as soon as they do.
 */
import type { ClientConnection } from '../client/connection.js';
import { FRAME_TYPES } from '../protocol/frame.js';
import { FerryError, isFerryError } from '../errors.js';
import {
  decodeEpochEndOk,
  decodeReplicaFetchOk,
  encodeEpochEnd,
  encodeReplicaFetch,
  encodeReplicaProgress,
  type ReplicaFetchResponse,
} from '../protocol/codec-replication.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { ReplicaLog } from '../storage/types.js';
import { FETCH_BYTES_MAX, FETCH_WAIT_MS_MAX, FOLLOWER_RETRY_MS_MAX, FOLLOWER_RETRY_MS_MIN } from './limits.js';

/** The topic's local logs as the follower sees them. */
export interface ReplicaLogs {
  ids(): string[];
  get(logId: string): ReplicaLog | undefined;
  /** Opens (creating) the local log for a log id the leader has. */
  open(logId: string): Promise<ReplicaLog>;
}

/** Why a follower stopped on its own. */
export type FollowerStop =
  /** The leader's port refuses connections: its process is gone. */
  | { kind: 'leader-down'; error: FerryError }
  /** The leader says it does not lead this epoch (or a newer one exists). */
  | { kind: 'not-leader'; error: FerryError };

export interface TopicFollowerOptions {
  topic: string;
  nodeId: string;
  leaderId: string;
  epoch: number;
  logs: ReplicaLogs;
  /** The connection to the leader (opened again after a failure). */
  connect(): Promise<ClientConnection>;
  clock: Clock;
  logger: Logger;
  /** The leader's high watermark of each log, as last heard. */
  highWatermarks: Map<string, number>;
  onStop(reason: FollowerStop): void;
}

export class TopicFollower {
  private running = true;
  private progressScheduled = false;
  private connection: ClientConnection | null = null;
  private readonly unsubscribes = new Map<string, () => void>();
  private retryMs = FOLLOWER_RETRY_MS_MIN;
  /** A change of the local logs in progress (written batches, a truncation). */
  private local: Promise<void> | null = null;
  readonly done: Promise<void>;

  constructor(private readonly options: TopicFollowerOptions) {
    this.done = this.run();
  }

  get leaderId(): string {
    return this.options.leaderId;
  }

  get epoch(): number {
    return this.options.epoch;
  }

  /**
   * Stops fetching; resolves once no local write or truncation of this follower is in progress. A
   * request waiting on the leader is not waited for (a frozen leader may never answer): its answer
   * is dropped when it comes.
   */
  async stop(): Promise<void> {
    this.running = false;
    for (const unsubscribe of this.unsubscribes.values()) unsubscribe();
    this.unsubscribes.clear();
    while (this.local !== null) await this.local;
  }

  /** Runs a change of the local logs; `stop` waits for it. */
  private async locally(work: () => Promise<void>): Promise<void> {
    if (!this.running) return;
    const running = work();
    this.local = running;
    try {
      await running;
    } finally {
      if (this.local === running) this.local = null;
    }
  }

  private async run(): Promise<void> {
    let truncated = false;
    while (this.running) {
      try {
        this.connection = await this.options.connect();
        if (!truncated) {
          await this.truncateToLeader(this.connection);
          truncated = true;
        }
        await this.fetchOnce(this.connection);
        this.retryMs = FOLLOWER_RETRY_MS_MIN;
      } catch (error) {
        if (!this.running) return;
        const stop = this.classify(error);
        if (stop !== null) {
          this.running = false;
          this.options.onStop(stop);
          return;
        }
        if (isFerryError(error, 'INVALID_ARGUMENT') || isFerryError(error, 'CORRUPT_RANGE')) {
          // The batches did not continue our log: check the epochs again and cut where they say.
          truncated = false;
        }
        this.options.logger.warn('cluster.follower.retry', { topic: this.options.topic, leader: this.options.leaderId, epoch: this.options.epoch, error });
        await new Promise<void>((resolve) => this.options.clock.schedule(this.retryMs, resolve));
        this.retryMs = Math.min(this.retryMs * 2, FOLLOWER_RETRY_MS_MAX);
      }
    }
  }

  private classify(error: unknown): FollowerStop | null {
    if (!(error instanceof FerryError)) return null;
    if (error.code === 'NOT_LEADER' || error.code === 'STALE_EPOCH') return { kind: 'not-leader', error };
    const cause = (error.cause as NodeJS.ErrnoException | undefined)?.code;
    if (error.code === 'CONNECTION_REFUSED' && cause === 'ECONNREFUSED') return { kind: 'leader-down', error };
    return null;
  }

  /** KIP-101: each log is cut back to where the leader says its last epoch ends. */
  private async truncateToLeader(connection: ClientConnection): Promise<void> {
    const ids = this.options.logs.ids();
    if (ids.length === 0) return;
    const answer = await connection.request(
      (w, id) =>
        encodeEpochEnd(w, id, {
          topic: this.options.topic,
          replicaId: this.options.nodeId,
          epoch: this.options.epoch,
          logs: ids.map((logId) => ({ logId, lastEpoch: this.options.logs.get(logId)!.leaderEpoch })),
        }),
      FRAME_TYPES.EPOCH_END_OK,
      decodeEpochEndOk,
    );
    await this.locally(async () => {
      for (const { logId, epoch, endOffset } of answer.logs) {
        const log = this.options.logs.get(logId);
        if (log === undefined) continue;
        // KIP-279: the leader names the newest epoch both logs know and where it ends there; it ends
        // here no later than our own end of it (after it, this log may hold an epoch the leader
        // never had, possibly without a record). Cut to the lesser, epochs included.
        const target = epoch < 0 ? endOffset : Math.min(endOffset, log.epochEnd(epoch).endOffset);
        if (target >= log.nextOffset && log.leaderEpoch <= epoch) continue;
        const before = log.nextOffset;
        const end = await log.truncateTo(Math.min(target, log.nextOffset));
        if (end === before) continue;
        this.options.logger.warn('cluster.follower.truncated', { topic: this.options.topic, log: logId, epoch: this.options.epoch, from: before, to: end });
      }
    });
  }

  private async fetchOnce(connection: ClientConnection): Promise<void> {
    const ids = this.options.logs.ids();
    const response = await connection.request(
      (w, id) =>
        encodeReplicaFetch(w, id, {
          topic: this.options.topic,
          replicaId: this.options.nodeId,
          epoch: this.options.epoch,
          maxWaitMs: FETCH_WAIT_MS_MAX,
          bytesMax: FETCH_BYTES_MAX,
          logs: ids.map((logId) => {
            const log = this.options.logs.get(logId)!;
            return { logId, fetchOffset: log.nextOffset, syncedEnd: log.syncedOffset + 1 };
          }),
        }),
      FRAME_TYPES.REPLICA_FETCH_OK,
      decodeReplicaFetchOk,
    );
    await this.locally(() => this.apply(response));
  }

  private async apply(response: ReplicaFetchResponse): Promise<void> {
    for (const answer of response.logs) {
      let log = this.options.logs.get(answer.logId);
      if (log === undefined) {
        log = await this.options.logs.open(answer.logId);
        this.watchSyncs(answer.logId, log);
      }
      if (!this.unsubscribes.has(answer.logId)) this.watchSyncs(answer.logId, log);
      if (log.nextOffset < answer.logStartOffset || log.startOffset > answer.leaderEnd) {
        // Our log ends before the leader's begins (retention deleted what we lack), or lies past
        // the leader's end: start over from the leader's start.
        await log.resetTo(answer.logStartOffset);
        this.options.logger.warn('cluster.follower.reset', { topic: this.options.topic, log: answer.logId, startOffset: answer.logStartOffset });
      }
      for (const batches of answer.batches) {
        if (batches.length > 0) await log.appendBatches(batches);
      }
      if (answer.logStartOffset > log.startOffset) await log.deleteSegmentsBefore(answer.logStartOffset);
      this.options.highWatermarks.set(answer.logId, answer.highWatermark);
    }
  }

  private watchSyncs(logId: string, log: ReplicaLog): void {
    if (this.unsubscribes.has(logId)) return;
    this.unsubscribes.set(logId, log.onAdvance(() => this.scheduleProgress()));
  }

  /** One REPLICA_PROGRESS per turn, whatever number of syncs completed in it. */
  private scheduleProgress(): void {
    if (this.progressScheduled || !this.running) return;
    this.progressScheduled = true;
    setImmediate(() => {
      this.progressScheduled = false;
      const connection = this.connection;
      if (!this.running || connection === null || !connection.isOpen) return;
      const ids = this.options.logs.ids();
      encodeReplicaProgress(connection.writer, {
        topic: this.options.topic,
        replicaId: this.options.nodeId,
        epoch: this.options.epoch,
        logs: ids.map((logId) => {
          const log = this.options.logs.get(logId)!;
          return { logId, fetchOffset: log.nextOffset, syncedEnd: log.syncedOffset + 1 };
        }),
      });
      connection.scheduleFlush();
    });
  }
}
