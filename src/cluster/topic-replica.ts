/**
 * This broker's replica of one topic: its local logs, and the role etcd gives it — leader, follower,
 * or neither. Every change of role runs in one chain, in the order etcd's states arrive, and never
 * goes back to an older epoch. It elects itself when the leader is gone and it is in sync, and it
 * hands leadership over to an in-sync follower on a controlled shutdown.
 */
import { FerryError } from '../errors.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { LogOptions, LogRole, PartitionLog, ReplicaLog } from '../storage/types.js';
import type { ClusterStore, TopicPlacement, TopicState, VersionedState } from './cluster-store.js';
import { completedMove, moving, readyToComplete } from './reassignment.js';
import { ELECTION_STAGGER_MS, TRANSITION_RETRY_MS } from './limits.js';
import { handOverTopic } from './handover.js';
import { logIdOf, type LocalTopics } from './local-topics.js';
import { ReplicatedLog } from './replicated-log.js';
import { dedupWindowMsOf, TopicNotes } from './noted-ids.js';
import type { GroupReplay } from '../broker/delivery/group-snapshots.js';
import { TopicFollower, type FollowerStop } from './topic-follower.js';
import { TopicLeader } from './topic-leader.js';
import type { ClientConnection } from '../client/connection.js';
import type { ReplicaDigestRequest, ReplicaDigestResponse, ReplicaRepairRequest, TopicVerification } from '../protocol/codec-digest.js';
import { answerDigests } from './digest-answer.js';
import { ReplicaChecks } from './replica-checks.js';
import { ReplicaDamage } from './replica-damage.js';
import type { CatchUpRate } from './catch-up-rate.js';
import { LeadershipChanges } from './leadership-changes.js';
import { partitionsOf, WarmGroups } from './warm-groups.js';

export interface TopicReplicaContext {
  nodeId: string;
  store: ClusterStore;
  local: LocalTopics;
  /** A connection to a live broker (CONNECTION_REFUSED when it is not alive). */
  connect(nodeId: string): Promise<ClientConnection>;
  clock: Clock;
  logger: Logger;
  replicaLagMaxMs: number;
  /** A leader checks one follower's digests per this interval in the background (0: never). */
  replicaVerifyIntervalMs: number;
  /** Told of each replica found to differ from its leader (ferry_replica_mismatches_total). */
  onMismatch(): void;
  /** The bound on what catching up copies (cluster.replicaCatchUpBytesPerSec). */
  catchUpRate: CatchUpRate;
  /** Opens a local log (the storage engine's). */
  openLocalLog(options: LogOptions): Promise<ReplicaLog>;
  /** Address of a live broker; undefined when it is not alive. */
  brokerAddress(nodeId: string): string | undefined;
  /** Told when this replica's role or epoch changed (metrics, metadata). */
  onRoleChange(topic: string, role: 'leader' | 'follower' | 'none', state: TopicState): void;
}

type Role = { kind: 'none' } | { kind: 'leader'; leader: TopicLeader } | { kind: 'follower'; follower: TopicFollower };

export class TopicReplica {
  private readonly logs = new Map<string, ReplicaLog>();
  private readonly opening = new Map<string, Promise<ReplicaLog>>();
  private readonly highWatermarks = new Map<string, number>();
  /** The ids of what this broker replicated as a follower, for a promotion's dedup index. */
  private readonly notes = new TopicNotes(() => dedupWindowMsOf(this.placement.config), (logId) => this.logs.get(logId), () => this.context.clock.nowMs());
  /** The group journals replayed as this broker follows them, for a promotion's open of the groups. */
  private readonly warmGroups = new WarmGroups(() => partitionsOf(this.placement.config), (logId) => this.logs.get(logId));
  private role: Role = { kind: 'none' };
  /** The broker's service of the topic is open (between becoming leader and dropping the role). */
  private serving = false;
  private current: VersionedState | null = null;
  private chain: Promise<void> = Promise.resolve();
  private closed = false;
  /** Leaders known to be down (their port refused): an election may start at once. */
  private readonly down = new Set<string>();
  private electionTimer: { cancel(): void } | null = null;
  private retryTimer: { cancel(): void } | null = null;
  /**
   * States up to this etcd revision were written before this process started: one that names this
   * broker leader is a leadership it held before a restart, and it leads again only at a new epoch.
   */
  private resumedUpTo = -1;

