/**
 * Frames of replica digests (docs/CLUSTERING.md, "Replica digests"; docs/PROTOCOL.md has the
 * bytes): a leader asks a replica for the digests of ranges of its logs (REPLICA_DIGEST), tells a
 * damaged or differing replica to fetch a range again (REPLICA_REPAIR), and an operator asks a
 * topic's leader to compare every replica with its own log (TOPIC_VERIFY).
 */
import { FRAME_TYPES } from './frame.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

/** Bytes of one digest on the wire (SHA-256 cut to 128 bits; storage/log-digest.ts). */
export const WIRE_DIGEST_BYTES = 16;

export interface DigestLogRequest {
  logId: string;
  fromOffset: number;
  toOffset: number;
  /** Offsets per range: the request is cut at multiples of it. */
  spanRecords: number;
}

export interface ReplicaDigestRequest {
  topic: string;
  /** Who asks (the leader). */
  replicaId: string;
  epoch: number;
  logs: DigestLogRequest[];
}

export interface WireRangeDigest {
  fromOffset: number;
  toOffset: number;
  digest: Buffer;
}

export interface DigestLogResponse {
  logId: string;
  /** The replica holds this log. */
  present: boolean;
  startOffset: number;
  /** One past the replica's last written offset. */
  endOffset: number;
  /** The part of the request the digests cover: the request cut to the replica's start and end. */
  fromOffset: number;
  toOffset: number;
  ranges: WireRangeDigest[];
  /** Damage the replica met while hashing (a CRC that failed): its offsets, both inclusive. */
  damage: { fromOffset: number; toOffset: number } | null;
}

export interface ReplicaDigestResponse {
  logs: DigestLogResponse[];
}

export interface ReplicaRepairRequest {
  topic: string;
  /** The leader that asks. */
  replicaId: string;
  epoch: number;
  /** Each log is cut back to `fromOffset` and fetched again from there. */
  logs: Array<{ logId: string; fromOffset: number }>;
}

export const LOG_VERDICTS = ['ok', 'mismatch', 'damaged', 'missing'] as const;
export type LogVerdictStatus = (typeof LOG_VERDICTS)[number];
export const REPLICA_VERDICTS = ['ok', 'mismatch', 'unreachable'] as const;
export type ReplicaVerdictStatus = (typeof REPLICA_VERDICTS)[number];

export interface LogVerification {
  logId: string;
  status: LogVerdictStatus;
  /** The range compared: `[fromOffset, toOffset)`, below the high watermark. */
  fromOffset: number;
  toOffset: number;
  /** The first range that differs, `[fromOffset, toOffset)`; absent when equal. */
  firstDifference?: { fromOffset: number; toOffset: number };
  /** Digest requests it took. */
  roundTrips: number;
}

export interface ReplicaVerification {
  nodeId: string;
  status: ReplicaVerdictStatus;
  /** Why the replica could not be compared. */
  error?: string;
  logs: LogVerification[];
}

export interface TopicVerification {
  topic: string;
  leader: string;
  epoch: number;
  /** Every replica equals the leader below the high watermark. */
  ok: boolean;
  replicas: ReplicaVerification[];
}

/** Logs, ranges or replicas in one frame at most. */
const ENTRIES_MAX = 65_536;

function count(r: PayloadReader, what: string): number {
  const n = r.u32();
  if (n > ENTRIES_MAX) throw malformed(`${n} ${what} exceed ${ENTRIES_MAX}`);
  return n;
}

/** REPLICA_DIGEST payload: topic str16, replicaId str16, epoch u32, logs u32 × (logId str16, from u64, to u64, span u64), tagged. */
export function encodeReplicaDigest(w: FrameWriter, requestId: number, request: ReplicaDigestRequest): void {
  w.beginFrame(FRAME_TYPES.REPLICA_DIGEST, requestId);
  w.string16(request.topic);
  w.string16(request.replicaId);
  w.u32(request.epoch);
  w.u32(request.logs.length);
  for (const log of request.logs) {
    w.string16(log.logId);
    w.u64(log.fromOffset);
    w.u64(log.toOffset);
    w.u64(log.spanRecords);
  }
  w.u8(0);
  w.endFrame();
}

