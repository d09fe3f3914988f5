/**
 * FrameDecoder: a resumable state machine fed arbitrary chunks of a byte stream. Frames split
 * across chunks and many frames in one chunk both work; every frame decoded from one chunk is
 * handed to the handler as one batch, so the receiver can process them together.
 * The rest: docs/INTERNALS.md.
 */
import { FerryError } from '../errors.js';
import { FRAME_MAGIC, HEADER_OFFSETS, isFrameType, type Frame, type FrameType } from './frame.js';
import { FRAME_BYTES_MAX_DEFAULT, FRAME_HEADER_BYTES, SUPPORTED_VERSIONS } from './limits.js';
import { PayloadRecycler } from './payload-recycler.js';

export interface FrameHandler {
  /** Frames decoded from one chunk, in order. The array and the payload views may be kept. */
  onFrames(frames: Frame[]): void;
  /** A fatal decode error; called once, after the frames decoded before it were delivered. */
  onError(error: FerryError): void;
  /**
   * Asked once a header is valid, before any payload byte is kept: null assembles the frame, an
   * error refuses it (its payload is skipped as it arrives; the frame comes with `refused` set).
   */
  admit?(type: FrameType, requestId: number, payloadBytes: number): FerryError | null;
  /**
   * Asked once an admitted header is valid: a scanner reads the payload's bytes as they arrive,
   * before they are kept, and may refuse the frame part-way (the rest is then skipped as it
   * arrives, and the frame comes with `refused` set). null: the payload is assembled unread.
   */
  scanner?(type: FrameType, requestId: number, payloadBytes: number): PayloadScanner | null;
}

/** Reads a payload as it streams in (FrameHandler.scanner). */
export interface PayloadScanner {
  /** Bytes [start, end) of `chunk` are the payload's next ones: a refusal once they break a limit, else null. */
  scan(chunk: Buffer, start: number, end: number): FerryError | null;
}

export interface FrameDecoderOptions {
  /** Largest frame (header + payload) accepted. */
  frameBytesMax?: number;
  /** Versions accepted in the header. */
  versions?: readonly number[];
  /**
   * Frames decoded from one push at most: past them, between two frames, the rest of the chunk is
   * held (`holding`) until resume(), so that a read of thousands of tiny frames is not decoded in
   * one stretch (unbounded when not given).
   */
  framesPerPushMax?: number;
}

/** The payload of a refused frame: nothing of it is kept. */
const NO_PAYLOAD = Buffer.alloc(0);

export class FrameDecoder {
  /** Largest frame (header + payload) accepted from the next header on. */
  frameBytesMax: number;
  private readonly versions: readonly number[];
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  /** Header bytes collected so far (0 .. FRAME_HEADER_BYTES). */
  private headerFill = 0;
  /** Payload being assembled across chunks, or null while reading a header. */
  private partial: Buffer | null = null;
  private partialFill = 0;
  /** Payload bytes of a refused frame still to be skipped. */
  private skipRemaining = 0;
  /** The scanner of the payload being assembled, if its handler gave one. */
  private scanner: PayloadScanner | null = null;
  private pendingVersion = 0;
  private pendingType = 0 as FrameType;
  private pendingFlags = 0;
  private pendingRequestId = 0;
  private failed = false;
  private readonly framesPerPushMax: number;
  /** Chunks (the first from `restFrom`) not decoded yet: the last push stopped at framesPerPushMax. */
  private rest: Buffer[] = [];
  private restFrom = 0;
  /** Buffers of payloads that span reads, given back through recycle(). */
  private readonly payloads = new PayloadRecycler();
  /** Total bytes pushed, frames decoded: connection statistics. */
  bytesIn = 0;
  framesIn = 0;

  constructor(
    private readonly handler: FrameHandler,
    options: FrameDecoderOptions = {},
  ) {
    this.frameBytesMax = options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT;
    this.versions = options.versions ?? SUPPORTED_VERSIONS;
    this.framesPerPushMax = options.framesPerPushMax ?? Infinity;
  }

  /** Bytes are held undecoded (framesPerPushMax): the receiver reads no more and calls resume() in a later turn. */
  get holding(): boolean {
    return this.rest.length > 0;
  }

  /** Bytes held for an incomplete frame: never more than the frame limit. */
  get bufferedBytes(): number {
    return this.headerFill + this.partialFill;
  }

