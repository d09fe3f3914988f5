/**
 * Between the API's messages (src/generated, from proto/ferry/v1) and the broker's types
 * (src/broker/types.ts). Field checks that the broker does not make itself happen here and fail
 * with INVALID_ARGUMENT naming the field; 64-bit fields arrive as bigint and must be safe integers.
 */
import type { MessageInitShape } from '@bufbuild/protobuf';
import { timestampFromMs, timestampMs } from '@bufbuild/protobuf/wkt';
import { FerryError } from '../../errors.js';
import { PARTITIONS_MAX } from '../../broker/limits.js';
import { PRIORITY_HEADER, priorityHeader } from '../../protocol/priority.js';
import type {
  Delivery,
  Durability as BrokerDurability,
  GroupConfig as BrokerGroupConfig,
  GroupInfo,
  Header,
  PublishMessage as BrokerPublishMessage,
  PublishResult as BrokerPublishResult,
  RetentionPolicy,
  StartPosition as BrokerStartPosition,
  SubscribeOptions,
  TopicConfig as BrokerTopicConfig,
  TopicInfo,
  TopicPartitionInfo,
} from '../../broker/types.js';
import type { MessageSchema, PublishMessage, PublishResultSchema, Subscription } from '../../generated/ferry/v1/messages_pb.js';
import {
  Durability,
  type GroupConfig,
  type GroupSchema,
  type StartPosition,
  type TopicConfig,
  type TopicPartitionSchema,
  type TopicSchema,
} from '../../generated/ferry/v1/topics_pb.js';

export type MessageInit = MessageInitShape<typeof MessageSchema>;

/**
 * JSON as the Connect protocol speaks it here: every zero value printed (offset "0", partition 0)
 * so curl users see every field, and unknown fields refused so a typo is an error, not a silently
 * ignored setting. The router and Publish's fast path (fast-publish.ts) both use it.
 */
export const CONNECT_JSON_OPTIONS = { alwaysEmitImplicit: true, ignoreUnknownFields: false } as const;

/** A required string field: empty is INVALID_ARGUMENT. */
export function requireField(value: string, field: string): string {
  if (value === '') throw new FerryError('INVALID_ARGUMENT', `${field} is required`);
  return value;
}

/** A 64-bit field as a JS number; above 2^53 - 1 it is INVALID_ARGUMENT. */
export function toSafeNumber(value: bigint, field: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new FerryError('INVALID_ARGUMENT', `${field} must be at most ${Number.MAX_SAFE_INTEGER}`);
  return Number(value);
}

function optionalNumber(value: bigint | undefined, field: string): number | undefined {
  return value === undefined ? undefined : toSafeNumber(value, field);
}

// ---- Topics and groups -------------------------------------------------------------------------

const DURABILITY_FROM_PROTO: Record<Durability, BrokerDurability | undefined> = {
  [Durability.UNSPECIFIED]: undefined,
  [Durability.ALWAYS]: 'always',
  [Durability.INTERVAL]: 'interval',
  [Durability.NEVER]: 'never',
};

const DURABILITY_TO_PROTO: Record<BrokerDurability, Durability> = {
  always: Durability.ALWAYS,
  interval: Durability.INTERVAL,
  never: Durability.NEVER,
};

/** Create settings: zero and unset fields are left out, so the broker's defaults apply. */
export function topicConfigFromProto(config: TopicConfig | undefined): Partial<BrokerTopicConfig> {
  if (config === undefined) return {};
  if (!(config.durability in DURABILITY_FROM_PROTO)) throw new FerryError('INVALID_ARGUMENT', `config.durability ${config.durability} is not a known value`);
  const durability = DURABILITY_FROM_PROTO[config.durability];
  const result: Partial<BrokerTopicConfig> = {};
  if (config.partitions !== 0) result.partitions = config.partitions;
  if (durability !== undefined) result.durability = durability;
  if (config.syncIntervalMs !== 0) result.syncIntervalMs = config.syncIntervalMs;
  if (config.segmentBytes !== 0n) result.segmentBytes = toSafeNumber(config.segmentBytes, 'config.segment_bytes');
  if (config.dedupWindowMs !== undefined) result.dedupWindowMs = toSafeNumber(config.dedupWindowMs, 'config.dedup_window_ms');
  if (config.replicas !== 0) result.replicas = config.replicas;
  if (config.minInSync !== 0) result.minInSync = config.minInSync;
  if (config.retention !== undefined) {
    const retention: RetentionPolicy = {};
    const ageMs = optionalNumber(config.retention.ageMs, 'config.retention.age_ms');
    const bytesMax = optionalNumber(config.retention.bytesMax, 'config.retention.bytes_max');
    const recordsMax = optionalNumber(config.retention.recordsMax, 'config.retention.records_max');
    if (ageMs !== undefined) retention.ageMs = ageMs;
    if (bytesMax !== undefined) retention.bytesMax = bytesMax;
    if (recordsMax !== undefined) retention.recordsMax = recordsMax;
    result.retention = retention;
  }
  return result;
}

