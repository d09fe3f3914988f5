/**
 * The delay store's recovery at open: records the bucket files may not hold (scanned from the
 * checkpoint), moves made after it (found in the topic by their delay-offset header), the release
 * shifts of messages stored before a wall-clock step on this boot, and a version-1 state converted.
 */
import type { Logger } from '../../platform/logger.js';
import type { PartitionLog } from '../../storage/types.js';
import type { BucketFiles } from './bucket-files.js';
import { bucketOf, DELAY_BUCKET_MS, pendingItems, type BucketItem } from './buckets.js';
import type { CursorStateV1, DelayState } from './checkpoint.js';
import { DELAY_OFFSET_HEADER, DELIVER_AT_HEADER } from './headers.js';
import { scanLog } from './log-reads.js';
import { atOrBefore, type DelaySchedule, type Entry } from './schedule.js';
import type { RestoredShift } from './wall-epochs.js';

export interface DelayRecoveryOptions {
  logger: Logger;
  topic: string;
  log: PartitionLog;
  mainLogs: readonly PartitionLog[];
  state: DelayState;
  schedule: DelaySchedule;
  files: BucketFiles;
  /** Release shifts of the messages stored before open (wall-epochs.ts). */
  restored: readonly RestoredShift[];
  /** Schedules entries found again (with their timers, as an add does). */
  reschedule: (entries: Entry[]) => void;
  /** Loads the buckets due soon. */
  loadDue: () => Promise<void>;
}

export async function recoverDelays(options: DelayRecoveryOptions): Promise<void> {
  const { log, state, schedule, files, logger, topic } = options;
  // 1. Records the bucket files may not hold: scan the delay log from the checkpoint.
  const rescanned: Entry[] = [];
  await scanLog(log, Math.max(state.indexedEnd, log.startOffset), (record) => {
    const dueHeader = record.headers.find(([name]) => name === DELIVER_AT_HEADER);
    if (dueHeader !== undefined) rescanned.push({ dueMs: Number(dueHeader[1]), offset: record.offset, releaseMonoMs: 0 });
  });
  if (rescanned.length > 0) options.reschedule(rescanned);
  // Messages stored before a wall-clock step on this boot are released as if it had not happened.
  // Every bucket holding them is known by now: once all are loaded, the shifts are not needed.
  const lastBucket = schedule.bucketStarts.at(-1);
  if (lastBucket !== undefined) {
    for (const { first, last, shiftMs } of options.restored) schedule.recordShift(first, last, shiftMs, lastBucket + DELAY_BUCKET_MS - 1);
  }
  // 2. Moves after the checkpoint: their records in the topic carry the delay offset and due time.
  const movedFound = await findMoves(options);
  const cursor = schedule.legacyCursor;
  if (cursor !== null) {
    for (const entry of rescanned) if (atOrBefore(entry, cursor)) files.queue(bucketOf(entry.dueMs), { ...entry, moved: true });
  }
  files.requestFlush();
  await options.loadDue();
  logger.info('broker.delay.recovered', { topic, rescanned: rescanned.length, movedFound, buckets: schedule.bucketStarts.length, dueSoon: schedule.dueCount });
}

/** Queues a "moved" item for every move found in the topic past the checkpoint; returns how many. */
async function findMoves(options: DelayRecoveryOptions): Promise<number> {
  let movedFound = 0;
  for (const [partition, log] of options.mainLogs.entries()) {
    await scanLog(log, Math.max(options.state.movedScanFrom[partition] ?? 0, log.startOffset), (record) => {
      const marker = record.headers.find(([name]) => name === DELAY_OFFSET_HEADER);
      const dueHeader = record.headers.find(([name]) => name === DELIVER_AT_HEADER);
      if (marker === undefined || dueHeader === undefined) return;
      const item: BucketItem = { dueMs: Number(dueHeader[1]), offset: Number(marker[1]), moved: true };
      const bucket = bucketOf(item.dueMs);
      // A bucket already deleted as finished needs no reminder.
      if (!options.schedule.hasBucket(bucket)) return;
      options.files.queue(bucket, item);
      movedFound++;
    });
  }
  return movedFound;
}

/**
 * Version 1 state: entries at or before its (due, offset) cursor count as moved. Each bucket gets
 * "moved" items for them (made durable by the first checkpoint, which writes version 2), and until
 * then loads and the rescan skip them too.
 */
export async function convertCursor(saved: CursorStateV1, schedule: DelaySchedule, files: BucketFiles, logger: Logger, topic: string): Promise<void> {
  const cursor = { dueMs: saved.cursorDueMs, offset: saved.cursorOffset };
  schedule.legacyCursor = cursor;
  for (const bucket of schedule.bucketStarts) {
    if (bucket > cursor.dueMs) break;
    const items = await files.read(bucket);
    for (const item of pendingItems(items)) if (atOrBefore(item, cursor)) files.queue(bucket, { ...item, moved: true });
  }
  logger.info('broker.delay.state_converted', { topic, fromVersion: saved.version });
}