  /** True while a frame has started but not completed. */
  get midFrame(): boolean {
    return this.headerFill > 0 || this.partial !== null || this.skipRemaining > 0;
  }

  /** Payload bytes of a refused frame still to come (skipped as they arrive). */
  get skipping(): number {
    return this.skipRemaining;
  }

  get hasFailed(): boolean {
    return this.failed;
  }

  push(chunk: Buffer): void {
    if (this.failed) return;
    this.bytesIn += chunk.length;
    // Behind bytes still held: decoded after them, in order.
    if (this.rest.length > 0) this.rest.push(chunk);
    else this.run(chunk, 0);
  }

  /** Decodes on from where the last push stopped at framesPerPushMax (up to framesPerPushMax more frames). */
  resume(): void {
    if (this.failed || this.rest.length === 0) return;
    const chunk = this.rest.shift()!;
    const from = this.restFrom;
    this.restFrom = 0;
    this.run(chunk, from);
  }

  private run(chunk: Buffer, from: number): void {
    const frames: Frame[] = [];
    let error: FerryError | null = null;
    try {
      const stoppedAt = this.decode(chunk, from, frames);
      if (stoppedAt < chunk.length) {
        this.rest.unshift(chunk);
        this.restFrom = stoppedAt;
      }
    } catch (thrown) {
      // Only typed decode errors are thrown by decode(); anything else is a bug and propagates.
      if (!(thrown instanceof FerryError)) throw thrown;
      error = thrown;
      this.failed = true;
      this.partial = null;
      this.partialFill = 0;
      this.headerFill = 0;
      this.skipRemaining = 0;
      this.scanner = null;
      this.rest = [];
    }
    this.framesIn += frames.length;
    if (frames.length > 0) this.handler.onFrames(frames);
    if (error !== null) this.handler.onError(error);
  }

