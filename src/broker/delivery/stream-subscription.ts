/**
 * A subscription without a group: reads the topic as a stream from its start position, in offset
 * order per partition, keeping no state on the broker. Flow control is credit only (one credit per
 * delivery); there is nothing to acknowledge.
 */
import type { ErrorCode } from '../../errors.js';
import type { Logger } from '../../platform/logger.js';
import type { PartitionLog } from '../../storage/types.js';
import { PartitionReader } from './partition-reader.js';
import type { Delivery, DeliverySink, Subscription, SubscriptionCloseOptions } from '../types.js';

export class StreamSubscription implements Subscription {
  readonly group = undefined;
  private credit: number;
  private readonly readers: PartitionReader[];
  private nextPartitionIndex = 0;
  private pumping = false;
  private closed = false;

  constructor(
    readonly id: number,
    readonly topic: string,
    logs: PartitionLog[],
    startOffsets: number[],
    private readonly sink: DeliverySink,
    credit: number,
    logger: Logger,
    private readonly onClose: (subscription: StreamSubscription) => void,
  ) {
    this.credit = credit;
    this.readers = logs.map(
      (log, partition) => new PartitionReader(log, startOffsets[partition]!, () => this.pump(), logger, { topic, subscription: id, partition }),
    );
    queueMicrotask(() => this.pump());
  }

  onLogAdvance(): void {
    this.pump();
  }

  grantCredit(count: number): void {
    if (this.closed) return;
    this.credit += count;
    this.pump();
  }

  async ack(): Promise<void> {}

  async nack(): Promise<void> {}

  resume(): void {
    this.pump();
  }

  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (this.credit > 0 && this.sink.writable()) {
        if (!this.deliverOne()) {
          for (const reader of this.readers) reader.request(this.credit);
          break;
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private deliverOne(): boolean {
    const count = this.readers.length;
    for (let i = 0; i < count; i++) {
      const partition = (this.nextPartitionIndex + i) % count;
      const record = this.readers[partition]!.take();
      if (record === undefined) continue;
      this.nextPartitionIndex = (partition + 1) % count;
      this.credit -= 1;
      const delivery: Delivery = {
        topic: this.topic,
        partition,
        offset: record.offset,
        timestampMs: record.timestampMs,
        key: record.key,
        headers: record.headers,
        value: record.value,
        deliveryCount: 1,
      };
      this.sink.deliver(delivery);
      return true;
    }
    return false;
  }

  /** Ends the subscription; with a reason, the broker ended it and tells the sink why. */
  async close(options: SubscriptionCloseOptions & { reason?: string; code?: ErrorCode } = {}): Promise<void> {
    const { reason, code } = options;
    if (this.closed) return;
    this.closed = true;
    for (const reader of this.readers) reader.close();
    this.onClose(this);
    if (reason !== undefined) this.sink.ended?.(reason, code);
  }
}
