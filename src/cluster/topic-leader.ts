/**
 * The leader's side of one topic in one epoch: it serves its followers' fetches (long-poll), keeps
 * what each follower holds, computes each log's high watermark over the in-sync set, and changes
 * the in-sync set, through etcd only, when a follower falls behind or catches up.
 *
 * Safety rests on three rules (docs/CLUSTERING.md, "Invariants"): the high watermark of a log is the
 * least durable end over the in-sync set, the leader included; a follower leaves the local view of
 * the set only after etcd took it out, and joins it before etcd puts it in; and a follower is put in
 * only once it holds everything committed. So every committed record is on every replica etcd calls
 * in sync, and only those can be elected.
 */
import { FerryError } from '../errors.js';
import type { Clock, TimerHandle } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { EpochEndRequest, EpochEndResponse, FetchLogResponse, ReplicaFetchRequest, ReplicaFetchResponse, ReplicaProgress } from '../protocol/codec-replication.js';
import type { ReplicaLog } from '../storage/types.js';
import { CommitWaiters } from './commit-waiters.js';
import { CATCH_UP_CHUNK_BYTES_MAX, CATCH_UP_QUIET_MS, FETCH_BYTES_MAX, FETCH_WAIT_MS_MAX, FOLLOWER_GONE_MS, HANDOVER_POLL_MS, IN_SYNC_CHECK_INTERVAL_MS } from './limits.js';
import type { CatchUpChunk, CatchUpReadRequest } from '../protocol/codec-catch-up.js';
import { readChunk } from './catch-up.js';

/** What one follower holds of one log, as it last said. */
interface LogProgress {
  fetchOffset: number;
  syncedEnd: number;
}

interface FollowerState {
  logs: Map<string, LogProgress>;
  /** Last time its fetch reached the leader's end of every log. */
  caughtUpMs: number;
  /** Last fetch or progress message. */
  contactMs: number;
  /** Fetches parked at the leader right now. */
  parked: number;
  /**
   * The leader's end of each log when it last answered this follower: a follower that fetches from
   * there on has caught up (Kafka's rule: under a steady load no follower is ever at the very end).
   */
  answeredEnds: Map<string, number>;
}

interface ParkedFetch {
  follower: string;
  wake(): void;
}

export interface TopicLeaderOptions {
  topic: string;
  nodeId: string;
  epoch: number;
  /** The in-sync set etcd holds (the leader included). */
  inSync: readonly string[];
  /** Every replica of the topic (the leader included). */
  replicas: readonly string[];
  minInSync: number;
  replicaLagMaxMs: number;
  /** High watermarks the leader knew as a follower (a starting point; they never go back). */
  knownHighWatermarks: ReadonlyMap<string, number>;
  clock: Clock;
  logger: Logger;
  /** Asks etcd to make `inSync` the in-sync set (compare-and-swap); false when this leader was fenced. */
  changeInSync(inSync: string[]): Promise<boolean>;
  /** Told when this leader learns it was fenced (a newer epoch exists). */
  onFenced(reason: string): void;
}

export class TopicLeader {
  private readonly logs = new Map<string, ReplicaLog>();
  private readonly highWatermarks = new Map<string, number>();
  private readonly waiters = new Map<string, CommitWaiters>();
  private readonly unsubscribes: Array<() => void> = [];
  private readonly followers = new Map<string, FollowerState>();
  /** The in-sync set as this leader counts it: etcd's, plus followers being added. */
  private readonly counted: Set<string>;
  /** The in-sync set etcd holds. */
  private confirmed: Set<string>;
  private parked = new Set<ParkedFetch>();
  private changing = false;
  private timer: TimerHandle | null = null;
  private stopped: FerryError | null = null;
  /**
   * Followers told to cut logs back (a digest mismatch or damage; docs/CLUSTERING.md, "Replica
   * digests"): log id → the offset cut to. Such a follower may not join the in-sync set before its
   * fetches show every cut done, whatever it said before.
   */
  private readonly repairing = new Map<string, Map<string, number>>();
  /** Each log's end when this leadership took it up: a high watermark past it commits this epoch's first record. */
  private readonly epochStarts = new Map<string, number>();
  /** A record of this epoch is committed (logged once: how long a new leader took to confirm). */
  private committing = false;
  private readonly startedMs: number;
  /** When this leader last served a catch-up chunk (monotonic ms). */
  private lastCatchUpMs = Number.NEGATIVE_INFINITY;
  /** A controlled handover is under way: every write is refused with this, while followers still fetch and commits still come. */
  private sealed: FerryError | null = null;