export function decodeReplicaDigest(r: PayloadReader): ReplicaDigestRequest {
  const topic = r.string16();
  const replicaId = r.string16();
  const epoch = r.u32();
  const logs: DigestLogRequest[] = [];
  for (let i = count(r, 'logs'); i > 0; i--) logs.push({ logId: r.string16(), fromOffset: r.u64(), toOffset: r.u64(), spanRecords: r.u64() });
  r.skipTagged();
  r.done();
  return { topic, replicaId, epoch, logs };
}

/**
 * REPLICA_DIGEST_OK payload: logs u32 × (logId str16, present u8, start u64, end u64, from u64, to u64,
 * ranges u32 × (from u64, to u64, digest[16]), damaged u8 [, damageFrom u64, damageTo u64]), tagged.
 */
export function encodeReplicaDigestOk(w: FrameWriter, requestId: number, response: ReplicaDigestResponse): void {
  w.beginFrame(FRAME_TYPES.REPLICA_DIGEST_OK, requestId);
  w.u32(response.logs.length);
  for (const log of response.logs) {
    w.string16(log.logId);
    w.u8(log.present ? 1 : 0);
    w.u64(log.startOffset);
    w.u64(log.endOffset);
    w.u64(log.fromOffset);
    w.u64(log.toOffset);
    w.u32(log.ranges.length);
    for (const range of log.ranges) {
      w.u64(range.fromOffset);
      w.u64(range.toOffset);
      w.raw(range.digest.subarray(0, WIRE_DIGEST_BYTES));
    }
    w.u8(log.damage === null ? 0 : 1);
    if (log.damage !== null) {
      w.u64(log.damage.fromOffset);
      w.u64(log.damage.toOffset);
    }
  }
  w.u8(0);
  w.endFrame();
}

function readDigest(r: PayloadReader): Buffer {
  const out = Buffer.allocUnsafe(WIRE_DIGEST_BYTES);
  for (let i = 0; i < WIRE_DIGEST_BYTES; i++) out[i] = r.u8();
  return out;
}

export function decodeReplicaDigestOk(r: PayloadReader): ReplicaDigestResponse {
  const logs: DigestLogResponse[] = [];
  for (let i = count(r, 'logs'); i > 0; i--) {
    const logId = r.string16();
    const present = r.u8() === 1;
    const startOffset = r.u64();
    const endOffset = r.u64();
    const fromOffset = r.u64();
    const toOffset = r.u64();
    const ranges: WireRangeDigest[] = [];
    for (let j = count(r, 'ranges'); j > 0; j--) ranges.push({ fromOffset: r.u64(), toOffset: r.u64(), digest: readDigest(r) });
    const damage = r.u8() === 1 ? { fromOffset: r.u64(), toOffset: r.u64() } : null;
    logs.push({ logId, present, startOffset, endOffset, fromOffset, toOffset, ranges, damage });
  }
  r.skipTagged();
  r.done();
  return { logs };
}

/** REPLICA_REPAIR payload: topic str16, replicaId str16, epoch u32, logs u32 × (logId str16, fromOffset u64), tagged. Answered with OK. */
export function encodeReplicaRepair(w: FrameWriter, requestId: number, request: ReplicaRepairRequest): void {
  w.beginFrame(FRAME_TYPES.REPLICA_REPAIR, requestId);
  w.string16(request.topic);
  w.string16(request.replicaId);
  w.u32(request.epoch);
  w.u32(request.logs.length);
  for (const log of request.logs) {
    w.string16(log.logId);
    w.u64(log.fromOffset);
  }
  w.u8(0);
  w.endFrame();
}