export function topicToProto(info: TopicInfo): MessageInitShape<typeof TopicSchema> {
  const { config } = info;
  const retention = config.retention;
  return {
    name: info.name,
    config: {
      partitions: config.partitions,
      durability: DURABILITY_TO_PROTO[config.durability],
      syncIntervalMs: config.syncIntervalMs,
      segmentBytes: BigInt(config.segmentBytes),
      retention: {
        ...(retention.ageMs === undefined ? {} : { ageMs: BigInt(retention.ageMs) }),
        ...(retention.bytesMax === undefined ? {} : { bytesMax: BigInt(retention.bytesMax) }),
        ...(retention.recordsMax === undefined ? {} : { recordsMax: BigInt(retention.recordsMax) }),
      },
      ...(config.dedupWindowMs === undefined ? {} : { dedupWindowMs: BigInt(config.dedupWindowMs) }),
      ...(config.replicas === undefined ? {} : { replicas: config.replicas }),
      ...(config.minInSync === undefined ? {} : { minInSync: config.minInSync }),
    },
    partitions: info.partitions.map((partition) => ({
      partition: partition.partition,
      startOffset: BigInt(partition.startOffset),
      nextOffset: BigInt(partition.nextOffset),
      // The broker reports the last synced offset (startOffset - 1 when none): send the end instead.
      syncedEndOffset: BigInt(partition.syncedOffset + 1),
      segments: partition.segments,
      bytes: BigInt(partition.bytes),
      ...replicationToProto(partition),
    })),
    groups: info.groups,
  };
}

/** A partition's replication state (cluster mode); nothing for a single broker's partition. */
function replicationToProto(partition: TopicPartitionInfo): MessageInitShape<typeof TopicPartitionSchema> {
  if (partition.leader === undefined) return {};
  return {
    leader: partition.leader,
    ...(partition.epoch === undefined ? {} : { epoch: BigInt(partition.epoch) }),
    replicas: partition.replicas ?? [],
    inSync: partition.inSync ?? [],
    ...(partition.highWatermark === undefined ? {} : { highWatermark: BigInt(partition.highWatermark) }),
    replicaOffsets: (partition.replicaOffsets ?? []).map((replica) => ({ nodeId: replica.nodeId, endOffset: BigInt(replica.endOffset), lag: BigInt(replica.lag) })),
  };
}

export function groupToProto(info: GroupInfo): MessageInitShape<typeof GroupSchema> {
  return {
    topic: info.topic,
    name: info.name,
    config: { ...info.config, backoffMs: [...info.config.backoffMs] },
    subscribers: info.subscribers,
    inFlight: BigInt(info.inFlight),
    pendingRedelivery: BigInt(info.pendingRedelivery),
    pending: BigInt(info.pending),
    redeliveredTotal: BigInt(info.redeliveredTotal),
    deadLetteredTotal: BigInt(info.deadLetteredTotal),
    oldestUnackedAgeMs: BigInt(Math.round(info.oldestUnackedAgeMs)),
    partitions: info.partitions.map((partition) => ({
      partition: partition.partition,
      ackFloor: BigInt(partition.ackFloor),
      lag: BigInt(partition.lag),
    })),
  };
}

export function startPositionFromProto(position: StartPosition | undefined, field: string): BrokerStartPosition | undefined {
  switch (position?.position.case) {
    case undefined:
      return undefined;
    case 'earliest':
      return { kind: 'earliest' };
    case 'latest':
      return { kind: 'latest' };
    case 'offset':
      return { kind: 'offset', offset: toSafeNumber(position.position.value, `${field}.offset`) };
    case 'time':
      return { kind: 'timestamp', timestampMs: timestampMs(position.position.value) };
  }
}

