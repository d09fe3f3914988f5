/**
 * The shapes carried by each frame type, as plain data. Where the broker's contract
 * (src/broker/types.ts) has the same shape (group state, partition figures, redrive results), it
 * is defined here once and the broker names it: the client shares the protocol, never broker code.
 */
import type { ErrorCode } from '../errors.js';

export type WireHeader = readonly [name: string, value: string];

export const DURABILITY_WIRE = { always: 0, interval: 1, never: 2 } as const;
export type WireDurability = keyof typeof DURABILITY_WIRE;
export const DURABILITY_BY_WIRE: readonly WireDurability[] = ['always', 'interval', 'never'];

/** What a publish reached: 'synced' (fdatasync covered it) or 'written'. */
export const REACHED_WIRE = { written: 0, synced: 1 } as const;
export type WireReached = keyof typeof REACHED_WIRE;

export interface HelloRequest {
  clientName: string;
  /** Protocol versions the client speaks. */
  versions: number[];
  /** Tag 1: a service token (`ferry users token`), instead of user and password. */
  authToken?: string;
  /** Tag 2: the largest frame the client accepts; the server sends nothing larger. */
  frameBytesMax?: number;
  /** Tag 3: the user name, with tag 4. */
  user?: string;
  /** Tag 4: the user's password (send it over TLS). */
  password?: string;
}

export interface HelloOk {
  version: number;
  serverName: string;
  frameBytesMax: number;
  payloadBytesMax: number;
  heartbeatIntervalMs: number;
  /** Tag 1: the broker's node id; present only when the broker runs in cluster mode. */
  clusterNodeId?: string;
}

export interface ErrorReply {
  code: ErrorCode;
  message: string;
  detail?: Record<string, unknown>;
}

export interface Goodbye {
  code: ErrorCode;
  message: string;
}

export interface WireRetention {
  ageMs?: number;
  bytesMax?: number;
  recordsMax?: number;
}

export interface WireTopicConfig {
  partitions: number;
  durability: WireDurability;
  syncIntervalMs: number;
  retention: WireRetention;
  segmentBytes: number;
  /** How long a message id is remembered for exactly-once publish (CREATE_TOPIC tag 8, topic tag 1). */
  dedupWindowMs?: number;
  /** Cluster mode: brokers holding a copy of the topic (CREATE_TOPIC tag 9; default 1). */
  replicas?: number;
  /** Cluster mode: in-sync replicas needed to confirm a publish (CREATE_TOPIC tag 10). */
  minInSync?: number;
}

export interface CreateTopicRequest {
  name: string;
  config: Partial<WireTopicConfig>;
}

/** How far one replica of a partition has come (cluster mode). */
export interface WireReplicaOffset {
  nodeId: string;
  /** One past the replica's last offset. */
  endOffset: number;
  /** Records the replica is behind the leader's end. */
  lag: number;
}

/** A partition's replication state (cluster mode; TOPIC_INFO topic tag 2). */
export interface WirePartitionReplication {
  /** Node id of the leader; '' while none is elected. */
  leader: string;
  epoch: number;
  replicas: string[];
  inSync: string[];
  /** Consumers see the records below it: every in-sync replica holds them. */
  highWatermark: number;
  replicaOffsets: WireReplicaOffset[];
}

/** A partition of TOPIC_INFO; the replication fields are present only from a broker in cluster mode. */
export interface WirePartitionInfo extends Partial<WirePartitionReplication> {
  partition: number;
  startOffset: number;
  nextOffset: number;
  syncedOffset: number;
  segments: number;
  bytes: number;
}

export interface WireTopicInfo {
  name: string;
  config: WireTopicConfig;
  partitions: WirePartitionInfo[];
  groups: string[];
}

export interface WirePublishMessage {
  /** Explicit partition; absent lets the broker choose (key hash or round robin). */
  partition?: number;
  key?: Buffer | null;
  headers?: readonly WireHeader[];
  value: Buffer;
  /** Tag 1: message id for deduplication within the topic's window. */
  id?: string;
  /** Tag 2: deliver to groups no earlier than this many ms after the broker receives it. */
  delayMs?: number;
  /** Tag 3: deliver to groups no earlier than this time (ms since the epoch). */
  deliverAtMs?: number;
}

export interface PublishRequest {
  topic: string;
  messages: WirePublishMessage[];
  /** Broker to broker: the messages' `ferry-*` headers are the sending broker's (replicate grant). */
  asBroker?: boolean;
}