  constructor(private readonly options: TopicLeaderOptions) {
    this.confirmed = new Set(options.inSync);
    this.counted = new Set(options.inSync);
    const now = options.clock.monotonicMs();
    this.startedMs = now;
    for (const replica of options.replicas) {
      if (replica === options.nodeId) continue;
      // Followers in sync get the lag bound from now: they are reconnecting to a new leader.
      this.followers.set(replica, { logs: new Map(), caughtUpMs: now, contactMs: now, parked: 0, answeredEnds: new Map() });
    }
    this.armTimer();
  }

  get epoch(): number {
    return this.options.epoch;
  }

  get inSync(): readonly string[] {
    return [...this.confirmed];
  }

  /** Whether this leader still acts (not stepped down). */
  get active(): boolean {
    return this.stopped === null;
  }

  /** Adds a log of the topic (a partition, or a journal or delay log created while leading). */
  addLog(logId: string, log: ReplicaLog): void {
    if (this.logs.has(logId)) return;
    this.logs.set(logId, log);
    this.epochStarts.set(logId, log.nextOffset);
    this.waiters.set(logId, new CommitWaiters());
    const known = this.options.knownHighWatermarks.get(logId) ?? log.startOffset;
    this.highWatermarks.set(logId, Math.min(Math.max(known, log.startOffset), log.nextOffset));
    log.setVisibleEndOffset(this.highWatermarks.get(logId)!);
    this.unsubscribes.push(log.onAdvance(() => this.onLogAdvance(logId)));
    this.recompute(logId);
  }

  /** One past the last committed offset of a log. */
  highWatermark(logId: string): number {
    return this.highWatermarks.get(logId) ?? 0;
  }

  /** Fails with NOT_ENOUGH_REPLICAS when fewer than minInSync replicas are in sync: nothing may be confirmed. */
  checkWritable(): void {
    if (this.stopped !== null) throw this.stopped;
    if (this.sealed !== null) throw this.sealed;
    if (this.confirmed.size < this.options.minInSync) {
      throw new FerryError('NOT_ENOUGH_REPLICAS', `topic ${this.options.topic} has ${this.confirmed.size} replicas in sync, fewer than minInSync ${this.options.minInSync}`, {
        detail: { inSync: [...this.confirmed], minInSync: this.options.minInSync },
      });
    }
  }

  /**
   * Resolves once `offset` of the log (appended already) is committed; fails if leadership ends
   * first, with the end's error marked `appended` (appendedNotCommitted).
   */
  waitCommitted(logId: string, offset: number): Promise<void> {
    if (this.stopped !== null) return Promise.reject(appendedNotCommitted(this.stopped));
    const waiters = this.waiters.get(logId);
    if (waiters === undefined) return Promise.reject(new FerryError('INTERNAL', `topic ${this.options.topic} has no log ${logId}`));
    return waiters.wait(offset, this.highWatermark(logId));
  }

  // ---- what followers send ------------------------------------------------------------------