/** Group settings for a subscribe: zero and empty fields are left to the broker's defaults. */
export function groupConfigFromProto(config: GroupConfig | undefined): Partial<BrokerGroupConfig> {
  if (config === undefined) return {};
  const result: Partial<BrokerGroupConfig> = {};
  if (config.ackTimeoutMs !== 0) result.ackTimeoutMs = config.ackTimeoutMs;
  if (config.backoffMs.length > 0) result.backoffMs = [...config.backoffMs];
  if (config.deliveriesMax !== 0) result.deliveriesMax = config.deliveriesMax;
  if (config.deadLetterTopic !== '') result.deadLetterTopic = config.deadLetterTopic;
  return result;
}

/** What broker.subscribe needs for a Subscription message (credit is added by the caller). */
export function subscribeOptionsFromProto(subscription: Subscription, field: string): { topic: string; options: SubscribeOptions } {
  const topic = requireField(subscription.topic, `${field}.topic`);
  const options: SubscribeOptions = { ...groupConfigFromProto(subscription.groupConfig) };
  if (subscription.group !== '') options.group = subscription.group;
  const from = startPositionFromProto(subscription.start, `${field}.start`);
  if (from !== undefined) options.from = from;
  if (subscription.resumeOffsets.length > 0) {
    if (options.group !== undefined) throw new FerryError('INVALID_ARGUMENT', `${field}.resume_offsets is for streams only (a group resumes by itself)`);
    const offsets: number[] = [];
    for (const { partition, offset } of subscription.resumeOffsets) {
      if (partition >= PARTITIONS_MAX) throw new FerryError('INVALID_ARGUMENT', `${field}.resume_offsets.partition must be below ${PARTITIONS_MAX}`);
      offsets[partition] = toSafeNumber(offset, `${field}.resume_offsets.offset`);
    }
    // Partitions not listed keep the start position: the broker skips holes (not safe integers).
    options.partitionOffsets = Array.from(offsets, (offset) => offset ?? -1);
  }
  return { topic, options };
}

// ---- Messages ----------------------------------------------------------------------------------

export function publishMessageFromProto(message: PublishMessage, index: number): BrokerPublishMessage {
  const headers: Header[] = [];
  for (const name in message.headers) headers.push([name, message.headers[name]!]);
  if (message.priority !== undefined) {
    const header = priorityHeader(message.priority, `messages[${index}].priority`);
    // The field wins over a header of the same name, so a message never carries two priorities.
    const existing = headers.findIndex(([name]) => name === PRIORITY_HEADER);
    if (existing >= 0) headers.splice(existing, 1);
    headers.push(header);
  }
  const result: BrokerPublishMessage = {
    key: message.key === undefined ? null : asBuffer(message.key),
    headers,
    value: asBuffer(message.value),
  };
  if (message.partition !== undefined) result.partition = message.partition;
  if (message.id !== '') result.id = message.id;
  if (message.delayMs !== 0) result.delayMs = message.delayMs;
  if (message.deliverAt !== undefined) result.deliverAtMs = timestampMs(message.deliverAt);
  return result;
}

/** The bytes as a Buffer: the same one when they are one already (the fast path's), else a view over them. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function publishResultToProto(result: BrokerPublishResult): MessageInitShape<typeof PublishResultSchema> {
  return {
    partition: result.partition,
    offset: BigInt(result.offset),
    duplicate: result.duplicate === true,
    ...(result.deliverAtMs === undefined ? {} : { deliverAt: timestampFromMs(result.deliverAtMs) }),
  };
}

export function deliveryToProto(delivery: Delivery): MessageInit {
  // No prototype: a header may be named `__proto__`, which on a plain object would set the prototype, not a header.
  const headers = Object.create(null) as Record<string, string>;
  for (const [name, value] of delivery.headers) headers[name] = value;
  const message: MessageInit = {
    topic: delivery.topic,
    partition: delivery.partition,
    offset: BigInt(delivery.offset),
    publishTime: timestampFromMs(delivery.timestampMs),
    headers,
    value: delivery.value,
    deliveryCount: delivery.deliveryCount,
  };
  if (delivery.key !== null) message.key = delivery.key;
  return message;
}

/** Bytes a delivery adds to a response, near enough to batch by (value, key, headers, framing). */
export function deliveryBytes(delivery: Delivery): number {
  let bytes = delivery.value.length + (delivery.key?.length ?? 0) + delivery.topic.length + 48;
  for (const [name, value] of delivery.headers) bytes += name.length + value.length + 8;
  return bytes;
}