export interface PublishOk {
  /** The weakest durability reached by the messages of the frame. */
  durability: WireReached;
  partitions: number[];
  offsets: number[];
  /** Tag 1: indices of messages recognised as duplicates (nothing stored, first offset returned). */
  duplicates?: number[];
  /** Tag 2: (index, deliverAtMs) of delayed messages. */
  deliverAtMs?: Array<readonly [index: number, deliverAtMs: number]>;
}

export type WireStartPosition =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'offset'; offset: number }
  | { kind: 'timestamp'; timestampMs: number };

export const START_KIND_WIRE = { earliest: 0, latest: 1, offset: 2, timestamp: 3 } as const;

export interface SubscribeRequest {
  topic: string;
  group?: string;
  from: WireStartPosition;
  /** Initial credit: deliveries allowed before the subscriber grants more. */
  credit: number;
  /**
   * Tag 1: per-partition resume positions (the next offset wanted), sent when a stream
   * subscription is re-established after a reconnect.
   */
  resumeOffsets?: Array<readonly [partition: number, offset: number]>;
  /** Tags 2-5: group settings, applied when the group is created. */
  ackTimeoutMs?: number;
  backoffMs?: number[];
  deliveriesMax?: number;
  deadLetterTopic?: string;
}

export interface Subscribed {
  subscriptionId: number;
}

export interface WireDelivery {
  partition: number;
  offset: number;
  timestampMs: number;
  deliveryCount: number;
  key: Buffer | null;
  headers: WireHeader[];
  value: Buffer;
}

export interface DeliverBatch {
  subscriptionId: number;
  topic: string;
  deliveries: WireDelivery[];
}

export interface AckBatch {
  subscriptionId: number;
  partitions: number[];
  offsets: number[];
}

/** NACK delayMs that means "after the group's backoff for this delivery count" rather than an explicit delay. */
export const NACK_DELAY_BACKOFF = 0xffff_ffff;

export interface NackBatch extends AckBatch {
  /** 0 redelivers at once; NACK_DELAY_BACKOFF follows the group's backoff schedule. */
  delaysMs: number[];
}

/** TOUCH has the layout of ACK: restart the ack timeout of each delivery. */
export type TouchBatch = AckBatch;

export interface RejectBatch extends AckBatch {
  /** Why each message is rejected; becomes the dead letter's ferry-dlq-reason header. */
  reasons: string[];
}

/** One entry of a SETTLED reply: null code when the entry was applied (durably), else why not. */
export interface SettleOutcome {
  code: ErrorCode | null;
  message: string;
}

export interface WireGroupConfig {
  /** A delivery not acked within this is redelivered (after the backoff for its delivery count). */
  ackTimeoutMs: number;
  /** Delay before each redelivery (the last repeats); empty means the default exponential schedule. */
  backoffMs: number[];
  /** After this many deliveries a nack or timeout moves the message to the dead-letter topic. */
  deliveriesMax: number;
  /** Where dead letters go (an ordinary topic, created on first use). */
  deadLetterTopic: string;
}

export interface WireGroupPartitionInfo {
  partition: number;
  /** Every offset below this is settled. */
  ackFloor: number;
  /** Messages of the partition not yet settled by the group (including in flight). */
  lag: number;
}

/** A queue group's state (the broker's GroupInfo). */
export interface WireGroupInfo {
  topic: string;
  name: string;
  config: WireGroupConfig;
  subscribers: number;
  /** Delivered, not yet settled. */
  inFlight: number;
  /** Waiting to be delivered again (nacked, timed out, or left by a subscriber). */
  pendingRedelivery: number;
  /** Messages not yet settled, summed over partitions. */
  pending: number;
  redeliveredTotal: number;
  deadLetteredTotal: number;
  /** Age of the oldest delivered, unsettled message (0 when none). */
  oldestUnackedAgeMs: number;
  partitions: WireGroupPartitionInfo[];
}

export interface GroupRequest {
  topic: string;
  group: string;
}

export interface ResetGroupRequest extends GroupRequest {
  to: WireStartPosition;
}

export interface RedriveRequest {
  /** The dead-letter topic to move messages out of. */
  topic: string;
  limit?: number;
  fromOffset?: number;
  toOffset?: number;
  /** Only dead letters carrying this header with this value. */
  header?: WireHeader;
}

export interface RedriveOk {
  moved: number;
}

export interface CreditGrant {
  subscriptionId: number;
  count: number;
}
