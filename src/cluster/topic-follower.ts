/**
 * A follower of one topic in one epoch. First it asks the leader where its last epoch ends for
 * every log and cuts each log back to there (KIP-101: never to the high watermark, which can be
 * behind what the leader kept); then it fetches in a loop, writing the leader's batches as they
 * are, and tells the leader how far its syncs reached as soon as they do. A log that ends where
 * the leader's epoch starts records that start at once, before the epoch's first batch comes.
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
import { CATCH_UP_LAG_RECORDS_MIN, FETCH_BYTES_MAX, FETCH_WAIT_MS_MAX, FOLLOWER_RETRY_MS_MAX, FOLLOWER_RETRY_MS_MIN } from './limits.js';
import { type CatchUpChunk, decodeCatchUpReadOk, encodeCatchUpRead } from '../protocol/codec-catch-up.js';
import { batchesEndOffset, checkChunk } from './catch-up.js';
import type { CatchUpRate } from './catch-up-rate.js';

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
  /** The bound on what catching up from the leader's segments copies (shared by the broker's replicas). */
  catchUpRate: CatchUpRate;
  onStop(reason: FollowerStop): void;
  /** Told of each change the follower makes to a log, so what is derived from it can follow. */
  onLogChange?(logId: string, change: FollowerLogChange): void;
}

/** A change a follower made to a local log. */
export type FollowerLogChange =
  /** Whole batches written from `from` (the log's end before them) on. */
  | { kind: 'appended'; bytes: Buffer; from: number }
  /** The log was cut back to end at `end`. */
  | { kind: 'cut'; end: number }
  /** The log was emptied to start at `start`. */
  | { kind: 'reset'; start: number };

export class TopicFollower {
  private running = true;
  private progressScheduled = false;
  private connection: ClientConnection | null = null;
  private readonly unsubscribes = new Map<string, () => void>();
  private retryMs = FOLLOWER_RETRY_MS_MIN;
  /**
   * The next failure is the first since a round went through: it is tried again at once, since a
   * leader whose process died refuses the new dial at once (leader-down, an election) and one
   * whose connection merely broke answers the new one. Later failures wait, doubling.
   */
  private retryAtOnce = true;
  /** A change of the local logs in progress (written batches, a truncation). */
  private local: Promise<void> | null = null;
  /** Logs far enough behind the leader to copy its sealed segments before fetching again. */
  private readonly catchingUp = new Set<string>();
  /** Where each log's last catch-up ended: from there on it fetches (the rest is the leader's active segment). */
  private readonly copiedTo = new Map<string, number>();
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

