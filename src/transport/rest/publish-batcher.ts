/**
 * PublishBatcher: the publishes of one event-loop turn, per topic, handed to the broker as one
 * publish call at the turn's end (setImmediate), each caller still answered with its own results.
 * HTTP requests arrive one message each; stored one call each, every request pays the broker's
 * per-call work (routing, an append per partition, a promise chain) alone. Stored together, they
 * share it, and in `always` mode they already shared the fsync (group commit).
 *
 * Only plain publishes are joined: a call with a message id (dedup) or a delay goes through alone,
 * unchanged, and so does a call past the admission limits (so that it fails alone, with its own
 * error, and never takes other callers' messages down with it). A joined publish that fails fails
 * every caller in it with that error: the causes left (unknown topic, broker busy or closing, disk
 * full) are the topic's or the broker's, not one request's.
 *
 * It sits under the security guard (each caller's permission and quota are checked per call, before
 * the call reaches here) and over the observed broker (traffic counters, the configured limits).
 */
import { required } from '../../broker/forwarding.js';
import { ADMISSION_CEILINGS, checkPublishLimits, type AdmissionLimits } from '../../broker/limits.js';
import type {
  BrokerApi,
  DeliverySink,
  GroupInfo,
  PublishMessage,
  PublishResult,
  RedriveOptions,
  RedriveResult,
  StartPosition,
  SubscribeOptions,
  Subscription,
  TopicConfig,
  TopicInfo,
} from '../../broker/types.js';
import { JOINED_PUBLISH_BYTES_MAX, JOINED_PUBLISH_MESSAGES_MAX } from './limits.js';

interface Caller {
  start: number;
  count: number;
  resolve: (results: PublishResult[]) => void;
  reject: (error: unknown) => void;
}

interface PendingPublish {
  messages: PublishMessage[];
  bytes: number;
  callers: Caller[];
}

export class PublishBatcher implements BrokerApi {
  private pending = new Map<string, PendingPublish>();
  private flushScheduled = false;
  private readonly messagesMax: number;

  constructor(
    readonly inner: BrokerApi,
    private readonly limits: AdmissionLimits = ADMISSION_CEILINGS,
  ) {
    this.messagesMax = Math.min(JOINED_PUBLISH_MESSAGES_MAX, limits.publishMessagesMax);
  }

  publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    const bytes = joinableBytes(messages);
    if (bytes < 0 || messages.length > this.messagesMax || bytes > JOINED_PUBLISH_BYTES_MAX || !this.withinLimits(messages)) {
      return this.inner.publish(topic, messages);
    }
    let entry = this.pending.get(topic);
    if (entry !== undefined && (entry.messages.length + messages.length > this.messagesMax || entry.bytes + bytes > JOINED_PUBLISH_BYTES_MAX)) {
      this.pending.delete(topic);
      this.store(topic, entry);
      entry = undefined;
    }
    if (entry === undefined) {
      entry = { messages: [], bytes: 0, callers: [] };
      this.pending.set(topic, entry);
    }
    const joined = entry;
    const result = new Promise<PublishResult[]>((resolve, reject) => {
      joined.callers.push({ start: joined.messages.length, count: messages.length, resolve, reject });
    });
    for (const message of messages) joined.messages.push(message);
    joined.bytes += bytes;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flush);
    }
    return result;
  }

  private withinLimits(messages: readonly PublishMessage[]): boolean {
    try {
      checkPublishLimits(messages, this.limits);
      return true;
    } catch {
      return false;
    }
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const pending = this.pending;
    if (pending.size === 0) return;
    this.pending = new Map();
    for (const [topic, entry] of pending) this.store(topic, entry);
  };

  private store(topic: string, entry: PendingPublish): void {
    const { callers } = entry;
    let stored: Promise<PublishResult[]>;
    try {
      stored = this.inner.publish(topic, entry.messages);
    } catch (error) {
      stored = Promise.reject(error);
    }
    stored.then(
      (results) => {
        if (callers.length === 1) {
          callers[0]!.resolve(results);
          return;
        }
        for (const caller of callers) caller.resolve(results.slice(caller.start, caller.start + caller.count));
      },
      (error: unknown) => {
        for (const caller of callers) caller.reject(error);
      },
    );
  }

  // ---- Everything else passes through -------------------------------------------------------

  createTopic(name: string, config?: Partial<TopicConfig>): Promise<TopicInfo> {
    return this.inner.createTopic(name, config);
  }

  deleteTopic(name: string): Promise<void> {
    return this.inner.deleteTopic(name);
  }

  listTopics(): TopicInfo[] {
    return this.inner.listTopics();
  }

  describeTopic(name: string): TopicInfo {
    return this.inner.describeTopic(name);
  }

  subscribe(topic: string, options: SubscribeOptions, sink: DeliverySink): Promise<Subscription> {
    return this.inner.subscribe(topic, options, sink);
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

  /** A view over the shared broker: closing it closes nothing (the broker process closes the broker). */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The bytes a publish adds to a joined one; -1 when it may not join (a message id or a delay). */
function joinableBytes(messages: readonly PublishMessage[]): number {
  let bytes = 0;
  for (const message of messages) {
    if (message.id !== undefined || message.delayMs !== undefined || message.deliverAtMs !== undefined) return -1;
    bytes += message.value.length + (message.key?.length ?? 0);
  }
  return bytes;
}