  private placementNow: TopicPlacement;
  /** The leader's checks of its followers' digests, while this broker leads. */
  private checks: ReplicaChecks | null = null;
  /** Damage found in this replica's logs, and its report to the leader. */
  private readonly damage: ReplicaDamage;
  /** This broker taking the topic up or handing it over: requests wait for it (leadership-changes.ts). */
  private readonly changes: LeadershipChanges;

  constructor(
    placement: TopicPlacement,
    private readonly context: TopicReplicaContext,
  ) {
    this.placementNow = placement;
    this.damage = new ReplicaDamage({
      topic: () => this.name,
      clock: context.clock,
      logger: context.logger,
      connectToLeader: () => (this.role.kind === 'follower' ? context.connect(this.role.follower.leaderId) : null),
    });
    this.changes = new LeadershipChanges(context.clock);
  }

  /** Where the topic's replicas are, as etcd last said. */
  get placement(): TopicPlacement {
    return this.placementNow;
  }

  get name(): string {
    return this.placement.name;
  }

  get state(): TopicState | null {
    return this.current?.state ?? null;
  }

  /** The state acted on, with its etcd revision (after a handover: the successor's). */
  get versionedState(): VersionedState | null {
    return this.current;
  }

  /** Resolves once no change of this topic's leadership is under way here, or after `timeoutMs`. */
  settled(timeoutMs: number): Promise<void> {
    return this.changes.settled(timeoutMs);
  }

  /** Leads and serves the topic (its service opened): requests may come. */
  get isLeader(): boolean {
    return this.role.kind === 'leader' && this.role.leader.active && this.serving;
  }

  get leader(): TopicLeader | null {
    return this.role.kind === 'leader' ? this.role.leader : null;
  }

  /** High watermark of a log: the leader's own, or what a follower last heard. */
  highWatermark(logId: string): number {
    return this.role.kind === 'leader' ? this.role.leader.highWatermark(logId) : (this.highWatermarks.get(logId) ?? 0);
  }

  localLog(logId: string): ReplicaLog | undefined {
    return this.logs.get(logId);
  }

  /** Prepares the replica's files and opens the logs found on disk, before any state is acted on. */
  start(): Promise<void> {
    const openFound = async (): Promise<void> => {
      await this.context.local.prepare(this.name, this.placement.config);
      for (const logId of await this.context.local.localLogIds(this.name)) await this.openLog(logId);
    };
    return new Promise<void>((resolve, reject) => this.run(() => openFound().then(resolve, reject)));
  }

  /** The replica was taken up at start from the metadata as of `revision` (see resumedUpTo). */
  resumeFrom(revision: number): void {
    this.resumedUpTo = revision;
  }

  /** The placement changed: a replica is moving (reassignment.ts). */
  onPlacement(next: TopicPlacement): void {
    this.run(async () => {
      this.placementNow = next;
      this.leader?.setReplicas(next.replicas);
      await this.completeMove();
    });
  }

  /**
   * Leader only: a move whose new replicas are all in sync completes. A leaving leader first hands
   * the topic to a replica that stays (which then completes it); otherwise the leaving replicas
   * leave the in-sync set, then the placement.
   */
  private async completeMove(): Promise<void> {
    const leader = this.leader;
    if (leader === null || !leader.active || this.current === null || !readyToComplete(this.placementNow, this.current.state.inSync)) return;
    const removing = this.placementNow.removing ?? [];
    if (removing.includes(this.context.nodeId)) {
      await this.handOverNow(new Set(removing));
      return;
    }
    if (!(await leader.removeFromInSync(removing, 'the replica moves to another broker'))) return;
    const read = await this.context.store.getPlacement(this.name);
    if (read === null || !readyToComplete(read.placement, this.current?.state.inSync ?? [])) return;
    const done = completedMove(read.placement);
    if (await this.context.store.casPlacement(this.name, read.modRevision, done)) {
      this.context.logger.info('cluster.reassign.completed', { topic: this.name, replicas: done.replicas, removed: removing });
    }
  }