export function decodeReplicaRepair(r: PayloadReader): ReplicaRepairRequest {
  const topic = r.string16();
  const replicaId = r.string16();
  const epoch = r.u32();
  const logs: ReplicaRepairRequest['logs'] = [];
  for (let i = count(r, 'logs'); i > 0; i--) logs.push({ logId: r.string16(), fromOffset: r.u64() });
  r.skipTagged();
  r.done();
  return { topic, replicaId, epoch, logs };
}

/** TOPIC_VERIFY payload: topic str16, tagged. */
export function encodeTopicVerify(w: FrameWriter, requestId: number, topic: string): void {
  w.beginFrame(FRAME_TYPES.TOPIC_VERIFY, requestId);
  w.string16(topic);
  w.u8(0);
  w.endFrame();
}

export function decodeTopicVerify(r: PayloadReader): { topic: string } {
  const topic = r.string16();
  r.skipTagged();
  r.done();
  return { topic };
}

/**
 * TOPIC_VERIFY_OK payload: topic str16, leader str16, epoch u32, replicas u32 × (nodeId str16,
 * status u8, error str16, logs u32 × (logId str16, status u8, from u64, to u64, hasDifference u8
 * [, diffFrom u64, diffTo u64], roundTrips u32)), tagged. Status numbers are the index in
 * REPLICA_VERDICTS and LOG_VERDICTS.
 */
export function encodeTopicVerifyOk(w: FrameWriter, requestId: number, result: TopicVerification): void {
  w.beginFrame(FRAME_TYPES.TOPIC_VERIFY_OK, requestId);
  w.string16(result.topic);
  w.string16(result.leader);
  w.u32(result.epoch);
  w.u32(result.replicas.length);
  for (const replica of result.replicas) {
    w.string16(replica.nodeId);
    w.u8(REPLICA_VERDICTS.indexOf(replica.status));
    w.string16(replica.error ?? '');
    w.u32(replica.logs.length);
    for (const log of replica.logs) {
      w.string16(log.logId);
      w.u8(LOG_VERDICTS.indexOf(log.status));
      w.u64(log.fromOffset);
      w.u64(log.toOffset);
      w.u8(log.firstDifference === undefined ? 0 : 1);
      if (log.firstDifference !== undefined) {
        w.u64(log.firstDifference.fromOffset);
        w.u64(log.firstDifference.toOffset);
      }
      w.u32(log.roundTrips);
    }
  }
  w.u8(0);
  w.endFrame();
}

function verdict<T extends string>(names: readonly T[], value: number, what: string): T {
  const name = names[value];
  if (name === undefined) throw malformed(`unknown ${what} status ${value}`);
  return name;
}

function decodeLogVerification(r: PayloadReader): LogVerification {
  const logId = r.string16();
  const status = verdict(LOG_VERDICTS, r.u8(), 'log');
  const fromOffset = r.u64();
  const toOffset = r.u64();
  const firstDifference = r.u8() === 1 ? { fromOffset: r.u64(), toOffset: r.u64() } : undefined;
  const roundTrips = r.u32();
  return { logId, status, fromOffset, toOffset, ...(firstDifference === undefined ? {} : { firstDifference }), roundTrips };
}

export function decodeTopicVerifyOk(r: PayloadReader): TopicVerification {
  const topic = r.string16();
  const leader = r.string16();
  const epoch = r.u32();
  const replicas: ReplicaVerification[] = [];
  for (let i = count(r, 'replicas'); i > 0; i--) {
    const nodeId = r.string16();
    const status = verdict(REPLICA_VERDICTS, r.u8(), 'replica');
    const error = r.string16();
    const logs: LogVerification[] = [];
    for (let j = count(r, 'logs'); j > 0; j--) logs.push(decodeLogVerification(r));
    replicas.push({ nodeId, status, ...(error === '' ? {} : { error }), logs });
  }
  r.skipTagged();
  r.done();
  return { topic, leader, epoch, ok: replicas.every((replica) => replica.status === 'ok'), replicas };
}
