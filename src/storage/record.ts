/**
 * What a record is: the shapes a producer appends, the batch format encodes and a read returns.
 * The bottom of the storage engine (types.ts re-exports them as part of its contract).
 */

/** A header: a name/value pair, both UTF-8 text. */
export type Header = readonly [name: string, value: string];

/** What a producer hands to the log. */
export interface RecordInput {
  key?: Buffer | null;
  headers?: readonly Header[];
  value: Buffer;
  /** Defaults to clock.nowMs() at append. */
  timestampMs?: number;
}

/** A record read back from the log. `value` and `key` may be slices of a larger read buffer. */
export interface LogRecord {
  offset: number;
  timestampMs: number;
  key: Buffer | null;
  headers: readonly Header[];
  value: Buffer;
  /** Leader epoch of the batch the record was written in. */
  leaderEpoch: number;
}
