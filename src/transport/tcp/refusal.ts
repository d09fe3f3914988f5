/**
 * A refusal a hostile client can make the server repeat thousands of times a second — a connection
 * past a limit, a SUBSCRIBE past subscriptionsMax — encoded once: each time, only the frame header
 * (with the request id) is written in front of the payload made at the start. No FerryError (and
 * stack trace), no string encoding, no JSON per refusal.
 */
import { encodeError } from '../../protocol/codec-session.js';
import type { ErrorCode, FerryError } from '../../errors.js';
import { FRAME_TYPES } from '../../protocol/frame.js';
import { FRAME_HEADER_BYTES } from '../../protocol/limits.js';
import { FrameWriter } from '../../protocol/writer.js';

export class Refusal {
  /** The ERROR frame's payload (code, message, no detail). */
  private readonly payload: Buffer;
  /** The whole frame for request id 0, for a socket about to be closed. */
  readonly frame: Buffer;

  constructor(
    readonly code: ErrorCode,
    readonly message: string,
  ) {
    const writer = new FrameWriter(FRAME_HEADER_BYTES + 64 + message.length * 3);
    encodeError(writer, 0, { code, message });
    this.frame = Buffer.from(writer.take()!);
    this.payload = this.frame.subarray(FRAME_HEADER_BYTES);
  }

  /** The refusal of `error`'s code and message (its detail is not sent). */
  static of(error: FerryError): Refusal {
    return new Refusal(error.code, error.message);
  }

  /** Appends the ERROR frame for `requestId` to `writer`. */
  write(writer: FrameWriter, requestId: number): void {
    writer.beginFrame(FRAME_TYPES.ERROR, requestId);
    writer.raw(this.payload);
    writer.endFrame();
  }
}
