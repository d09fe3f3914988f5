/**
 * TOPIC_INFO's replication state (topic tag 2, cluster mode): one JSON entry per partition,
 * `{ partition, leader, epoch, replicas, inSync, highWatermark, replicaOffsets: [{ nodeId,
 * endOffset, lag }] }`. JSON keeps the field open to additions without a new layout; what is read
 * is checked field by field, so a bad value is MALFORMED_FRAME, never a wrong number.
 */
import type { WirePartitionInfo, WirePartitionReplication, WireReplicaOffset } from './messages.js';
import { malformed } from './reader.js';

/** Entries in one topic's replication state: one per partition, bounded like the partitions. */
const ENTRIES_MAX = 65_536;
/** Replicas of one partition: far above any cluster. */
const REPLICAS_MAX = 1_024;

/** The JSON of the partitions that carry replication fields, or null when none does (a single broker). */
export function clusterJson(partitions: readonly WirePartitionInfo[]): string | null {
  const entries: Array<WirePartitionReplication & { partition: number }> = [];
  for (const p of partitions) {
    if (p.leader === undefined) continue;
    entries.push({
      partition: p.partition,
      leader: p.leader,
      epoch: p.epoch ?? 0,
      replicas: p.replicas ?? [],
      inSync: p.inSync ?? [],
      highWatermark: p.highWatermark ?? 0,
      replicaOffsets: p.replicaOffsets ?? [],
    });
  }
  return entries.length === 0 ? null : JSON.stringify(entries);
}

/** Adds the replication fields of `json` to the partitions they name; entries for other partitions are ignored. */
export function applyClusterJson(json: string, partitions: WirePartitionInfo[]): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw malformed('TOPIC_INFO cluster state is not JSON');
  }
  if (!Array.isArray(parsed)) throw malformed('TOPIC_INFO cluster state is not a list');
  if (parsed.length > ENTRIES_MAX) throw malformed(`${parsed.length} cluster entries exceed ${ENTRIES_MAX}`);
  const byPartition = new Map<number, WirePartitionInfo>();
  for (const p of partitions) byPartition.set(p.partition, p);
  for (const entry of parsed) {
    const record = object(entry, 'cluster entry');
    const partition = byPartition.get(count(record['partition'], 'partition'));
    if (partition === undefined) continue;
    Object.assign(partition, replication(record));
  }
}

function replication(record: Record<string, unknown>): WirePartitionReplication {
  const leader = record['leader'];
  if (leader !== null && typeof leader !== 'string') throw malformed('cluster entry: leader is not a node id');
  return {
    leader: leader ?? '',
    epoch: count(record['epoch'], 'epoch'),
    replicas: nodeIds(record['replicas'], 'replicas'),
    inSync: nodeIds(record['inSync'], 'inSync'),
    highWatermark: count(record['highWatermark'], 'highWatermark'),
    replicaOffsets: list(record['replicaOffsets'] ?? [], 'replicaOffsets').map(replicaOffset),
  };
}

function replicaOffset(entry: unknown): WireReplicaOffset {
  const record = object(entry, 'replica offset');
  const nodeId = record['nodeId'];
  if (typeof nodeId !== 'string') throw malformed('replica offset: nodeId is not a string');
  return { nodeId, endOffset: count(record['endOffset'], 'endOffset'), lag: count(record['lag'], 'lag') };
}

function object(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${what} is not an object`);
  return value as Record<string, unknown>;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw malformed(`cluster entry: ${what} is not a list`);
  if (value.length > REPLICAS_MAX) throw malformed(`cluster entry: ${value.length} ${what} exceed ${REPLICAS_MAX}`);
  return value;
}

function nodeIds(value: unknown, what: string): string[] {
  const ids = list(value ?? [], what);
  for (const id of ids) if (typeof id !== 'string') throw malformed(`cluster entry: ${what} holds a non-string node id`);
  return ids as string[];
}

function count(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) throw malformed(`cluster entry: ${what} is not a non-negative integer`);
  return value as number;
}
