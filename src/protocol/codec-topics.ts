/**
 * Topic administration frames: CREATE_TOPIC, DELETE_TOPIC, LIST_TOPICS, DESCRIBE_TOPIC and the
 * replies TOPIC_INFO and TOPIC_LIST. Optional topic settings travel as tagged fields so that a
 * newer client can send settings an older server skips.
 */
import { applyClusterJson, clusterJson } from './codec-topic-cluster.js';
import { FRAME_TYPES } from './frame.js';
import {
  DURABILITY_BY_WIRE,
  DURABILITY_WIRE,
  type CreateTopicRequest,
  type WirePartitionInfo,
  type WireRetention,
  type WireTopicConfig,
  type WireTopicInfo,
} from './messages.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

const CONFIG_TAG = {
  partitions: 1,
  durability: 2,
  syncIntervalMs: 3,
  retentionAgeMs: 4,
  retentionBytesMax: 5,
  retentionRecordsMax: 6,
  segmentBytes: 7,
  dedupWindowMs: 8,
  replicas: 9,
  minInSync: 10,
} as const;

/** Tagged fields at the end of each topic in TOPIC_INFO and TOPIC_LIST; `cluster` is JSON (codec-topic-cluster.ts). */
const TOPIC_TAG = { dedupWindowMs: 1, cluster: 2 } as const;

const RETENTION_FLAG = { ageMs: 0x01, bytesMax: 0x02, recordsMax: 0x04 } as const;

/** Partitions and groups listed per topic: far above any sane topic, small enough to bound a reply. */
const PARTITIONS_MAX = 65_536;
const GROUPS_MAX = 65_536;
const TOPICS_MAX = 1_000_000;

function durabilityFromWire(value: number): WireTopicConfig['durability'] {
  const durability = DURABILITY_BY_WIRE[value];
  if (durability === undefined) throw malformed(`unknown durability ${value}`);
  return durability;
}

export function encodeCreateTopic(w: FrameWriter, requestId: number, request: CreateTopicRequest): void {
  const { config } = request;
  w.beginFrame(FRAME_TYPES.CREATE_TOPIC, requestId);
  w.string16(request.name);
  const tagged = w.taggedBegin();
  let count = 0;
  if (config.partitions !== undefined) (w.tagU32(CONFIG_TAG.partitions, config.partitions), count++);
  if (config.durability !== undefined) (w.tagU8(CONFIG_TAG.durability, DURABILITY_WIRE[config.durability]), count++);
  if (config.syncIntervalMs !== undefined) (w.tagU32(CONFIG_TAG.syncIntervalMs, config.syncIntervalMs), count++);
  const retention = config.retention;
  if (retention?.ageMs !== undefined) (w.tagU64(CONFIG_TAG.retentionAgeMs, retention.ageMs), count++);
  if (retention?.bytesMax !== undefined) (w.tagU64(CONFIG_TAG.retentionBytesMax, retention.bytesMax), count++);
  if (retention?.recordsMax !== undefined) (w.tagU64(CONFIG_TAG.retentionRecordsMax, retention.recordsMax), count++);
  if (config.segmentBytes !== undefined) (w.tagU64(CONFIG_TAG.segmentBytes, config.segmentBytes), count++);
  if (config.dedupWindowMs !== undefined) (w.tagU64(CONFIG_TAG.dedupWindowMs, config.dedupWindowMs), count++);
  if (config.replicas !== undefined) (w.tagU8(CONFIG_TAG.replicas, config.replicas), count++);
  if (config.minInSync !== undefined) (w.tagU8(CONFIG_TAG.minInSync, config.minInSync), count++);
  w.taggedEnd(tagged, count);
  w.endFrame();
}

function visitConfig(tag: number, r: PayloadReader, config: Partial<WireTopicConfig>): void {
  switch (tag) {
    case CONFIG_TAG.partitions:
      config.partitions = r.u32();
      break;
    case CONFIG_TAG.durability:
      config.durability = durabilityFromWire(r.u8());
      break;
    case CONFIG_TAG.syncIntervalMs:
      config.syncIntervalMs = r.u32();
      break;
    case CONFIG_TAG.retentionAgeMs:
      (config.retention ??= {}).ageMs = r.u64();
      break;
    case CONFIG_TAG.retentionBytesMax:
      (config.retention ??= {}).bytesMax = r.u64();
      break;
    case CONFIG_TAG.retentionRecordsMax:
      (config.retention ??= {}).recordsMax = r.u64();
      break;
    case CONFIG_TAG.segmentBytes:
      config.segmentBytes = r.u64();
      break;
    case CONFIG_TAG.dedupWindowMs:
      config.dedupWindowMs = r.u64();
      break;
    case CONFIG_TAG.replicas:
      config.replicas = r.u8();
      break;
    case CONFIG_TAG.minInSync:
      config.minInSync = r.u8();
      break;
    default:
      // A setting from a newer peer: skipped.
      break;
  }
}

export function decodeCreateTopic(r: PayloadReader): CreateTopicRequest {
  const name = r.string16();
  const config: Partial<WireTopicConfig> = {};
  r.tagged(visitConfig, config);
  r.done();
  return { name, config };
}