  /** A state from etcd (or from this broker's own compare-and-swap). */
  onState(versioned: VersionedState): void {
    // Named leader: requests that come before the service is open wait for it, not refused.
    const named = versioned.state.leader === this.context.nodeId && this.leader?.epoch !== versioned.state.epoch;
    const taking = named && !this.closed ? this.changes.begin() : null;
    this.run(async () => {
      try {
        const known = this.current;
        if (known !== null && (versioned.state.epoch < known.state.epoch || versioned.modRevision < known.modRevision)) return;
        this.current = versioned;
        await this.reconcile();
      } finally {
        taking?.();
      }
    });
  }

  /** A broker's lease ended: if it led this topic, it is gone. */
  onBrokerGone(nodeId: string): void {
    if (this.current?.state.leader !== nodeId) return;
    this.down.add(nodeId);
    this.run(() => this.reconcile());
  }

  /** A broker came (back): it is not known to be down any more. */
  onBrokerAlive(nodeId: string): void {
    this.down.delete(nodeId);
  }

  /** The log factory of the broker's topic while this broker leads it. */
  async openForBroker(role: LogRole): Promise<PartitionLog> {
    const leader = this.leader;
    if (leader === null || !leader.active) throw this.notLeader();
    const logId = logIdOf(role);
    const log = this.logs.get(logId) ?? (await this.openLog(logId));
    // The epoch's start is made durable meanwhile (becomeLeader began it): the first append waits for it.
    const epochBegun = log.leaderEpoch < leader.epoch ? log.beginEpoch(leader.epoch) : null;
    epochBegun?.catch(() => undefined);
    leader.addLog(logId, log);
    return new ReplicatedLog(logId, log, leader, this.notes.take(logId, log.nextOffset), epochBegun);
  }

  notLeader(): FerryError {
    const leader = this.current?.state.leader ?? null;
    const address = leader === null ? undefined : this.context.brokerAddress(leader);
    return new FerryError('NOT_LEADER', leader === null ? `topic ${this.name} has no leader right now` : `topic ${this.name} is led by ${leader}${address === undefined ? '' : ` at ${address}`}`, {
      detail: { topic: this.name, leader, address: address ?? null, epoch: this.current?.state.epoch ?? 0 },
    });
  }

  /** A group's journal as replayed while this broker followed it, for its open as leader (warm-groups.ts). */
  warmGroupReplay(group: string): Promise<GroupReplay | null> {
    return this.warmGroups.take(group);
  }

  /** The local log of `logId`, opened once however many ask at once. */
  private openLog(logId: string): Promise<ReplicaLog> {
    const existing = this.logs.get(logId);
    if (existing !== undefined) return Promise.resolve(existing);
    let opening = this.opening.get(logId);
    if (opening === undefined) {
      opening = this.context.openLocalLog(this.context.local.logOptions(this.name, logId)).then(
        (log) => {
          this.logs.set(logId, log);
          this.opening.delete(logId);
          if (log.recovery.damaged !== undefined) this.damage.noted(logId, log.recovery.damaged);
          return log;
        },
        (error: unknown) => {
          this.opening.delete(logId);
          throw error;
        },
      );
      this.opening.set(logId, opening);
    }
    return opening;
  }

  private run(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((error: unknown) => {
      this.context.logger.error('cluster.replica.transition_failed', { topic: this.name, error });
      this.retryLater();
    });
  }

  /**
   * A transition failed (etcd unreachable during an election, a log that would not open): look
   * again later, since nothing in etcd may change to wake this replica.
   */
  private retryLater(): void {
    if (this.closed || this.retryTimer !== null) return;
    this.retryTimer = this.context.clock.schedule(TRANSITION_RETRY_MS, () => {
      this.retryTimer = null;
      this.run(async () => {
        const read = await this.context.store.getState(this.name);
        if (read !== null && (this.current === null || read.modRevision >= this.current.modRevision)) this.current = read;
        await this.reconcile();
      });
    });
  }

