/**
 * The events a queue group journals, and their encoding. One journal record holds every event of
 * one tick (acks, redelivery schedules, dead-letter intents...), so a burst of acks costs one
 * append and shares one group commit.
 *
 * Every event is idempotent when replayed over a snapshot that may already include it.
 * Layout of a record value: a sequence of events, each starting with a one-byte kind; numbers are
 * big-endian; offsets and times are u64 (written as two u32 halves).
 */
import assert from 'node:assert/strict';

export const GroupEventKind = {
  /** partition u32, offset u64: the message is settled (acked, or dead-lettered). */
  settle: 1,
  /** partition u32, endOffset u64: every offset below endOffset was delivered at least once. */
  dispatched: 2,
  /** partition u32, offset u64, deliveries u32, dueMs u64: redeliver no earlier than dueMs. */
  retry: 3,
  /** partition u32, offset u64, dlqOffsetHint u64, reasonLength u16, reason: moving to the dead-letter topic. */
  deadLetterIntent: 4,
  /** partition u32, floor u64: the group's position was reset; everything below floor is settled, nothing above. */
  reset: 5,
} as const;

export type GroupEvent =
  | { kind: typeof GroupEventKind.settle; partition: number; offset: number }
  | { kind: typeof GroupEventKind.dispatched; partition: number; endOffset: number }
  | { kind: typeof GroupEventKind.retry; partition: number; offset: number; deliveries: number; dueMs: number }
  | { kind: typeof GroupEventKind.deadLetterIntent; partition: number; offset: number; dlqOffsetHint: number; reason: string }
  | { kind: typeof GroupEventKind.reset; partition: number; floor: number };

/** Longest dead-letter reason kept; longer ones are cut (they are for people, not programs). */
export const REASON_BYTES_MAX = 1024;

const U32 = 0x1_0000_0000;

function eventBytes(event: GroupEvent): number {
  switch (event.kind) {
    case GroupEventKind.settle:
    case GroupEventKind.reset:
      return 1 + 4 + 8;
    case GroupEventKind.dispatched:
      return 1 + 4 + 8;
    case GroupEventKind.retry:
      return 1 + 4 + 8 + 4 + 8;
    case GroupEventKind.deadLetterIntent:
      return 1 + 4 + 8 + 8 + 2 + Buffer.byteLength(event.reason);
  }
}

function writeU64(buffer: Buffer, value: number, position: number): number {
  assert.ok(Number.isSafeInteger(value));
  assert.ok(value >= 0);
  buffer.writeUInt32BE(Math.floor(value / U32), position);
  buffer.writeUInt32BE(value % U32, position + 4);
  return position + 8;
}

function readU64(buffer: Buffer, position: number): number {
  return buffer.readUInt32BE(position) * U32 + buffer.readUInt32BE(position + 4);
}

export function truncateReason(reason: string): string {
  if (Buffer.byteLength(reason) <= REASON_BYTES_MAX) return reason;
  return Buffer.from(reason).subarray(0, REASON_BYTES_MAX).toString('utf8').replace(/\uFFFD$/, '');
}

export function encodeGroupEvents(events: readonly GroupEvent[]): Buffer {
  let size = 0;
  for (const event of events) size += eventBytes(event);
  const buffer = Buffer.allocUnsafe(size);
  let position = 0;
  for (const event of events) {
    buffer.writeUInt8(event.kind, position);
    buffer.writeUInt32BE(event.partition, position + 1);
    position += 5;
    switch (event.kind) {
      case GroupEventKind.settle:
        position = writeU64(buffer, event.offset, position);
        break;
      case GroupEventKind.reset:
        position = writeU64(buffer, event.floor, position);
        break;
      case GroupEventKind.dispatched:
        position = writeU64(buffer, event.endOffset, position);
        break;
      case GroupEventKind.retry:
        position = writeU64(buffer, event.offset, position);
        buffer.writeUInt32BE(event.deliveries, position);
        position = writeU64(buffer, event.dueMs, position + 4);
        break;
      case GroupEventKind.deadLetterIntent: {
        position = writeU64(buffer, event.offset, position);
        position = writeU64(buffer, event.dlqOffsetHint, position);
        const written = buffer.write(event.reason, position + 2, 'utf8');
        buffer.writeUInt16BE(written, position);
        position += 2 + written;
        break;
      }
    }
  }
  assert.equal(position, size);
  return buffer;
}

export function decodeGroupEvents(value: Buffer): GroupEvent[] {
  const events: GroupEvent[] = [];
  let position = 0;
  while (position < value.length) {
    const kind = value.readUInt8(position);
    const partition = value.readUInt32BE(position + 1);
    position += 5;
    switch (kind) {
      case GroupEventKind.settle:
        events.push({ kind, partition, offset: readU64(value, position) });
        position += 8;
        break;
      case GroupEventKind.reset:
        events.push({ kind, partition, floor: readU64(value, position) });
        position += 8;
        break;
      case GroupEventKind.dispatched:
        events.push({ kind, partition, endOffset: readU64(value, position) });
        position += 8;
        break;
      case GroupEventKind.retry:
        events.push({
          kind,
          partition,
          offset: readU64(value, position),
          deliveries: value.readUInt32BE(position + 8),
          dueMs: readU64(value, position + 12),
        });
        position += 20;
        break;
      case GroupEventKind.deadLetterIntent: {
        const offset = readU64(value, position);
        const dlqOffsetHint = readU64(value, position + 8);
        const length = value.readUInt16BE(position + 16);
        const reason = value.toString('utf8', position + 18, position + 18 + length);
        events.push({ kind, partition, offset, dlqOffsetHint, reason });
        position += 18 + length;
        break;
      }
      default:
        throw new Error(`unknown group event kind ${kind}`);
    }
  }
  assert.equal(position, value.length);
  return events;
}
