/** Bounds the broker layer enforces, each with its reason. */
import { FerryError, type ErrorCode } from '../errors.js';
import { PUBLISH_MESSAGES_MAX } from '../protocol/limits.js';
import { HEADERS_BYTES_MAX, HEADERS_COUNT_MAX, KEY_BYTES_MAX, RECORD_BYTES_MAX } from '../storage/limits.js';
import type { PublishMessage } from './types.js';

/** Partitions per topic: each is a log with open files; more than this is a configuration mistake here. */
export const PARTITIONS_MAX = 1024;
/** Replicas of one topic at most (cluster mode): one per broker, and seven copies are plenty. */
export const REPLICAS_MAX = 7;
/** Credit a subscription may hold: bounds what one subscriber can have in flight. */
export const CREDIT_MAX = 1_000_000;
/** Records fetched from a partition log per read when feeding subscribers. */
export const DISPATCH_READ_RECORDS_MAX = 4096;
/**
 * Records a read fetches even when subscribers want fewer (bounded by DISPATCH_READ_BYTES_MAX):
 * a whole group-committed batch (up to a few thousand small records) in one read.
 */
export const DISPATCH_READ_AHEAD_RECORDS = 4096;
/** Bytes fetched per read when feeding subscribers (at least one record is always returned). */
export const DISPATCH_READ_BYTES_MAX = 1024 * 1024;
/** Group-state journal records between two snapshots; bounds replay work after a crash. */
export const GROUP_JOURNAL_RECORDS_PER_SNAPSHOT = 20_000;
/**
 * How long a delivery count (the `dispatched` event) may wait for a journal record of acks to ride
 * in before it is written on its own. Under load acks come sooner and carry it, so the journal
 * syncs once per tick of acks instead of twice (acks, then deliveries); a consumer that does not
 * ack still gets its counts written within this delay.
 */
export const DISPATCHED_FLUSH_DELAY_MS = 20;
/**
 * How often a group journal append refused because too few replicas are in sync (cluster mode) is
 * offered again: the refusal writes nothing, and the acks waiting on it are answered once it is
 * taken (group-store.ts, appendWhenAccepted).
 */
export const GROUP_JOURNAL_RETRY_MS = 100;
/** Journal segment size: small, so segments below a snapshot can be deleted soon. */
export const GROUP_JOURNAL_SEGMENT_BYTES = 4 * 1024 * 1024;
/** Ids remembered for exactly-once publish per topic; past it the oldest are forgotten early. */
export const DEDUP_ENTRIES_MAX = 1_000_000;
/** Bounds of a group's ack timeout: below 100 ms redeliveries would storm; above a day is a stuck consumer. */
export const ACK_TIMEOUT_MS_MIN = 100;
export const ACK_TIMEOUT_MS_MAX = 24 * 3600 * 1000;
/** Deliveries of one message before it is dead-lettered, at most. */
export const DELIVERIES_MAX_LIMIT = 1000;
/** Longest delay of a delayed message: one year. */
export const DELAY_MS_MAX = 366 * 24 * 3600 * 1000;
/** Message ids are compared and kept in memory: keep them short. */
export const MESSAGE_ID_BYTES_MAX = 256;
/** Records of nacked or timed-out messages kept in memory for their redelivery; past it they are read again. */
export const HELD_RECORD_BYTES_MAX = 32 * 1024 * 1024;

/**
 * Publish limits an operator may set below the ceilings (`limits.*` in the configuration), checked
 * where the broker process admits traffic (admin/observed-broker.ts).
 */
export interface AdmissionLimits {
  recordBytesMax: number;
  keyBytesMax: number;
  headersCountMax: number;
  headersBytesMax: number;
  publishMessagesMax: number;
}

/** The ceilings: with these nothing is checked here, the broker's own checks apply. */
export const ADMISSION_CEILINGS: AdmissionLimits = {
  recordBytesMax: RECORD_BYTES_MAX,
  keyBytesMax: KEY_BYTES_MAX,
  headersCountMax: HEADERS_COUNT_MAX,
  headersBytesMax: HEADERS_BYTES_MAX,
  publishMessagesMax: PUBLISH_MESSAGES_MAX,
};

/**
 * Checks one publish against `limits`: BATCH_TOO_LARGE, KEY_TOO_LARGE, HEADERS_TOO_LARGE or
 * RECORD_TOO_LARGE for the first message past them. Used where the broker process admits traffic
 * (admin/observed-broker.ts), and by the HTTP publish batcher to keep a bad request out of a shared
 * publish (transport/rest/publish-batcher.ts).
 */
export function checkPublishLimits(messages: readonly PublishMessage[], limits: AdmissionLimits): void {
  if (messages.length > limits.publishMessagesMax) {
    throw new FerryError('BATCH_TOO_LARGE', `a publish carries at most ${limits.publishMessagesMax} messages (limits.publishMessagesMax)`);
  }
  for (const message of messages) {
    const keyBytes = message.key?.length ?? 0;
    if (keyBytes > limits.keyBytesMax) throw new FerryError('KEY_TOO_LARGE', `key of ${keyBytes} bytes is over limits.keyBytesMax (${limits.keyBytesMax})`);
    const headers = message.headers ?? [];
    if (headers.length > limits.headersCountMax) {
      throw new FerryError('HEADERS_TOO_LARGE', `${headers.length} headers are over limits.headersCountMax (${limits.headersCountMax})`);
    }
    let headerBytes = 0;
    for (const [name, value] of headers) headerBytes += Buffer.byteLength(name) + Buffer.byteLength(value);
    if (headerBytes > limits.headersBytesMax) {
      throw new FerryError('HEADERS_TOO_LARGE', `headers of ${headerBytes} bytes are over limits.headersBytesMax (${limits.headersBytesMax})`);
    }
    const recordBytes = keyBytes + headerBytes + message.value.length;
    if (recordBytes > limits.recordBytesMax) {
      throw new FerryError('RECORD_TOO_LARGE', `message of ${recordBytes} bytes is over limits.recordBytesMax (${limits.recordBytesMax})`);
    }
  }
}

/**
 * Codes the broker raises while checking a publish, before anything is written (docs/ARCHITECTURE.md,
 * "Who checks what in a publish"): a call that joined several requests' messages and failed with one
 * of them is tried again request by request, so that only the offending one fails.
 */
export const PUBLISH_VALIDATION_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['INVALID_ARGUMENT', 'RECORD_TOO_LARGE', 'KEY_TOO_LARGE', 'HEADERS_TOO_LARGE', 'BATCH_TOO_LARGE']);
