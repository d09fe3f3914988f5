/**
 * The publish path of the client: turns application messages into PUBLISH frame items, coalesces
 * the publishes of one event-loop turn into one frame per topic, and hands every caller its own
 * result when the PUBLISH_OK arrives.
 */
import { FerryError } from '../errors.js';
import { FRAME_TYPES, FRAME_HEADER_BYTES, type Frame } from '../protocol/frame.js';
import { beginPublish, decodePublishOk, writePublishMessage } from '../protocol/codec-publish.js';
import { priorityHeader } from '../protocol/priority.js';
import type { PayloadReader } from '../protocol/reader.js';
import type { WireHeader, WirePublishMessage } from '../protocol/messages.js';
import type { ClientConnection, PendingRequest } from './connection.js';

export interface PublishOptions {
  key?: string | Uint8Array | null;
  headers?: Record<string, string>;
  /** Explicit partition; by default the broker hashes the key, or round-robins unkeyed messages. */
  partition?: number;
  /** Message id: a second publish with the same id within the topic's dedup window stores nothing. */
  id?: string;
  /** Deliver to groups no earlier than this many ms from now (streams see it at once). */
  delayMs?: number;
  /** Deliver to groups no earlier than this time; wins over delayMs. */
  deliverAt?: Date | number;
  /** 0 (default) to 9: a group delivers higher priorities first among what it has read ahead; streams ignore it. */
  priority?: number;
}

export interface BatchMessage extends PublishOptions {
  value: Buffer | string | Uint8Array;
}

/** Options of a whole publishBatch. */
export interface PublishBatchOptions {
  /**
   * For brokers of a cluster only: the messages carry broker-written `ferry-*` headers (dead
   * letters, redrives). The broker refuses it without the replicate grant (docs/SECURITY.md).
   */
  asBroker?: boolean;
}

export interface PublishResult {
  topic: string;
  partition: number;
  offset: number;
  /** 'synced' once an fdatasync covered the message (`always` topics), 'written' otherwise. */
  durability: 'synced' | 'written';
  /** True when the id was already published: nothing was stored, the first offset is returned. */
  duplicate?: boolean;
  /** For a delayed message: when it becomes deliverable. */
  deliverAt?: Date;
}

/** Messages above this size get a frame of their own: coalescing pays off for small messages only. */
const COALESCE_ITEM_BYTES_MAX = 64 * 1024;
/** Room for a PUBLISH frame's fixed parts besides the topic: header, lengths, counts, tagged bytes. */
const PUBLISH_FRAME_OVERHEAD_BYTES = FRAME_HEADER_BYTES + 2 + 1 + 4;
/** Fixed bytes of one message: flags, partition, key length, header count, value length, tagged count. */
const MESSAGE_FIXED_BYTES = 1 + 4 + 4 + 2 + 4 + 1;

interface Caller {
  resolve(value: never): void;
  reject(error: unknown): void;
  /** Messages this caller published (1 for publish, n for publishBatch). */
  count: number;
  batch: boolean;
}

/** One PUBLISH frame in flight, answering each of its callers from the one PUBLISH_OK. */
export class PublishRequest implements PendingRequest {
  readonly callers: Caller[] = [];

  constructor(
    readonly id: number,
    readonly topic: string,
    public deadlineMs: number,
  ) {}

  settle(frame: Frame, reader: PayloadReader): void {
    if (frame.type !== FRAME_TYPES.PUBLISH_OK) {
      this.fail(new FerryError('MALFORMED_FRAME', `expected PUBLISH_OK, got frame type ${frame.type}`));
      return;
    }
    let ok;
    try {
      ok = decodePublishOk(reader.reset(frame.payload));
    } catch (error) {
      this.fail(error as FerryError);
      return;
    }
    const { partitions, offsets, durability } = ok;
    const results: PublishResult[] = new Array(partitions.length);
    for (let i = 0; i < partitions.length; i++) results[i] = { topic: this.topic, partition: partitions[i]!, offset: offsets[i]!, durability };
    for (const index of ok.duplicates ?? []) if (results[index] !== undefined) results[index].duplicate = true;
    for (const [index, ms] of ok.deliverAtMs ?? []) if (results[index] !== undefined) results[index].deliverAt = new Date(ms);
    let at = 0;
    for (const caller of this.callers) {
      if (at + caller.count > results.length) {
        caller.reject(new FerryError('MALFORMED_FRAME', 'PUBLISH_OK carries fewer results than messages'));
        continue;
      }
      if (caller.batch) (caller.resolve as (value: PublishResult[]) => void)(results.slice(at, at + caller.count));
      else (caller.resolve as (value: PublishResult) => void)(results[at]!);
      at += caller.count;
    }
  }

  fail(error: FerryError): void {
    for (const caller of this.callers) caller.reject(error);
  }
}

function toBytes(data: Buffer | string | Uint8Array, what: string): Uint8Array {
  if (typeof data === 'string') return Buffer.from(data);
  if (data instanceof Uint8Array) return data;
  throw new FerryError('INVALID_ARGUMENT', `${what} must be a Buffer, a Uint8Array or a string`);
}

