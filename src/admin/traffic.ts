/**
 * Traffic counters the broker itself does not keep: messages and bytes published, deliveries,
 * acks and nacks, and the two latencies. The observed broker (observed-broker.ts) bumps plain
 * numbers on records it looked up once per subscription or topic, so the delivery path pays one
 * increment; /metrics and the JSON API read the records when asked.
 */

/** Latency observations go to whoever builds the records (metrics.ts: a histogram). */
export type Observe = (seconds: number) => void;

export interface TopicTraffic {
  readonly topic: string;
  /** Messages accepted by publish requests through the server (not dead letters or redrives). */
  messagesIn: number;
  /** Key + value bytes of those messages. */
  bytesIn: number;
  /** Failed publish requests by error code. */
  readonly publishErrors: Map<string, number>;
  /** Publish request to confirmation (after fsync for `always` topics). */
  readonly observeConfirm: Observe;
}

export interface GroupTraffic {
  readonly topic: string;
  /** Group name; '' for stream subscriptions. */
  readonly group: string;
  delivered: number;
  /** Deliveries with deliveryCount > 1. */
  redelivered: number;
  acked: number;
  nacked: number;
  rejected: number;
  /** Message timestamp (publish) to its first delivery to a subscriber. */
  readonly observeEndToEnd: Observe;
}

export interface TrafficTotals {
  messagesIn: number;
  bytesIn: number;
  delivered: number;
  acked: number;
  nacked: number;
}

export class Traffic {
  private readonly topics = new Map<string, TopicTraffic>();
  private readonly groups = new Map<string, GroupTraffic>();

  constructor(
    private readonly makeConfirmObserver: (topic: string) => Observe = () => () => undefined,
    private readonly makeEndToEndObserver: (topic: string) => Observe = () => () => undefined,
  ) {}

  topic(name: string): TopicTraffic {
    let traffic = this.topics.get(name);
    if (traffic === undefined) {
      traffic = { topic: name, messagesIn: 0, bytesIn: 0, publishErrors: new Map(), observeConfirm: this.makeConfirmObserver(name) };
      this.topics.set(name, traffic);
    }
    return traffic;
  }

  group(topic: string, group: string | undefined): GroupTraffic {
    const name = group ?? '';
    const key = `${topic}\u0000${name}`;
    let traffic = this.groups.get(key);
    if (traffic === undefined) {
      traffic = { topic, group: name, delivered: 0, redelivered: 0, acked: 0, nacked: 0, rejected: 0, observeEndToEnd: this.makeEndToEndObserver(topic) };
      this.groups.set(key, traffic);
    }
    return traffic;
  }

  /** A deleted topic's counters go with it (a new topic of the same name starts from zero). */
  forgetTopic(name: string): void {
    this.topics.delete(name);
    for (const [key, traffic] of this.groups) if (traffic.topic === name) this.groups.delete(key);
  }

  topicRecords(): Iterable<TopicTraffic> {
    return this.topics.values();
  }

  groupRecords(): Iterable<GroupTraffic> {
    return this.groups.values();
  }

  /** Summed over every topic, or over those `counted` (what one user may see). */
  totals(counted: (topic: string) => boolean = () => true): TrafficTotals {
    const totals: TrafficTotals = { messagesIn: 0, bytesIn: 0, delivered: 0, acked: 0, nacked: 0 };
    for (const topic of this.topics.values()) {
      if (!counted(topic.topic)) continue;
      totals.messagesIn += topic.messagesIn;
      totals.bytesIn += topic.bytesIn;
    }
    for (const group of this.groups.values()) {
      if (!counted(group.topic)) continue;
      totals.delivered += group.delivered;
      totals.acked += group.acked;
      totals.nacked += group.nacked;
    }
    return totals;
  }
}
