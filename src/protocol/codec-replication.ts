/**
 * Replication frames between brokers (docs/CLUSTERING.md, docs/PROTOCOL.md "Replication"): a
 * follower fetches a topic's logs from the leader with REPLICA_FETCH (long-poll), tells it how far
 * its syncs reached with REPLICA_PROGRESS, and asks where its last epoch ends with EPOCH_END before
 * it fetches. A topic's logs are named by a log id: `p<N>` for partition N, `d` for the delay log,
 * `g/<group>` for a group's journal.
 */
import { FRAME_TYPES } from './frame.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

/** Logs named in one replication frame: partitions, groups and the delay log of one topic. */
export const REPLICA_LOGS_MAX = 65_536;

export interface FetchLogRequest {
  logId: string;
  /** The follower's next offset: where the leader's batches should start. */
  fetchOffset: number;
  /** One past the follower's last synced offset. */
  syncedEnd: number;
}

export interface ReplicaFetchRequest {
  topic: string;
  replicaId: string;
  /** The leader epoch the follower follows. */
  epoch: number;
  /** How long the leader may hold the request while it has nothing new. */
  maxWaitMs: number;
  /** About how many bytes of batches the answer may carry, over all logs. */
  bytesMax: number;
  logs: FetchLogRequest[];
}

export interface FetchLogResponse {
  logId: string;
  /** The leader's log start: a follower behind it starts over there. */
  logStartOffset: number;
  /** One past the last committed offset (what consumers may see). */
  highWatermark: number;
  /** The leader's next offset. */
  leaderEnd: number;
  /** Whole batches, back to back, from the fetch offset on (may be empty). */
  batches: Buffer[];
}

export interface ReplicaFetchResponse {
  epoch: number;
  /** Every log the leader holds for the topic, asked for or not (a follower creates the ones it lacks). */
  logs: FetchLogResponse[];
}

export interface EpochEndRequest {
  topic: string;
  replicaId: string;
  epoch: number;
  logs: Array<{ logId: string; lastEpoch: number }>;
}

export interface EpochEndResponse {
  logs: Array<{ logId: string; epoch: number; endOffset: number }>;
}

export interface ReplicaProgress {
  topic: string;
  replicaId: string;
  epoch: number;
  logs: Array<{ logId: string; fetchOffset: number; syncedEnd: number }>;
}

function count(r: PayloadReader, what: string): number {
  const n = r.u32();
  if (n > REPLICA_LOGS_MAX) throw malformed(`${n} ${what} exceed ${REPLICA_LOGS_MAX}`);
  return n;
}

/** Epochs travel as u32 with 0xffffffff for "none" (-1). */
const NO_EPOCH_WIRE = 0xffff_ffff;

function writeEpoch(w: FrameWriter, epoch: number): void {
  w.u32(epoch < 0 ? NO_EPOCH_WIRE : epoch);
}

function readEpoch(r: PayloadReader): number {
  const value = r.u32();
  return value === NO_EPOCH_WIRE ? -1 : value;
}

export function encodeReplicaFetch(w: FrameWriter, requestId: number, request: ReplicaFetchRequest): void {
  w.beginFrame(FRAME_TYPES.REPLICA_FETCH, requestId);
  w.string16(request.topic);
  w.string16(request.replicaId);
  writeEpoch(w, request.epoch);
  w.u32(request.maxWaitMs);
  w.u32(request.bytesMax);
  w.u32(request.logs.length);
  for (const log of request.logs) {
    w.string16(log.logId);
    w.u64(log.fetchOffset);
    w.u64(log.syncedEnd);
  }
  w.u8(0);
  w.endFrame();
}

export function decodeReplicaFetch(r: PayloadReader): ReplicaFetchRequest {
  const topic = r.string16();
  const replicaId = r.string16();
  const epoch = readEpoch(r);
  const maxWaitMs = r.u32();
  const bytesMax = r.u32();
  const logs: FetchLogRequest[] = [];
  for (let i = count(r, 'logs'); i > 0; i--) logs.push({ logId: r.string16(), fetchOffset: r.u64(), syncedEnd: r.u64() });
  r.skipTagged();
  r.done();
  return { topic, replicaId, epoch, maxWaitMs, bytesMax, logs };
}