  /** Brings the role in line with the state etcd holds. */
  private async reconcile(): Promise<void> {
    if (this.closed || this.current === null) return;
    const { state } = this.current;
    const me = this.context.nodeId;
    if (state.leader === me) {
      if (this.role.kind === 'leader' && this.role.leader.epoch === state.epoch) return;
      const taking = this.changes.begin();
      try {
        await (this.current.modRevision <= this.resumedUpTo ? this.reclaim() : this.becomeLeader(state));
      } finally {
        taking();
      }
      return;
    }
    if (state.leader !== null && !this.down.has(state.leader) && this.context.brokerAddress(state.leader) !== undefined) {
      if (this.role.kind === 'follower' && this.role.follower.leaderId === state.leader && this.role.follower.epoch === state.epoch) return;
      await this.becomeFollower(state, state.leader);
      return;
    }
    // No leader, or one that is gone: stop what we did, and run if we may.
    await this.dropRole(state);
    if (state.inSync.includes(me)) this.scheduleElection(state);
  }

  private scheduleElection(state: TopicState): void {
    if (this.electionTimer !== null) return;
    // The gone leader is no candidate: the first live in-sync replica runs at once.
    const candidates = this.placement.replicas.filter((replica) => replica !== state.leader && state.inSync.includes(replica) && (replica === this.context.nodeId || this.context.brokerAddress(replica) !== undefined));
    const rank = Math.max(0, candidates.indexOf(this.context.nodeId));
    this.electionTimer = this.context.clock.schedule(rank * ELECTION_STAGGER_MS, () => {
      this.electionTimer = null;
      this.run(() => this.elect());
    });
  }

  /** Runs for leader: a compare-and-swap on the state read, with the next epoch. */
  private async elect(): Promise<void> {
    if (this.closed || this.current === null) return;
    const { state, modRevision } = this.current;
    const me = this.context.nodeId;
    if (!state.inSync.includes(me) || state.leader === me) return;
    if (this.damage.damaged) {
      this.context.logger.warn('cluster.election.declined', { topic: this.name, reason: 'this replica holds damaged records' });
      return;
    }
    if (state.leader !== null && !this.down.has(state.leader) && this.context.brokerAddress(state.leader) !== undefined) return;
    // A leader known to be gone leaves the in-sync set with its leadership: it must catch up again.
    const inSync = state.inSync.filter((member) => member !== state.leader || member === me);
    const next: TopicState = { leader: me, epoch: state.epoch + 1, inSync };
    const result = await this.context.store.casState(this.name, modRevision, next);
    if (result.ok) {
      this.context.logger.info('cluster.leader.elected', { topic: this.name, epoch: next.epoch, inSync, previous: state.leader });
      this.current = { state: next, modRevision: result.modRevision };
      await this.reconcile();
    } else if (result.current !== null) {
      this.current = result.current;
      await this.reconcile();
    }
  }

  /**
   * etcd still names this broker leader from before its restart: it takes the leadership up again
   * only through a compare-and-swap to the next epoch, so its followers (which may hold records of
   * the old epoch this broker lost) truncate to what it has, and nothing of the old epoch is
   * confirmed twice. A failed swap means someone else moved first: follow the state as it is.
   */
  private async reclaim(): Promise<void> {
    const { state, modRevision } = this.current!;
    const others = state.inSync.filter((member) => member !== this.context.nodeId && this.context.brokerAddress(member) !== undefined);
    // A damaged replica leaves the leadership and the in-sync set to the others, when there are any.
    const giveUp = this.damage.damaged && others.length > 0;
    const next: TopicState = giveUp ? { leader: null, epoch: state.epoch + 1, inSync: others } : { leader: this.context.nodeId, epoch: state.epoch + 1, inSync: state.inSync };
    const result = await this.context.store.casState(this.name, modRevision, next);
    if (result.ok && giveUp) {
      this.context.logger.warn('cluster.leader.declined', { topic: this.name, epoch: next.epoch, inSync: next.inSync, reason: 'this replica holds damaged records' });
      this.current = { state: next, modRevision: result.modRevision };
    } else if (result.ok) {
      this.context.logger.info('cluster.leader.reclaimed', { topic: this.name, epoch: next.epoch, inSync: next.inSync });
      this.current = { state: next, modRevision: result.modRevision };
    } else if (result.current !== null) {
      this.current = result.current;
    } else {
      return;
    }
    await this.reconcile();
  }

