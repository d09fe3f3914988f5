/** Bounds the broker layer enforces, each with its reason. */

/** Topic and group names become directory names: keep them short and filesystem-safe. */
export const NAME_BYTES_MAX = 200;
export const NAME_PATTERN = /^[A-Za-z0-9._-]+$/;
/** Partitions per topic: each is a log with open files; more than this is a configuration mistake here. */
export const PARTITIONS_MAX = 1024;
/** Messages in one publish call; larger batches are split by the client. */
export const PUBLISH_MESSAGES_MAX = 100_000;
/** Credit a subscription may hold: bounds what one subscriber can have in flight. */
export const CREDIT_MAX = 1_000_000;
/** Records fetched from a partition log per read when feeding subscribers. */
export const DISPATCH_READ_RECORDS_MAX = 512;
/** Bytes fetched per read when feeding subscribers (at least one record is always returned). */
export const DISPATCH_READ_BYTES_MAX = 1024 * 1024;
/** Group-state journal records between two snapshots; bounds replay work after a crash. */
export const GROUP_JOURNAL_RECORDS_PER_SNAPSHOT = 20_000;
/** Journal segment size: small, so segments below a snapshot can be deleted soon. */
export const GROUP_JOURNAL_SEGMENT_BYTES = 4 * 1024 * 1024;