export function encodeReplicaFetchOk(w: FrameWriter, requestId: number, response: ReplicaFetchResponse): void {
  w.beginFrame(FRAME_TYPES.REPLICA_FETCH_OK, requestId);
  writeEpoch(w, response.epoch);
  w.u32(response.logs.length);
  for (const log of response.logs) {
    w.string16(log.logId);
    w.u64(log.logStartOffset);
    w.u64(log.highWatermark);
    w.u64(log.leaderEnd);
    let bytes = 0;
    for (const batch of log.batches) bytes += batch.length;
    w.u32(bytes);
    for (const batch of log.batches) w.raw(batch);
  }
  w.u8(0);
  w.endFrame();
}

export function decodeReplicaFetchOk(r: PayloadReader): ReplicaFetchResponse {
  const epoch = readEpoch(r);
  const logs: FetchLogResponse[] = [];
  for (let i = count(r, 'logs'); i > 0; i--) {
    const logId = r.string16();
    const logStartOffset = r.u64();
    const highWatermark = r.u64();
    const leaderEnd = r.u64();
    // A view of the frame: the caller copies (or writes) it before the next frame is read.
    const bytes = r.bytes();
    logs.push({ logId, logStartOffset, highWatermark, leaderEnd, batches: bytes.length === 0 ? [] : [bytes] });
  }
  r.skipTagged();
  r.done();
  return { epoch, logs };
}

export function encodeEpochEnd(w: FrameWriter, requestId: number, request: EpochEndRequest): void {
  w.beginFrame(FRAME_TYPES.EPOCH_END, requestId);
  w.string16(request.topic);
  w.string16(request.replicaId);
  writeEpoch(w, request.epoch);
  w.u32(request.logs.length);
  for (const log of request.logs) {
    w.string16(log.logId);
    writeEpoch(w, log.lastEpoch);
  }
  w.u8(0);
  w.endFrame();
}

export function decodeEpochEnd(r: PayloadReader): EpochEndRequest {
  const topic = r.string16();
  const replicaId = r.string16();
  const epoch = readEpoch(r);
  const logs: EpochEndRequest['logs'] = [];
  for (let i = count(r, 'logs'); i > 0; i--) logs.push({ logId: r.string16(), lastEpoch: readEpoch(r) });
  r.skipTagged();
  r.done();
  return { topic, replicaId, epoch, logs };
}

export function encodeEpochEndOk(w: FrameWriter, requestId: number, response: EpochEndResponse): void {
  w.beginFrame(FRAME_TYPES.EPOCH_END_OK, requestId);
  w.u32(response.logs.length);
  for (const log of response.logs) {
    w.string16(log.logId);
    writeEpoch(w, log.epoch);
    w.u64(log.endOffset);
  }
  w.u8(0);
  w.endFrame();
}

export function decodeEpochEndOk(r: PayloadReader): EpochEndResponse {
  const logs: EpochEndResponse['logs'] = [];
  for (let i = count(r, 'logs'); i > 0; i--) logs.push({ logId: r.string16(), epoch: readEpoch(r), endOffset: r.u64() });
  r.skipTagged();
  r.done();
  return { logs };
}

/** REPLICA_PROGRESS has no reply: it is sent with request id 0. */
export function encodeReplicaProgress(w: FrameWriter, progress: ReplicaProgress): void {
  w.beginFrame(FRAME_TYPES.REPLICA_PROGRESS, 0);
  w.string16(progress.topic);
  w.string16(progress.replicaId);
  writeEpoch(w, progress.epoch);
  w.u32(progress.logs.length);
  for (const log of progress.logs) {
    w.string16(log.logId);
    w.u64(log.fetchOffset);
    w.u64(log.syncedEnd);
  }
  w.u8(0);
  w.endFrame();
}

export function decodeReplicaProgress(r: PayloadReader): ReplicaProgress {
  const topic = r.string16();
  const replicaId = r.string16();
  const epoch = readEpoch(r);
  const logs: ReplicaProgress['logs'] = [];
  for (let i = count(r, 'logs'); i > 0; i--) logs.push({ logId: r.string16(), fetchOffset: r.u64(), syncedEnd: r.u64() });
  r.skipTagged();
  r.done();
  return { topic, replicaId, epoch, logs };
}
