/**
 * The settle frames added for reliable delivery: TOUCH (restart a delivery's ack timeout), REJECT
 * (dead-letter a delivery now) and SETTLED, the reply to any settle frame (ACK, NACK, TOUCH,
 * REJECT) sent with a request id. Like ACK and NACK they are appendable per subscription, so the
 * settles of one event-loop turn share a frame. Layouts are in docs/PROTOCOL.md.
 *
 * Replies: a settle frame with request id 0 is fire-and-forget (a failure comes back as an ERROR
 * with request id 0); with a request id, the server answers one SETTLED once every entry of the
 * frame has been applied (for REJECT: the dead letter is stored and the original settled, both
 * durably), with one outcome per entry in entry order.
 */
import { ERROR_CODES, errorCodeFromWire } from '../errors.js';
import { FRAME_TYPES } from './frame.js';
import { SETTLE_ENTRIES_MAX } from './limits.js';
import type { RejectBatch, SettleOutcome, TouchBatch } from './messages.js';
import { beginSettle, decodeAck, readSettleHeader } from './codec-subscribe.js';
import { malformed, type PayloadReader } from './reader.js';
import type { FrameWriter } from './writer.js';

/** Smallest REJECT entry: partition u32, offset u64, empty reason (u16 length), tagged count u8. */
const REJECT_ENTRY_BYTES_MIN = 4 + 8 + 2 + 1;
/** Smallest SETTLED entry: code u16 and an empty message (u16 length). */
const SETTLED_ENTRY_BYTES_MIN = 2 + 2;
/** SETTLED code of an entry that was applied. */
const SETTLED_OK = 0;
/** Reasons travel in a str16 and end up in a header: a human-readable sentence, not a document. */
export const REJECT_REASON_CHARS_MAX = 1000;

/** Appends a TOUCH entry (the layout of an ACK entry). */
export function appendTouch(w: FrameWriter, subscriptionId: number, partition: number, offset: number, requestId = 0): void {
  beginSettle(w, FRAME_TYPES.TOUCH, subscriptionId, requestId);
  w.u32(partition);
  w.u64(offset);
  w.itemAppended();
}

export function decodeTouch(r: PayloadReader): TouchBatch {
  return decodeAck(r);
}

/**
 * Appends a REJECT entry to the subscription's open REJECT frame for `requestId`, or starts a new
 * one; entries keep their order, which is the order of the outcomes in the SETTLED reply.
 */
export function appendReject(
  w: FrameWriter,
  subscriptionId: number,
  partition: number,
  offset: number,
  reason: string,
  requestId: number,
): void {
  beginSettle(w, FRAME_TYPES.REJECT, subscriptionId, requestId);
  w.appendItem({ partition, offset, reason }, writeRejectEntry);
}

function writeRejectEntry(w: FrameWriter, entry: { partition: number; offset: number; reason: string }): void {
  w.u32(entry.partition);
  w.u64(entry.offset);
  w.string16(entry.reason.length <= REJECT_REASON_CHARS_MAX ? entry.reason : entry.reason.slice(0, REJECT_REASON_CHARS_MAX));
  w.u8(0);
}

export function decodeReject(r: PayloadReader): RejectBatch {
  const { subscriptionId, count } = readSettleHeader(r, REJECT_ENTRY_BYTES_MIN);
  const partitions: number[] = new Array(count);
  const offsets: number[] = new Array(count);
  const reasons: string[] = new Array(count);
  for (let i = 0; i < count; i++) {
    partitions[i] = r.u32();
    offsets[i] = r.u64();
    reasons[i] = r.string16();
    r.skipTagged();
  }
  r.done();
  return { subscriptionId, partitions, offsets, reasons };
}

/** SETTLED payload: count u32, per entry (code u16: 0 applied, else an error's wire number; message str16), tagged. */
export function encodeSettled(w: FrameWriter, requestId: number, outcomes: readonly SettleOutcome[]): void {
  w.beginFrame(FRAME_TYPES.SETTLED, requestId);
  w.u32(outcomes.length);
  for (const outcome of outcomes) {
    w.u16(outcome.code === null ? SETTLED_OK : ERROR_CODES[outcome.code].wire);
    w.string16(outcome.code === null ? '' : truncate(outcome.message));
  }
  w.u8(0);
  w.endFrame();
}

export function decodeSettled(r: PayloadReader): SettleOutcome[] {
  const count = r.u32();
  if (count > SETTLE_ENTRIES_MAX) throw malformed(`${count} outcomes exceed ${SETTLE_ENTRIES_MAX}`);
  if (count * SETTLED_ENTRY_BYTES_MIN > r.remaining) throw malformed(`${count} outcomes do not fit the payload`);
  const outcomes: SettleOutcome[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const wire = r.u16();
    const message = r.string16();
    outcomes[i] = { code: wire === SETTLED_OK ? null : errorCodeFromWire(wire), message };
  }
  r.skipTagged();
  r.done();
  return outcomes;
}

/** Error messages per entry: enough to explain, bounded so a large batch's reply stays small. */
const OUTCOME_MESSAGE_CHARS_MAX = 200;

function truncate(message: string): string {
  return message.length <= OUTCOME_MESSAGE_CHARS_MAX ? message : message.slice(0, OUTCOME_MESSAGE_CHARS_MAX);
}
