/**
 * CLUSTER_CHANGE: an operator's change of where replicas live (docs/CLUSTERING.md, "Moving
 * replicas"): move one replica of a topic to another broker, or move every replica off a broker
 * (drain). Any broker of the cluster takes it; the answer says what was started.
 */
import { FRAME_TYPES } from './frame.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

/** Operations of a CLUSTER_CHANGE (u8 on the wire). */
export const CLUSTER_CHANGE_OPS = { reassign: 1, drain: 2 } as const;

export type ClusterChangeRequest = { op: 'reassign'; topic: string; replace: string; with: string } | { op: 'drain'; node: string };

export interface ReplicaMove {
  topic: string;
  from: string;
  to: string;
}

export interface ClusterChangeResult {
  /** Moves started (a reassign starts one). */
  moves: ReplicaMove[];
  /** Topics that could not move, and why (drain only). */
  refused: Array<{ topic: string; reason: string }>;
}

/** CLUSTER_CHANGE payload: op u8, then reassign: topic str16, replace str16, with str16; drain: node str16; tagged. */
export function encodeClusterChange(w: FrameWriter, requestId: number, request: ClusterChangeRequest): void {
  w.beginFrame(FRAME_TYPES.CLUSTER_CHANGE, requestId);
  if (request.op === 'reassign') {
    w.u8(CLUSTER_CHANGE_OPS.reassign);
    w.string16(request.topic);
    w.string16(request.replace);
    w.string16(request.with);
  } else {
    w.u8(CLUSTER_CHANGE_OPS.drain);
    w.string16(request.node);
  }
  w.u8(0);
  w.endFrame();
}

export function decodeClusterChange(r: PayloadReader): ClusterChangeRequest {
  const op = r.u8();
  let request: ClusterChangeRequest;
  if (op === CLUSTER_CHANGE_OPS.reassign) request = { op: 'reassign', topic: r.string16(), replace: r.string16(), with: r.string16() };
  else if (op === CLUSTER_CHANGE_OPS.drain) request = { op: 'drain', node: r.string16() };
  else throw malformed(`unknown CLUSTER_CHANGE operation ${op}`);
  r.skipTagged();
  r.done();
  return request;
}

/** CLUSTER_CHANGE_OK payload: moves u32 × (topic, from, to: str16), refused u32 × (topic, reason: str16), tagged. */
export function encodeClusterChangeOk(w: FrameWriter, requestId: number, result: ClusterChangeResult): void {
  w.beginFrame(FRAME_TYPES.CLUSTER_CHANGE_OK, requestId);
  w.u32(result.moves.length);
  for (const move of result.moves) {
    w.string16(move.topic);
    w.string16(move.from);
    w.string16(move.to);
  }
  w.u32(result.refused.length);
  for (const refusal of result.refused) {
    w.string16(refusal.topic);
    w.string16(refusal.reason);
  }
  w.u8(0);
  w.endFrame();
}

export function decodeClusterChangeOk(r: PayloadReader): ClusterChangeResult {
  const moves: ReplicaMove[] = [];
  const movesCount = counted(r, 3 * STRING16_BYTES_MIN);
  for (let i = 0; i < movesCount; i++) moves.push({ topic: r.string16(), from: r.string16(), to: r.string16() });
  const refused: ClusterChangeResult['refused'] = [];
  const refusedCount = counted(r, 2 * STRING16_BYTES_MIN);
  for (let i = 0; i < refusedCount; i++) refused.push({ topic: r.string16(), reason: r.string16() });
  r.skipTagged();
  r.done();
  return { moves, refused };
}

/** Bytes of the smallest string16 (its length, empty). */
const STRING16_BYTES_MIN = 2;

/** A u32 count of entries of at least `entryBytesMin` bytes each, checked against what is left. */
function counted(r: PayloadReader, entryBytesMin: number): number {
  const n = r.u32();
  if (n * entryBytesMin > r.remaining) throw malformed(`${n} entries cannot fit in ${r.remaining} bytes`);
  return n;
}
