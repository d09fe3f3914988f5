/**
 * Reading records of a Log back by offset, for the delay store: the records at a scattered set of
 * offsets (one read per dense run), and every record from an offset to the end.
 */
import type { PartitionLog } from '../../storage/types.js';
import type { LogRecord } from '../../storage/types.js';

/** A read run may span this many records plus RUN_SPAN_PER_ENTRY per wanted one: dense enough to beat single reads. */
const RUN_SPAN_SLACK = 32;
const RUN_SPAN_PER_ENTRY = 4;
/** Reads of one call in flight together. */
const READS_IN_FLIGHT_MAX = 8;
/** Records per read when scanning. */
const SCAN_READ_RECORDS = 1024;

/**
 * The records at `offsets` that the log holds (others are left out: below its start, past its
 * end). Records are copies: a read buffer holds whole stored batches, which must not stay alive.
 */
export async function readRecordsAt(log: PartitionLog, offsets: readonly number[]): Promise<Map<number, LogRecord>> {
  const sorted = [...offsets].sort((a, b) => a - b);
  const wanted = new Set(sorted);
  const found = new Map<number, LogRecord>();
  const runs: Array<[first: number, last: number]> = [];
  let start = 0;
  while (start < sorted.length) {
    let end = start;
    while (end + 1 < sorted.length && sorted[end + 1]! - sorted[start]! <= RUN_SPAN_SLACK + RUN_SPAN_PER_ENTRY * (end + 2 - start)) end++;
    runs.push([sorted[start]!, sorted[end]!]);
    start = end + 1;
  }
  const readRun = async ([first, last]: [number, number]): Promise<void> => {
    for (let from = Math.max(first, log.startOffset); from <= last && from < log.nextOffset; ) {
      const records = await log.read(from, { recordsMax: last - from + 1, uncommitted: true });
      if (records.length === 0) break;
      for (const record of records) {
        if (wanted.has(record.offset)) found.set(record.offset, { ...record, value: Buffer.from(record.value), key: record.key === null ? null : Buffer.from(record.key) });
      }
      from = records[records.length - 1]!.offset + 1;
    }
  };
  for (let index = 0; index < runs.length; index += READS_IN_FLIGHT_MAX) {
    await Promise.all(runs.slice(index, index + READS_IN_FLIGHT_MAX).map(readRun));
  }
  return found;
}

/** Calls `visit` for every record of `log` from `from` to its end. */
export async function scanLog(log: PartitionLog, from: number, visit: (record: LogRecord) => void): Promise<void> {
  for (let offset = Math.max(from, log.startOffset); offset < log.nextOffset; ) {
    const records = await log.read(offset, { recordsMax: SCAN_READ_RECORDS, uncommitted: true });
    if (records.length === 0) break;
    for (const record of records) visit(record);
    offset = records[records.length - 1]!.offset + 1;
  }
}
