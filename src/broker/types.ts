/**
 * The broker's contract: what the embedded API (`Broker.open`) offers and what every transport
 * (TCP today, gRPC/HTTP later) is a thin layer over. Implemented by src/broker/broker.ts.
 */
import type { Durability, Header, RetentionPolicy } from '../storage/types.js';

export type { Durability, Header, RetentionPolicy };

export interface TopicConfig {
  partitions: number;
  durability: Durability;
  /** `interval` durability: sync at least this often. */
  syncIntervalMs: number;
  retention: RetentionPolicy;
  segmentBytes: number;
}

export interface TopicPartitionInfo {
  partition: number;
  startOffset: number;
  nextOffset: number;
  syncedOffset: number;
  segments: number;
  bytes: number;
}

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
}

export interface PublishResult {
  partition: number;
  offset: number;
  /** 'synced' once fdatasync covered it (always `always` topics); 'written' otherwise. */
  durability: 'synced' | 'written';
}

/** Where a subscription starts: for a group, only when the group is new. */
export type StartPosition =
  | { kind: 'earliest' }
  | { kind: 'latest' }
  | { kind: 'offset'; offset: number }
  | { kind: 'timestamp'; timestampMs: number };

export interface SubscribeOptions {
  /** Queue group name; absent means a stream subscription that keeps no state. */
  group?: string;
  from?: StartPosition;
  /** Deliveries allowed before the subscriber grants more credit (initial credit). */
  credit?: number;
}

/** One message handed to a subscriber. */
export interface Delivery {
  topic: string;
  partition: number;
  offset: number;
  timestampMs: number;
  key: Buffer | null;
  headers: Header[];
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
  /** Call when the sink is writable again after `writable()` returned false. */
  resume(): void;
  /** Stops deliveries; unacknowledged group deliveries become deliverable to other subscribers. */
  close(): Promise<void>;
}

export interface BrokerApi {
  createTopic(name: string, config?: Partial<TopicConfig>): Promise<TopicInfo>;
  deleteTopic(name: string): Promise<void>;
  listTopics(): TopicInfo[];
  describeTopic(name: string): TopicInfo;
  /** Resolves per the topic's durability: for `always`, only after the records are synced. */
  publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]>;
  subscribe(topic: string, options: SubscribeOptions, sink: DeliverySink): Promise<Subscription>;
  close(): Promise<void>;
}
