/** Redrive: dead letters moved back to the topics they came from, each once, whatever crashes meanwhile. */
import { createHash } from 'node:crypto';
import type { Logger } from '../platform/logger.js';
import { FerryError } from '../errors.js';
import type { LogRecord } from '../storage/types.js';
import { DEAD_LETTER_SUFFIX } from './config.js';
import { ID_HEADER } from './dedup.js';
import { DLQ_HEADER_PREFIX, DLQ_HEADERS } from './delivery/dead-letter.js';
import type { Topic } from './topic.js';
import type { Header, PublishMessage, RedriveOptions, RedriveResult } from './types.js';

/** The internal group through which a dead-letter topic remembers what was redriven. */
export const REDRIVE_GROUP = 'ferry-redrive';
/**
 * A redriven copy's `ferry-id` is its redrive id (one id per message); the id its first publish
 * gave it, if any, travels on under this name.
 */
export const ORIGINAL_ID_HEADER = 'ferry-original-id';
/** How every redrive id begins: such an id is the broker's, never an original one. */
const REDRIVE_ID_PREFIX = 'ferry-redrive:';
/** Dead letters read per log read while redriving. */
const REDRIVE_READ_RECORDS = 512;
/** Hex digits of the digest in a redrive id: 64 bits, so two dead letters at one place never share one. */
const REDRIVE_DIGEST_HEX_CHARS = 16;

/** The broker's topics, as a redrive reads and publishes them. */
export interface RedriveTopics {
  /** The dead-letter topic (open here), or UNKNOWN_TOPIC. */
  topic(name: string): Topic;
  /** Whether a source topic exists (here, or elsewhere in a cluster). */
  has(name: string): boolean;
  /** Publishes to a source topic and resolves once the messages are synced (committed, in a cluster). */
  publishStored(name: string, messages: PublishMessage[]): Promise<void>;
  /**
   * Whether group `group` of topic `source` dead-letters into `deadLetterTopic`: a redrive writes
   * only where a dead letter really came from, whatever its headers claim.
   */
  cameFrom(source: string, group: string, deadLetterTopic: string): boolean;
}

/**
 * Moves dead letters back to the topics they came from (all, an offset range, or those with a
 * header), oldest first. The dead-letter topic's internal group REDRIVE_GROUP remembers what was
 * moved; each republish carries a message id derived from the dead letter (redriveId), so a
 * redrive interrupted by a crash and repeated does not publish a message twice. A dead letter is
 * settled only once its republished copy is synced (Topic.syncStored).
 */
export async function redrive(topics: RedriveTopics, deadLetterTopic: string, options: RedriveOptions, logger: Logger): Promise<RedriveResult> {
  const topic = topics.topic(deadLetterTopic);
  const limit = options.limit ?? Infinity;
  if (limit !== Infinity && (!Number.isInteger(limit) || limit < 0)) throw new FerryError('INVALID_ARGUMENT', 'limit must be a non-negative integer');
  if (topic.group(REDRIVE_GROUP) === undefined) {
    // First redrive of this topic: check it holds dead letters before leaving a group on it.
    const looks = await looksLikeDeadLetters(topic);
    if (looks === 'empty') return { moved: 0 };
    if (looks === 'no') throw notDeadLetterTopic(deadLetterTopic, topics);
  }
  // The internal group never dead-letters: naming its own topic spares it a derived `.dlq` that may be too long.
  const group = await topic.openGroup(REDRIVE_GROUP, { kind: 'earliest' }, { deadLetterTopic });
  let moved = 0;
  for (const [partition, log] of topic.logs.entries()) {
    let offset = Math.max(group.ackFloor(partition), options.fromOffset ?? 0, log.startOffset);
    const endOffset = Math.min(log.nextOffset, options.toOffset ?? Infinity);
    while (offset < endOffset && moved < limit) {
      const records = await log.read(offset, { recordsMax: REDRIVE_READ_RECORDS, endOffset });
      if (records.length === 0) break;
      // Each read's matches go back as one publish per source topic, then are settled together.
      const bySource = new Map<string, { messages: PublishMessage[]; offsets: number[] }>();
      for (const record of records) {
        if (moved >= limit) break;
        if (group.isSettled(partition, record.offset)) continue;
        if (options.header !== undefined && !record.headers.some(([name, value]) => name === options.header![0] && value === options.header![1])) continue;
        const source = record.headers.find(([name]) => name === DLQ_HEADERS.topic)?.[1];
        if (source === undefined || !topics.has(source)) {
          logger.warn('broker.redrive.no_source', { deadLetterTopic, partition, offset: record.offset, source });
          continue;
        }
        const sourceGroup = record.headers.find(([name]) => name === DLQ_HEADERS.group)?.[1] ?? '';
        if (!topics.cameFrom(source, sourceGroup, deadLetterTopic)) {
          logger.warn('broker.redrive.wrong_source', { deadLetterTopic, partition, offset: record.offset, source, group: sourceGroup });
          continue;
        }
        const headers = redrivenHeaders(record);
        let batch = bySource.get(source);
        if (batch === undefined) bySource.set(source, (batch = { messages: [], offsets: [] }));
        batch.messages.push({ key: record.key, headers, value: record.value, id: redriveId(deadLetterTopic, partition, record) });
        batch.offsets.push(record.offset);
        moved += 1;
      }
      for (const [source, batch] of bySource) {
        // The settle goes to this topic's group journal, synced apart from the source topic: in
        // `interval`/`never` mode it could reach the disk first, and a power loss would lose the
        // message from both topics.
        await topics.publishStored(source, batch.messages);
        await Promise.all(batch.offsets.map((offset) => group.settleDirect(partition, offset)));
      }
      offset = records[records.length - 1]!.offset + 1;
    }
  }
  logger.info('broker.redrive.finished', { deadLetterTopic, moved });
  return { moved };
}

