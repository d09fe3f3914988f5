/**
 * Queue-group administration and dead letters: LIST_GROUPS, DESCRIBE_GROUP, RESET_GROUP and
 * REDRIVE, with the replies GROUP_LIST, GROUP_INFO and REDRIVE_OK. Layouts are in docs/PROTOCOL.md.
 */
import { FRAME_TYPES } from './frame.js';
import type { GroupRequest, RedriveOk, RedriveRequest, ResetGroupRequest, WireGroupInfo, WireGroupPartitionInfo } from './messages.js';
import { readStartPosition, writeStartPosition } from './codec-subscribe.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

const REDRIVE_TAG = { limit: 1, fromOffset: 2, toOffset: 3, header: 4 } as const;
/** Groups listed per topic and partitions per group: far above any sane topic, small enough to bound a reply. */
const GROUPS_MAX = 65_536;
const PARTITIONS_MAX = 65_536;
/** Backoff steps in one group's configuration (the broker allows far fewer). */
const BACKOFF_STEPS_MAX = 1024;

/** LIST_GROUPS payload: topic str16, tagged. */
export function encodeListGroups(w: FrameWriter, requestId: number, topic: string): void {
  w.beginFrame(FRAME_TYPES.LIST_GROUPS, requestId);
  w.string16(topic);
  w.u8(0);
  w.endFrame();
}

export function decodeListGroups(r: PayloadReader): string {
  const topic = r.string16();
  r.skipTagged();
  r.done();
  return topic;
}

/** DESCRIBE_GROUP payload: topic str16, group str16, tagged. */
export function encodeDescribeGroup(w: FrameWriter, requestId: number, request: GroupRequest): void {
  w.beginFrame(FRAME_TYPES.DESCRIBE_GROUP, requestId);
  w.string16(request.topic);
  w.string16(request.group);
  w.u8(0);
  w.endFrame();
}

export function decodeDescribeGroup(r: PayloadReader): GroupRequest {
  const request = { topic: r.string16(), group: r.string16() };
  r.skipTagged();
  r.done();
  return request;
}

/** RESET_GROUP payload: topic str16, group str16, startKind u8, [position u64], tagged. */
export function encodeResetGroup(w: FrameWriter, requestId: number, request: ResetGroupRequest): void {
  w.beginFrame(FRAME_TYPES.RESET_GROUP, requestId);
  w.string16(request.topic);
  w.string16(request.group);
  writeStartPosition(w, request.to);
  w.u8(0);
  w.endFrame();
}

export function decodeResetGroup(r: PayloadReader): ResetGroupRequest {
  const topic = r.string16();
  const group = r.string16();
  const to = readStartPosition(r);
  r.skipTagged();
  r.done();
  return { topic, group, to };
}

/** REDRIVE payload: dead-letter topic str16, tagged (1 limit u64, 2 fromOffset u64, 3 toOffset u64, 4 header). */
export function encodeRedrive(w: FrameWriter, requestId: number, request: RedriveRequest): void {
  w.beginFrame(FRAME_TYPES.REDRIVE, requestId);
  w.string16(request.topic);
  const tagged = w.taggedBegin();
  let count = 0;
  if (request.limit !== undefined) (w.tagU64(REDRIVE_TAG.limit, request.limit), count++);
  if (request.fromOffset !== undefined) (w.tagU64(REDRIVE_TAG.fromOffset, request.fromOffset), count++);
  if (request.toOffset !== undefined) (w.tagU64(REDRIVE_TAG.toOffset, request.toOffset), count++);
  if (request.header !== undefined) {
    const at = w.tagBegin(REDRIVE_TAG.header);
    w.string16(request.header[0]);
    w.string32(request.header[1]);
    w.tagEnd(at);
    count++;
  }
  w.taggedEnd(tagged, count);
  w.endFrame();
}

function visitRedrive(tag: number, r: PayloadReader, request: RedriveRequest): void {
  switch (tag) {
    case REDRIVE_TAG.limit:
      request.limit = r.u64();
      break;
    case REDRIVE_TAG.fromOffset:
      request.fromOffset = r.u64();
      break;
    case REDRIVE_TAG.toOffset:
      request.toOffset = r.u64();
      break;
    case REDRIVE_TAG.header:
      request.header = [r.string16(), r.string32()];
      break;
    default:
      // A filter from a newer peer: skipped.
      break;
  }
}

