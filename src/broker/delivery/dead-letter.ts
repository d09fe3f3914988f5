/**
 * Moves a message from a queue group to the group's dead-letter topic, so that after any crash
 * it is in the dead-letter topic or still pending in the group — never in neither.
 * The rest: docs/INTERNALS.md.
 */
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { PartitionLog } from '../../storage/types.js';
import type { Header } from '../../storage/types.js';
import { GroupEventKind, truncateReason } from './group-journal.js';
import type { GroupStore } from './group-store.js';
import type { PublishMessage } from '../types.js';

/** Headers a dead letter carries; their names are a user-facing contract. */
export const DLQ_HEADERS = {
  topic: 'ferry-dlq-topic',
  offset: 'ferry-dlq-offset',
  group: 'ferry-dlq-group',
  deliveries: 'ferry-dlq-deliveries',
  reason: 'ferry-dlq-reason',
  time: 'ferry-dlq-time',
  partition: 'ferry-dlq-partition',
} as const;

export const DLQ_HEADER_PREFIX = 'ferry-dlq-';

/** A failed move (e.g. disk full) is tried again after this long. */
export const DEAD_LETTER_RETRY_MS = 5_000;

export interface DeadLetterSource {
  topic: string;
  group: string;
  partition: number;
  offset: number;
}

/** What the broker provides to dead-lettering: the dead-letter topics themselves. */
export interface DeadLetterTarget {
  /**
   * A lower bound for the offsets the next dead letter can get that a power loss cannot take back:
   * the topic's synced end (the least over its partitions; 0 when the topic does not exist yet).
   */
  offsetHint(topic: string): Promise<number>;
  /**
   * Publishes to the dead-letter topic, creating it on first use (in a cluster, replicated as
   * `sourceTopic` is, so a dead letter survives what its original survived); resolves once the copy
   * is synced (covered by an fdatasync) whatever the topic's durability, and in a cluster once it is
   * committed there: the original is settled next.
   */
  publishDeadLetter(topic: string, message: PublishMessage, sourceTopic: string): Promise<void>;
  /** Whether the dead-letter topic holds a copy of `source` at or after `fromOffset`. */
  contains(topic: string, fromOffset: number, source: DeadLetterSource): Promise<boolean>;
}

export interface DeadLettererOptions {
  topic: string;
  group: string;
  deadLetterTopic: string;
  logs: PartitionLog[];
  store: GroupStore;
  clock: Clock;
  logger: Logger;
  target: DeadLetterTarget;
  /** Called after a move settled the original. */
  onSettled: () => void;
}

export class DeadLetterer {
  /** Offsets being moved, per partition. */
  private readonly moving = new Map<number, Set<number>>();
  private readonly inProgress = new Set<Promise<void>>();
  private readonly retryTimers = new Set<TimerHandle>();
  private closed = false;

  constructor(private readonly options: DeadLettererOptions) {}

  /** Called for every delivery. */
  isMoving(partition: number, offset: number): boolean {
    return this.moving.get(partition)?.has(offset) === true || this.options.store.state.partitions[partition]!.intents.has(offset);
  }

  /** Dead-letters one message; resolves once it is settled in the group. */
  move(partition: number, offset: number, deliveries: number, reason: string): Promise<void> {
    let moving = this.moving.get(partition);
    if (moving === undefined) this.moving.set(partition, (moving = new Set()));
    if (moving.has(offset)) return Promise.resolve();
    moving.add(offset);
    const work = this.moveOnce(partition, offset, deliveries, truncateReason(reason), null).then(
      () => {
        moving.delete(offset);
      },
      (error: unknown) => {
        this.options.logger.error('broker.dead_letter.failed', { topic: this.options.topic, group: this.options.group, partition, offset, error });
        this.retryLater(moving, partition, offset, deliveries, reason);
        throw error;
      },
    );
    this.track(work);
    return work;
  }