export function toWireMessage(value: Buffer | string | Uint8Array, options: PublishOptions): WirePublishMessage {
  const message: WirePublishMessage = { value: toBytes(value, 'value') as Buffer };
  if (options.key !== undefined && options.key !== null) message.key = toBytes(options.key, 'key') as Buffer;
  if (options.headers !== undefined || options.priority !== undefined) {
    const headers: WireHeader[] = [];
    for (const name in options.headers) headers.push([name, String(options.headers[name])]);
    if (options.priority !== undefined) headers.push(priorityHeader(options.priority));
    message.headers = headers;
  }
  if (options.partition !== undefined) {
    if (!Number.isInteger(options.partition) || options.partition < 0 || options.partition > 0xffff_ffff) {
      throw new FerryError('INVALID_ARGUMENT', `partition must be a non-negative integer, got ${options.partition}`);
    }
    message.partition = options.partition;
  }
  if (options.id !== undefined) message.id = String(options.id);
  if (options.delayMs !== undefined) {
    if (!Number.isInteger(options.delayMs) || options.delayMs < 0 || options.delayMs > 0xffff_ffff) {
      throw new FerryError('INVALID_ARGUMENT', `delayMs must be a non-negative integer, got ${options.delayMs}`);
    }
    message.delayMs = options.delayMs;
  }
  if (options.deliverAt !== undefined) {
    const ms = options.deliverAt instanceof Date ? options.deliverAt.getTime() : options.deliverAt;
    if (!Number.isSafeInteger(ms) || ms < 0) throw new FerryError('INVALID_ARGUMENT', `deliverAt must be a valid time`);
    message.deliverAtMs = ms;
  }
  return message;
}

/** An upper bound of the encoded size of one message. */
export function messageBytesEstimate(message: WirePublishMessage): number {
  let bytes = MESSAGE_FIXED_BYTES + message.value.byteLength;
  if (message.key) bytes += message.key.byteLength;
  if (message.headers) for (const [name, value] of message.headers) bytes += 6 + (name.length + value.length) * 3;
  if (message.id !== undefined) bytes += 9 + message.id.length * 3;
  if (message.delayMs !== undefined || message.deliverAtMs !== undefined) bytes += 2 * 13;
  return bytes;
}

/**
 * Queues one message (coalesced with the turn's other publishes to `topic` when allowed) and
 * resolves with its result. Must be called with an open connection.
 */
export function publishOne(
  connection: ClientConnection,
  topic: string,
  message: WirePublishMessage,
  coalesce: boolean,
): Promise<PublishResult> {
  return new Promise<PublishResult>((resolve, reject) => {
    const w = connection.writer;
    const itemBytes = messageBytesEstimate(message);
    if (itemBytes + PUBLISH_FRAME_OVERHEAD_BYTES + topic.length * 3 > w.frameBytesMax) {
      reject(new FerryError('RECORD_TOO_LARGE', `a message of about ${itemBytes} bytes exceeds the server's frame limit of ${w.frameBytesMax}`));
      return;
    }
    const small = coalesce && itemBytes <= COALESCE_ITEM_BYTES_MAX;
    let request: PublishRequest | undefined;
    if (small && w.canAppend(FRAME_TYPES.PUBLISH, topic, itemBytes)) {
      request = connection.pendingRequest(w.openRequestId) as PublishRequest | undefined;
    }
    const fresh = request === undefined;
    try {
      request ??= new PublishRequest(connection.allocateRequestId(), topic, connection.deadline());
      if (fresh) beginPublish(w, request.id, topic);
      writePublishMessage(w, message);
    } catch (error) {
      if (fresh) w.discardFrame();
      reject(error);
      return;
    }
    if (fresh) connection.track(request);
    request.callers.push({ resolve: resolve as (value: never) => void, reject, count: 1, batch: false });
    if (!small) w.closeAppendable();
    connection.scheduleFlush();
  });
}

/** Sends `messages` in one PUBLISH frame of their own. */
export function publishMany(connection: ClientConnection, topic: string, messages: WirePublishMessage[], asBroker = false): Promise<PublishResult[]> {
  if (messages.length === 0) return Promise.resolve([]);
  return new Promise<PublishResult[]>((resolve, reject) => {
    const w = connection.writer;
    let totalBytes = PUBLISH_FRAME_OVERHEAD_BYTES + topic.length * 3;
    for (const message of messages) totalBytes += messageBytesEstimate(message);
    if (totalBytes > w.frameBytesMax) {
      reject(new FerryError('BATCH_TOO_LARGE', `a batch of about ${totalBytes} bytes exceeds the server's frame limit of ${w.frameBytesMax}`));
      return;
    }
    const request = new PublishRequest(connection.allocateRequestId(), topic, connection.deadline());
    try {
      beginPublish(w, request.id, topic, asBroker);
      for (const message of messages) writePublishMessage(w, message);
    } catch (error) {
      w.discardFrame();
      reject(error);
      return;
    }
    w.closeAppendable();
    request.callers.push({ resolve: resolve as (value: never) => void, reject, count: messages.length, batch: true });
    connection.track(request);
  });
}

