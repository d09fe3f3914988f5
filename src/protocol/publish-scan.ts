/**
 * A PUBLISH payload's limits checked as its bytes arrive, before the frame is assembled: the
 * lengths of each message's key, headers and value are read as they stream in (the bytes they
 * count are skipped, never kept), and the first message past a limit refuses the whole frame
 * (FrameDecoder, PayloadScanner): an 8 MiB + 1 value is refused at its length field, and the rest
 * of its frame is dropped as it arrives. The checks and their order are the broker's
 * (broker/limits.ts, checkPublishLimits: key, header count, header bytes, then the record).
 * Reads the layout codec-publish.ts writes; at anything it does not expect (a malformed count) the
 * scan stops and the frame is assembled and decoded as usual, which refuses it as malformed.
 */
import { FerryError, type ErrorCode } from '../errors.js';
import { MESSAGE_FLAG } from './codec-publish.js';
import type { PayloadScanner } from './decoder.js';
import { PUBLISH_MESSAGES_MAX, TAGGED_FIELDS_MAX } from './limits.js';

/** The bounds a scanned message is held to (the broker's admission ceilings). */
export interface PublishScanLimits {
  keyBytesMax: number;
  headersCountMax: number;
  headersBytesMax: number;
  /** Key + header names and values + value. */
  recordBytesMax: number;
}

/** The field being read, and its width in bytes (FIELD_BYTES). */
const FIELD = {
  topicLength: 0,
  requestTagCount: 1,
  tagId: 2,
  tagLength: 3,
  messageCount: 4,
  flags: 5,
  keyLength: 6,
  headerCount: 7,
  headerNameLength: 8,
  headerValueLength: 9,
  valueLength: 10,
  messageTagCount: 11,
  done: 12,
} as const;
type Field = (typeof FIELD)[keyof typeof FIELD];
const FIELD_BYTES: readonly number[] = [2, 1, 1, 4, 4, 1, 4, 2, 2, 4, 4, 1, 0];

export class PublishScanner implements PayloadScanner {
  private field: Field = FIELD.topicLength;
  /** Bytes of the current field still to come, and its value so far (big-endian). */
  private need: number = FIELD_BYTES[FIELD.topicLength]!;
  private value = 0;
  /** Bytes to pass over before the current field starts. */
  private skip = 0;
  private tagsLeft = 0;
  /** Whether the tagged section being skipped is the request's (else a message's). */
  private inRequestTags = true;
  private messagesLeft = 0;
  private headersLeft = 0;
  private keyBytes = 0;
  private headerBytes = 0;
  /** Messages fully scanned: the index of the one being read. */
  private index = 0;

  constructor(private readonly limits: PublishScanLimits) {}

  /** True once every message's lengths were read (or the scan stopped): later bytes are not looked at. */
  get done(): boolean {
    return this.field === FIELD.done;
  }

  scan(chunk: Buffer, start: number, end: number): FerryError | null {
    let pos = start;
    while (pos < end && this.field !== FIELD.done) {
      if (this.skip > 0) {
        const take = Math.min(this.skip, end - pos);
        this.skip -= take;
        pos += take;
        continue;
      }
      this.value = this.value * 256 + chunk[pos++]!;
      if (--this.need > 0) continue;
      const refusal = this.complete(this.value);
      if (refusal !== null) {
        this.expect(FIELD.done);
        return refusal;
      }
    }
    return null;
  }

  private expect(field: Field, skipFirst = 0): void {
    this.field = field;
    this.need = FIELD_BYTES[field]!;
    this.value = 0;
    this.skip = skipFirst;
  }

  /** A field is read whole: checks it and moves to the next. */
  private complete(value: number): FerryError | null {
    switch (this.field) {
      case FIELD.topicLength:
        this.expect(FIELD.requestTagCount, value);
        return null;
      case FIELD.requestTagCount:
      case FIELD.messageTagCount:
        this.inRequestTags = this.field === FIELD.requestTagCount;
        if (value > TAGGED_FIELDS_MAX) {
          this.expect(FIELD.done);
        } else if (value === 0) {
          this.afterTags(0);
        } else {
          this.tagsLeft = value;
          this.expect(FIELD.tagId);
        }
        return null;
      case FIELD.tagId:
        this.expect(FIELD.tagLength);
        return null;
      case FIELD.tagLength:
        if (--this.tagsLeft > 0) this.expect(FIELD.tagId, value);
        else this.afterTags(value);
        return null;
      case FIELD.messageCount:
        this.messagesLeft = value;
        this.expect(value === 0 || value > PUBLISH_MESSAGES_MAX ? FIELD.done : FIELD.flags);
        return null;
      case FIELD.flags:
        this.keyBytes = 0;
        this.headerBytes = 0;
        this.expect(value & MESSAGE_FLAG.key ? FIELD.keyLength : FIELD.headerCount, value & MESSAGE_FLAG.partition ? 4 : 0);
        return null;
      default:
        return this.completeMessageField(value);
    }
  }

  private completeMessageField(value: number): FerryError | null {
    const { keyBytesMax, headersCountMax, headersBytesMax } = this.limits;
    switch (this.field) {
      case FIELD.keyLength:
        this.keyBytes = value;
        if (value > keyBytesMax) return this.refuse('KEY_TOO_LARGE', `key of ${value} bytes is over the limit of ${keyBytesMax}`);
        this.expect(FIELD.headerCount, value);
        return null;
      case FIELD.headerCount:
        if (value > headersCountMax) return this.refuse('HEADERS_TOO_LARGE', `${value} headers are over the limit of ${headersCountMax}`);
        this.headersLeft = value;
        this.expect(value > 0 ? FIELD.headerNameLength : FIELD.valueLength);
        return null;
      case FIELD.headerNameLength:
      case FIELD.headerValueLength: {
        this.headerBytes += value;
        if (this.headerBytes > headersBytesMax) return this.refuse('HEADERS_TOO_LARGE', `headers of more than ${headersBytesMax} bytes are over the limit`);
        const next = this.field === FIELD.headerNameLength ? FIELD.headerValueLength : --this.headersLeft > 0 ? FIELD.headerNameLength : FIELD.valueLength;
        this.expect(next, value);
        return null;
      }
      case FIELD.valueLength: {
        const recordBytes = this.keyBytes + this.headerBytes + value;
        if (recordBytes > this.limits.recordBytesMax) {
          return this.refuse('RECORD_TOO_LARGE', `message of ${recordBytes} bytes is over the limit of ${this.limits.recordBytesMax}`, recordBytes);
        }
        this.expect(FIELD.messageTagCount, value);
        return null;
      }
      default:
        this.expect(FIELD.done);
        return null;
    }
  }

  /** The tagged section ends; `skipFirst` is its last field's bytes. */
  private afterTags(skipFirst: number): void {
    if (this.inRequestTags) {
      this.expect(FIELD.messageCount, skipFirst);
      return;
    }
    this.index++;
    this.expect(--this.messagesLeft > 0 ? FIELD.flags : FIELD.done, skipFirst);
  }

  private refuse(code: ErrorCode, message: string, recordBytes?: number): FerryError {
    return new FerryError(code, `record ${this.index}: ${message}; refused as it arrived`, {
      detail: recordBytes === undefined ? { index: this.index } : { index: this.index, bytes: recordBytes, max: this.limits.recordBytesMax },
    });
  }
}
