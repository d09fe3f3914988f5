/**
 * Every bound the storage engine enforces, with the reason for its value. Appends are checked
 * against these before anything is written; a violation is a typed FerryError and the log is
 * left untouched.
 */
import { HEADERS_COUNT_MAX } from '../protocol/limits.js';

/** Header count per record: the wire's bound, defined with the protocol (the client shares it). */
export { HEADERS_COUNT_MAX };

const KiB = 1024;
const MiB = 1024 * KiB;

/** One record (key + headers + value + framing) must fit comfortably in one read and one frame. */
export const RECORD_BYTES_MAX = 8 * MiB;
/** Keys pick partitions and are compared often; long keys are almost always a mistake. */
export const KEY_BYTES_MAX = 16 * KiB;
/** Total encoded header bytes per record (names + values). */
export const HEADERS_BYTES_MAX = 64 * KiB;
/** One header name; names are identifiers, not data. */
export const HEADER_NAME_BYTES_MAX = 255;
/** Records in one append call (and so at most one batch of writes per call). */
export const APPEND_RECORDS_MAX = 100_000;
/** One write call carries at most this many bytes; larger pending work is split into several batches. */
export const BATCH_BYTES_MAX = 16 * MiB;
/** A segment's size cap: positions in the offset index are u32, so a segment must stay below 4 GiB. */
export const SEGMENT_BYTES_MAX = 1024 * MiB;
/** Smallest segment size accepted: smaller ones make roll and file-count overhead dominate. */
export const SEGMENT_BYTES_MIN = 4 * KiB;
/** Relative offsets in the index are u32, so a segment holds at most this many records. */
export const SEGMENT_RECORDS_MAX = 0xffff_fff0;

export const DEFAULT_SEGMENT_BYTES = 128 * MiB;
export const DEFAULT_SEGMENT_AGE_MS = 7 * 24 * 3600 * 1000;
export const DEFAULT_SYNC_INTERVAL_MS = 50;
/** Bytes of log between two sparse index entries: one pread of this size finds any record. */
export const DEFAULT_INDEX_INTERVAL_BYTES = 4 * KiB;
export const DEFAULT_TAIL_CACHE_BYTES = 16 * MiB;
/** How often the checkpoint (the synced prefix recovery may trust) is rewritten at most. */
export const DEFAULT_CHECKPOINT_INTERVAL_MS = 1000;
/**
 * An fdatasync that takes this long is logged (`storage.fsync_slow`): in `always` mode every
 * confirm and every delivery of the log waits for it, so a disk that stalls shows as a pause in
 * the broker, and this says where it came from.
 */
export const FSYNC_SLOW_MS = 500;
/** Reads return at most this many bytes per call unless asked for less. */
export const READ_BYTES_MAX = 8 * MiB;
/**
 * Bytes of appends accepted but not yet written, per log. Past it appends fail with BROKER_BUSY
 * (retryable) instead of queueing without bound when producers outpace the disk.
 */
export const APPEND_QUEUE_BYTES_MAX = 64 * MiB;
/** How often the log checks its retention policy on its own. */
export const DEFAULT_RETENTION_CHECK_INTERVAL_MS = 30_000;
/** Smallest index interval accepted: below a batch header's size every batch is indexed anyway. */
export const INDEX_INTERVAL_BYTES_MIN = 64;