  /** Decodes `chunk` from `pos` into `frames`; returns where it stopped (its length, or a frame's start at framesPerPushMax). */
  private decode(chunk: Buffer, pos: number, frames: Frame[]): number {
    const length = chunk.length;
    while (pos < length) {
      if (frames.length >= this.framesPerPushMax && !this.midFrame) return pos;
      if (this.skipRemaining > 0) {
        // A refused frame's payload: dropped as it arrives.
        const take = Math.min(this.skipRemaining, length - pos);
        this.skipRemaining -= take;
        pos += take;
        continue;
      }
      if (this.partial !== null) {
        // Continue a payload started in an earlier chunk.
        const take = Math.min(this.partial.length - this.partialFill, length - pos);
        if (this.scanner !== null && this.refuseScanned(chunk, pos, take, this.partial.length - this.partialFill, frames)) {
          pos += take;
          continue;
        }
        chunk.copy(this.partial, this.partialFill, pos, pos + take);
        this.partialFill += take;
        pos += take;
        if (this.partialFill === this.partial.length) {
          frames.push(this.frame(this.partial));
          this.partial = null;
          this.partialFill = 0;
          this.scanner = null;
        }
        continue;
      }
      if (this.headerFill === 0 && length - pos >= FRAME_HEADER_BYTES) {
        // Fast path: the whole header is in this chunk.
        const payloadLength = this.readHeader(chunk, pos);
        pos = this.payload(chunk, pos + FRAME_HEADER_BYTES, payloadLength, frames);
        continue;
      }
      // Slow path: collect the header byte by byte across chunks.
      const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, length - pos);
      chunk.copy(this.header, this.headerFill, pos, pos + take);
      this.headerFill += take;
      pos += take;
      // Reject a bad magic as soon as its two bytes are here, before waiting for the rest.
      if (this.headerFill >= 2 && this.header.readUInt16BE(0) !== FRAME_MAGIC) this.checkMagic(this.header, 0);
      if (this.headerFill < FRAME_HEADER_BYTES) continue;
      this.headerFill = 0;
      const payloadLength = this.readHeader(this.header, 0);
      pos = this.payload(chunk, pos, payloadLength, frames);
    }
    return pos;
  }

  /** Takes a validated header's payload starting at `pos` (whole, started, or skipped); returns the position after what it used. */
  private payload(chunk: Buffer, pos: number, payloadLength: number, frames: Frame[]): number {
    const refusal = this.handler.admit?.(this.pendingType, this.pendingRequestId, payloadLength) ?? null;
    if (refusal !== null) {
      frames.push({ ...this.frame(NO_PAYLOAD), refused: refusal });
      this.skipRemaining = payloadLength;
      return pos;
    }
    const scanner = this.handler.scanner?.(this.pendingType, this.pendingRequestId, payloadLength) ?? null;
    if (scanner !== null) {
      this.scanner = scanner;
      const take = Math.min(payloadLength, chunk.length - pos);
      if (this.refuseScanned(chunk, pos, take, payloadLength, frames)) return pos + take;
      this.scanner = take === payloadLength ? null : scanner;
    }
    if (chunk.length - pos >= payloadLength) {
      frames.push(this.frame(chunk.subarray(pos, pos + payloadLength)));
      return pos + payloadLength;
    }
    this.startPartial(chunk, pos, payloadLength);
    return chunk.length;
  }

  /**
   * Scans the next `take` of the `left` payload bytes still to come; on a refusal the frame is
   * given up (nothing assembled is kept, the rest skipped as it arrives) and true returned.
   */
  private refuseScanned(chunk: Buffer, pos: number, take: number, left: number, frames: Frame[]): boolean {
    const refusal = this.scanner!.scan(chunk, pos, pos + take);
    if (refusal === null) return false;
    frames.push({ ...this.frame(NO_PAYLOAD), refused: refusal });
    this.scanner = null;
    this.partial = null;
    this.partialFill = 0;
    this.skipRemaining = left - take;
    return true;
  }

  private startPartial(chunk: Buffer, pos: number, payloadLength: number): void {
    // The length was validated against the limit in readHeader, so this allocation is bounded.
    this.partial = this.payloads.take(payloadLength);
    this.partialFill = chunk.length - pos;
    chunk.copy(this.partial, 0, pos, chunk.length);
  }

  private checkMagic(source: Buffer, at: number): void {
    const magic = source.readUInt16BE(at + HEADER_OFFSETS.magic);
    if (magic !== FRAME_MAGIC) {
      throw new FerryError('BAD_MAGIC', `bad frame magic 0x${magic.toString(16).padStart(4, '0')}`, {
        detail: { magic },
      });
    }
  }

  /** Validates a complete header and stores its fields; returns the payload length. */
  private readHeader(source: Buffer, at: number): number {
    this.checkMagic(source, at);
    const version = source[at + HEADER_OFFSETS.version]!;
    if (!this.versions.includes(version)) {
      throw new FerryError('UNSUPPORTED_VERSION', `protocol version ${version} is not supported`, {
        detail: { version, supported: [...this.versions] },
      });
    }
    const type = source[at + HEADER_OFFSETS.type]!;
    if (!isFrameType(type)) {
      throw new FerryError('UNKNOWN_FRAME_TYPE', `unknown frame type 0x${type.toString(16)}`, { detail: { type } });
    }
    const payloadLength = source.readUInt32BE(at + HEADER_OFFSETS.payloadLength);
    if (payloadLength + FRAME_HEADER_BYTES > this.frameBytesMax) {
      throw new FerryError(
        'FRAME_TOO_LARGE',
        `frame of ${payloadLength + FRAME_HEADER_BYTES} bytes exceeds the limit of ${this.frameBytesMax}`,
        { detail: { frameBytes: payloadLength + FRAME_HEADER_BYTES, frameBytesMax: this.frameBytesMax } },
      );
    }
    this.pendingVersion = version;
    this.pendingType = type;
    this.pendingFlags = source[at + HEADER_OFFSETS.flags]!;
    this.pendingRequestId = source.readUInt32BE(at + HEADER_OFFSETS.requestId);
    return payloadLength;
  }

  /**
   * Gives back a frame's payload once nothing reads it or any view of it any more, so the next
   * frame that spans reads reuses its buffer. Optional: a payload not given back is collected.
   */
  recycle(payload: Buffer): void {
    this.payloads.give(payload);
  }

  private frame(payload: Buffer): Frame {
    return {
      version: this.pendingVersion,
      type: this.pendingType,
      flags: this.pendingFlags,
      requestId: this.pendingRequestId,
      payload,
    };
  }
}