/**
 * The headers of a dead letter's redriven copy: without the dead-letter headers, and without its
 * `ferry-id`, which the republish sets to the redrive id; an original id (not a redrive's) is kept
 * as `ferry-original-id`, once, however often the message goes round.
 */
function redrivenHeaders(record: LogRecord): Header[] {
  const headers: Header[] = record.headers.filter(([name]) => !name.startsWith(DLQ_HEADER_PREFIX) && name !== ID_HEADER);
  const id = record.headers.find(([name]) => name === ID_HEADER)?.[1];
  const kept = headers.some(([name]) => name === ORIGINAL_ID_HEADER);
  if (id !== undefined && !kept && !id.startsWith(REDRIVE_ID_PREFIX)) headers.push([ORIGINAL_ID_HEADER, id]);
  return headers;
}

/**
 * Whether a topic holds dead letters, from the first stored message of each partition: a dead
 * letter always carries the `ferry-dlq-topic` header (dead-letter.ts). 'empty': nothing stored.
 */
async function looksLikeDeadLetters(topic: Topic): Promise<'yes' | 'no' | 'empty'> {
  let empty = true;
  for (const log of topic.logs) {
    if (log.nextOffset <= log.startOffset) continue;
    const [first] = await log.read(log.startOffset, { recordsMax: 1 });
    if (first === undefined) continue;
    empty = false;
    if (first.headers.some(([name]) => name === DLQ_HEADERS.topic)) return 'yes';
  }
  return empty ? 'empty' : 'no';
}

function notDeadLetterTopic(name: string, topics: RedriveTopics): FerryError {
  const likely = `${name}${DEAD_LETTER_SUFFIX}`;
  const hint = topics.has(likely) ? `; its groups' dead letters are in ${likely} (redrive that)` : `; redrive the dead-letter topic of a group (by default <topic>${DEAD_LETTER_SUFFIX})`;
  return new FerryError(
    'INVALID_ARGUMENT',
    `${name} is not a dead-letter topic: its messages carry no ${DLQ_HEADERS.topic} header, which every dead letter has${hint}`,
  );
}

/**
 * The message id of a redriven dead letter: its place in the dead-letter topic plus a digest of
 * what makes it that dead letter (its record timestamp and the source its headers name). The place
 * alone can repeat: a power loss can take back a dead letter after it was redriven (an `interval`
 * topic, or one published by hand), its offset goes to a new dead letter, and that one would be
 * dropped as a repeat within the dedup window. At most 14 + 200 + 1 + 4 + 1 + 16 + 1 + 16 = 253
 * bytes (names ≤ NAME_BYTES_MAX, partitions < PARTITIONS_MAX, safe-integer offsets): within
 * MESSAGE_ID_BYTES_MAX.
 */
function redriveId(deadLetterTopic: string, partition: number, record: LogRecord): string {
  const digest = createHash('sha256').update(String(record.timestampMs));
  for (const name of [DLQ_HEADERS.topic, DLQ_HEADERS.group, DLQ_HEADERS.partition, DLQ_HEADERS.offset]) {
    digest.update(`\0${record.headers.find(([header]) => header === name)?.[1] ?? ''}`);
  }
  return `${REDRIVE_ID_PREFIX}${deadLetterTopic}:${partition}:${record.offset}:${digest.digest('hex').slice(0, REDRIVE_DIGEST_HEX_CHARS)}`;
}
