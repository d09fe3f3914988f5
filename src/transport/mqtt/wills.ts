/**
 * Will messages: published, as the client would have published them (through its own
 * permissions, retained if asked), when a connection ends without a DISCONNECT. A 5.0 will delay
 * interval holds the will back: it is published once the delay has passed or the session ends,
 * whichever comes first (MQTT-3.1.3.2.2), so a session whose expiry is shorter than the delay
 * sends it at expiry; a connection that resumes the session (clean start 0) before then drops it,
 * and one that starts the session afresh (clean start 1) ends the old session, so it goes out then.
 * Wills still waiting when the broker stops are not published (a restart announces no one as gone).
 */
import type { IConnectPacket, IPublishPacket } from 'mqtt-packet';
import type { BrokerApi } from '../../broker/types.js';
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { messageOfPublish, publisherHeader } from './messages.js';
import type { RetainedStore } from './retained.js';
import type { TopicMap } from './topic-map.js';

export type Will = NonNullable<IConnectPacket['will']>;

interface Pending {
  timer: TimerHandle;
  publish: () => Promise<void>;
}

export interface WillsOptions {
  clock: Clock;
  logger: Logger;
  retained: RetainedStore;
  topicMap: TopicMap;
}

export class Wills {
  /** Delayed wills by client id: at most one per session. */
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly options: WillsOptions) {}

  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * The connection of `clientId` ended without a DISCONNECT: its will goes out now, or after
   * the lower of its delay and the session's expiry (`sessionExpirySeconds`, 0: the session ended).
   */
  async connectionLost(clientId: string, will: Will, view: BrokerApi, sessionExpirySeconds: number): Promise<void> {
    this.drop(clientId);
    const waitSeconds = Math.min(will.properties?.willDelayInterval ?? 0, sessionExpirySeconds);
    if (waitSeconds <= 0) {
      await this.publish(clientId, will, view);
      return;
    }
    const publish = (): Promise<void> => this.publish(clientId, will, view);
    const timer = this.options.clock.schedule(waitSeconds * 1000, () => {
      this.pending.delete(clientId);
      void publish();
    });
    this.pending.set(clientId, { timer, publish });
  }

  /** A new connection claimed `clientId`'s session: resumed, its delayed will is dropped; started afresh, the old session ended, so the will goes out now. */
  async connected(clientId: string, cleanStart: boolean): Promise<void> {
    const pending = this.pending.get(clientId);
    if (pending === undefined) return;
    this.drop(clientId);
    if (cleanStart) await pending.publish();
  }

  /** The broker stops: waiting wills are not published. */
  close(): void {
    for (const clientId of [...this.pending.keys()]) this.drop(clientId);
  }

  private drop(clientId: string): void {
    this.pending.get(clientId)?.timer.cancel();
    this.pending.delete(clientId);
  }

  private async publish(clientId: string, will: Will, view: BrokerApi): Promise<void> {
    const packet: IPublishPacket = { cmd: 'publish', topic: will.topic, payload: will.payload, qos: will.qos ?? 0, retain: will.retain ?? false, dup: false };
    if (will.properties !== undefined) {
      const { willDelayInterval: _delay, ...properties } = will.properties;
      packet.properties = properties;
    }
    const ferryTopic = this.options.topicMap.ferryTopicOf(will.topic);
    try {
      if (ferryTopic === null) throw new Error(`the first level of '${will.topic.slice(0, 200)}' is not a Ferry topic name`);
      await view.publish(ferryTopic, [messageOfPublish(packet, will.topic, this.options.clock.nowMs(), publisherHeader(clientId))]);
      if (packet.retain) this.options.retained.retain(will.topic, packet);
    } catch (error) {
      this.options.logger.info('mqtt.will_refused', { clientId, topic: will.topic.slice(0, 200), error });
    }
  }
}
