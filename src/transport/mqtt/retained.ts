/**
 * Retained messages: a compacted view, the last retained PUBLISH per MQTT topic name, kept in memory
 * and written as one file (`<data dir>/mqtt/retained.json`, atomically: temp, datasync, rename) at
 * most once per RETAINED_WRITE_DELAY_MS after a change. The message itself is stored in its Ferry
 * topic like any other publish; this view only answers "what is the last retained value of this
 * topic" to a new subscriber. An empty payload deletes the topic's retained message (MQTT-3.3.1-10).
 * A crash within the write delay loses the latest change to the view (not the message).
 */
import { join } from 'node:path';
import type { IPublishPacket, QoS } from 'mqtt-packet';
import { mkdirDurable, writeFileAtomic } from '../../platform/atomic-write.js';
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { FileSystem } from '../../platform/fs.js';
import type { Logger } from '../../platform/logger.js';
import { topicMatches } from './topics.js';

/** Topics with a retained message at most; past it a new topic's retained message is not kept (logged), existing ones still update. */
export const RETAINED_TOPICS_MAX = 100_000;
/** Changes of this long share one write of the file. */
export const RETAINED_WRITE_DELAY_MS = 50;

export interface RetainedMessage {
  topic: string;
  qos: QoS;
  payload: Buffer;
  properties?: IPublishPacket['properties'];
}

interface StoredRetained {
  topic: string;
  qos: QoS;
  payload: string;
  properties?: IPublishPacket['properties'];
}

export class RetainedStore {
  private readonly messages = new Map<string, RetainedMessage>();
  private timer: TimerHandle | null = null;
  private writing: Promise<void> = Promise.resolve();
  private readonly path: string | null;

  constructor(private readonly options: { fs: FileSystem | null; dataDir: string | null; clock: Clock; logger: Logger }) {
    this.path = options.dataDir === null ? null : join(options.dataDir, 'mqtt', 'retained.json');
  }

  async open(): Promise<void> {
    const { fs } = this.options;
    if (fs === null || this.path === null) return;
    await mkdirDurable(fs, join(this.options.dataDir!, 'mqtt'));
    let stored: StoredRetained[];
    try {
      stored = JSON.parse((await fs.readFile(this.path)).toString('utf8')) as StoredRetained[];
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') this.options.logger.warn('mqtt.retained.unreadable', { path: this.path, error });
      return;
    }
    for (const one of stored) {
      const message: RetainedMessage = { topic: one.topic, qos: one.qos, payload: Buffer.from(one.payload, 'base64') };
      if (one.properties !== undefined) message.properties = reviveProperties(one.properties);
      this.messages.set(one.topic, message);
    }
  }

  get size(): number {
    return this.messages.size;
  }

  /** A stored publish with its retain flag set. */
  retain(topic: string, packet: IPublishPacket): void {
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    if (payload.length === 0) {
      if (!this.messages.delete(topic)) return;
    } else {
      if (!this.messages.has(topic) && this.messages.size >= RETAINED_TOPICS_MAX) {
        this.options.logger.warn('mqtt.retained.full', { topic: topic.slice(0, 200), topicsMax: RETAINED_TOPICS_MAX });
        return;
      }
      const message: RetainedMessage = { topic, qos: packet.qos, payload };
      const { topicAlias: _alias, subscriptionIdentifier: _id, ...properties } = packet.properties ?? {};
      if (Object.keys(properties).length > 0) message.properties = properties;
      this.messages.set(topic, message);
    }
    this.scheduleWrite();
  }

  /** The retained messages a filter matches. */
  matching(filter: string): RetainedMessage[] {
    const found: RetainedMessage[] = [];
    for (const message of this.messages.values()) if (topicMatches(filter, message.topic)) found.push(message);
    return found;
  }

  private scheduleWrite(): void {
    if (this.timer !== null || this.options.fs === null || this.path === null) return;
    this.timer = this.options.clock.schedule(RETAINED_WRITE_DELAY_MS, () => {
      this.timer = null;
      this.writing = this.writing.then(() => this.write()).catch((error: unknown) => this.options.logger.error('mqtt.retained.write_failed', { error }));
    });
  }

  private async write(): Promise<void> {
    const stored: StoredRetained[] = [...this.messages.values()].map((message) => ({
      topic: message.topic,
      qos: message.qos,
      payload: message.payload.toString('base64'),
      ...(message.properties === undefined ? {} : { properties: message.properties }),
    }));
    await writeFileAtomic(this.options.fs!, this.path!, Buffer.from(JSON.stringify(stored)));
  }

  /** Writes what changed, now. */
  async close(): Promise<void> {
    if (this.timer !== null) {
      this.timer.cancel();
      this.timer = null;
      this.writing = this.writing.then(() => this.write());
    }
    await this.writing;
  }
}

/** Correlation data is a Buffer, which JSON wrote as `{type: 'Buffer', data}`. */
function reviveProperties(properties: IPublishPacket['properties'] & { correlationData?: unknown }): IPublishPacket['properties'] {
  const data = properties.correlationData as { data?: number[] } | undefined;
  if (data !== undefined && Array.isArray(data.data)) return { ...properties, correlationData: Buffer.from(data.data) };
  return properties;
}
