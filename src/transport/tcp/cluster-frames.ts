/**
 * What a broker in cluster mode answers on a client connection: the port cluster/cluster-node.ts
 * implements and the TCP server holds. Its own module, below both the server's options (which carry
 * one) and the frame handlers (cluster.ts, which call it).
 */
import type { MetadataResponse } from '../../protocol/codec-metadata.js';
import type { EpochEndRequest, EpochEndResponse, ReplicaFetchRequest, ReplicaFetchResponse, ReplicaProgress } from '../../protocol/codec-replication.js';
import type { ClusterChangeRequest, ClusterChangeResult } from '../../protocol/codec-cluster-change.js';
import type { CatchUpChunk, CatchUpReadRequest } from '../../protocol/codec-catch-up.js';
import type { ReplicaDigestRequest, ReplicaDigestResponse, ReplicaRepairRequest, TopicVerification } from '../../protocol/codec-digest.js';

/** What a broker in cluster mode answers (cluster/cluster-node.ts). */
export interface ClusterFrames {
  readonly nodeId: string;
  metadata(topics: readonly string[]): MetadataResponse;
  fetch(request: ReplicaFetchRequest, onParked?: (cancel: () => void) => void): Promise<ReplicaFetchResponse>;
  epochEnd(request: EpochEndRequest): EpochEndResponse;
  progress(message: ReplicaProgress): void;
  /** Moves replicas between brokers (an operator's CLUSTER_CHANGE). */
  change(request: ClusterChangeRequest): Promise<ClusterChangeResult>;
  /** A chunk of the sealed segments of a topic this broker leads (CATCH_UP_READ). */
  catchUpRead(request: CatchUpReadRequest): Promise<CatchUpChunk>;
  /** Digests of this broker's replica of a topic (REPLICA_DIGEST, asked by its leader). */
  digests(request: ReplicaDigestRequest): Promise<ReplicaDigestResponse>;
  /** The leader tells this broker's replica to cut and fetch again (REPLICA_REPAIR). */
  repair(request: ReplicaRepairRequest): Promise<void>;
  /** Compares every replica of a topic with its leader (TOPIC_VERIFY, this broker leading it). */
  verifyTopic(topic: string): Promise<TopicVerification>;
}
