/**
 * PayloadReader: reads one frame's payload in place. Byte fields come back as zero-copy views of
 * the payload; every read is bounds-checked and a short or inconsistent payload is a typed
 * MALFORMED_FRAME error, never an exception from Buffer. One reader is reused for every frame.
 */
import { FerryError } from '../errors.js';
import { SHORT_STRING_BYTES_MAX, TAGGED_FIELDS_MAX, U64_SAFE_MAX } from './limits.js';

const U32_LIMIT = 0x1_0000_0000;
const EMPTY = Buffer.alloc(0);

export function malformed(message: string): FerryError {
  return new FerryError('MALFORMED_FRAME', message);
}

/** Visits one tagged field; the reader is limited to the field's bytes and skips what is not read. */
export type TagVisitor<T> = (tag: number, reader: PayloadReader, target: T) => void;

export class PayloadReader {
  private buf: Buffer = EMPTY;
  private pos = 0;
  private end = 0;

  /** The payload being read. */
  get payload(): Buffer {
    return this.buf;
  }

  reset(payload: Buffer): this {
    this.buf = payload;
    this.pos = 0;
    this.end = payload.length;
    return this;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(bytes: number): void {
    if (this.pos + bytes > this.end) throw malformed(`payload ends ${this.pos + bytes - this.end} bytes early`);
  }

  /** Extra bytes after the fields this version knows are tolerated (a newer peer may add fields). */
  done(): void {
    this.pos = this.end;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const value = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return value;
  }

  u32(): number {
    this.need(4);
    const value = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const high = this.buf.readUInt32BE(this.pos);
    const value = high * U32_LIMIT + this.buf.readUInt32BE(this.pos + 4);
    if (value > U64_SAFE_MAX) throw malformed('u64 beyond 2^53 - 1');
    this.pos += 8;
    return value;
  }

  /** u32 length + bytes, as a view of the payload. */
  bytes(): Buffer {
    const length = this.u32();
    this.need(length);
    const view = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return view;
  }

  string16(): string {
    const length = this.u16();
    if (length > SHORT_STRING_BYTES_MAX) throw malformed('string too long');
    this.need(length);
    const text = length === 0 ? '' : this.buf.toString('utf8', this.pos, this.pos + length);
    this.pos += length;
    return text;
  }

  string32(): string {
    const length = this.u32();
    this.need(length);
    const text = length === 0 ? '' : this.buf.toString('utf8', this.pos, this.pos + length);
    this.pos += length;
    return text;
  }

  /**
   * Reads a tagged section, calling `visit` for each field. The visitor reads what it knows; the
   * reader then moves to the field's end, so unknown tags and unread trailing bytes are skipped.
   */
  tagged<T>(visit: TagVisitor<T>, target: T): void {
    const count = this.u8();
    if (count === 0) return;
    if (count > TAGGED_FIELDS_MAX) throw malformed(`${count} tagged fields exceed ${TAGGED_FIELDS_MAX}`);
    for (let i = 0; i < count; i++) {
      const tag = this.u8();
      const length = this.u32();
      this.need(length);
      const fieldEnd = this.pos + length;
      const outerEnd = this.end;
      this.end = fieldEnd;
      try {
        visit(tag, this, target);
      } finally {
        this.end = outerEnd;
      }
      this.pos = fieldEnd;
    }
  }

  /** Skips a tagged section entirely. */
  skipTagged(): void {
    const count = this.u8();
    if (count === 0) return;
    if (count > TAGGED_FIELDS_MAX) throw malformed(`${count} tagged fields exceed ${TAGGED_FIELDS_MAX}`);
    for (let i = 0; i < count; i++) {
      this.u8();
      const length = this.u32();
      this.need(length);
      this.pos += length;
    }
  }
}