  /**
   * The leader found these logs differ from its own (or damaged) from `fromOffset` on, and took
   * this replica out of the in-sync set: each is cut back there, durably, and fetched again. A cut
   * that meets damage it cannot walk past empties the log to start over from the leader.
   */
  async repair(logs: ReadonlyArray<{ logId: string; fromOffset: number }>): Promise<void> {
    if (!this.running) throw new FerryError('NOT_LEADER', `${this.options.nodeId} no longer follows epoch ${this.options.epoch} of ${this.options.topic}`);
    await this.locally(async () => {
      for (const { logId, fromOffset } of logs) {
        const log = this.options.logs.get(logId);
        if (log === undefined || fromOffset >= log.nextOffset) continue;
        const before = log.nextOffset;
        let reset = false;
        const end = await log.truncateTo(fromOffset).catch(async (error: unknown) => {
          if (!isFerryError(error, 'CORRUPT_RANGE')) throw error;
          reset = true;
          return log.resetTo(Math.min(fromOffset, log.startOffset));
        });
        this.options.onLogChange?.(logId, reset ? { kind: 'reset', start: end } : { kind: 'cut', end });
        this.options.logger.warn('cluster.follower.repaired', { topic: this.options.topic, log: logId, epoch: this.options.epoch, from: before, to: end });
      }
    });
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
        if (this.catchingUp.size > 0) await this.catchUp(this.connection);
        this.retryMs = FOLLOWER_RETRY_MS_MIN;
        this.retryAtOnce = true;
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
        if (this.retryAtOnce) {
          this.retryAtOnce = false;
          continue;
        }
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
        this.options.onLogChange?.(logId, { kind: 'cut', end });
        if (end === before) continue;
        this.options.logger.warn('cluster.follower.truncated', { topic: this.options.topic, log: logId, epoch: this.options.epoch, from: before, to: end });
      }
    });
    await this.beginLeaderEpoch(connection);
  }

  /**
   * The leader's epoch begins here, durably, before its first batch comes: where the epoch before
   * it ends on the leader (EPOCH_END for `epoch - 1`) is where the leader's log ended when it took
   * the epoch up, since a leader appends nothing before its own epoch start is durable. A log that
   * ends exactly there (it holds everything of the earlier epochs, as every in-sync replica does
   * after a handover) records the start now, while the leader opens the topic, instead of before
   * writing the epoch's first batch, where its syncs held up the epoch's first commit
   * (docs/CLUSTERING.md, "Controlled shutdown"). A log that ends elsewhere fetches first; its
   * first batch of the epoch records the start as before.
   */
  private async beginLeaderEpoch(connection: ClientConnection): Promise<void> {
    const { epoch } = this.options;
    const behind = this.options.logs.ids().filter((logId) => this.options.logs.get(logId)!.leaderEpoch < epoch);
    if (behind.length === 0) return;
    const answer = await connection.request(
      (w, id) => encodeEpochEnd(w, id, { topic: this.options.topic, replicaId: this.options.nodeId, epoch, logs: behind.map((logId) => ({ logId, lastEpoch: epoch - 1 })) }),
      FRAME_TYPES.EPOCH_END_OK,
      decodeEpochEndOk,
    );
    await this.locally(async () => {
      await Promise.all(
        answer.logs.map(async ({ logId, endOffset }) => {
          const log = this.options.logs.get(logId);
          if (log === undefined || log.nextOffset !== endOffset || log.leaderEpoch >= epoch) return;
          await log.beginEpoch(epoch);
        }),
      );
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
      (r) => ({ answer: decodeReplicaFetchOk(r), payload: r.payload }),
    );
    await this.locally(() => this.apply(response.answer));
    // Applied: its batches are written (the tail cache and the notes copied what they keep), so
    // nothing reads the answer's bytes any more. Not after a failure: a write may still hold them.
    connection.recyclePayload(response.payload);
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
        const start = await log.resetTo(answer.logStartOffset);
        this.options.onLogChange?.(answer.logId, { kind: 'reset', start });
        this.options.logger.warn('cluster.follower.reset', { topic: this.options.topic, log: answer.logId, startOffset: answer.logStartOffset });
      }
      const copied = this.copiedTo.get(answer.logId) === log.nextOffset;
      if (!copied && log.nextOffset === log.startOffset && answer.leaderEnd > log.nextOffset) {
        // An empty log (new, or just reset) copies the leader's sealed segments first.
        this.catchingUp.add(answer.logId);
      } else {
        for (const batches of answer.batches) {
          if (batches.length === 0) continue;
          const from = log.nextOffset;
          await log.appendBatches(batches);
          this.options.onLogChange?.(answer.logId, { kind: 'appended', bytes: batches, from });
        }
      }
      if (answer.logStartOffset > log.startOffset) await log.deleteSegmentsBefore(answer.logStartOffset);
      this.options.highWatermarks.set(answer.logId, answer.highWatermark);
      if (!copied && answer.leaderEnd - log.nextOffset >= CATCH_UP_LAG_RECORDS_MIN) this.catchingUp.add(answer.logId);
    }
  }

  /**
   * Copies the leader's sealed segments for every log far behind, chunk by chunk, each checked
   * against the leader's digests before it is written (catch-up.ts), at most at the broker's
   * catch-up rate; then fetching goes on from where the copy ended. One chunk is asked for ahead:
   * the leader reads and sends the next while this replica checks and writes the last.
   */
  private async catchUp(connection: ClientConnection): Promise<void> {
    for (const logId of [...this.catchingUp]) {
      const log = this.options.logs.get(logId);
      const started = { offset: log?.nextOffset ?? 0, ms: this.options.clock.monotonicMs() };
      let bytes = 0;
      let next = log === undefined ? null : this.askChunk(connection, logId, log.nextOffset);
      while (log !== undefined && next !== null && this.running) {
        const { chunk, payload, reserved } = await next;
        next = null;
        this.options.catchUpRate.settle(reserved, chunk.batches.length);
        if (log.nextOffset < chunk.logStartOffset) {
          await this.locally(async () => this.options.onLogChange?.(logId, { kind: 'reset', start: await log.resetTo(chunk.logStartOffset) }));
          next = this.askChunk(connection, logId, log.nextOffset);
          continue;
        }
        if (chunk.batches.length === 0 || chunk.fromOffset !== log.nextOffset) break;
        try {
          const end = batchesEndOffset(chunk.batches, chunk.fromOffset);
          if (end < chunk.sealedEnd) next = this.askChunk(connection, logId, end);
          // The chunk's bytes are a view of the frame's payload, checked, written, then given back
          // for the next frame (the log keeps no reference to them once written).
          const checked = checkChunk(chunk);
          const from = log.nextOffset;
          await this.locally(async () => void (await log.appendBatches(checked, { matchedLeaderDigests: true })));
          // Noted as fetched batches are (the dedup window's ids), from the bytes in hand: not read back later.
          this.options.onLogChange?.(logId, { kind: 'appended', bytes: checked, from });
          bytes += checked.length;
          connection.recyclePayload(payload);
        } catch (error) {
          next?.catch(() => undefined);
          throw error;
        }
      }
      next?.catch(() => undefined);
      this.catchingUp.delete(logId);
      if (log !== undefined) this.copiedTo.set(logId, log.nextOffset);
      const seconds = Math.max(0.001, (this.options.clock.monotonicMs() - started.ms) / 1000);
      if (bytes > 0) {
        this.options.logger.info('cluster.follower.caught_up', { topic: this.options.topic, log: logId, from: started.offset, to: log?.nextOffset, bytes, mibPerSec: Math.round((bytes / 1048576 / seconds) * 10) / 10 });
      }
    }
  }

  /**
   * Asks the leader for the chunk of `logId` from `fromOffset` (CATCH_UP_READ) once the broker's
   * catch-up rate lets it (catch-up-rate.ts: paid for when asked, settled by the caller).
   */
  private async askChunk(connection: ClientConnection, logId: string, fromOffset: number): Promise<{ chunk: CatchUpChunk; payload: Buffer; reserved: number }> {
    const reserved = await this.options.catchUpRate.reserve();
    if (!this.running) throw new FerryError('NOT_LEADER', `${this.options.nodeId} no longer follows epoch ${this.options.epoch} of ${this.options.topic}`);
    const answer = await connection.request(
      (w, id) => encodeCatchUpRead(w, id, { topic: this.options.topic, replicaId: this.options.nodeId, epoch: this.options.epoch, logId, fromOffset, bytesMax: reserved }),
      FRAME_TYPES.CATCH_UP_READ_OK,
      (r) => ({ chunk: decodeCatchUpReadOk(r), payload: r.payload }),
    );
    return { ...answer, reserved };
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