  async fetch(request: ReplicaFetchRequest, onParked?: (cancel: () => void) => void): Promise<ReplicaFetchResponse> {
    this.checkEpoch(request.epoch, request.replicaId);
    const follower = this.follower(request.replicaId);
    this.note(request.replicaId, follower, request.logs);
    const deadline = this.options.clock.monotonicMs() + Math.min(request.maxWaitMs, FETCH_WAIT_MS_MAX);
    for (;;) {
      const response = await this.answer(request);
      follower.answeredEnds = new Map(response.logs.map((log) => [log.logId, log.leaderEnd]));
      if (this.stopped !== null) return response;
      // Nothing new: wait for an append or the deadline.
      const remaining = deadline - this.options.clock.monotonicMs();
      if (remaining <= 0 || !this.hasNothingNew(request, response)) return response;
      await this.park(request.replicaId, follower, remaining, onParked);
      if (this.stopped !== null) throw this.stopped;
    }
  }

  progress(message: ReplicaProgress): void {
    if (this.stopped !== null || message.epoch !== this.options.epoch) return;
    const follower = this.followers.get(message.replicaId);
    if (follower === undefined) return;
    this.note(message.replicaId, follower, message.logs);
  }

  epochEnd(request: EpochEndRequest): EpochEndResponse {
    this.checkEpoch(request.epoch, request.replicaId);
    return {
      logs: request.logs.map(({ logId, lastEpoch }) => {
        const log = this.logs.get(logId);
        // A log the leader does not have: the follower keeps nothing of it.
        if (log === undefined) return { logId, epoch: -1, endOffset: 0 };
        const end = log.epochEnd(lastEpoch);
        return { logId, epoch: end.epoch, endOffset: end.endOffset };
      }),
    };
  }

  /** A far-behind follower copies a chunk of the leader's sealed segments (catch-up.ts). */
  async catchUpChunk(request: CatchUpReadRequest): Promise<CatchUpChunk> {
    this.checkEpoch(request.epoch, request.replicaId);
    this.follower(request.replicaId).contactMs = this.lastCatchUpMs = this.options.clock.monotonicMs();
    const log = this.logs.get(request.logId);
    if (log === undefined) throw new FerryError('INVALID_ARGUMENT', `topic ${this.options.topic} has no log ${request.logId}`);
    return readChunk(log, request, Math.min(request.bytesMax, CATCH_UP_CHUNK_BYTES_MAX));
  }

  /** A follower copied a chunk of this leader's segments within CATCH_UP_QUIET_MS: background checks wait. */
  get servingCatchUp(): boolean {
    return this.options.clock.monotonicMs() - this.lastCatchUpMs < CATCH_UP_QUIET_MS;
  }

  /** A follower's connection closed: its parked fetches are gone. */
  disconnected(replicaId: string): void {
    const follower = this.followers.get(replicaId);
    if (follower !== undefined) follower.parked = 0;
  }

  private checkEpoch(epoch: number, replicaId: string): void {
    if (this.stopped !== null) throw this.stopped;
    if (epoch < this.options.epoch) {
      throw new FerryError('STALE_EPOCH', `${replicaId} follows epoch ${epoch} of ${this.options.topic}; the leader is in epoch ${this.options.epoch}`, {
        detail: { epoch: this.options.epoch },
      });
    }
    if (epoch > this.options.epoch) {
      // A follower knows a newer epoch than this leader: this leader was fenced.
      this.options.onFenced(`${replicaId} follows epoch ${epoch}`);
      throw new FerryError('NOT_LEADER', `epoch ${this.options.epoch} of ${this.options.topic} is over`, { detail: { epoch } });
    }
    if (!this.followers.has(replicaId)) throw new FerryError('INVALID_ARGUMENT', `${replicaId} holds no replica of ${this.options.topic}`);
  }

  private follower(replicaId: string): FollowerState {
    return this.followers.get(replicaId)!;
  }

