/**
 * The broker as the transports see it in cluster mode: topics are the cluster's (created and
 * deleted in etcd, listed from it), and every request about a topic is served only by its leader;
 * any other broker answers NOT_LEADER, naming the leader. Topic descriptions carry each partition's
 * replication state.
 */
import { FerryError } from '../errors.js';
import type { Broker } from '../broker/broker.js';
import { checkName } from '../broker/names.js';
import type {
  BrokerApi,
  DeliverySink,
  GroupInfo,
  PublishMessage,
  PublishResult,
  RedriveOptions,
  RedriveResult,
  StartPosition,
  SubscribeOptions,
  Subscription,
  TopicConfig,
  TopicInfo,
  TopicPartitionInfo,
} from '../broker/types.js';
import type { Clock } from '../platform/clock.js';
import type { ClusterNode } from './cluster-node.js';

/** How long a create waits for this broker to open a topic it was chosen to lead. */
const CREATE_OPEN_WAIT_MS = 10_000;
const CREATE_POLL_MS = 10;

export class ClusteredBroker implements BrokerApi {
  constructor(
    private readonly broker: Broker,
    private readonly node: ClusterNode,
    private readonly clock: Clock,
  ) {}

  async createTopic(name: string, config: Partial<TopicConfig> = {}): Promise<TopicInfo> {
    checkName('topic', name);
    const resolved = this.broker.resolveTopicConfig(config);
    const replicas = resolved.replicas ?? 1;
    const placement = await this.node.createTopic(name, resolved as unknown as Record<string, unknown>, replicas, resolved.minInSync ?? Math.min(2, replicas));
    if (placement.replicas[0] === this.node.nodeId) {
      // This broker leads it: answer once it serves it, so the caller can publish at once.
      const deadline = this.clock.monotonicMs() + CREATE_OPEN_WAIT_MS;
      while (!this.broker.hasTopic(name) && this.clock.monotonicMs() < deadline) await new Promise<void>((resolve) => this.clock.schedule(CREATE_POLL_MS, resolve));
    }
    return this.describeTopic(name);
  }

  deleteTopic(name: string): Promise<void> {
    return this.node.deleteTopic(name);
  }

  listTopics(): TopicInfo[] {
    return this.node.topicNames().map((name) => this.describeTopic(name));
  }

  describeTopic(name: string): TopicInfo {
    const placement = this.node.placement(name);
    if (placement === undefined) throw new FerryError('UNKNOWN_TOPIC', `unknown topic ${name}`);
    const config = this.broker.resolveTopicConfig(placement.config as Partial<TopicConfig>);
    const local = this.broker.hasTopic(name) ? this.broker.describeTopic(name) : null;
    const view = this.node.describe(name, config.partitions);
    const partitions: TopicPartitionInfo[] = Array.from({ length: config.partitions }, (_, partition) => {
      const figures = local?.partitions[partition] ?? this.node.localPartitionFigures(name, partition);
      if (view === null) return figures;
      return {
        ...figures,
        leader: view.leader ?? '',
        epoch: view.epoch,
        replicas: view.replicas,
        inSync: view.inSync,
        highWatermark: view.highWatermarks[partition] ?? 0,
        replicaOffsets: view.replicaViews.map((replica) => ({ nodeId: replica.nodeId, endOffset: replica.endOffsets[partition] ?? 0, lag: replica.lag[partition] ?? 0 })),
      };
    });
    return { name, config, partitions, groups: local?.groups ?? [] };
  }

  async publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    if (!this.node.leads(topic)) await this.node.checkLeaderFresh(topic);
    return this.broker.publish(topic, messages).catch((error: unknown) => this.movedAway(topic, error));
  }

  /** Dead letters and redrives from another broker of the cluster (remote-topics.ts). */
  async publishAsBroker(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    if (!this.node.leads(topic)) await this.node.checkLeaderFresh(topic);
    return this.broker.publishAsBroker(topic, messages).catch((error: unknown) => this.movedAway(topic, error));
  }

  async subscribe(topic: string, options: SubscribeOptions, sink: DeliverySink): Promise<Subscription> {
    if (!this.node.leads(topic)) await this.node.checkLeaderFresh(topic);
    return this.broker.subscribe(topic, options, sink).catch((error: unknown) => this.movedAway(topic, error));
  }

  /**
   * A request that passed the leader check while leadership was moving finds the topic closed
   * (UNKNOWN_TOPIC from the local broker) or its leader taking no more writes for a handover
   * (NOT_LEADER with `detail.moving`; nothing of it was stored): it is NOT_LEADER for the client,
   * naming where the topic went once the move is over.
   */
  private async movedAway(topic: string, error: unknown): Promise<never> {
    const moved = error instanceof FerryError && (error.code === 'UNKNOWN_TOPIC' || (error.code === 'NOT_LEADER' && error.detail?.['moving'] === true));
    if (moved && this.node.placement(topic) !== undefined) {
      await this.node.leadershipSettled(topic);
      this.node.checkLeader(topic);
    }
    throw error;
  }

  listGroups(topic: string): GroupInfo[] {
    this.node.checkLeader(topic);
    return this.broker.listGroups(topic);
  }

  describeGroup(topic: string, group: string): GroupInfo {
    this.node.checkLeader(topic);
    return this.broker.describeGroup(topic, group);
  }

  async resetGroup(topic: string, group: string, to: StartPosition): Promise<GroupInfo> {
    await this.node.checkLeaderFresh(topic);
    return this.broker.resetGroup(topic, group, to);
  }

  async redrive(deadLetterTopic: string, options?: RedriveOptions): Promise<RedriveResult> {
    await this.node.checkLeaderFresh(deadLetterTopic);
    return this.broker.redrive(deadLetterTopic, options);
  }

  close(): Promise<void> {
    return this.broker.close();
  }
}
