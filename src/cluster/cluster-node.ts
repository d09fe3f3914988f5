/**
 * This broker as a member of a cluster: it registers under an etcd lease, follows every change of
 * the cluster's metadata (brokers, placements, states), keeps one TopicReplica per topic it holds
 * a replica of, and answers the other brokers' replication requests. The composition root
 * (cli/serve.ts) builds it; the broker sees it only as a log factory and as LocalTopics' caller.
 */
import { FerryError } from '../errors.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { EpochEndRequest, EpochEndResponse, ReplicaFetchRequest, ReplicaFetchResponse, ReplicaProgress } from '../protocol/codec-replication.js';
import type { MetadataResponse } from '../protocol/codec-metadata.js';
import type { WirePartitionInfo } from '../protocol/messages.js';
import type { LogOptions, LogRole, PartitionLog, ReplicaLog } from '../storage/types.js';
import { LeaseKeeper, type EtcdClient, type LeaseLoss, type Watch } from './etcd/index.js';
import { ClusterStore, type BrokerRecord, type ClusterEvent, type TopicPlacement, type TopicState, type VersionedState } from './cluster-store.js';
import type { LocalTopics } from './local-topics.js';
import { REPLICAS_MAX } from '../broker/limits.js';
import type { GroupReplay } from '../broker/delivery/group-snapshots.js';
import { LEADERSHIP_CHANGE_WAIT_MS, LEASE_TTL_MS_DEFAULT, PLACEMENT_CAS_ATTEMPTS, REPLICA_VERIFY_INTERVAL_MS_DEFAULT } from './limits.js';
import type { CatchUpChunk, CatchUpReadRequest } from '../protocol/codec-catch-up.js';
import { CatchUpRate } from './catch-up-rate.js';
import type { ReplicaDigestRequest, ReplicaDigestResponse, ReplicaRepairRequest, TopicVerification } from '../protocol/codec-digest.js';
import type { TlsOptions } from '../client/options.js';
import { PeerPool, type PeerPoolOptions } from './peer-pool.js';
import { choosePlacement } from './placement.js';
import { planDrain, startMove } from './reassignment.js';
import type { ClusterChangeRequest, ClusterChangeResult } from '../protocol/codec-cluster-change.js';
import { TopicReplica } from './topic-replica.js';
import { Log } from '../storage/log.js';

export interface ClusterNodeOptions {
  nodeId: string;
  etcd: EtcdClient;
  prefix: string;
  clock: Clock;
  logger: Logger;
  /** Opens a local log (default: the storage engine's Log). */
  openLocalLog?(options: LogOptions): Promise<ReplicaLog>;
  /** Credentials and TLS for connections to the other brokers. */
  peer: PeerPoolOptions['connect'];
  replicaLagMaxMs: number;
  /** A leader checks one follower's digests per this interval in the background (0: never). */
  replicaVerifyIntervalMs?: number;
  /** Bytes per second a replica catching up from its leader's segments copies at most (undefined: unbounded). */
  replicaCatchUpBytesPerSec?: number;
  leaseTtlMs?: number;
}

/** Counters for /metrics. */
export interface ClusterCounters {
  leaderChanges: number;
  inSyncShrinks: number;
  /** Followers found to differ from this broker's logs (as their leader) below the high watermark. */
  replicaMismatches: number;
}

/** One replica of a topic as `describe` shows it. */
export interface ReplicaView {
  nodeId: string;
  /** End offset per partition (one past its last record), as far as this broker knows. */
  endOffsets: number[];
  /** Records behind the leader's end, per partition. */
  lag: number[];
}

export interface ClusterTopicView {
  leader: string | null;
  epoch: number;
  replicas: string[];
  inSync: string[];
  minInSync: number;
  /** One past the last committed offset, per partition. */
  highWatermarks: number[];
  replicaViews: ReplicaView[];
}

export class ClusterNode {
  private readonly store: ClusterStore;
  private readonly peers: PeerPool;
  private readonly brokers = new Map<string, BrokerRecord>();
  private readonly placements = new Map<string, TopicPlacement>();
  private readonly states = new Map<string, VersionedState>();
  private readonly replicas = new Map<string, TopicReplica>();
  private keeper: LeaseKeeper | null = null;
  private watch: Watch | null = null;
  private stopping = false;
  private started = false;
  private local: LocalTopics | null = null;
  /** host:port other brokers and clients dial (known once the TCP port listens). */
  private address = '';
  readonly counters: ClusterCounters = { leaderChanges: 0, inSyncShrinks: 0, replicaMismatches: 0 };
  /** What this broker's replicas copy while catching up, over all topics. */
  private readonly catchUpRate: CatchUpRate;