  /** Records what a follower holds, and whether it has caught up with every log's end. */
  private note(replicaId: string, follower: FollowerState, logs: ReadonlyArray<{ logId: string; fetchOffset: number; syncedEnd: number }>): void {
    const now = this.options.clock.monotonicMs();
    follower.contactMs = now;
    const cuts = this.repairing.get(replicaId);
    for (const { logId, fetchOffset, syncedEnd } of logs) {
      follower.logs.set(logId, { fetchOffset, syncedEnd });
      if (cuts !== undefined && fetchOffset <= (cuts.get(logId) ?? -1)) cuts.delete(logId);
    }
    if (cuts !== undefined && cuts.size === 0) this.repairing.delete(replicaId);
    let caughtUp = true;
    for (const [logId, log] of this.logs) {
      const held = follower.logs.get(logId);
      const target = follower.answeredEnds.get(logId) ?? log.nextOffset;
      if (held === undefined || held.fetchOffset < target) {
        caughtUp = false;
        break;
      }
    }
    if (caughtUp) follower.caughtUpMs = now;
    for (const logId of this.logs.keys()) this.recompute(logId);
  }

  private async answer(request: ReplicaFetchRequest): Promise<ReplicaFetchResponse> {
    const asked = new Map(request.logs.map((log) => [log.logId, log.fetchOffset]));
    let budget = Math.min(request.bytesMax, FETCH_BYTES_MAX);
    const logs: FetchLogResponse[] = [];
    for (const [logId, log] of this.logs) {
      const fetchOffset = asked.get(logId) ?? log.startOffset;
      let batches: Buffer[] = [];
      if (budget > 0 && fetchOffset >= log.startOffset && fetchOffset < log.writtenOffset + 1) {
        batches = await log.readBatches(fetchOffset, { bytesMax: budget });
        for (const batch of batches) budget -= batch.length;
      }
      logs.push({ logId, logStartOffset: log.startOffset, highWatermark: this.highWatermark(logId), leaderEnd: log.nextOffset, batches });
    }
    return { epoch: this.options.epoch, logs };
  }

  /** Nothing to send, and no high watermark the follower has not heard of. */
  private hasNothingNew(request: ReplicaFetchRequest, response: ReplicaFetchResponse): boolean {
    const known = new Set(request.logs.map((log) => log.logId));
    for (const log of response.logs) {
      // A log the follower does not know of yet: it must learn of it now.
      if (!known.has(log.logId)) return false;
      if (log.batches.length > 0) return false;
    }
    return true;
  }

  private park(replicaId: string, follower: FollowerState, waitMs: number, onParked?: (cancel: () => void) => void): Promise<void> {
    return new Promise<void>((resolve) => {
      follower.parked++;
      let timer: TimerHandle | null = null;
      const entry: ParkedFetch = {
        follower: replicaId,
        wake: () => {
          if (!this.parked.delete(entry)) return;
          timer?.cancel();
          follower.parked = Math.max(0, follower.parked - 1);
          follower.contactMs = this.options.clock.monotonicMs();
          resolve();
        },
      };
      this.parked.add(entry);
      timer = this.options.clock.schedule(waitMs, entry.wake);
      onParked?.(entry.wake);
    });
  }

  private wakeParked(): void {
    for (const entry of [...this.parked]) entry.wake();
  }

  // ---- high watermarks ----------------------------------------------------------------------

  private onLogAdvance(logId: string): void {
    this.recompute(logId);
    this.wakeParked();
  }

  /** The least durable end of the log over the in-sync set, the leader's own included; it never goes back. */
  private recompute(logId: string): void {
    const log = this.logs.get(logId);
    if (log === undefined || this.stopped !== null) return;
    const always = log.durability === 'always';
    let end = always ? log.syncedOffset + 1 : log.writtenOffset + 1;
    for (const member of this.counted) {
      if (member === this.options.nodeId) continue;
      const held = this.followers.get(member)?.logs.get(logId);
      const heldEnd = held === undefined ? log.startOffset : always ? held.syncedEnd : held.fetchOffset;
      end = Math.min(end, heldEnd);
    }
    const before = this.highWatermarks.get(logId) ?? 0;
    if (end <= before) return;
    this.highWatermarks.set(logId, end);
    log.setVisibleEndOffset(end);
    this.waiters.get(logId)!.advance(end);
    if (!this.committing && end > (this.epochStarts.get(logId) ?? end)) {
      this.committing = true;
      this.options.logger.info('cluster.leader.first_commit', { topic: this.options.topic, epoch: this.options.epoch, log: logId, sinceStartMs: Math.round(this.options.clock.monotonicMs() - this.startedMs) });
    }
  }

