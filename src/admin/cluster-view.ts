/**
 * The cluster as the HTTP port shows it: `GET /api/cluster` (the brokers as `ferry cluster status
 * --json` lists them, and each topic's leader, epoch, in-sync set and replica lag), the readiness of
 * a cluster member for /readyz, and what the cluster metrics read. A broker knows its replicas' end
 * offsets only for the topics it leads, so every other topic is described by its leader, through
 * the cluster's own client (`DescribeRemote`, given by `ferry serve`).
 */
import type { ClusterChangeRequest, ClusterChangeResult } from '../protocol/codec-cluster-change.js';
import { FerryError, isFerryError } from '../errors.js';
import { clusterStatus, type BrokerStatus } from '../client/cluster-status.js';
import type { ClusterMetadata } from '../client/metadata.js';
import type { MetadataResponse } from '../protocol/codec-metadata.js';
import type { WirePartitionInfo, WireTopicInfo } from '../protocol/messages.js';

/** This broker as a cluster member (cluster/cluster-node.ts's ClusterNode is one). */
export interface ClusterSource {
  readonly nodeId: string;
  /** Joined and following the cluster's metadata. */
  readonly ready: boolean;
  /** The last etcd call reached etcd. */
  readonly etcdUp: boolean;
  readonly counters: Readonly<{ leaderChanges: number; inSyncShrinks: number; replicaMismatches: number }>;
  metadata(topics: readonly string[]): MetadataResponse;
  placement(topic: string): { readonly replicas: readonly string[] } | undefined;
  leads(topic: string): boolean;
  /** Moves replicas between brokers (POST /api/cluster/reassign and /drain). */
  change(request: ClusterChangeRequest): Promise<ClusterChangeResult>;
}

/** A topic described by its leader, wherever it is. */
export type DescribeRemote = (topic: string) => Promise<WireTopicInfo>;

/**
 * How long /api/cluster waits for another broker's description of a topic: the dashboard polls
 * every 2 s, and a leader that does not answer within that is shown without its lag.
 */
export const REMOTE_DESCRIBE_TIMEOUT_MS = 2_000;

export interface ClusterTopicView {
  name: string;
  /** Node id of the leader; '' while none is elected. */
  leader: string;
  epoch: number;
  replicas: string[];
  inSync: string[];
  /** Records the replicas are behind the leader, summed over partitions; null when the leader did not say. */
  lag: number | null;
  /** Per partition as `describeTopic` shows it (empty when the leader did not answer). */
  partitions: WirePartitionInfo[];
  /** Why the leader's description is missing. */
  error?: { code: string; message: string };
}

export interface ClusterView {
  /** False for a single broker (no --etcd). */
  cluster: boolean;
  /** This broker's node id ('' for a single broker). */
  nodeId: string;
  /** Whether this broker reaches etcd (null for a single broker). */
  etcdUp: boolean | null;
  brokers: BrokerStatus[];
  topics: ClusterTopicView[];
}

/** Why a cluster member is not ready (null when it is): not joined yet, or etcd unreachable. */
export function clusterNotReadyReason(source: ClusterSource): string | null {
  if (!source.ready) return 'not joined to the cluster';
  if (!source.etcdUp) return 'etcd is unreachable: leaders keep serving, but no leadership or in-sync change can be made';
  return null;
}

/** A single broker: itself, leading every topic. */
export function singleBrokerView(address: string, topics: number): ClusterView {
  return { cluster: false, nodeId: '', etcdUp: null, brokers: [{ nodeId: '', address, alive: true, topicsLed: topics, replicaLag: 0 }], topics: [] };
}

/**
 * The cluster from this broker: brokers alive (and those a topic is placed on that are gone), the
 * topics each leads and its replicas' lag, and each topic's replication state. Topics this broker
 * leads are described here (`local`), the others by their leader (`remote`) within
 * REMOTE_DESCRIBE_TIMEOUT_MS; one that fails is listed with its error.
 */
export async function clusterView(source: ClusterSource, local: (topic: string) => WireTopicInfo, remote: DescribeRemote | null): Promise<ClusterView> {
  const answer = source.metadata([]);
  const live = new Set(answer.brokers.map((broker) => broker.nodeId));
  const gone = new Set<string>();
  for (const topic of answer.topics) for (const nodeId of source.placement(topic.name)?.replicas ?? []) if (!live.has(nodeId)) gone.add(nodeId);
  const metadata: ClusterMetadata = {
    cluster: true,
    brokers: [...answer.brokers, ...[...gone].sort().map((nodeId) => ({ nodeId, address: '', alive: false }))],
    topics: answer.topics.map((topic) => ({ topic: topic.name, leader: topic.leader, address: null, epoch: topic.epoch })),
  };
  const described = new Map<string, WireTopicInfo | Error>();
  const describe = async (topic: string): Promise<WireTopicInfo> => {
    try {
      const info = source.leads(topic) || remote === null ? local(topic) : await withTimeout(remote(topic), REMOTE_DESCRIBE_TIMEOUT_MS, topic);
      described.set(topic, info);
      return info;
    } catch (error) {
      described.set(topic, error as Error);
      // Counted as nothing: the topic is listed with its error instead.
      return { name: topic, config: { partitions: 0, durability: 'always', syncIntervalMs: 0, retention: {}, segmentBytes: 0 }, partitions: [], groups: [] };
    }
  };
  const status = await clusterStatus(metadata, describe);
  const topics = answer.topics.map((topic): ClusterTopicView => {
    const info = described.get(topic.name);
    const replicas = [...(source.placement(topic.name)?.replicas ?? [])];
    if (info === undefined || info instanceof Error) {
      const error = info === undefined ? { code: 'UNKNOWN', message: 'not described' } : { code: isFerryError(info) ? info.code : 'UNKNOWN', message: info.message };
      return { name: topic.name, leader: topic.leader, epoch: topic.epoch, replicas, inSync: [], lag: null, partitions: [], error };
    }
    const first = info.partitions[0];
    const offsets = info.partitions.flatMap((partition) => partition.replicaOffsets ?? []);
    return {
      name: topic.name,
      leader: first?.leader ?? topic.leader,
      epoch: first?.epoch ?? topic.epoch,
      replicas: first?.replicas ?? replicas,
      inSync: first?.inSync ?? [],
      lag: offsets.length === 0 ? null : offsets.reduce((sum, replica) => sum + replica.lag, 0),
      partitions: info.partitions,
    };
  });
  return { cluster: true, nodeId: source.nodeId, etcdUp: source.etcdUp, brokers: status.brokers, topics };
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, topic: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FerryError('TIMEOUT', `the leader of ${topic} did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  promise.catch(() => undefined); // settled after the timeout: nobody waits for it
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