  constructor(private readonly options: ClusterNodeOptions) {
    this.store = new ClusterStore(options.etcd, options.prefix);
    this.peers = new PeerPool({ nodeId: options.nodeId, connect: options.peer, logger: options.logger });
    this.catchUpRate = new CatchUpRate(options.replicaCatchUpBytesPerSec, options.clock);
  }

  /** TLS of this broker's next connections to the others (the cluster's CA, renewed with the broker's certificates). */
  setPeerTls(tls: TlsOptions | undefined): void {
    this.peers.setTls(tls);
  }

  /**
   * Joins the cluster as `address`, serving replicas from `local` (the broker, open by now):
   * registers, reads the metadata, takes up its replicas, follows every change.
   */
  async start(address: string, local: LocalTopics): Promise<void> {
    this.address = address;
    this.local = local;
    await this.register();
    const snapshot = await this.store.read();
    this.apply(snapshot.brokers, snapshot.placements, snapshot.states);
    this.started = true;
    for (const placement of snapshot.placements.values()) await this.ensureReplica(placement, snapshot.revision);
    for (const [topic, state] of snapshot.states) this.replicas.get(topic)?.onState(state);
    this.watch = this.store.watch(snapshot.revision + 1, (events, revision) => this.onEvents(events, revision));
    this.options.logger.info('cluster.joined', { nodeId: this.options.nodeId, address, brokers: [...this.brokers.keys()], topics: this.placements.size });
  }

