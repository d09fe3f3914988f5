/**
 * The end of a cluster chaos run: every broker stopped, each replica's partitions read from its
 * data directory with the storage layer's own reader (src/storage/log.ts), and compared record by
 * record below the high watermark the leader reported before the stop. Every replica must hold
 * every committed record, and the same one: same offset, same value, key, headers and leader epoch.
 *
 * What the replicas agree on is also returned by position, so the checker can hold the reads of
 * the run against it (an offset that held one message in a read and another on disk).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SystemClock } from '../../src/platform/clock.js';
import { NodeFileSystem } from '../../src/platform/fs.js';
import { Log } from '../../src/storage/log.js';
import type { LogRecord } from '../../src/storage/record.js';
import { decodeValue } from './history.js';

/** Records read at a time. */
const READ_RECORDS_MAX = 1_000;
const EXAMPLES_MAX = 5;

export interface ReplicaComparison {
  replicas: string[];
  partitions: number;
  /** Offsets below the high watermark compared on every replica. */
  recordsCompared: number;
  /** Positions below the high watermark where the replicas hold different records. */
  differing: number;
  /** Positions below the high watermark some replica does not hold (its log ends or starts past them). */
  missing: number;
  /** Replicas whose log could not be opened or read to the end (e.g. a checksum failure). */
  unreadable: string[];
  examples: unknown[];
  /** "part:off" → "p:s:a" (or a digest, for a value that is no chaos message): what every replica holds. */
  agreed: Map<string, string>;
}

interface ReplicaLog {
  startOffset: number;
  records: Map<number, string>;
}

/** `dataDirs`: node id → data directory of a stopped broker. */
export async function compareReplicas(dataDirs: Record<string, string>, topic: string, highWatermarks: readonly number[]): Promise<ReplicaComparison> {
  const replicas = Object.keys(dataDirs).sort();
  const result: ReplicaComparison = { replicas, partitions: highWatermarks.length, recordsCompared: 0, differing: 0, missing: 0, unreadable: [], examples: [], agreed: new Map() };
  const example = (value: unknown): void => {
    if (result.examples.length < EXAMPLES_MAX) result.examples.push(value);
  };
  for (const [part, highWatermark] of highWatermarks.entries()) {
    const logs = new Map<string, ReplicaLog>();
    for (const nodeId of replicas) {
      try {
        logs.set(nodeId, await readPartition(join(dataDirs[nodeId]!, 'topics', topic, 'partitions', String(part))));
      } catch (error) {
        result.unreadable.push(`${nodeId} partition ${part}: ${(error as Error).message.split('\n')[0]}`);
      }
    }
    const start = Math.max(0, ...[...logs.values()].map((log) => log.startOffset));
    for (let offset = start; offset < highWatermark; offset++) {
      result.recordsCompared++;
      const held = new Map<string, string>();
      for (const [nodeId, log] of logs) {
        const record = log.records.get(offset);
        if (record === undefined) {
          result.missing++;
          example({ part, offset, missingOn: nodeId });
        } else {
          held.set(nodeId, record);
        }
      }
      const distinct = new Set(held.values());
      if (distinct.size > 1) {
        result.differing++;
        example({ part, offset, held: Object.fromEntries(held) });
      } else if (distinct.size === 1 && held.size === logs.size) {
        result.agreed.set(`${part}:${offset}`, identityOf([...distinct][0]!));
      }
    }
  }
  return result;
}

/** Every record of one replica's partition, as offset → "identity|digest". */
async function readPartition(dir: string): Promise<ReplicaLog> {
  const log = await Log.open({ dir, fs: new NodeFileSystem(), clock: new SystemClock(), durability: 'always' });
  try {
    const records = new Map<number, string>();
    for (let offset = log.startOffset; ; ) {
      const batch = await log.read(offset, { recordsMax: READ_RECORDS_MAX, uncommitted: true });
      if (batch.length === 0) break;
      for (const record of batch) records.set(record.offset, describe(record));
      offset = batch[batch.length - 1]!.offset + 1;
    }
    return { startOffset: log.startOffset, records };
  } finally {
    await log.close();
  }
}

/** What a record is: the chaos message it carries, and a digest of everything in it. */
function describe(record: LogRecord): string {
  const hash = createHash('sha256');
  hash.update(record.value);
  hash.update(record.key ?? Buffer.alloc(0));
  for (const header of record.headers) hash.update(JSON.stringify(header));
  const decoded = decodeValue(record.value);
  const identity = typeof decoded === 'string' ? 'not-a-message' : `${decoded.p}:${decoded.s}:${decoded.a}`;
  return `${identity}|e${record.leaderEpoch}|${hash.digest('hex').slice(0, 16)}`;
}

function identityOf(description: string): string {
  return description.slice(0, description.indexOf('|'));
}
