/**
 * Topics led by other brokers, as dead-lettering and redrive reach them (broker.ts RemoteTopics):
 * through the cluster's own client, which sends each request to the topic's leader and retries it
 * there after a leader change. Every publish carries an id (the client's cluster mode), so a retry
 * is stored once, and goes as the broker's (`asBroker`: the replicate grant lets it write `ferry-*`
 * headers, which the leader refuses from clients).
 */
import { FerryError } from '../errors.js';
import type { RemoteTopics } from '../broker/broker.js';
import { isCopyOf, type DeadLetterSource } from '../broker/delivery/dead-letter.js';
import type { PublishMessage, TopicConfig } from '../broker/types.js';
import type { FerryClient } from '../client/client.js';
import type { Message } from '../client/message.js';
import type { ClusterNode } from './cluster-node.js';

/** How long a search of a remote dead-letter topic may take before it gives up (recovery tries again later). */
const CONTAINS_TIMEOUT_MS = 30_000;

export class ClusterRemoteTopics implements RemoteTopics {
  constructor(
    private readonly node: ClusterNode,
    /** The cluster's own client (cluster mode, the broker's credentials); opened on first use. */
    private readonly client: () => Promise<FerryClient>,
  ) {}

  exists(topic: string): boolean {
    return this.node.placement(topic) !== undefined;
  }

  /**
   * Replicated as the source topic is (replicas, minInSync), whichever broker creates it and
   * whatever its own defaults, and `always` whatever the source's durability: a copy is committed
   * there only once every in-sync replica has synced it, so a power loss of every replica cannot
   * take back a dead letter whose original's settlement survived (with the source's `interval` or
   * `never`, a new leader could be a replica that had not synced the copy). Not fewer replicas when
   * brokers are down: the creation then fails (NOT_ENOUGH_REPLICAS) and the move is tried again
   * later, the original kept pending meanwhile.
   */
  async createDeadLetterTopic(topic: string, like: TopicConfig): Promise<void> {
    const replicas = like.replicas ?? 1;
    const minInSync = like.minInSync ?? Math.min(2, replicas);
    const config = { partitions: 1, durability: 'always' as const, replicas, minInSync };
    await this.node.createTopic(topic, config, replicas, minInSync);
  }

  async publishStored(topic: string, messages: PublishMessage[]): Promise<void> {
    const client = await this.client();
    await client.publishBatch(
      topic,
      messages.map((message) => ({
        value: message.value,
        key: message.key ?? null,
        headers: Object.fromEntries(message.headers ?? []),
        ...(message.id === undefined ? {} : { id: message.id }),
        ...(message.partition === undefined ? {} : { partition: message.partition }),
      })),
      // Dead letters and redrives carry broker headers: the leader takes them from a broker user only.
      { asBroker: true },
    );
  }

  async offsetHint(topic: string): Promise<number> {
    const client = await this.client();
    const info = await client.describeTopic(topic);
    // The committed end (high watermark) is what no failover takes back.
    return Math.min(...info.partitions.map((partition) => partition.highWatermark ?? partition.syncedOffset + 1));
  }

  async contains(topic: string, fromOffset: number, source: DeadLetterSource): Promise<boolean> {
    const client = await this.client();
    const info = await client.describeTopic(topic);
    const ends = info.partitions.map((partition) => partition.highWatermark ?? partition.nextOffset);
    if (ends.every((end, partition) => end <= Math.max(fromOffset, info.partitions[partition]!.startOffset))) return false;
    const subscription = await client.subscribe(topic, { from: fromOffset });
    const done = new Set<number>();
    const deadline = Date.now() + CONTAINS_TIMEOUT_MS;
    try {
      for (;;) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) throw new FerryError('TIMEOUT', `searching ${topic} for a dead letter took longer than ${CONTAINS_TIMEOUT_MS} ms`);
        const message = await nextWithin(subscription, remaining);
        if (message === null) return false;
        if (isCopyOf(Object.entries(message.headers), source)) return true;
        if (message.offset + 1 >= ends[message.partition]!) done.add(message.partition);
        if (ends.every((end, partition) => done.has(partition) || end <= fromOffset)) return false;
      }
    } finally {
      await subscription.close().catch(() => undefined);
    }
  }
}

async function nextWithin(subscription: AsyncIterable<Message> & { [Symbol.asyncIterator](): AsyncIterator<Message> }, timeoutMs: number): Promise<Message | null> {
  const iterator = subscription[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FerryError('TIMEOUT', 'no message in time')), timeoutMs);
  });
  try {
    const next = await Promise.race([iterator.next(), timeout]);
    return next.done === true ? null : next.value;
  } finally {
    clearTimeout(timer);
  }
}
