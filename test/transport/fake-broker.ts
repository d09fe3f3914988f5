/**
 * A small in-memory BrokerApi for transport and client tests: topics with partitions (keyed →
 * stable hash, unkeyed → round robin), stream and group subscriptions with credit, acks, nacks,
 * redelivery on close, and the writable()/resume() flow-control handshake. Publishes resolve on
 * a later turn (like an fsync would), with durability 'synced'.
 */
import { FerryError } from '../../src/errors.js';
import type {
  BrokerApi,
  Delivery,
  DeliverySink,
  PublishMessage,
  PublishResult,
  StartPosition,
  SubscribeOptions,
  Subscription,
  TopicConfig,
  TopicInfo,
} from '../../src/broker/types.js';

interface StoredRecord {
  offset: number;
  timestampMs: number;
  key: Buffer | null;
  headers: Array<readonly [string, string]>;
  value: Buffer;
}

const DEFAULT_CONFIG: TopicConfig = { partitions: 1, durability: 'always', syncIntervalMs: 50, retention: {}, segmentBytes: 1 << 27 };

function hashKey(key: Buffer): number {
  let hash = 2166136261;
  for (const byte of key) hash = Math.imul(hash ^ byte, 16777619) >>> 0;
  return hash;
}

class FakeTopic {
  readonly partitions: StoredRecord[][];
  readonly groups = new Map<string, FakeGroup>();
  readonly streams = new Set<FakeSubscription>();
  private roundRobin = 0;

  constructor(
    readonly name: string,
    readonly config: TopicConfig,
  ) {
    this.partitions = Array.from({ length: config.partitions }, () => []);
  }

  append(message: PublishMessage, nowMs: number): PublishResult {
    const partition =
      message.partition ?? (message.key ? hashKey(message.key) % this.partitions.length : this.roundRobin++ % this.partitions.length);
    if (partition >= this.partitions.length) throw new FerryError('INVALID_ARGUMENT', `no partition ${partition}`);
    const records = this.partitions[partition]!;
    const offset = records.length;
    records.push({
      offset,
      timestampMs: nowMs,
      key: message.key ? Buffer.from(message.key) : null,
      headers: [...(message.headers ?? [])],
      value: Buffer.from(message.value),
    });
    return { partition, offset, durability: this.config.durability === 'always' ? 'synced' : 'written' };
  }

  startOffsets(from: StartPosition): number[] {
    return this.partitions.map((records) => {
      switch (from.kind) {
        case 'earliest':
          return 0;
        case 'latest':
          return records.length;
        case 'offset':
          return Math.min(from.offset, records.length);
        case 'timestamp': {
          const index = records.findIndex((r) => r.timestampMs >= from.timestampMs);
          return index < 0 ? records.length : index;
        }
      }
    });
  }

  info(): TopicInfo {
    return {
      name: this.name,
      config: this.config,
      partitions: this.partitions.map((records, partition) => ({
        partition,
        startOffset: 0,
        nextOffset: records.length,
        syncedOffset: records.length,
        segments: 1,
        bytes: records.reduce((sum, r) => sum + r.value.length, 0),
      })),
      groups: [...this.groups.keys()],
    };
  }

  pumpAll(): void {
    for (const stream of this.streams) stream.pump();
    for (const group of this.groups.values()) group.pump();
  }
}

class FakeGroup {
  readonly cursors: number[];
  readonly redeliver: Array<{ partition: number; offset: number }> = [];
  readonly inFlight = new Map<string, { partition: number; offset: number; subscription: FakeSubscription; count: number }>();
  readonly deliveryCounts = new Map<string, number>();
  readonly members = new Set<FakeSubscription>();

  constructor(
    readonly topic: FakeTopic,
    start: number[],
  ) {
    this.cursors = start;
  }

  /** The next message the group owes, or null. */
  private take(): { partition: number; offset: number } | null {
    const again = this.redeliver.shift();
    if (again !== undefined) return again;
    for (let p = 0; p < this.cursors.length; p++) {
      if (this.cursors[p]! < this.topic.partitions[p]!.length) return { partition: p, offset: this.cursors[p]!++ };
    }
    return null;
  }

  pump(): void {
    for (const member of this.members) {
      while (member.ready()) {
        const next = this.take();
        if (next === null) return;
        const key = `${next.partition}:${next.offset}`;
        const count = (this.deliveryCounts.get(key) ?? 0) + 1;
        this.deliveryCounts.set(key, count);
        this.inFlight.set(key, { ...next, subscription: member, count });
        member.send(next.partition, this.topic.partitions[next.partition]![next.offset]!, count);
      }
    }
  }

  settle(subscription: FakeSubscription, partition: number, offset: number, requeue: boolean, delayMs = 0): void {
    const key = `${partition}:${offset}`;
    const entry = this.inFlight.get(key);
    if (entry === undefined || entry.subscription !== subscription) {
      throw new FerryError('UNKNOWN_DELIVERY', `no delivery ${key} in flight for this subscription`);
    }
    this.inFlight.delete(key);
    if (!requeue) return;
    const back = (): void => {
      this.redeliver.push({ partition, offset });
      this.pump();
    };
    if (delayMs > 0) setTimeout(back, delayMs).unref();
    else back();
  }

