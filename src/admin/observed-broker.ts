/**
 * ObservedBroker: the BrokerApi the broker process serves (TCP and admin API) — the real broker
 * plus what operating it needs on the way through: traffic counters and latencies (traffic.ts),
 * and the configured admission limits, which may be lower than the ceilings the storage engine
 * and broker enforce anyway. Embedded users of `Broker` pay none of this.
 */
import type { Clock } from '../platform/clock.js';
import { isFerryError, type ErrorCode } from '../errors.js';
import { ForwardingSubscription, required } from '../broker/forwarding.js';
import { ADMISSION_CEILINGS, checkPublishLimits, type AdmissionLimits } from '../broker/limits.js';
import type { BrokerApi, Delivery, DeliverySink, GroupInfo, PublishMessage, PublishResult, RedriveOptions, RedriveResult, StartPosition, SubscribeOptions, Subscription, TopicConfig, TopicInfo } from '../broker/types.js';
import type { GroupTraffic, Traffic } from './traffic.js';

export class ObservedBroker implements BrokerApi {
  private readonly checkAdmission: boolean;

  constructor(
    readonly inner: BrokerApi,
    private readonly traffic: Traffic,
    private readonly clock: Clock,
    readonly limits: AdmissionLimits = ADMISSION_CEILINGS,
  ) {
    this.checkAdmission = (Object.keys(ADMISSION_CEILINGS) as Array<keyof AdmissionLimits>).some((name) => limits[name] < ADMISSION_CEILINGS[name]);
  }

  createTopic(name: string, config?: Partial<TopicConfig>): Promise<TopicInfo> {
    return this.inner.createTopic(name, config);
  }

  async deleteTopic(name: string): Promise<void> {
    await this.inner.deleteTopic(name);
    this.traffic.forgetTopic(name);
  }

  listTopics(): TopicInfo[] {
    return this.inner.listTopics();
  }

  describeTopic(name: string): TopicInfo {
    return this.inner.describeTopic(name);
  }

  publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    return this.observePublish(topic, messages, () => this.inner.publish(topic, messages));
  }

  publishAsBroker(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    return this.observePublish(topic, messages, () => required(this.inner, 'publishAsBroker')(topic, messages));
  }

  private async observePublish(topic: string, messages: readonly PublishMessage[], send: () => Promise<PublishResult[]>): Promise<PublishResult[]> {
    if (this.checkAdmission) checkPublishLimits(messages, this.limits);
    const startedMs = this.clock.monotonicMs();
    let results: PublishResult[];
    try {
      results = await send();
    } catch (error) {
      const code = isFerryError(error) ? error.code : 'INTERNAL';
      // Unknown topics are not counted under their name: a typo must not create a series.
      if (code !== 'UNKNOWN_TOPIC') {
        const errors = this.traffic.topic(topic).publishErrors;
        errors.set(code, (errors.get(code) ?? 0) + 1);
      }
      throw error;
    }
    const traffic = this.traffic.topic(topic);
    traffic.observeConfirm((this.clock.monotonicMs() - startedMs) / 1000);
    let bytes = 0;
    let stored = 0;
    for (let i = 0; i < messages.length; i++) {
      if (results[i]?.duplicate === true) continue;
      const message = messages[i]!;
      stored += 1;
      bytes += message.value.length + (message.key?.length ?? 0);
    }
    traffic.messagesIn += stored;
    traffic.bytesIn += bytes;
    return results;
  }

  async subscribe(topic: string, options: SubscribeOptions, sink: DeliverySink): Promise<Subscription> {
    // An unknown topic fails here, before its name becomes a series.
    this.inner.describeTopic(topic);
    const traffic = this.traffic.group(topic, options.group);
    const clock = this.clock;
    const observed: DeliverySink = {
      deliver(delivery: Delivery): void {
        traffic.delivered += 1;
        if (delivery.deliveryCount > 1) traffic.redelivered += 1;
        else traffic.observeEndToEnd(Math.max(0, clock.nowMs() - delivery.timestampMs) / 1000);
        sink.deliver(delivery);
      },
      writable: () => sink.writable(),
      ...(sink.ended === undefined ? {} : { ended: (reason: string, code?: ErrorCode) => sink.ended!(reason, code) }),
    };
    return new ObservedSubscription(await this.inner.subscribe(topic, options, observed), traffic);
  }

  listGroups(topic: string): GroupInfo[] {
    return required(this.inner, 'listGroups')(topic);
  }

  describeGroup(topic: string, group: string): GroupInfo {
    return required(this.inner, 'describeGroup')(topic, group);
  }

  resetGroup(topic: string, group: string, to: StartPosition): Promise<GroupInfo> {
    return required(this.inner, 'resetGroup')(topic, group, to);
  }

  redrive(deadLetterTopic: string, options?: RedriveOptions): Promise<RedriveResult> {
    return required(this.inner, 'redrive')(deadLetterTopic, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Counts settlements; everything else passes through (reject/touch exist when the inner ones do). */
class ObservedSubscription extends ForwardingSubscription {
  /** The promise the last ack returned, and how many acks share it. */
  private ackRun: { settled: Promise<void>; acks: number } | null = null;

  constructor(
    inner: Subscription,
    private readonly traffic: GroupTraffic,
  ) {
    super(inner);
  }

  /**
   * Acks of one tick share the promise of their journal record (group-store.ts): they are counted
   * with one reaction per shared promise, not an async wrapper per ack (hot path: one per message).
   */
  override ack(partition: number, offset: number): Promise<void> {
    const settled = this.inner.ack(partition, offset);
    let run = this.ackRun;
    if (run === null || run.settled !== settled) {
      const started = { settled, acks: 0 };
      const traffic = this.traffic;
      settled.then(
        () => void (traffic.acked += started.acks),
        () => undefined, // the caller sees the rejection; failed acks are not counted
      );
      this.ackRun = run = started;
    }
    run.acks += 1;
    return settled;
  }

  override async nack(partition: number, offset: number, options?: { delayMs?: number }): Promise<void> {
    await this.inner.nack(partition, offset, options);
    this.traffic.nacked += 1;
  }

  protected override async rejected(settled: Promise<void>): Promise<void> {
    await settled;
    this.traffic.rejected += 1;
  }
}
