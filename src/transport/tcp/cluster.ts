/**
 * Cluster frames on a connection: METADATA (any client; a single broker answers for itself), the
 * replication frames a follower broker sends its leader (REPLICA_FETCH, EPOCH_END,
 * REPLICA_PROGRESS, CATCH_UP_READ), the digest frames a leader sends its followers (REPLICA_DIGEST,
 * REPLICA_REPAIR) and an operator's TOPIC_VERIFY, which need the `replicate` (or `admin`) grant
 * when logins are on.
 */
import { FerryError } from '../../errors.js';
import type { Frame } from '../../protocol/frame.js';
import { FRAME_TYPES } from '../../protocol/frame.js';
import { decodeMetadata, encodeMetadataOk, type MetadataResponse } from '../../protocol/codec-metadata.js';
import { decodeEpochEnd, decodeReplicaFetch, decodeReplicaProgress, encodeEpochEndOk, encodeReplicaFetchOk } from '../../protocol/codec-replication.js';
import { decodeClusterChange, encodeClusterChangeOk, type ClusterChangeRequest, type ClusterChangeResult } from '../../protocol/codec-cluster-change.js';
import { decodeCatchUpRead, encodeCatchUpReadOk } from '../../protocol/codec-catch-up.js';
import { decodeReplicaDigest, decodeReplicaRepair, decodeTopicVerify, encodeReplicaDigestOk, encodeTopicVerifyOk } from '../../protocol/codec-digest.js';
import type { PayloadReader } from '../../protocol/reader.js';
import type { Socket } from 'node:net';
import type { Principal } from '../../security/authenticator.js';
import type { ClusterFrames } from './cluster-frames.js';
import type { TcpSecurity } from './options.js';
import type { RequestContext } from './request-context.js';

/** The connection as the checks here see it. */
export interface ClusterPeer {
  socket: Socket;
  principal: Principal | null;
  security: TcpSecurity | null;
  /** The cluster, or null for a single broker. */
  cluster: ClusterFrames | null;
}

export interface ClusterFrameContext extends RequestContext {
  readonly peer: ClusterPeer;
  /** Resolves when the connection has closed (its parked fetches then wake). */
  whenClosed(): Promise<void>;
}

const CLUSTER_FRAME_TYPES: ReadonlySet<number> = new Set([
  FRAME_TYPES.METADATA,
  FRAME_TYPES.REPLICA_FETCH,
  FRAME_TYPES.EPOCH_END,
  FRAME_TYPES.REPLICA_PROGRESS,
  FRAME_TYPES.REPLICA_DIGEST,
  FRAME_TYPES.REPLICA_REPAIR,
  FRAME_TYPES.CATCH_UP_READ,
  FRAME_TYPES.CLUSTER_CHANGE,
  FRAME_TYPES.TOPIC_VERIFY,
]);

export function isClusterFrame(type: number): boolean {
  return CLUSTER_FRAME_TYPES.has(type);
}

/** Whether the logged-in user may replicate the topic: the `replicate` or `admin` grant (anyone, without logins). */
function mayReplicate(peer: ClusterPeer, topic: string): boolean {
  const auth = peer.security?.authenticator;
  if (auth === undefined || !auth.enabled) return true;
  return auth.allows(peer.principal, 'replicate', { topic }) || auth.allows(peer.principal, 'admin', { topic });
}

/** host:port this connection reached: how a single broker names itself in METADATA. */
function localAddress(socket: Socket): string {
  const host = socket.localAddress ?? '127.0.0.1';
  return `${host.includes(':') ? `[${host}]` : host}:${socket.localPort ?? 0}`;
}

