/**
 * `client.clusterStatus()`: per broker, whether it is alive, how many topics it leads, and how far
 * its replicas lag, summed over every topic (from each topic's describe, asked of its leader).
 */
import { isFerryError } from '../errors.js';
import type { WireTopicInfo } from '../protocol/messages.js';
import type { ClusterMetadata } from './metadata.js';

export interface BrokerStatus {
  /** '' for a single broker (no cluster). */
  nodeId: string;
  address: string;
  alive: boolean;
  /** Topics this broker leads. */
  topicsLed: number;
  /** Records this broker's replicas are behind their leaders, summed over every topic and partition. */
  replicaLag: number;
}

export interface ClusterStatus {
  /** False for a single broker. */
  cluster: boolean;
  brokers: BrokerStatus[];
}

/** Topics described at once: enough to overlap round trips, few enough not to flood a leader. */
const DESCRIBES_IN_FLIGHT_MAX = 8;

export async function clusterStatus(metadata: ClusterMetadata, describe: (topic: string) => Promise<WireTopicInfo>): Promise<ClusterStatus> {
  const brokers = metadata.brokers.map((broker) => ({ ...broker, topicsLed: 0, replicaLag: 0 }));
  const byNode = new Map(brokers.map((broker) => [broker.nodeId, broker]));
  for (const topic of metadata.topics) {
    const leader = metadata.cluster ? byNode.get(topic.leader) : brokers[0];
    if (leader !== undefined && (topic.leader !== '' || !metadata.cluster)) leader.topicsLed++;
  }
  if (!metadata.cluster) return { cluster: false, brokers };
  const topics = metadata.topics.map((topic) => topic.topic);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < topics.length) {
      const topic = topics[next++]!;
      let info: WireTopicInfo;
      try {
        info = await describe(topic);
      } catch (error) {
        if (isFerryError(error, 'UNKNOWN_TOPIC')) continue; // deleted meanwhile
        throw error;
      }
      for (const partition of info.partitions) {
        for (const replica of partition.replicaOffsets ?? []) {
          const broker = byNode.get(replica.nodeId);
          if (broker !== undefined) broker.replicaLag += replica.lag;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(DESCRIBES_IN_FLIGHT_MAX, topics.length) }, worker));
  return { cluster: true, brokers };
}
