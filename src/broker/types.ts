/**
 * The broker's contract: what the embedded API (`Broker.open`) offers and what every transport
 * (TCP, gRPC, HTTP) is a thin layer over. Implemented by src/broker/broker.ts. Shapes the wire
 * carries as they are (group state, partition figures) are defined once, in protocol/messages.ts.
 */
import type { RedriveOk, WireGroupConfig, WireGroupInfo, WireGroupPartitionInfo, WirePartitionInfo } from '../protocol/messages.js';
import type { ErrorCode } from '../errors.js';
import type { Durability, Header, RetentionPolicy, StorageObserver } from '../storage/types.js';

/** StorageObserver: told about every log's fsyncs and writes (BrokerOptions.storageObserver; the admin metrics implement it). */
export type { Durability, Header, RetentionPolicy, StorageObserver };

export interface TopicConfig {
  partitions: number;
  durability: Durability;
  /** `interval` durability: sync at least this often. */
  syncIntervalMs: number;
  retention: RetentionPolicy;
  segmentBytes: number;
  /** Exactly-once publish: how long a message id is remembered (default 2 min). */
  dedupWindowMs?: number;
  /** Cluster mode: brokers holding a copy (default 1; a single broker holds exactly one). */
  replicas?: number;
  /** Cluster mode: replicas in sync needed to confirm a publish (default min(2, replicas)). */
  minInSync?: number;
}

export type TopicPartitionInfo = WirePartitionInfo;

export interface TopicInfo {
  name: string;
  config: TopicConfig;
  partitions: TopicPartitionInfo[];
  groups: string[];
}

/** One message as a producer hands it to the broker. */
export interface PublishMessage {
  /** Explicit partition; when absent a keyed message goes to hash(key) % partitions, an unkeyed one round-robin. */
  partition?: number;
  key?: Buffer | null;
  headers?: readonly Header[];
  value: Buffer;
  /**
   * Message id for exactly-once publish: a second publish with the same id within the topic's
   * dedup window stores nothing and is answered with the first one's partition and offset.
   */
  id?: string;
  /** Deliver to groups no earlier than this many ms after the broker receives it. */
  delayMs?: number;
  /** Deliver to groups no earlier than this time (ms since the epoch); wins over delayMs. */
  deliverAtMs?: number;
}

export interface PublishResult {
  partition: number;
  offset: number;
  /** 'synced' once fdatasync covered it (always `always` topics); 'written' otherwise. */
  durability: 'synced' | 'written';
  /** True when the id was seen within the dedup window: nothing was stored, the first offset is returned. */
  duplicate?: boolean;
  /** For a delayed message: when it becomes deliverable (ms since the epoch). */
  deliverAtMs?: number;
}

/** Where a subscription starts: for a group, only when the group is new. */
export type StartPosition =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'offset'; offset: number }
  | { kind: 'timestamp'; timestampMs: number };

/** How a queue group redelivers; set when the group is created (first subscribe), then kept. */
export type GroupConfig = WireGroupConfig;

export interface SubscribeOptions extends Partial<GroupConfig> {
  /** Queue group name; absent means a stream subscription that keeps no state. */
  group?: string;
  from?: StartPosition;
  /** Streams: exact resume position per partition (index = partition), e.g. after a reconnect; wins over `from`. */
  partitionOffsets?: readonly number[];
  /** Deliveries allowed before the subscriber grants more credit (initial credit). */
  credit?: number;
  /**
   * Whether the caller may create `topic` (the guard's answer for its user). A subscribe that creates
   * a group whose dead-letter topic does not exist yet is refused FORBIDDEN unless it may: the
   * broker would create that topic on the caller's behalf. Absent: anyone may (embedded use).
   */
  mayCreateTopic?: (topic: string) => boolean;
}

/** A queue group's state, as describeGroup returns it (and the wire carries it). */
export type GroupInfo = WireGroupInfo;
export type GroupPartitionInfo = WireGroupPartitionInfo;

export interface RedriveOptions {
  /** Move at most this many messages. */
  limit?: number;
  /** Only dead-letter-topic offsets in [fromOffset, toOffset). */
  fromOffset?: number;
  toOffset?: number;
  /** Only messages carrying this header with this value. */
  header?: Header;
}