export function handleClusterFrame(context: ClusterFrameContext, frame: Frame, r: PayloadReader): void {
  const id = frame.requestId;
  const cluster = context.peer.cluster;
  switch (frame.type) {
    case FRAME_TYPES.METADATA: {
      const request = decodeMetadata(r);
      encodeMetadataOk(context.writer, id, cluster === null ? singleBroker(context, request.topics) : cluster.metadata(request.topics));
      context.replied();
      return;
    }
    case FRAME_TYPES.REPLICA_FETCH: {
      const request = decodeReplicaFetch(r);
      context.run(id, withCluster(context, request.topic).then((leader) => leader.fetch(request, (cancel) => void context.whenClosed().then(cancel))), (response) => encodeReplicaFetchOk(context.writer, id, response));
      return;
    }
    case FRAME_TYPES.EPOCH_END: {
      const request = decodeEpochEnd(r);
      context.run(id, withCluster(context, request.topic).then((leader) => leader.epochEnd(request)), (response) => encodeEpochEndOk(context.writer, id, response));
      return;
    }
    case FRAME_TYPES.CATCH_UP_READ: {
      const request = decodeCatchUpRead(r);
      context.run(id, withCluster(context, request.topic).then((node) => node.catchUpRead(request)), (chunk) => encodeCatchUpReadOk(context.writer, id, chunk));
      return;
    }
    case FRAME_TYPES.REPLICA_DIGEST: {
      const request = decodeReplicaDigest(r);
      context.run(id, withCluster(context, request.topic).then((node) => node.digests(request)), (response) => encodeReplicaDigestOk(context.writer, id, response));
      return;
    }
    case FRAME_TYPES.REPLICA_REPAIR: {
      const request = decodeReplicaRepair(r);
      context.run(id, withCluster(context, request.topic).then((node) => node.repair(request)), () => context.writer.emptyFrame(FRAME_TYPES.OK, id));
      return;
    }
    case FRAME_TYPES.TOPIC_VERIFY: {
      const { topic } = decodeTopicVerify(r);
      context.run(id, withCluster(context, topic).then((node) => node.verifyTopic(topic)), (result) => encodeTopicVerifyOk(context.writer, id, result));
      return;
    }
    case FRAME_TYPES.CLUSTER_CHANGE: {
      const request = decodeClusterChange(r);
      context.run(id, changeCluster(context.peer, request), (result) => encodeClusterChangeOk(context.writer, id, result));
      return;
    }
    case FRAME_TYPES.REPLICA_PROGRESS: {
      const message = decodeReplicaProgress(r);
      // Noted in the order the frames came: a REPLICA_FETCH read just before (in the same chunk)
      // notes its older report a microtask later, behind withCluster, and noted at once this newer
      // one would be overwritten by it; after a handover's seal nothing corrected that until the
      // fetch's long poll ended (FETCH_WAIT_MS_MAX), and every confirm waited for it.
      withCluster(context, message.topic).then(
        (frames) => frames.progress(message),
        () => undefined,
      );
      return;
    }
  }
}

/** A reassign needs the admin grant on its topic; a drain touches every topic: admin on all (`*`). */
function changeCluster(peer: ClusterPeer, request: ClusterChangeRequest): Promise<ClusterChangeResult> {
  const cluster = peer.cluster;
  if (cluster === null) return Promise.reject(new FerryError('INVALID_ARGUMENT', 'this broker is not in a cluster: replicas live on one broker'));
  const auth = peer.security?.authenticator;
  const topic = request.op === 'reassign' ? request.topic : '*';
  if (auth !== undefined && auth.enabled && !auth.allows(peer.principal, 'admin', { topic })) {
    return Promise.reject(new FerryError('FORBIDDEN', request.op === 'reassign' ? `moving replicas of ${topic} needs the admin grant` : 'draining a broker needs the admin grant on every topic'));
  }
  return cluster.change(request);
}

function withCluster(context: ClusterFrameContext, topic: string): Promise<ClusterFrames> {
  const cluster = context.peer.cluster;
  if (cluster === null) return Promise.reject(new FerryError('INVALID_ARGUMENT', 'this broker is not in a cluster'));
  if (!mayReplicate(context.peer, topic)) return Promise.reject(new FerryError('FORBIDDEN', `replicating ${topic} needs the replicate grant`));
  return Promise.resolve(cluster);
}

/** A single broker answers METADATA with itself as the only broker and the leader ('') of every topic. */
function singleBroker(context: ClusterFrameContext, topics: readonly string[]): MetadataResponse {
  const existing = new Set(context.broker.listTopics().map((info) => info.name));
  const names = topics.length === 0 ? [...existing].sort() : topics;
  return {
    nodeId: '',
    brokers: [{ nodeId: '', address: localAddress(context.peer.socket), alive: true }],
    topics: names.map((name) => ({ name, leader: '', epoch: 0, exists: existing.has(name) })),
  };
}
