/**
 * A log of a topic this broker leads, as the broker uses it: reads and offsets come from the local
 * log (whose visible end the leader holds at the high watermark), and an append resolves only once
 * the high watermark covers it, so a publish, an ack or a delayed message is confirmed only when
 * every in-sync replica holds it. Closing it leaves the local log open: replication owns it.
 */
import type { AppendResult, Durability, LogRecord, LogStats, NotedHeaders, PartitionLog, ReadOptions, RecordInput, RecoveryReport, ReplicaLog, RetentionReport } from '../storage/types.js';
import { ID_HEADER } from '../broker/dedup.js';
import { FerryError } from '../errors.js';
import type { TopicLeader } from './topic-leader.js';

export class ReplicatedLog implements PartitionLog {
  private closed = false;
  private readonly unsubscribes = new Set<() => void>();
  /**
   * The log as the broker finds it when it opens the topic: replication filled it after the local
   * recovery, so the end is the one at promotion. State derived from the log (a group's ack floor)
   * is checked against this end, not the empty log a follower may have opened.
   */
  readonly recovery: RecoveryReport;

  constructor(
    private readonly logId: string,
    private readonly local: ReplicaLog,
    private readonly leader: TopicLeader,
    /** The ids this broker noted while it followed (NotedIds), for the topic's dedup index at promotion. */
    private readonly noted: NotedHeaders | null = null,
    /**
     * The local log's record of this leadership's epoch start, still being made durable: reads may
     * go on meanwhile (the service opens), the first append waits for it.
     */
    private epochBegun: Promise<void> | null = null,
  ) {
    this.recovery = { ...local.recovery, startOffset: local.startOffset, nextOffset: local.nextOffset };
  }

  notedHeaders(name: string): NotedHeaders | null {
    return name === ID_HEADER ? this.noted : null;
  }

  get startOffset(): number {
    return this.local.startOffset;
  }

  get nextOffset(): number {
    return this.local.nextOffset;
  }

  get appendedOffset(): number {
    return this.local.appendedOffset;
  }

  get writtenOffset(): number {
    return this.local.writtenOffset;
  }

  get syncedOffset(): number {
    return this.local.syncedOffset;
  }

  get visibleEndOffset(): number {
    return this.local.visibleEndOffset;
  }

  get durability(): Durability {
    return this.local.durability;
  }

  async append(records: readonly RecordInput[]): Promise<AppendResult> {
    if (this.epochBegun !== null) {
      // A start that fails ends the leadership here (TopicReplica.epochNotBegun): nothing was
      // stored, and the next leader takes the write.
      await this.epochBegun.catch((error: unknown) => {
        throw new FerryError('NOT_LEADER', `log ${this.logId} could not begin epoch ${this.leader.epoch} here; nothing was stored`, { cause: error, detail: { leader: null, address: null, epoch: this.leader.epoch } });
      });
      this.epochBegun = null;
    }
    this.leader.checkWritable();
    const result = await this.local.append(records);
    await this.leader.waitCommitted(this.logId, result.lastOffset);
    return result;
  }

  whenVisible(offset: number): Promise<void> {
    return this.leader.waitCommitted(this.logId, offset);
  }

  read(offset: number, options?: ReadOptions): Promise<LogRecord[]> {
    return this.local.read(offset, options);
  }

  offsetForTimestamp(timestampMs: number): Promise<number> {
    return this.local.offsetForTimestamp(timestampMs);
  }

  onAdvance(listener: () => void): () => void {
    const unsubscribe = this.local.onAdvance(listener);
    const remove = (): void => {
      unsubscribe();
      this.unsubscribes.delete(remove);
    };
    this.unsubscribes.add(remove);
    return remove;
  }

  sync(): Promise<void> {
    return this.local.sync();
  }

  stats(): LogStats {
    return this.local.stats();
  }

  enforceRetention(): Promise<RetentionReport> {
    return this.local.enforceRetention();
  }

  deleteSegmentsBefore(offset: number): Promise<number> {
    return this.local.deleteSegmentsBefore(offset);
  }

  /** The broker is done with it (its topic closed): listeners go; the local log stays with replication. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const remove of [...this.unsubscribes]) remove();
  }
}