  private async becomeLeader(state: TopicState): Promise<void> {
    await this.dropRole(state);
    // Each log records the epoch's start durably (a sync each), all at once, while the service opens
    // and serves: every append waits for its log's start (ReplicatedLog), so no confirm precedes it.
    const epochBegun = Promise.all([...this.logs.values()].map((log) => log.beginEpoch(state.epoch)));
    epochBegun.catch(() => undefined);
    const { clock, logger, replicaLagMaxMs, replicaVerifyIntervalMs: intervalMs } = this.context;
    const { replicas, minInSync } = this.placement;
    const leader: TopicLeader = new TopicLeader({
      topic: this.name, nodeId: this.context.nodeId, epoch: state.epoch, inSync: state.inSync, replicas, minInSync, replicaLagMaxMs, knownHighWatermarks: this.highWatermarks, clock, logger,
      changeInSync: (inSync): Promise<boolean> => this.changeInSync(leader, inSync),
      onFenced: (reason) => this.fenced(leader, reason),
    });
    for (const [logId, log] of this.logs) leader.addLog(logId, log);
    this.role = { kind: 'leader', leader };
    const connect = (nodeId: string): Promise<ClientConnection> => this.context.connect(nodeId);
    this.checks = new ReplicaChecks({ topic: this.name, nodeId: this.context.nodeId, leader, clock, logger, intervalMs, connect, onMismatch: () => this.context.onMismatch() });
    this.checks.start();
    this.context.logger.info('cluster.leader.started', { topic: this.name, epoch: state.epoch, inSync: state.inSync });
    this.context.onRoleChange(this.name, 'leader', state);
    this.notes.beginPromotion();
    this.warmGroups.beginPromotion();
    try {
      await this.openService(leader, state, epochBegun);
    } finally {
      this.notes.endPromotion();
      this.warmGroups.endPromotion();
    }
  }

  /**
   * Opens the topic's service as its leader; it serves once open, its appends waiting for the
   * epoch's start (epochNotBegun when that fails). An open refused for want of replicas in sync (a
   * group journal's first write, below minInSync) keeps the leadership: the followers catch up and
   * rejoin the in-sync set while the open is tried again. Any other failure gives the role up.
   */
  private async openService(leader: TopicLeader, state: TopicState, epochBegun: Promise<unknown> = Promise.resolve()): Promise<void> {
    epochBegun.catch((error: unknown) => this.run(() => this.epochNotBegun(leader, state, error)));
    try {
      const openStartedMs = this.context.clock.monotonicMs();
      await this.context.local.open(this.name);
      this.serving = true;
      this.context.logger.info('cluster.leader.serving', { topic: this.name, epoch: state.epoch, openMs: Math.round(this.context.clock.monotonicMs() - openStartedMs) });
      if (moving(this.placementNow)) this.run(() => this.completeMove());
    } catch (error) {
      const awaitReplicas = error instanceof FerryError && error.code === 'NOT_ENOUGH_REPLICAS' && leader.active;
      this.context.logger.error('cluster.leader.open_failed', { topic: this.name, epoch: state.epoch, error, retryInMs: TRANSITION_RETRY_MS, keepsLeading: awaitReplicas });
      if (awaitReplicas) {
        this.context.clock.schedule(TRANSITION_RETRY_MS, () => this.run(() => (this.closed || this.serving || this.role.kind !== 'leader' || this.role.leader !== leader || !leader.active ? Promise.resolve() : this.openService(leader, state))));
        return;
      }
      leader.stepDown(this.notLeader());
      this.role = { kind: 'none' };
      this.serving = false;
      // etcd still names this broker leader, and nothing may change there to wake it: try again.
      this.retryLater();
    }
  }