  leave(subscription: FakeSubscription): void {
    this.members.delete(subscription);
    for (const [key, entry] of this.inFlight) {
      if (entry.subscription !== subscription) continue;
      this.inFlight.delete(key);
      this.redeliver.push({ partition: entry.partition, offset: entry.offset });
    }
    this.pump();
  }
}

class FakeSubscription implements Subscription {
  private credit: number;
  private closed = false;
  /** Stream cursors (unused for groups). */
  private readonly cursors: number[];

  constructor(
    readonly id: number,
    private readonly fakeTopic: FakeTopic,
    readonly group: string | undefined,
    private readonly sink: DeliverySink,
    credit: number,
    start: number[],
    private readonly fakeGroup: FakeGroup | null,
  ) {
    this.credit = credit;
    this.cursors = start;
  }

  get topic(): string {
    return this.fakeTopic.name;
  }

  ready(): boolean {
    return !this.closed && this.credit > 0 && this.sink.writable();
  }

  send(partition: number, record: StoredRecord, deliveryCount: number): void {
    this.credit--;
    const delivery: Delivery = {
      topic: this.fakeTopic.name,
      partition,
      offset: record.offset,
      timestampMs: record.timestampMs,
      key: record.key,
      headers: record.headers,
      value: record.value,
      deliveryCount,
    };
    this.sink.deliver(delivery);
  }

  pump(): void {
    if (this.fakeGroup !== null) {
      this.fakeGroup.pump();
      return;
    }
    for (let p = 0; p < this.cursors.length; p++) {
      const records = this.fakeTopic.partitions[p]!;
      while (this.cursors[p]! < records.length && this.ready()) {
        this.send(p, records[this.cursors[p]!++]!, 1);
      }
    }
  }

  grantCredit(count: number): void {
    if (!Number.isInteger(count) || count < 0) throw new FerryError('INVALID_ARGUMENT', 'bad credit');
    this.credit += count;
    this.pump();
  }

  async ack(partition: number, offset: number): Promise<void> {
    this.fakeGroup?.settle(this, partition, offset, false);
  }

  async nack(partition: number, offset: number, options?: { delayMs?: number }): Promise<void> {
    this.fakeGroup?.settle(this, partition, offset, true, options?.delayMs);
  }

  resume(): void {
    this.pump();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.fakeGroup !== null) this.fakeGroup.leave(this);
    else this.fakeTopic.streams.delete(this);
  }

  get creditLeft(): number {
    return this.credit;
  }
}

export class FakeBroker implements BrokerApi {
  readonly topics = new Map<string, FakeTopic>();
  readonly subscriptions = new Set<FakeSubscription>();
  private nextId = 1;
  /** Publishes resolve after this many ms (0: on the next turn), like an fsync. */
  publishDelayMs = 0;
  publishCalls = 0;

  private topic(name: string): FakeTopic {
    const topic = this.topics.get(name);
    if (topic === undefined) throw new FerryError('UNKNOWN_TOPIC', `unknown topic ${name}`);
    return topic;
  }

  async createTopic(name: string, config: Partial<TopicConfig> = {}): Promise<TopicInfo> {
    if (this.topics.has(name)) throw new FerryError('TOPIC_EXISTS', `topic ${name} exists`);
    if (name.length === 0) throw new FerryError('INVALID_ARGUMENT', 'empty topic name');
    const topic = new FakeTopic(name, { ...DEFAULT_CONFIG, ...config, retention: { ...config.retention } });
    this.topics.set(name, topic);
    return topic.info();
  }

  async deleteTopic(name: string): Promise<void> {
    this.topic(name);
    this.topics.delete(name);
  }

  listTopics(): TopicInfo[] {
    return [...this.topics.values()].map((topic) => topic.info());
  }

  describeTopic(name: string): TopicInfo {
    return this.topic(name).info();
  }

  async publish(topicName: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    this.publishCalls++;
    const topic = this.topic(topicName);
    for (const message of messages) {
      if (message.value.length > 8 * 1024 * 1024) throw new FerryError('RECORD_TOO_LARGE', 'record too large');
    }
    const now = Date.now();
    const results = messages.map((message) => topic.append(message, now));
    await new Promise((resolve) => (this.publishDelayMs > 0 ? setTimeout(resolve, this.publishDelayMs) : setImmediate(resolve)));
    topic.pumpAll();
    return results;
  }

  async subscribe(topicName: string, options: SubscribeOptions, sink: DeliverySink): Promise<Subscription> {
    const topic = this.topic(topicName);
    const from = options.from ?? { kind: options.group === undefined ? 'latest' : 'earliest' };
    const credit = options.credit ?? 256;
    let group: FakeGroup | null = null;
    if (options.group !== undefined) {
      group = topic.groups.get(options.group) ?? null;
      if (group === null) {
        group = new FakeGroup(topic, topic.startOffsets(from));
        topic.groups.set(options.group, group);
      }
    }
    const subscription = new FakeSubscription(this.nextId++, topic, options.group, sink, credit, topic.startOffsets(from), group);
    this.subscriptions.add(subscription);
    if (group !== null) group.members.add(subscription);
    else topic.streams.add(subscription);
    // Deliver on a later turn, like a broker reading from storage.
    setImmediate(() => subscription.pump());
    return subscription;
  }

  async close(): Promise<void> {
    for (const subscription of this.subscriptions) await subscription.close();
  }
}
