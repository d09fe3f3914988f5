/**
 * METADATA: which brokers a cluster has and which one leads each topic. A client asks any broker
 * and sends a topic's publishes and subscriptions to its leader; a single broker answers with
 * itself as the leader of every topic.
 */
import { FRAME_TYPES } from './frame.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

/** Brokers and topics in one METADATA answer: far above any cluster, small enough to bound a reply. */
const BROKERS_MAX = 65_536;
const TOPICS_MAX = 1_000_000;

export interface MetadataRequest {
  /** Topics asked about; empty: every topic. */
  topics: string[];
}

export interface BrokerMetadata {
  nodeId: string;
  /** host:port clients dial (the broker's advertised address). */
  address: string;
  alive: boolean;
}

export interface TopicMetadata {
  name: string;
  /** Node id of the leader; '' while no leader is elected (or the topic is unknown). */
  leader: string;
  epoch: number;
  /** False when the topic does not exist. */
  exists: boolean;
}

export interface MetadataResponse {
  /** Node id of the broker that answered ('' for a single broker). */
  nodeId: string;
  brokers: BrokerMetadata[];
  topics: TopicMetadata[];
}

export function encodeMetadata(w: FrameWriter, requestId: number, request: MetadataRequest): void {
  w.beginFrame(FRAME_TYPES.METADATA, requestId);
  w.u32(request.topics.length);
  for (const topic of request.topics) w.string16(topic);
  w.u8(0);
  w.endFrame();
}

export function decodeMetadata(r: PayloadReader): MetadataRequest {
  const n = r.u32();
  if (n > TOPICS_MAX) throw malformed(`${n} topics exceed ${TOPICS_MAX}`);
  const topics: string[] = [];
  for (let i = 0; i < n; i++) topics.push(r.string16());
  r.skipTagged();
  r.done();
  return { topics };
}

export function encodeMetadataOk(w: FrameWriter, requestId: number, response: MetadataResponse): void {
  w.beginFrame(FRAME_TYPES.METADATA_OK, requestId);
  w.string16(response.nodeId);
  w.u32(response.brokers.length);
  for (const broker of response.brokers) {
    w.string16(broker.nodeId);
    w.string16(broker.address);
    w.u8(broker.alive ? 1 : 0);
  }
  w.u32(response.topics.length);
  for (const topic of response.topics) {
    w.string16(topic.name);
    w.string16(topic.leader);
    w.u32(topic.epoch);
    w.u8(topic.exists ? 1 : 0);
  }
  w.u8(0);
  w.endFrame();
}

export function decodeMetadataOk(r: PayloadReader): MetadataResponse {
  const nodeId = r.string16();
  const brokerCount = r.u32();
  if (brokerCount > BROKERS_MAX) throw malformed(`${brokerCount} brokers exceed ${BROKERS_MAX}`);
  const brokers: BrokerMetadata[] = [];
  for (let i = 0; i < brokerCount; i++) brokers.push({ nodeId: r.string16(), address: r.string16(), alive: r.u8() === 1 });
  const topicCount = r.u32();
  if (topicCount > TOPICS_MAX) throw malformed(`${topicCount} topics exceed ${TOPICS_MAX}`);
  const topics: TopicMetadata[] = [];
  for (let i = 0; i < topicCount; i++) topics.push({ name: r.string16(), leader: r.string16(), epoch: r.u32(), exists: r.u8() === 1 });
  r.skipTagged();
  r.done();
  return { nodeId, brokers, topics };
}