  /** Finishes every move a crash interrupted. */
  async recover(): Promise<void> {
    const { store, target, deadLetterTopic, topic, group, logger } = this.options;
    for (const [partition, state] of store.state.partitions.entries()) {
      for (const [offset, intent] of [...state.intents]) {
        const source = { topic, group, partition, offset };
        // The copy gets an offset at or past the topic's end: a hint beyond it would miss the copy
        // at the next recovery. Such a hint says the topic lost what it named: search all of it.
        const endHint = await target.offsetHint(deadLetterTopic);
        const hintTrusted = intent.dlqOffsetHint <= endHint;
        if (!hintTrusted) {
          logger.warn('broker.dead_letter.hint_past_end', { ...source, deadLetterTopic, dlqOffsetHint: intent.dlqOffsetHint, endHint });
        }
        if (await target.contains(deadLetterTopic, hintTrusted ? intent.dlqOffsetHint : 0, source)) {
          await store.settle(partition, offset);
          logger.info('broker.dead_letter.recovered', { ...source, copy: 'found' });
        } else {
          // An untrusted hint is replaced: the move journals a fresh intent first.
          const written = await this.moveOnce(partition, offset, state.deliveriesOf(offset), intent.reason, hintTrusted ? intent.dlqOffsetHint : null);
          logger.info('broker.dead_letter.recovered', { ...source, copy: written ? 'written' : 'original_gone' });
        }
      }
    }
  }

  /** Copies the original to the dead-letter topic and settles it; false when the original was gone (nothing copied). */
  private async moveOnce(partition: number, offset: number, deliveries: number, reason: string, hint: number | null): Promise<boolean> {
    const { store, target, deadLetterTopic, logs, topic, group, clock } = this.options;
    if (hint === null) {
      const dlqOffsetHint = await target.offsetHint(deadLetterTopic);
      await store.record({ kind: GroupEventKind.deadLetterIntent, partition, offset, dlqOffsetHint, reason });
    }
    // `uncommitted`: the original was delivered, so it was committed; but a broker that has just
    // become leader (after a power loss of every replica, its high watermark starts at the log
    // start) shows nothing past its high watermark until its followers have fetched, and a read of
    // the visible log took the original for gone and settled it with no copy written.
    const [record] = await logs[partition]!.read(offset, { recordsMax: 1, uncommitted: true });
    const found = record !== undefined && record.offset === offset;
    if (!found) {
      // Retention removed the original: nothing left to move; settle so it is not waited for.
      this.options.logger.warn('broker.dead_letter.original_gone', { topic, group, partition, offset });
    } else {
      const headers: Header[] = record.headers.filter(([name]) => !name.startsWith(DLQ_HEADER_PREFIX));
      headers.push(
        [DLQ_HEADERS.topic, topic],
        [DLQ_HEADERS.partition, String(partition)],
        [DLQ_HEADERS.offset, String(offset)],
        [DLQ_HEADERS.group, group],
        [DLQ_HEADERS.deliveries, String(deliveries)],
        [DLQ_HEADERS.reason, reason],
        [DLQ_HEADERS.time, new Date(clock.nowMs()).toISOString()],
      );
      await target.publishDeadLetter(deadLetterTopic, { key: record.key, headers, value: record.value }, topic);
      this.options.logger.info('broker.dead_letter.moved', { topic, group, partition, offset, deliveries, reason, deadLetterTopic });
    }
    await store.settle(partition, offset);
    this.options.onSettled();
    return found;
  }

  /** Tries the move again after DEAD_LETTER_RETRY_MS; `moving` (the partition's set) keeps `offset` until it succeeds. */
  private retryLater(moving: Set<number>, partition: number, offset: number, deliveries: number, reason: string): void {
    if (this.closed) return;
    const timer = this.options.clock.schedule(DEAD_LETTER_RETRY_MS, () => {
      this.retryTimers.delete(timer);
      if (this.closed) return;
      const intent = this.options.store.state.partitions[partition]!.intents.get(offset);
      const work = this.moveOnce(partition, offset, deliveries, reason, intent?.dlqOffsetHint ?? null).then(
        () => {
          moving.delete(offset);
        },
        () => this.retryLater(moving, partition, offset, deliveries, reason),
      );
      this.track(work);
    });
    this.retryTimers.add(timer);
  }

  private track(work: Promise<void>): void {
    const settled = work.catch(() => undefined);
    this.inProgress.add(settled);
    void settled.then(() => this.inProgress.delete(settled));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.retryTimers) timer.cancel();
    this.retryTimers.clear();
    await Promise.all([...this.inProgress]);
  }
}

/** Whether a dead letter's headers name `source`. */
export function isCopyOf(headers: readonly Header[], source: DeadLetterSource): boolean {
  let matched = 0;
  for (const [name, value] of headers) {
    if (name === DLQ_HEADERS.topic && value === source.topic) matched++;
    else if (name === DLQ_HEADERS.group && value === source.group) matched++;
    else if (name === DLQ_HEADERS.partition && value === String(source.partition)) matched++;
    else if (name === DLQ_HEADERS.offset && value === String(source.offset)) matched++;
  }
  return matched === 4;
}