export type RedriveResult = RedriveOk;

/** One message handed to a subscriber. */
export interface Delivery {
  topic: string;
  partition: number;
  offset: number;
  timestampMs: number;
  key: Buffer | null;
  headers: readonly Header[];
  value: Buffer;
  /** 1 on first delivery to the group; streams always 1. */
  deliveryCount: number;
}

/**
 * Receives deliveries for one subscription. The broker calls `deliver` only while the subscription
 * has credit; `writable()` lets a transport pause deliveries while its socket is backed up (the
 * broker retries when the transport calls `subscription.resume()`).
 */
export interface DeliverySink {
  deliver(delivery: Delivery): void;
  writable(): boolean;
  /**
   * The broker ended the subscription; no more deliveries follow. `code` says why: the topic was
   * deleted (none given), or its leadership moved to another broker (NOT_LEADER: subscribe there).
   */
  ended?(reason: string, code?: ErrorCode): void;
}

export interface Subscription {
  readonly id: number;
  readonly topic: string;
  readonly group: string | undefined;
  /** Allow `count` more deliveries. Credit is a plain counter: acks do not add credit by themselves. */
  grantCredit(count: number): void;
  /** Group subscriptions: settle a delivered message. Streams: no-op. */
  ack(partition: number, offset: number): Promise<void>;
  /** Group subscriptions: return a delivered message for redelivery. */
  nack(partition: number, offset: number, options?: { delayMs?: number }): Promise<void>;
  /** Group subscriptions: move the message to the dead-letter topic now. */
  reject?(partition: number, offset: number, reason: string): Promise<void>;
  /** Group subscriptions: the message is still being worked on; restart its ack timeout. */
  touch?(partition: number, offset: number): Promise<void>;
  /** Call when the sink is writable again after `writable()` returned false. */
  resume(): void;
  /** Stops deliveries; unacknowledged group deliveries become deliverable to other subscribers. */
  close(options?: SubscriptionCloseOptions): Promise<void>;
}

export interface SubscriptionCloseOptions {
  /**
   * The subscriber vanished (its connection was lost, or it was cut off for not reading or not
   * answering heartbeats) rather than leaving: a group message it held at its last allowed delivery
   * (`deliveriesMax`) is dead-lettered instead of delivered again. A consumer that crashes on a
   * message would otherwise never let it reach its limit. Messages below the limit go straight back,
   * as on a clean close.
   */
  lost?: boolean;
}

export interface BrokerApi {
  createTopic(name: string, config?: Partial<TopicConfig>): Promise<TopicInfo>;
  deleteTopic(name: string): Promise<void>;
  listTopics(): TopicInfo[];
  describeTopic(name: string): TopicInfo;
  /** Resolves per the topic's durability: for `always`, only after the records are synced. */
  publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]>;
  /**
   * A publish whose `ferry-*` headers are a broker's (dead letters and redrives crossing brokers of
   * a cluster): `publish` refuses those from clients. Guarded by the replicate grant.
   */
  publishAsBroker?(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]>;
  subscribe(topic: string, options: SubscribeOptions, sink: DeliverySink): Promise<Subscription>;
  listGroups?(topic: string): GroupInfo[];
  describeGroup?(topic: string, group: string): GroupInfo;
  /** Moves a group's position: every message before the position is settled, every one after is pending. */
  resetGroup?(topic: string, group: string, to: StartPosition): Promise<GroupInfo>;
  /** Moves dead letters back to the topic they came from. */
  redrive?(deadLetterTopic: string, options?: RedriveOptions): Promise<RedriveResult>;
  close(): Promise<void>;
}

/** Publish options of the embedded one-message form (same as the client's). */
export interface PublishOptions {
  key?: string | Buffer | null;
  headers?: Record<string, string>;
  partition?: number;
  /** Exactly-once publish id (see PublishMessage.id). */
  id?: string;
  delayMs?: number;
  deliverAt?: Date;
  /** 0 (default) to 9: groups deliver higher priorities first (header `ferry-priority`). */
  priority?: number;
}

/** Subscribe options of the embedded iterator form (same as the client's). */
export interface ConsumeOptions extends Partial<GroupConfig> {
  group?: string;
  from?: 'earliest' | 'latest' | number | Date;
  prefetch?: number;
}
