/**
 * LocalTopics over the local Broker: a replica's files are the broker's topic layout
 * (broker/topic-layout.ts), and a topic's service opens and closes with leadership.
 */
import { FerryError } from '../errors.js';
import type { Broker } from '../broker/broker.js';
import { dropDerivedState, localLogIds, logOptionsFor, prepareTopicDir, removeTopicDir } from '../broker/topic-layout.js';
import type { TopicConfig } from '../broker/types.js';
import type { Clock } from '../platform/clock.js';
import type { LogOptions } from '../storage/types.js';
import type { LocalTopics } from './local-topics.js';

export class BrokerReplicas implements LocalTopics {
  private readonly configs = new Map<string, TopicConfig>();

  constructor(
    private readonly broker: Broker,
    private readonly clock: Clock,
  ) {}

  private config(name: string): TopicConfig {
    const config = this.configs.get(name);
    if (config === undefined) throw new FerryError('INTERNAL', `topic ${name} was not prepared as a replica`);
    return config;
  }

  async prepare(name: string, config: Record<string, unknown>): Promise<void> {
    const resolved = this.broker.resolveTopicConfig(config as Partial<TopicConfig>);
    const { dir, services } = this.broker.topicFiles(name);
    await prepareTopicDir(services.fs, dir, name, resolved, this.clock.nowMs());
    this.configs.set(name, resolved);
  }

  async localLogIds(name: string): Promise<string[]> {
    const { dir, services } = this.broker.topicFiles(name);
    return localLogIds(services.fs, dir, this.config(name));
  }

  /**
   * As the single broker stores it, except that every log of a replica gets the hot tail (from the
   * broker's shared budget), not only the partitions: a leader answers its followers' fetches of a
   * group journal or the delay log from memory instead of reading back what it wrote a moment ago,
   * a read that waited in the thread pool behind the syncs and held up the whole fetch answer.
   */
  logOptions(name: string, logId: string): LogOptions {
    const { dir, services } = this.broker.topicFiles(name);
    const options = logOptionsFor(dir, logId, this.config(name), services);
    return { ...options, tailCacheBytes: services.tailCacheBudget.bytesMax, tailCacheBudget: services.tailCacheBudget };
  }

  async open(name: string): Promise<void> {
    if (!(await this.broker.openTopic(name))) throw new FerryError('STORAGE_FAILED', `topic ${name} did not open (see broker.topic.left_in_place)`);
  }

  drain(name: string, timeoutMs: number): Promise<void> {
    return this.broker.drainTopic(name, timeoutMs);
  }

  async close(name: string, reason: string): Promise<void> {
    await this.broker.closeTopic(name, reason);
    const { dir, services } = this.broker.topicFiles(name);
    await dropDerivedState(services.fs, dir);
  }

  async remove(name: string): Promise<void> {
    await this.broker.closeTopic(name, `topic ${name} was deleted`);
    const { dir, services } = this.broker.topicFiles(name);
    await removeTopicDir(services.fs, dir);
    this.configs.delete(name);
  }
}