export function decodeRedrive(r: PayloadReader): RedriveRequest {
  const request: RedriveRequest = { topic: r.string16() };
  r.tagged(visitRedrive, request);
  r.done();
  return request;
}

/** REDRIVE_OK payload: moved u64, tagged. */
export function encodeRedriveOk(w: FrameWriter, requestId: number, ok: RedriveOk): void {
  w.beginFrame(FRAME_TYPES.REDRIVE_OK, requestId);
  w.u64(ok.moved);
  w.u8(0);
  w.endFrame();
}

export function decodeRedriveOk(r: PayloadReader): RedriveOk {
  const ok = { moved: r.u64() };
  r.skipTagged();
  r.done();
  return ok;
}

function writeGroupInfo(w: FrameWriter, info: WireGroupInfo): void {
  const { config } = info;
  w.string16(info.topic);
  w.string16(info.name);
  w.u32(config.ackTimeoutMs);
  w.u32(config.deliveriesMax);
  w.string16(config.deadLetterTopic);
  w.u32(config.backoffMs.length);
  for (const delayMs of config.backoffMs) w.u64(delayMs);
  w.u32(info.subscribers);
  w.u64(info.inFlight);
  w.u64(info.pendingRedelivery);
  w.u64(info.pending);
  w.u64(info.redeliveredTotal);
  w.u64(info.deadLetteredTotal);
  w.u64(Math.max(0, Math.round(info.oldestUnackedAgeMs)));
  w.u32(info.partitions.length);
  for (const p of info.partitions) {
    w.u32(p.partition);
    w.u64(p.ackFloor);
    w.u64(p.lag);
  }
  w.u8(0);
}

function readGroupInfo(r: PayloadReader): WireGroupInfo {
  const topic = r.string16();
  const name = r.string16();
  const ackTimeoutMs = r.u32();
  const deliveriesMax = r.u32();
  const deadLetterTopic = r.string16();
  const steps = r.u32();
  if (steps > BACKOFF_STEPS_MAX) throw malformed(`${steps} backoff steps`);
  const backoffMs: number[] = [];
  for (let i = 0; i < steps; i++) backoffMs.push(r.u64());
  const subscribers = r.u32();
  const inFlight = r.u64();
  const pendingRedelivery = r.u64();
  const pending = r.u64();
  const redeliveredTotal = r.u64();
  const deadLetteredTotal = r.u64();
  const oldestUnackedAgeMs = r.u64();
  const count = r.u32();
  if (count > PARTITIONS_MAX) throw malformed(`${count} partitions`);
  const partitions: WireGroupPartitionInfo[] = [];
  for (let i = 0; i < count; i++) partitions.push({ partition: r.u32(), ackFloor: r.u64(), lag: r.u64() });
  r.skipTagged();
  return {
    topic,
    name,
    config: { ackTimeoutMs, backoffMs, deliveriesMax, deadLetterTopic },
    subscribers,
    inFlight,
    pendingRedelivery,
    pending,
    redeliveredTotal,
    deadLetteredTotal,
    oldestUnackedAgeMs,
    partitions,
  };
}

export function encodeGroupInfo(w: FrameWriter, requestId: number, info: WireGroupInfo): void {
  w.beginFrame(FRAME_TYPES.GROUP_INFO, requestId);
  writeGroupInfo(w, info);
  w.endFrame();
}

export function decodeGroupInfo(r: PayloadReader): WireGroupInfo {
  const info = readGroupInfo(r);
  r.done();
  return info;
}

/** GROUP_LIST payload: count u32, group info × count, tagged. */
export function encodeGroupList(w: FrameWriter, requestId: number, groups: readonly WireGroupInfo[]): void {
  w.beginFrame(FRAME_TYPES.GROUP_LIST, requestId);
  w.u32(groups.length);
  for (const info of groups) writeGroupInfo(w, info);
  w.u8(0);
  w.endFrame();
}

export function decodeGroupList(r: PayloadReader): WireGroupInfo[] {
  const count = r.u32();
  if (count > GROUPS_MAX) throw malformed(`${count} groups`);
  const groups: WireGroupInfo[] = [];
  for (let i = 0; i < count; i++) groups.push(readGroupInfo(r));
  r.skipTagged();
  r.done();
  return groups;
}