  /** Joined and following the cluster's metadata. */
  get ready(): boolean {
    return this.started && !this.stopping;
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  get etcdUp(): boolean {
    return this.options.etcd.etcdUp;
  }

  // ---- membership ---------------------------------------------------------------------------

  private async register(): Promise<void> {
    const ttlSec = Math.max(1, Math.ceil((this.options.leaseTtlMs ?? LEASE_TTL_MS_DEFAULT) / 1000));
    const lease = await this.options.etcd.grantLease(ttlSec);
    this.keeper = new LeaseKeeper(this.options.etcd, lease, (loss) => this.leaseLost(loss));
    const record: BrokerRecord = { nodeId: this.options.nodeId, address: this.address, startedAtMs: this.options.clock.nowMs() };
    await this.store.registerBroker(record, lease.id);
    this.brokers.set(record.nodeId, record);
  }

  /** The lease is gone (etcd unreachable too long, or it expired): serve on, and register again once etcd answers. */
  private leaseLost(loss: LeaseLoss): void {
    if (this.stopping) return;
    this.options.logger.warn('cluster.lease.lost', { nodeId: this.options.nodeId, reason: loss.reason, error: loss.error });
    const retry = (): void => {
      if (this.stopping) return;
      this.register().then(
        () => this.options.logger.info('cluster.lease.renewed', { nodeId: this.options.nodeId }),
        () => this.options.clock.schedule(this.options.etcd.timeoutMs, retry),
      );
    };
    retry();
  }

  brokerAddress(nodeId: string): string | undefined {
    return this.brokers.get(nodeId)?.address;
  }

  liveBrokers(): BrokerRecord[] {
    return [...this.brokers.values()].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }

  // ---- metadata events ----------------------------------------------------------------------

  private apply(brokers: Map<string, BrokerRecord>, placements: Map<string, TopicPlacement>, states: Map<string, VersionedState>): void {
    for (const [nodeId, record] of brokers) this.brokers.set(nodeId, record);
    for (const [topic, placement] of placements) this.placements.set(topic, placement);
    for (const [topic, state] of states) this.states.set(topic, state);
  }

  private async onEvents(events: ClusterEvent[] | null, revision: number): Promise<void> {
    if (events === null) {
      // History was compacted: read everything again and go on from there.
      const snapshot = await this.store.read();
      this.brokers.clear();
      this.apply(snapshot.brokers, snapshot.placements, snapshot.states);
      for (const placement of snapshot.placements.values()) await this.ensureReplica(placement);
      for (const [topic, state] of snapshot.states) this.replicas.get(topic)?.onState(state);
      void revision;
      return;
    }
    for (const event of events) await this.onEvent(event);
  }

  private async onEvent(event: ClusterEvent): Promise<void> {
    switch (event.kind) {
      case 'broker':
        if (event.record === null) {
          this.brokers.delete(event.nodeId);
          if (event.nodeId === this.options.nodeId && !this.stopping) {
            // Our key is gone (lease expired while we were away): the keeper notices and registers again.
            this.options.logger.warn('cluster.registration.lost', { nodeId: event.nodeId });
          }
          for (const replica of this.replicas.values()) replica.onBrokerGone(event.nodeId);
        } else {
          this.brokers.set(event.nodeId, event.record);
          for (const replica of this.replicas.values()) {
            replica.onBrokerAlive(event.nodeId);
            // A leader that comes back alive may be followed again.
            const state = this.states.get(replica.name);
            if (state !== undefined) replica.onState(state);
          }
        }
        return;
      case 'placement':
        if (event.placement === null) {
          this.placements.delete(event.topic);
          this.states.delete(event.topic);
          await this.dropReplica(event.topic, true);
        } else {
          this.placements.set(event.topic, event.placement);
          if (!event.placement.replicas.includes(this.options.nodeId)) {
            // Moved off this broker (reassignment.ts): the leader dropped it from the in-sync set first.
            await this.dropReplica(event.topic, true);
            return;
          }
          this.replicas.get(event.topic)?.onPlacement(event.placement);
          await this.ensureReplica(event.placement);
        }
        return;
      case 'state':
        if (event.state === null) return;
        this.noteState(event.topic, event.state);
        this.replicas.get(event.topic)?.onState(event.state);
        return;
    }
  }

  private noteState(topic: string, next: VersionedState): void {
    const before = this.states.get(topic);
    if (before !== undefined && next.modRevision <= before.modRevision) return;
    this.states.set(topic, next);
    if (before !== undefined && before.state.leader !== next.state.leader) this.counters.leaderChanges++;
    if (before !== undefined && next.state.inSync.length < before.state.inSync.length) this.counters.inSyncShrinks++;
  }

  /** Takes up this broker's replica of a topic; `resumedUpTo`: the metadata revision read at start (see TopicReplica.resumeFrom). */
  private async ensureReplica(placement: TopicPlacement, resumedUpTo?: number): Promise<void> {
    if (!this.started || !placement.replicas.includes(this.options.nodeId) || this.replicas.has(placement.name)) return;
    const replica = new TopicReplica(placement, {
      nodeId: this.options.nodeId,
      store: this.store,
      local: this.local!,
      clock: this.options.clock,
      logger: this.options.logger,
      replicaLagMaxMs: this.options.replicaLagMaxMs,
      replicaVerifyIntervalMs: this.options.replicaVerifyIntervalMs ?? REPLICA_VERIFY_INTERVAL_MS_DEFAULT,
      onMismatch: () => this.counters.replicaMismatches++,
      catchUpRate: this.catchUpRate,
      openLocalLog: this.options.openLocalLog ?? ((options) => Log.open(options)),
      brokerAddress: (nodeId) => this.brokerAddress(nodeId),
      connect: (nodeId) => {
        const address = this.brokerAddress(nodeId);
        if (address === undefined) return Promise.reject(new FerryError('CONNECTION_REFUSED', `${nodeId} is not alive`));
        return this.peers.connection(nodeId, address);
      },
      onRoleChange: (topic, role, state) => this.options.logger.debug('cluster.role', { topic, role, epoch: state.epoch, leader: state.leader }),
    });
    this.replicas.set(placement.name, replica);
    if (resumedUpTo !== undefined) replica.resumeFrom(resumedUpTo);
    await replica.start();
    const state = this.states.get(placement.name);
    if (state !== undefined) replica.onState(state);
  }

  private async dropReplica(topic: string, removeFiles: boolean): Promise<void> {
    const replica = this.replicas.get(topic);
    if (replica === undefined) return;
    this.replicas.delete(topic);
    await replica.close();
    if (removeFiles) await this.local!.remove(topic);
  }

  // ---- what the broker and the transports ask -----------------------------------------------

  /** The log factory of the broker's topics: only for topics this broker leads. */
  openLog(_options: LogOptions, role: LogRole): Promise<PartitionLog> {
    const replica = this.replicas.get(role.topic);
    if (replica === undefined) return Promise.reject(new FerryError('UNKNOWN_TOPIC', `this broker holds no replica of ${role.topic}`));
    return replica.openForBroker(role);
  }

  /** A group's journal as this broker replayed it while following (warm-groups.ts), for its open as leader. */
  warmGroupReplay(topic: string, group: string): Promise<GroupReplay | null> {
    return this.replicas.get(topic)?.warmGroupReplay(group) ?? Promise.resolve(null);
  }

  /** Throws NOT_LEADER (or UNKNOWN_TOPIC) unless this broker leads the topic now. */
  checkLeader(topic: string): void {
    const replica = this.replicas.get(topic);
    if (replica?.isLeader === true) return;
    if (!this.placements.has(topic)) throw new FerryError('UNKNOWN_TOPIC', `unknown topic ${topic}`);
    throw this.notLeaderError(topic);
  }

  /**
   * As checkLeader, but a topic this broker has not heard of yet is looked up in etcd first: a
   * topic created through another broker a moment ago exists, and its request is retried (NOT_LEADER),
   * not refused (UNKNOWN_TOPIC). A topic whose leadership is changing here (this broker opens it as
   * the new leader, or hands it over) is checked once the change is over (leadership-changes.ts).
   */
  async checkLeaderFresh(topic: string): Promise<void> {
    if (this.placements.has(topic)) {
      await this.leadershipSettled(topic);
      return this.checkLeader(topic);
    }
    const state = await this.store.getState(topic).catch(() => null);
    if (state === null) throw new FerryError('UNKNOWN_TOPIC', `unknown topic ${topic}`);
    throw new FerryError('NOT_LEADER', `topic ${topic} was created a moment ago; this broker has not taken it up yet`, {
      detail: { topic, leader: state.state.leader, address: state.state.leader === null ? null : (this.brokerAddress(state.state.leader) ?? null), epoch: state.state.epoch },
    });
  }

  leads(topic: string): boolean {
    return this.replicas.get(topic)?.isLeader === true;
  }

  /** Resolves once no change of `topic`'s leadership is under way on this broker (bounded by LEADERSHIP_CHANGE_WAIT_MS). */
  leadershipSettled(topic: string): Promise<void> {
    return this.replicas.get(topic)?.settled(LEADERSHIP_CHANGE_WAIT_MS) ?? Promise.resolve();
  }

  topicNames(): string[] {
    return [...this.placements.keys()].sort();
  }

  placement(topic: string): TopicPlacement | undefined {
    return this.placements.get(topic);
  }

  private notLeaderError(topic: string): FerryError {
    const replica = this.replicas.get(topic);
    if (replica !== undefined) return replica.notLeader();
    const leader = this.states.get(topic)?.state.leader ?? null;
    const address = leader === null ? null : (this.brokerAddress(leader) ?? null);
    return new FerryError('NOT_LEADER', `topic ${topic} is led by ${leader ?? 'no broker right now'}${address === null ? '' : ` at ${address}`}`, {
      detail: { topic, leader, address, epoch: this.states.get(topic)?.state.epoch ?? 0 },
    });
  }

  metadata(topics: readonly string[]): MetadataResponse {
    const names = topics.length === 0 ? this.topicNames() : topics;
    return {
      nodeId: this.options.nodeId,
      brokers: this.liveBrokers().map((broker) => ({ nodeId: broker.nodeId, address: broker.address, alive: true })),
      topics: names.map((name) => {
        const state = this.states.get(name)?.state;
        return { name, leader: state?.leader ?? '', epoch: state?.epoch ?? 0, exists: this.placements.has(name) };
      }),
    };
  }

  /** Creates a topic in the cluster: placement and first state in etcd; the chosen leader opens it. */
  async createTopic(name: string, config: Record<string, unknown>, replicas: number, minInSync: number): Promise<TopicPlacement> {
    if (!Number.isInteger(replicas) || replicas < 1 || replicas > REPLICAS_MAX) throw new FerryError('INVALID_ARGUMENT', `replicas must be an integer from 1 to ${REPLICAS_MAX}`);
    if (!Number.isInteger(minInSync) || minInSync < 1 || minInSync > replicas) throw new FerryError('INVALID_ARGUMENT', `minInSync must be an integer from 1 to replicas (${replicas})`);
    if (this.placements.has(name)) throw new FerryError('TOPIC_EXISTS', `topic ${name} already exists`);
    const live = this.liveBrokers().map((broker) => broker.nodeId);
    if (live.length < replicas) {
      throw new FerryError('NOT_ENOUGH_REPLICAS', `topic ${name} wants ${replicas} replicas but ${live.length} brokers are alive`, { detail: { replicas, alive: live } });
    }
    const chosen = choosePlacement(live, replicas, this.placements.values(), this.states);
    const placement: TopicPlacement = { name, config, replicas: chosen, minInSync, createdAtMs: this.options.clock.nowMs() };
    const state: TopicState = { leader: chosen[0]!, epoch: 1, inSync: chosen };
    if (!(await this.store.createTopic(placement, state))) throw new FerryError('TOPIC_EXISTS', `topic ${name} already exists`);
    this.placements.set(name, placement);
    await this.ensureReplica(placement);
    return placement;
  }

  /**
   * Starts moving `topic`'s replica on `replace` to `target` (reassignment.ts): the placement in
   * etcd lists both; the leader completes the move once `target` is in sync.
   */
  async reassign(topic: string, replace: string, target: string): Promise<TopicPlacement> {
    for (let attempt = 0; attempt < PLACEMENT_CAS_ATTEMPTS; attempt++) {
      const read = await this.store.getPlacement(topic);
      if (read === null) throw new FerryError('UNKNOWN_TOPIC', `unknown topic ${topic}`);
      const live = new Set(this.liveBrokers().map((broker) => broker.nodeId));
      const next = startMove(read.placement, replace, target, live);
      if (await this.store.casPlacement(topic, read.modRevision, next)) {
        this.options.logger.info('cluster.reassign.started', { topic, replace, with: target, replicas: next.replicas });
        return next;
      }
    }
    throw new FerryError('BROKER_BUSY', `the placement of ${topic} kept changing; try again`);
  }

  /** An operator's CLUSTER_CHANGE. */
  async change(request: ClusterChangeRequest): Promise<ClusterChangeResult> {
    if (request.op === 'drain') return this.drain(request.node);
    await this.reassign(request.topic, request.replace, request.with);
    return { moves: [{ topic: request.topic, from: request.replace, to: request.with }], refused: [] };
  }

  /** Moves every replica on `node` to other live brokers (leaderships follow, by handover). */
  async drain(node: string): Promise<ClusterChangeResult> {
    if (!this.brokers.has(node) && ![...this.placements.values()].some((placement) => placement.replicas.includes(node))) {
      throw new FerryError('INVALID_ARGUMENT', `${node} is not a broker of this cluster`);
    }
    const plan = planDrain(node, this.placements.values(), this.liveBrokers().map((broker) => broker.nodeId));
    const moves: Array<{ topic: string; from: string; to: string }> = [];
    const refused = [...plan.refused];
    for (const move of plan.moves) {
      try {
        await this.reassign(move.topic, node, move.to);
        moves.push({ topic: move.topic, from: node, to: move.to });
      } catch (error) {
        refused.push({ topic: move.topic, reason: error instanceof Error ? error.message : String(error) });
      }
    }
    this.options.logger.info('cluster.drain.started', { node, moves: moves.length, refused: refused.length });
    return { moves, refused };
  }

  async deleteTopic(name: string): Promise<void> {
    if (!this.placements.has(name)) throw new FerryError('UNKNOWN_TOPIC', `unknown topic ${name}`);
    await this.store.deleteTopic(name);
  }

  /** Leadership, in-sync set and replica positions of a topic, as far as this broker knows. */
  describe(topic: string, partitions: number): ClusterTopicView | null {
    const placement = this.placements.get(topic);
    if (placement === undefined) return null;
    const state = this.states.get(topic)?.state ?? { leader: null, epoch: 0, inSync: [] };
    const replica = this.replicas.get(topic);
    const leader = replica?.leader ?? null;
    const ids = Array.from({ length: partitions }, (_, partition) => `p${partition}`);
    const highWatermarks = ids.map((logId) => replica?.highWatermark(logId) ?? 0);
    const ends = leader?.active === true ? leader.replicaEnds() : null;
    const leaderEnds = ids.map((logId) => replica?.localLog(logId)?.nextOffset ?? 0);
    const replicaViews: ReplicaView[] = placement.replicas.map((nodeId) => {
      const known = ends?.get(nodeId);
      const endOffsets = ids.map((logId, partition) => known?.get(logId) ?? (nodeId === this.options.nodeId ? leaderEnds[partition]! : 0));
      return { nodeId, endOffsets, lag: endOffsets.map((end, partition) => Math.max(0, leaderEnds[partition]! - end)) };
    });
    return { leader: state.leader, epoch: state.epoch, replicas: placement.replicas, inSync: state.inSync, minInSync: placement.minInSync, highWatermarks, replicaViews: ends === null ? [] : replicaViews };
  }

  /** A partition's figures from this broker's own replica (a follower's view; zeros without one). */
  localPartitionFigures(topic: string, partition: number): WirePartitionInfo {
    const stats = this.replicas.get(topic)?.localLog(`p${partition}`)?.stats();
    if (stats === undefined) return { partition, startOffset: 0, nextOffset: 0, syncedOffset: -1, segments: 0, bytes: 0 };
    return { partition, startOffset: stats.startOffset, nextOffset: stats.nextOffset, syncedOffset: stats.syncedOffset, segments: stats.segments, bytes: stats.bytes };
  }

  /** Topics led by each broker (for `ferry cluster status`). */
  leaderCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const { state } of this.states.values()) if (state.leader !== null) counts.set(state.leader, (counts.get(state.leader) ?? 0) + 1);
    return counts;
  }

  // ---- replication requests from other brokers ----------------------------------------------

  fetch(request: ReplicaFetchRequest, onParked?: (cancel: () => void) => void): Promise<ReplicaFetchResponse> {
    const leader = this.leaderFor(request.topic);
    return leader.fetch(request, onParked);
  }

  epochEnd(request: EpochEndRequest): EpochEndResponse {
    return this.leaderFor(request.topic).epochEnd(request);
  }

  progress(message: ReplicaProgress): void {
    this.replicas.get(message.topic)?.leader?.progress(message);
  }

  /** CATCH_UP_READ: a chunk of the sealed segments of a topic this broker leads. */
  catchUpRead(request: CatchUpReadRequest): Promise<CatchUpChunk> {
    return this.leaderFor(request.topic).catchUpChunk(request);
  }

  /** REPLICA_DIGEST: this broker's replica of the topic answers, whatever its role. */
  digests(request: ReplicaDigestRequest): Promise<ReplicaDigestResponse> {
    return this.replicaOf(request.topic).digests(request);
  }

  /** REPLICA_REPAIR: the topic's leader tells this broker's replica to cut and fetch again. */
  repair(request: ReplicaRepairRequest): Promise<void> {
    return this.replicaOf(request.topic).repair(request);
  }

  /** TOPIC_VERIFY: the topic's leader compares every replica with its logs. */
  verifyTopic(topic: string): Promise<TopicVerification> {
    const replica = this.replicas.get(topic);
    if (replica === undefined || !replica.isLeader) return Promise.reject(this.placements.has(topic) ? this.notLeaderError(topic) : new FerryError('UNKNOWN_TOPIC', `unknown topic ${topic}`));
    return replica.verify();
  }

  private replicaOf(topic: string): TopicReplica {
    const replica = this.replicas.get(topic);
    if (replica === undefined) throw new FerryError('UNKNOWN_TOPIC', `this broker holds no replica of ${topic}`);
    return replica;
  }

  private leaderFor(topic: string): NonNullable<TopicReplica['leader']> {
    const leader = this.replicas.get(topic)?.leader ?? null;
    if (leader === null || !leader.active) throw this.notLeaderError(topic);
    return leader;
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /**
   * Controlled shutdown: every topic this broker leads goes to an in-sync follower first; then the
   * broker leaves (its key is deleted, so the others stop waiting for it).
   */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    // All at once: each topic waits only for its own consumers and followers, not for the others'.
    await Promise.all([...this.replicas.values()].filter((replica) => replica.isLeader).map((replica) => this.handOver(replica)));
    await this.close();
  }

  private async handOver(replica: TopicReplica): Promise<void> {
    const handed = await replica.handOver().catch((error: unknown) => {
      this.options.logger.warn('cluster.handover.failed', { topic: replica.name, error });
      return false;
    });
    if (!handed) {
      this.options.logger.warn('cluster.handover.none', { topic: replica.name, note: 'no in-sync follower could take it; it waits for this broker' });
      return;
    }
    // Requests that still come here until the port closes are told the successor, at its epoch.
    const handedTo = replica.versionedState;
    if (handedTo !== null) this.noteState(replica.name, handedTo);
  }

  async close(): Promise<void> {
    this.stopping = true;
    await this.watch?.close();
    for (const replica of [...this.replicas.values()]) await replica.close();
    this.replicas.clear();
    await this.store.unregisterBroker(this.options.nodeId).catch(() => undefined);
    await this.keeper?.stop();
    this.peers.close();
  }
}