  // ---- the in-sync set ----------------------------------------------------------------------

  private armTimer(): void {
    this.timer = this.options.clock.schedule(IN_SYNC_CHECK_INTERVAL_MS, () => {
      this.timer = null;
      if (this.stopped !== null) return;
      void this.checkInSync();
      this.armTimer();
    });
  }

  /** One change at a time: drop a follower that lags or is gone, or add one that caught up. */
  private async checkInSync(): Promise<void> {
    if (this.changing) return;
    const now = this.options.clock.monotonicMs();
    const lag = this.options.replicaLagMaxMs;
    for (const [replicaId, follower] of this.followers) {
      const inSync = this.confirmed.has(replicaId);
      const gone = follower.parked === 0 && now - follower.contactMs > FOLLOWER_GONE_MS;
      if (inSync && (now - follower.caughtUpMs > lag || gone)) {
        await this.change([...this.confirmed].filter((member) => member !== replicaId), null, `${replicaId} ${gone ? 'is gone' : 'lags'}`);
        return;
      }
      if (!inSync && !gone && !this.repairing.has(replicaId) && this.holdsCommitted(follower)) {
        await this.change([...this.confirmed, replicaId], replicaId, `${replicaId} caught up`);
        return;
      }
    }
  }

  /** Whether the follower holds, durably, everything committed in every log. */
  private holdsCommitted(follower: FollowerState): boolean {
    for (const [logId, log] of this.logs) {
      const held = follower.logs.get(logId);
      const heldEnd = held === undefined ? -1 : log.durability === 'always' ? held.syncedEnd : held.fetchOffset;
      if (heldEnd < this.highWatermark(logId) || (held?.fetchOffset ?? -1) < (follower.answeredEnds.get(logId) ?? log.nextOffset)) return false;
    }
    return true;
  }

  private async change(next: string[], adding: string | null, reason: string): Promise<void> {
    this.changing = true;
    // A joining follower counts from now: the high watermark cannot pass it before etcd lists it.
    if (adding !== null) this.counted.add(adding);
    try {
      const ok = await this.options.changeInSync(next);
      if (!ok) {
        if (adding !== null) this.counted.delete(adding);
        this.options.onFenced(`the in-sync set of ${this.options.topic} changed under epoch ${this.options.epoch}`);
        return;
      }
      this.confirmed = new Set(next);
      // A leaving follower stops counting only now that etcd no longer lists it.
      for (const member of [...this.counted]) if (!this.confirmed.has(member)) this.counted.delete(member);
      this.options.logger.info('cluster.in_sync.changed', { topic: this.options.topic, epoch: this.options.epoch, inSync: next, reason });
      for (const logId of this.logs.keys()) this.recompute(logId);
    } catch (error) {
      if (adding !== null) this.counted.delete(adding);
      this.options.logger.warn('cluster.in_sync.change_failed', { topic: this.options.topic, reason, error });
    } finally {
      this.changing = false;
    }
  }

  /**
   * The placement changed (a replica moves, reassignment.ts): an added replica is followed from
   * now; a removed one is forgotten once it is out of the in-sync set.
   */
  setReplicas(replicas: readonly string[]): void {
    const now = this.options.clock.monotonicMs();
    for (const replica of replicas) {
      if (replica !== this.options.nodeId && !this.followers.has(replica)) this.followers.set(replica, { logs: new Map(), caughtUpMs: now, contactMs: now, parked: 0, answeredEnds: new Map() });
    }
    for (const replica of [...this.followers.keys()]) if (!replicas.includes(replica) && !this.counted.has(replica)) this.followers.delete(replica);
  }