/** DELETE_TOPIC and DESCRIBE_TOPIC carry just a topic name. */
export function encodeTopicName(w: FrameWriter, type: number, requestId: number, name: string): void {
  w.beginFrame(type, requestId);
  w.string16(name);
  w.u8(0);
  w.endFrame();
}

export function decodeTopicName(r: PayloadReader): string {
  const name = r.string16();
  r.skipTagged();
  r.done();
  return name;
}

function writeTopicInfo(w: FrameWriter, info: WireTopicInfo): void {
  const { config } = info;
  w.string16(info.name);
  w.u32(config.partitions);
  w.u8(DURABILITY_WIRE[config.durability]);
  w.u32(config.syncIntervalMs);
  w.u64(config.segmentBytes);
  const retention = config.retention;
  let flags = 0;
  if (retention.ageMs !== undefined) flags |= RETENTION_FLAG.ageMs;
  if (retention.bytesMax !== undefined) flags |= RETENTION_FLAG.bytesMax;
  if (retention.recordsMax !== undefined) flags |= RETENTION_FLAG.recordsMax;
  w.u8(flags);
  if (retention.ageMs !== undefined) w.u64(retention.ageMs);
  if (retention.bytesMax !== undefined) w.u64(retention.bytesMax);
  if (retention.recordsMax !== undefined) w.u64(retention.recordsMax);
  w.u32(info.partitions.length);
  for (const p of info.partitions) {
    w.u32(p.partition);
    w.u64(p.startOffset);
    w.u64(p.nextOffset);
    // syncedOffset is startOffset - 1 (possibly -1) when nothing is synced: sent plus one, as u64.
    w.u64(p.syncedOffset + 1);
    w.u32(p.segments);
    w.u64(p.bytes);
  }
  w.u32(info.groups.length);
  for (const group of info.groups) w.string16(group);
  const cluster = clusterJson(info.partitions);
  const tagged = w.taggedBegin();
  let count = 0;
  if (config.dedupWindowMs !== undefined) (w.tagU64(TOPIC_TAG.dedupWindowMs, config.dedupWindowMs), count++);
  if (cluster !== null) (w.tagString(TOPIC_TAG.cluster, cluster), count++);
  w.taggedEnd(tagged, count);
}

interface TopicTags {
  config: WireTopicConfig;
  cluster: string | null;
}

function visitTopic(tag: number, r: PayloadReader, tags: TopicTags): void {
  if (tag === TOPIC_TAG.dedupWindowMs) tags.config.dedupWindowMs = r.u64();
  else if (tag === TOPIC_TAG.cluster) tags.cluster = r.string32();
}

function readTopicInfo(r: PayloadReader): WireTopicInfo {
  const name = r.string16();
  const partitionCount = r.u32();
  const durability = durabilityFromWire(r.u8());
  const syncIntervalMs = r.u32();
  const segmentBytes = r.u64();
  const flags = r.u8();
  const retention: WireRetention = {};
  if (flags & RETENTION_FLAG.ageMs) retention.ageMs = r.u64();
  if (flags & RETENTION_FLAG.bytesMax) retention.bytesMax = r.u64();
  if (flags & RETENTION_FLAG.recordsMax) retention.recordsMax = r.u64();
  const infoCount = r.u32();
  if (infoCount > PARTITIONS_MAX) throw malformed(`${infoCount} partitions`);
  const partitions: WirePartitionInfo[] = [];
  for (let i = 0; i < infoCount; i++) {
    partitions.push({
      partition: r.u32(),
      startOffset: r.u64(),
      nextOffset: r.u64(),
      syncedOffset: r.u64() - 1,
      segments: r.u32(),
      bytes: r.u64(),
    });
  }
  const groupCount = r.u32();
  if (groupCount > GROUPS_MAX) throw malformed(`${groupCount} groups`);
  const groups: string[] = [];
  for (let i = 0; i < groupCount; i++) groups.push(r.string16());
  const config: WireTopicConfig = { partitions: partitionCount, durability, syncIntervalMs, retention, segmentBytes };
  const tags: TopicTags = { config, cluster: null };
  r.tagged(visitTopic, tags);
  if (tags.cluster !== null) applyClusterJson(tags.cluster, partitions);
  return { name, config, partitions, groups };
}

export function encodeTopicInfo(w: FrameWriter, requestId: number, info: WireTopicInfo): void {
  w.beginFrame(FRAME_TYPES.TOPIC_INFO, requestId);
  writeTopicInfo(w, info);
  w.endFrame();
}

export function decodeTopicInfo(r: PayloadReader): WireTopicInfo {
  const info = readTopicInfo(r);
  r.done();
  return info;
}

export function encodeTopicList(w: FrameWriter, requestId: number, topics: readonly WireTopicInfo[]): void {
  w.beginFrame(FRAME_TYPES.TOPIC_LIST, requestId);
  w.u32(topics.length);
  for (const info of topics) writeTopicInfo(w, info);
  w.endFrame();
}

export function decodeTopicList(r: PayloadReader): WireTopicInfo[] {
  const count = r.u32();
  if (count > TOPICS_MAX) throw malformed(`${count} topics`);
  const topics: WireTopicInfo[] = [];
  for (let i = 0; i < count; i++) topics.push(readTopicInfo(r));
  r.done();
  return topics;
}