  /** The epoch's start did not become durable: nothing was appended in the epoch; the role is given up, to be taken again from etcd's state. */
  private async epochNotBegun(leader: TopicLeader, state: TopicState, error: unknown): Promise<void> {
    if (this.role.kind !== 'leader' || this.role.leader !== leader) return;
    this.context.logger.error('cluster.leader.open_failed', { topic: this.name, epoch: state.epoch, error, retryInMs: TRANSITION_RETRY_MS, keepsLeading: false });
    leader.stepDown(this.notLeader());
    this.role = { kind: 'none' };
    this.serving = false;
    await this.context.local.close(this.name, `${this.name} could not begin epoch ${state.epoch} here`);
    this.retryLater();
  }

  private async changeInSync(leader: TopicLeader, inSync: string[]): Promise<boolean> {
    const known = this.current;
    if (known === null || known.state.epoch !== leader.epoch || known.state.leader !== this.context.nodeId) return false;
    const next: TopicState = { leader: this.context.nodeId, epoch: leader.epoch, inSync };
    const result = await this.context.store.casState(this.name, known.modRevision, next);
    if (result.ok) {
      this.current = { state: next, modRevision: result.modRevision };
      if (moving(this.placementNow)) this.run(() => this.completeMove());
      return true;
    }
    if (result.current !== null) this.onState(result.current);
    return false;
  }

  private fenced(leader: TopicLeader, reason: string): void {
    if (!leader.active) return;
    this.context.logger.warn('cluster.leader.fenced', { topic: this.name, epoch: leader.epoch, reason });
    // Stop confirming at once; the chain then reads etcd and follows whoever leads now.
    leader.stepDown(this.notLeader());
    this.run(async () => {
      const read = await this.context.store.getState(this.name);
      if (read !== null && (this.current === null || read.modRevision >= this.current.modRevision)) this.current = read;
      if (this.role.kind === 'leader' && this.role.leader === leader) await this.dropRole(this.current?.state ?? null);
      await this.reconcile();
    });
  }

  private async becomeFollower(state: TopicState, leaderId: string): Promise<void> {
    await this.dropRole(state);
    const { nodeId, clock, logger, catchUpRate } = this.context;
    const follower = new TopicFollower({
      topic: this.name, nodeId, leaderId, epoch: state.epoch, catchUpRate, clock, logger, highWatermarks: this.highWatermarks,
      logs: { ids: () => [...this.logs.keys()], get: (logId) => this.logs.get(logId), open: (logId) => this.openLog(logId) },
      connect: () => this.context.connect(leaderId), onStop: (stop) => this.followerStopped(follower, stop),
      onLogChange: (logId, change) => [this.notes, this.warmGroups].forEach((taker) => taker.change(logId, change)),
    });
    this.role = { kind: 'follower', follower };
    this.context.logger.info('cluster.follower.started', { topic: this.name, leader: leaderId, epoch: state.epoch });
    this.damage.following();
    this.context.onRoleChange(this.name, 'follower', state);
  }

  private followerStopped(follower: TopicFollower, stop: FollowerStop): void {
    this.run(async () => {
      if (this.role.kind !== 'follower' || this.role.follower !== follower) return;
      if (stop.kind === 'leader-down') this.down.add(follower.leaderId);
      const read = await this.context.store.getState(this.name).catch(() => null);
      if (read !== null && (this.current === null || read.modRevision >= this.current.modRevision)) this.current = read;
      // A leader named in etcd that is still opening the topic answers NOT_LEADER for a moment:
      // that is the normal start of a topic or a failover, not a fault worth a warning.
      const stillNamed = stop.kind === 'not-leader' && read !== null && read.state.leader === follower.leaderId && read.state.epoch === follower.epoch;
      const fields = { topic: this.name, leader: follower.leaderId, epoch: follower.epoch, reason: stop.kind, error: stop.error };
      if (stillNamed) this.context.logger.info('cluster.follower.restarting', fields);
      else this.context.logger.warn('cluster.follower.stopped', fields);
      // Let the next reconcile start afresh (a new follower, or an election).
      this.role = { kind: 'none' };
      this.serving = false;
      await follower.stop();
      await this.reconcile();
    });
  }

