/**
 * Delayed messages of one topic: stored at once in the topic's delay log (durably, per the topic's
 * mode) and moved into the topic when due; until then no group or stream sees them.
 * The rest: docs/INTERNALS.md.
 */
import { join } from 'node:path';
import type { TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { mkdirDurable, removeTree } from '../../platform/atomic-write.js';
import type { FileSystem } from '../../platform/fs.js';
import { FerryError } from '../../errors.js';
import type { AppendResult, Header, LogOptions, PartitionLog, RecordInput, StorageObserver } from '../../storage/types.js';
import type { WriteBufferPool } from '../../storage/write-buffers.js';
import type { PublishMessage } from '../types.js';
import { BucketFiles } from './bucket-files.js';
import { parseBucketFileName } from './buckets.js';
import { DelayCheckpoint, readDelayState, type DelayState } from './checkpoint.js';
import { DELIVER_AT_HEADER, PARTITION_HEADER } from './headers.js';
import { DelayMover } from './mover.js';
import { convertCursor, recoverDelays } from './recovery.js';
import { DelaySchedule, type Entry } from './schedule.js';
import { WallEpochs } from './wall-epochs.js';

export { DELAY_BUCKET_MS } from './buckets.js';
/** Delayed messages per append, and bytes per stored batch: reading one back reads its batch. */
const DELAY_APPEND_RECORDS_MAX = 16;
const DELAY_BATCH_BYTES_MAX = 32 * 1024;
/** The delay log's segments: small, so that those below every pending message are deleted soon. */
const DELAY_SEGMENT_BYTES = 16 * 1024 * 1024;
/**
 * Times an add writes new clock epochs before it gives up: each retry means the wall clock stepped
 * again while the last was written, which a sane clock does not do many times in a row.
 */
const EPOCH_WRITES_MAX = 8;
/** A bucket file that could not be read is read again after this long. */
const LOAD_RETRY_MS = 1000;

/** Where the store lives and how its delay log is kept (the topic's durability), then its own. */
export interface DelayStoreOptions extends Pick<LogOptions, 'dir' | 'fs' | 'clock' | 'durability'> {
  logger: Logger;
  syncIntervalMs: number;
  topic: string;
  observer?: StorageObserver | null;
  /** The broker's encode buffers (storage/write-buffers.ts); by default the journal keeps its own. */
  writeBuffers?: WriteBufferPool;
  /** The topic's partition logs (searched for moves after a crash). */
  mainLogs: readonly PartitionLog[];
  /** Opens the delay log (the topic's log factory). */
  openLog: (options: LogOptions) => Promise<PartitionLog>;
  /** Appends due messages to the topic. */
  deliver: (messages: PublishMessage[]) => Promise<unknown>;
}

/** A stored delayed message: its place in the delay log, when it is due, and how durable it is. */
export interface DelayedResult {
  offset: number;
  deliverAtMs: number;
  durability: 'synced' | 'written';
}

/** What the store is built from: the pieces `open` read or made. */
interface DelayParts {
  log: PartitionLog;
  epochs: WallEpochs;
  files: BucketFiles;
  schedule: DelaySchedule;
}

/** Inside the delay store's directory: the delay log, and the index the store derives from it. */
const LOG_DIR = 'log';
const BUCKETS_DIR = 'buckets';

/** The delay log's options: where, and how it is stored (the same on every replica). */
export function delayLogOptions(delayDir: string, options: Pick<DelayStoreOptions, 'fs' | 'clock' | 'logger' | 'durability' | 'syncIntervalMs' | 'observer' | 'writeBuffers'>): LogOptions {
  return {
    dir: join(delayDir, LOG_DIR),
    fs: options.fs,
    clock: options.clock,
    logger: options.logger,
    durability: options.durability,
    syncIntervalMs: options.syncIntervalMs,
    segmentBytes: DELAY_SEGMENT_BYTES,
    tailCacheBytes: 0,
    batchBytesMax: DELAY_BATCH_BYTES_MAX,
    ...(options.observer ? { observer: options.observer } : {}),
    ...(options.writeBuffers ? { writeBuffers: options.writeBuffers } : {}),
  };
}

/**
 * Removes what the delay store derives from its log (bucket files, state, clock epochs), durably,
 * keeping the log: a replica that stops leading drops it, and rebuilds it from the replicated logs
 * when it leads again (the bucket files of another epoch could name offsets the log no longer holds).
 */
export async function dropDerivedDelayState(fs: FileSystem, delayDir: string): Promise<void> {
  if ((await fs.stat(delayDir)) === null) return;
  for (const name of await fs.readdir(delayDir)) {
    if (name === LOG_DIR) continue;
    await removeTree(fs, join(delayDir, name));
  }
  await fs.syncDir(delayDir);
}

export class DelayStore {
  private readonly log: PartitionLog;
  private readonly epochs: WallEpochs;
  private readonly files: BucketFiles;
  private readonly schedule: DelaySchedule;
  private readonly mover: DelayMover;
  private readonly checkpoints: DelayCheckpoint;
  /** Delay-log offset at the start of each add in flight: its records are not scheduled yet. */
  private readonly addsInFlight = new Set<{ from: number }>();
  /** The appends of the adds in flight, until they settle. */
  private readonly appendsPending = new Set<Promise<unknown>>();
  /** Set while an add makes new clock epochs durable: other adds wait, so that it appends first. */
  private epochGate: Promise<void> | null = null;
  private loadTimer: TimerHandle | null = null;
  private loadTimerAtMs = Infinity;
  private closed = false;

  private constructor(
    private readonly options: DelayStoreOptions,
    parts: DelayParts,
    state: DelayState,
  ) {
    this.log = parts.log;
    this.epochs = parts.epochs;
    this.files = parts.files;
    this.schedule = parts.schedule;
    const { fs, dir, clock, logger, topic, durability, mainLogs } = options;
    const { log, epochs, files, schedule } = parts;
    this.mover = new DelayMover({ clock, logger, topic, log, mainLogs, deliver: options.deliver, schedule, files });
    this.checkpoints = new DelayCheckpoint({
      fs,
      dir,
      clock,
      logger,
      topic,
      durability,
      log,
      mainLogs,
      state,
      schedule,
      files,
      mover: this.mover,
      epochs,
      scheduledEnd: () => {
        let end = this.log.nextOffset;
        for (const add of this.addsInFlight) end = Math.min(end, add.from);
        return end;
      },
    });
  }

  static async open(options: DelayStoreOptions): Promise<DelayStore> {
    const { fs, dir, clock, logger, topic } = options;
    const bucketsDir = join(dir, BUCKETS_DIR);
    await mkdirDurable(fs, bucketsDir);
    const log = await options.openLog(delayLogOptions(dir, options));
    let saved: Awaited<ReturnType<typeof readDelayState>>;
    let epochs: WallEpochs;
    try {
      saved = await readDelayState(fs, dir, log, options.mainLogs);
      epochs = await WallEpochs.open({ fs, dir, clock, logger, topic, startOffset: log.startOffset, nextOffset: log.nextOffset });
    } catch (error) {
      await log.close();
      throw error;
    }
    const bucketStarts: number[] = [];
    for (const name of await fs.readdir(bucketsDir)) {
      const bucket = parseBucketFileName(name);
      if (bucket !== null) bucketStarts.push(bucket);
    }
    bucketStarts.sort((a, b) => a - b);
    let store: DelayStore | null = null;
    const files = new BucketFiles(fs, bucketsDir, logger, topic, () => store?.checkpoints.soon());
    const wallMinusMonoMs = clock.nowMs() - clock.monotonicMs();
    const schedule = new DelaySchedule({ files, logger, topic, bucketStarts, bucketMinOffsets: saved.state.bucketMinOffsets, wallMinusMonoMs });
    store = new DelayStore(options, { log, epochs, files, schedule }, saved.state);
    if (saved.cursor !== null) await convertCursor(saved.cursor, schedule, files, logger, topic);
    await recoverDelays({
      logger,
      topic,
      log,
      mainLogs: options.mainLogs,
      state: saved.state,
      schedule,
      files,
      restored: epochs.restored,
      reschedule: (entries) => store.reschedule(entries),
      loadDue: () => store.loadDueBuckets(),
    });
    return store;
  }

  /** The delay log itself (read-only use: rebuilding the dedup window). */
  get delayLog(): PartitionLog {
    return this.log;
  }

  /** Delayed messages stored and not yet moved. */
  get pendingBytes(): number {
    return this.log.stats().bytes;
  }

  /** Stores delayed messages; resolves per the topic's durability with their delay-log offsets. */
  async add(messages: ReadonlyArray<{ message: PublishMessage; deliverAtMs: number }>): Promise<DelayedResult[]> {
    if (this.closed) throw new FerryError('LOG_CLOSED', 'topic is closing');
    // The remaining delays are measured now, once; see wall-shifts.ts. From the last reading to the
    // appends nothing awaits.
    const firstMonoMs = this.options.clock.monotonicMs();
    let { wallMs, monoMs, wallNowMs } = this.readClocks(messages, firstMonoMs);
    let epochWrites = 0;
    while (this.epochGate !== null || !this.epochs.inCurrent(wallNowMs)) {
      if (this.epochGate !== null) {
        // Another add is starting an epoch; it appends first.
        await this.epochGate.catch(() => undefined);
        if (this.closed) throw new FerryError('LOG_CLOSED', 'topic is closing');
        ({ wallMs, monoMs, wallNowMs } = this.readClocks(messages, firstMonoMs));
        continue;
      }
      // The wall clock stepped: these messages' epochs must be durable, at the very offsets they
      // will take, before they are appended. Other adds wait at the gate meanwhile.
      if (++epochWrites > EPOCH_WRITES_MAX) throw new FerryError('BROKER_BUSY', `topic ${this.options.topic}: the wall clock keeps stepping; publish again`);
      const startWallNowMs = wallNowMs;
      const gate = this.appendsSettled().then((nextOffset) => this.epochs.extend(nextOffset, startWallNowMs));
      this.epochGate = gate;
      try {
        await gate;
      } finally {
        // Cleared before the appends below: adds waiting at the gate resume only after them.
        this.epochGate = null;
      }
      if (this.closed) throw new FerryError('LOG_CLOSED', 'topic is closing');
      ({ wallMs, monoMs, wallNowMs } = this.readClocks(messages, firstMonoMs));
      if (this.epochs.covers(this.log.nextOffset, wallNowMs)) break;
    }
    return this.append(messages, wallMs, monoMs);
  }

  /** Appends the messages to the delay log (nothing awaits before the appends start) and schedules what was stored. */
  private async append(messages: ReadonlyArray<{ message: PublishMessage; deliverAtMs: number }>, wallMs: number, monoMs: number): Promise<DelayedResult[]> {
    const records: RecordInput[] = messages.map(({ message, deliverAtMs }) => {
      const headers: Header[] = [...(message.headers ?? []), [DELIVER_AT_HEADER, String(deliverAtMs)]];
      if (message.partition !== undefined) headers.push([PARTITION_HEADER, String(message.partition)]);
      return { key: message.key ?? null, headers, value: message.value };
    });
    // Small appends make small batches, so that moving one message later reads little.
    const chunks: RecordInput[][] = [];
    for (let index = 0; index < records.length; index += DELAY_APPEND_RECORDS_MAX) chunks.push(records.slice(index, index + DELAY_APPEND_RECORDS_MAX));
    if (chunks.length === 0) return [];
    const inFlight = { from: this.log.nextOffset };
    this.addsInFlight.add(inFlight);
    const appending = Promise.allSettled(chunks.map((chunk) => this.log.append(chunk)));
    this.appendsPending.add(appending);
    let settled: Array<PromiseSettledResult<AppendResult>>;
    try {
      settled = await appending;
    } finally {
      this.addsInFlight.delete(inFlight);
      this.appendsPending.delete(appending);
    }
    // Chunks that were stored are scheduled even if another failed: stored is stored.
    const entries: Entry[] = [];
    let failure: unknown = null;
    settled.forEach((outcome, chunk) => {
      if (outcome.status === 'rejected') {
        failure ??= outcome.reason;
        return;
      }
      const result = outcome.value;
      for (let offset = result.baseOffset; offset <= result.lastOffset; offset++) {
        const { message, deliverAtMs: dueMs } = messages[chunk * DELAY_APPEND_RECORDS_MAX + (offset - result.baseOffset)]!;
        entries.push({ dueMs, offset, releaseMonoMs: monoMs + remainingMs(message, dueMs, wallMs) });
      }
    });
    this.schedule.recordShifts(entries);
    if (entries.length > 0) this.reschedule(entries);
    if (failure !== null) throw failure;
    const durability = (settled[0] as PromiseFulfilledResult<AppendResult>).value.durability;
    return entries.map((entry) => ({ offset: entry.offset, deliverAtMs: entry.dueMs, durability }));
  }

  /**
   * The clocks now, and for each message what the wall clock reads now in the terms of its due time.
   * For a `delayMs` publish that is the clock the broker computed it with, plus the monotonic time
   * since the add began: so that waiting at the epoch gate does not look like a step (it still
   * differs by the time from the publish to the add, which wall-epochs.ts tolerates).
   */
  private readClocks(messages: ReadonlyArray<{ message: PublishMessage; deliverAtMs: number }>, firstMonoMs: number): { wallMs: number; monoMs: number; wallNowMs: number[] } {
    const wallMs = this.options.clock.nowMs();
    const monoMs = this.options.clock.monotonicMs();
    const waitedMs = monoMs - firstMonoMs;
    return {
      wallMs,
      monoMs,
      wallNowMs: messages.map(({ message, deliverAtMs }) => (givenDelayMs(message) === undefined ? wallMs : deliverAtMs - givenDelayMs(message)! + waitedMs)),
    };
  }

  /** Resolves, once no delay-log append is pending, with the offset the next record takes. */
  private async appendsSettled(): Promise<number> {
    while (this.appendsPending.size > 0) await Promise.allSettled([...this.appendsPending]);
    return this.log.nextOffset;
  }

  /** Schedules stored entries, and arms what they may need: a flush, the move timer, the load timer. */
  private reschedule(entries: readonly Entry[]): void {
    this.schedule.add(entries);
    this.files.requestFlush();
    this.mover.arm();
    this.armLoadTimer();
  }

  /** Makes bucket files and progress durable, then deletes what is finished. */
  checkpoint(): Promise<void> {
    return this.checkpoints.run();
  }

  private loadDueBuckets(): Promise<void> {
    return this.files.exclusive(async () => {
      if (this.closed) return;
      await this.schedule.loadDue(this.options.clock.monotonicMs());
      this.mover.arm();
      this.armLoadTimer();
    });
  }

  private armLoadTimer(): void {
    if (this.closed) return;
    const loadAtMs = this.schedule.nextLoadAtMs(this.options.clock.monotonicMs(), LOAD_RETRY_MS);
    if (loadAtMs === Infinity) return;
    if (this.loadTimer !== null) {
      if (loadAtMs >= this.loadTimerAtMs) return;
      this.loadTimer.cancel();
    }
    this.loadTimerAtMs = loadAtMs;
    this.loadTimer = this.options.clock.schedule(loadAtMs - this.options.clock.monotonicMs(), () => {
      this.loadTimer = null;
      this.loadTimerAtMs = Infinity;
      void this.loadDueBuckets().catch((error: unknown) => {
        this.options.logger.error('broker.delay.load_failed', { topic: this.options.topic, error });
        this.armLoadTimer();
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const moved = this.mover.stop();
    this.loadTimer?.cancel();
    this.loadTimer = null;
    const checkpointed = this.checkpoints.stop();
    await moved;
    // A checkpoint under way took its figures before the last moves: one more after it.
    await checkpointed;
    try {
      await this.checkpoints.run();
    } finally {
      // Even without it the log closes: the next open rescans from the last checkpoint.
      await this.files.whenIdle();
      await this.log.close();
    }
  }
}

/**
 * A message's delay as of now: the delay it was published with when it gave one (its due time was
 * computed from a wall-clock reading a moment ago, and the clock may have stepped since), else what
 * is left until the wall-clock time it asked for.
 */
function remainingMs(message: PublishMessage, dueMs: number, wallMs: number): number {
  return givenDelayMs(message) ?? dueMs - wallMs;
}

/** The delay a message was published with, when its due time was computed from it. */
function givenDelayMs(message: PublishMessage): number | undefined {
  return message.deliverAtMs === undefined ? message.delayMs : undefined;
}
