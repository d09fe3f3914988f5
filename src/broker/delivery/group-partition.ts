/** What a queue group holds per partition: deliveries in flight, redeliveries due and waiting, acks settling. */
import type { TimerHandle } from '../../platform/clock.js';
import type { LogRecord, PartitionLog } from '../../storage/types.js';
import type { GroupSubscription } from './group-subscription.js';
import type { PartitionReader } from './partition-reader.js';

export interface InFlight {
  subscription: GroupSubscription;
  deliveryCount: number;
  /** Monotonic time after which the delivery times out. */
  deadlineMs: number;
  deliveredAtMs: number;
  /** Kept (bounded by credit) so a redelivery needs no read. */
  record: LogRecord;
}

/** A message waiting to be delivered again. */
export interface Waiting {
  /** Deliveries so far. */
  deliveries: number;
  /** The record when held in memory (within HELD_RECORD_BYTES_MAX), else read again when due. */
  record: LogRecord | null;
}

export class GroupPartition {
  /** In delivery order; touch() re-inserts, so deadlines never decrease along the map. */
  readonly inFlight = new Map<number, InFlight>();
  /** Offsets due for redelivery now, in the order they fell due (a queue; stale entries are skipped). */
  due: number[] = [];
  dueHead = 0;
  fetchingDue = false;
  /** Offsets waiting for a redelivery (scheduled or due). */
  readonly waiting = new Map<number, Waiting>();
  readonly retryTimers = new Map<number, TimerHandle>();
  /** Offsets acked whose settlement is not durable yet. */
  readonly settling = new Set<number>();

  constructor(
    readonly index: number,
    readonly log: PartitionLog,
    readonly reader: PartitionReader,
  ) {}
}