  // ---- digests (docs/CLUSTERING.md, "Replica digests") ------------------------------------------

  /** TOPIC_VERIFY: the leader compares every follower with its logs (and repairs those that differ). */
  verify(): Promise<TopicVerification> {
    if (!this.isLeader || this.checks === null) return Promise.reject(this.notLeader());
    return this.checks.verifyAll();
  }

  /** REPLICA_DIGEST: any replica answers from its local logs. */
  digests(request: ReplicaDigestRequest): Promise<ReplicaDigestResponse> {
    return answerDigests((logId) => this.logs.get(logId), request, (logId, damage) => this.damage.noted(logId, damage, true));
  }

  /** REPLICA_REPAIR: the leader this replica follows (in this epoch) took it out of the in-sync set; cut and fetch again. */
  async repair(request: ReplicaRepairRequest): Promise<void> {
    const role = this.role;
    if (role.kind !== 'follower' || role.follower.leaderId !== request.replicaId || role.follower.epoch !== request.epoch) {
      throw new FerryError('STALE_EPOCH', `${this.context.nodeId} does not follow ${request.replicaId} in epoch ${request.epoch} of ${this.name}`, { detail: { epoch: this.current?.state.epoch ?? 0 } });
    }
    this.damage.repairing();
    await role.follower.repair(request.logs);
    this.damage.repaired();
  }

  /** Ends the current role: a leader stops confirming and closes the topic's service; a follower stops fetching. */
  private async dropRole(state: TopicState | null): Promise<void> {
    const role = this.role;
    this.role = { kind: 'none' };
    this.serving = false;
    this.checks?.stop();
    this.checks = null;
    if (role.kind === 'leader') {
      role.leader.stepDown(this.notLeader());
      await this.context.local.close(this.name, `leadership of ${this.name} moved to ${state?.leader ?? 'no broker yet'}`);
      this.context.logger.info('cluster.leader.stopped', { topic: this.name, epoch: role.leader.epoch, next: state?.leader ?? null });
    } else if (role.kind === 'follower') {
      await role.follower.stop();
    }
    if (state !== null && role.kind !== 'none') this.context.onRoleChange(this.name, 'none', state);
  }

  /**
   * Controlled shutdown: hands leadership to the in-sync follower that holds everything, with the
   * next epoch, after the followers caught up; false when no follower could take it.
   */
  handOver(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      this.run(async () => {
        const handed = await this.handOverNow().catch((error: unknown) => {
          resolve(false);
          throw error;
        });
        // The broker is leaving: it follows nobody now (it could join the new in-sync set, then vanish).
        if (handed) this.closed = true;
        resolve(handed);
      });
    });
  }

  /** Hands leadership to an in-sync follower (not one of `exclude`: replicas leaving the topic); handover.ts. */
  private async handOverNow(exclude: ReadonlySet<string> = new Set()): Promise<boolean> {
    const leader = this.leader;
    if (leader === null || !leader.active || this.current === null) return false;
    const successors = this.current.state.inSync.filter((member) => member !== this.context.nodeId && !exclude.has(member) && this.context.brokerAddress(member) !== undefined);
    if (successors.length === 0) return false;
    const { nodeId, store, local, clock, logger } = this.context;
    return handOverTopic({
      topic: this.name, nodeId, leader, successors, store, local, changes: this.changes, clock, logger,
      brokerAddress: (nodeId) => this.context.brokerAddress(nodeId),
      state: () => this.current!,
      stopServing: () => {
        this.serving = false;
      },
      swapped: (next) => {
        this.role = { kind: 'none' };
        if (next !== null) this.current = next;
      },
    });
  }

  /** Stops the role and closes the local logs. */
  async close(): Promise<void> {
    this.closed = true;
    this.damage.close();
    this.changes.release();
    this.electionTimer?.cancel();
    this.retryTimer?.cancel();
    await this.chain;
    await this.dropRole(this.current?.state ?? null);
    await Promise.allSettled([...this.logs.values()].map((log) => log.close()));
    this.logs.clear();
  }
}