  /** Takes `members` out of the in-sync set (a move completing); true once etcd no longer lists them. */
  async removeFromInSync(members: readonly string[], reason: string): Promise<boolean> {
    while (this.changing && this.stopped === null) await new Promise<void>((resolve) => this.options.clock.schedule(IN_SYNC_CHECK_INTERVAL_MS, resolve));
    if (this.stopped !== null) return false;
    const next = [...this.confirmed].filter((member) => !members.includes(member));
    if (next.length !== this.confirmed.size) await this.change(next, null, reason);
    return this.stopped === null && members.every((member) => !this.confirmed.has(member));
  }

  /** The followers of the topic (every replica but the leader). */
  followerIds(): string[] {
    return [...this.followers.keys()];
  }

  /** Logs of the topic this leader holds. */
  get logMap(): ReadonlyMap<string, ReplicaLog> {
    return this.logs;
  }

  /** `replicaId` is told to cut `cuts` (log id → offset) and fetch again: it stays out of the in-sync set until it did. */
  holdOut(replicaId: string, cuts: ReadonlyMap<string, number>): void {
    if (cuts.size > 0) this.repairing.set(replicaId, new Map(cuts));
  }

  /**
   * Controlled handover: from now on no write is taken (each is refused with `error`, naming no
   * leader yet), while the followers go on fetching and what was appended is still committed, so
   * a follower can come to hold everything. stepDown ends it.
   */
  seal(error: FerryError): void {
    if (this.stopped === null) this.sealed = error;
  }

  /**
   * Controlled handover: the first of `candidates` that holds every log to the leader's end, with
   * everything committed, once one does (looked at every HANDOVER_POLL_MS); undefined after
   * `timeoutMs`. Nothing is appended meanwhile (the leader is sealed).
   */
  async successorHoldingAll(candidates: readonly string[], timeoutMs: number): Promise<string | undefined> {
    const deadline = this.options.clock.monotonicMs() + timeoutMs;
    for (;;) {
      const found = candidates.find((member) => this.holdsAll(member));
      if (found !== undefined || this.options.clock.monotonicMs() >= deadline) return found;
      await new Promise<void>((resolve) => this.options.clock.schedule(HANDOVER_POLL_MS, resolve));
    }
  }

  private holdsAll(member: string): boolean {
    const held = this.followers.get(member)?.logs;
    if (held === undefined) return false;
    for (const [logId, log] of this.logs) {
      if ((held.get(logId)?.fetchOffset ?? -1) < log.nextOffset || this.highWatermark(logId) < log.nextOffset) return false;
    }
    return true;
  }

  /** What each replica holds, for describe: the leader's own ends and each follower's. */
  replicaEnds(): Map<string, Map<string, number>> {
    const out = new Map<string, Map<string, number>>();
    const own = new Map<string, number>();
    for (const [logId, log] of this.logs) own.set(logId, log.nextOffset);
    out.set(this.options.nodeId, own);
    for (const [replicaId, follower] of this.followers) {
      out.set(replicaId, new Map([...follower.logs].map(([logId, held]) => [logId, held.fetchOffset])));
    }
    return out;
  }

  /**
   * Ends this leadership: commit waiters fail with `error` marked `appended`, requests after it
   * with `error` itself; parked fetches wake, the timer stops. Idempotent.
   */
  stepDown(error: FerryError): void {
    if (this.stopped !== null) return;
    this.stopped = error;
    this.timer?.cancel();
    this.timer = null;
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    const uncommitted = appendedNotCommitted(error);
    for (const waiters of this.waiters.values()) waiters.failAll(uncommitted);
    this.wakeParked();
  }
}

/**
 * What a commit wait fails with when the leadership ends: the record is in this leader's log and
 * may be on followers, so the next leader may still commit it. The code stays (NOT_LEADER: send it
 * to the next leader, with the same id); `detail.appended: true` says the outcome is unknown, not
 * a refusal (docs/CLUSTERING.md, "Clients").
 */
function appendedNotCommitted(error: FerryError): FerryError {
  return new FerryError(error.code, `${error.message}; the write was appended before the leadership ended and may still be committed`, {
    cause: error,
    detail: { ...error.detail, appended: true },
  });
}
