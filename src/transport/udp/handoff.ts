/**
 * How datagrams cross from the receiver thread (receiver-worker.ts) to the broker's thread: packed
 * into batches, one transferable ArrayBuffer per batch (one postMessage, no copy on arrival), and
 * bounded by a byte count both threads see (HandoffBudget, over shared memory).
 *
 * A batch is a run of entries, each `u16 source index, u16 length, the datagram's bytes`, with the
 * batch's source addresses listed once beside it. The receiver reserves each datagram's entry bytes
 * before packing it and the broker's thread releases a batch's bytes once it has taken every
 * datagram out (into the ingest batch, or dropped): what is packed and not yet taken is at most
 * UDP_HANDOFF_BYTES_MAX, so a stalled broker thread costs dropped datagrams, never memory without
 * end.
 */
import { UDP_DATAGRAM_BYTES_MAX } from '../../protocol/udp-datagram.js';

/**
 * Datagram bytes packed by the receiver and not yet taken by the broker's thread, at most. 16 MiB
 * is about 300 ms of 100,000 512-byte datagrams a second: longer than any stall of a healthy
 * broker thread (a GC, a burst of fsync completions), short enough to be a bounded loss of memory
 * when it stalls for good. Past it the receiver drops datagrams as `overloaded`.
 */
export const UDP_HANDOFF_BYTES_MAX = 16 * 1024 * 1024;
/** Bytes of one batch's packing buffer at most: room for the longest datagram, and few posts at high rates. */
export const UDP_BATCH_BYTES = 256 * 1024;
/**
 * A batch is posted this long after its first datagram at the latest (or as soon as it is full): the
 * broker's thread handles one message per batch instead of one callback per datagram, for 2 ms
 * more latency on a transport that confirms nothing.
 */
export const UDP_BATCH_WAIT_MS = 2;
/** Before each datagram: its source's index in the batch's list, and its length (both u16). */
export const UDP_ENTRY_HEADER_BYTES = 4;
/** Source addresses one batch lists at most (their index is a u16). */
const BATCH_SOURCES_MAX = 0xffff;

/** One batch as posted: its entries (transferred, not copied) and the source addresses they index. */
export interface DatagramBatch {
  bytes: ArrayBuffer;
  sources: string[];
}

/** The packing buffer of the receiver thread; reused from batch to batch, each batch posted as an exact-size copy. */
export class BatchPacker {
  private readonly staging = Buffer.allocUnsafeSlow(UDP_BATCH_BYTES);
  private used = 0;
  private sourceIndexes = new Map<string, number>();
  private sources: string[] = [];

  get empty(): boolean {
    return this.used === 0;
  }

  /** Whether a datagram of `length` bytes fits beside what is packed (when not, take() the batch first). */
  fits(length: number): boolean {
    return this.used + UDP_ENTRY_HEADER_BYTES + length <= UDP_BATCH_BYTES && this.sources.length < BATCH_SOURCES_MAX;
  }

  /** Packs one datagram (at most UDP_DATAGRAM_BYTES_MAX; call fits() first). */
  add(datagram: Uint8Array, source: string): void {
    let index = this.sourceIndexes.get(source);
    if (index === undefined) {
      index = this.sources.length;
      this.sources.push(source);
      this.sourceIndexes.set(source, index);
    }
    const at = this.used;
    this.staging.writeUInt16BE(index, at);
    this.staging.writeUInt16BE(datagram.length, at + 2);
    this.staging.set(datagram, at + UDP_ENTRY_HEADER_BYTES);
    this.used = at + UDP_ENTRY_HEADER_BYTES + datagram.length;
  }

  /** The batch packed so far, and an empty packer; null when nothing is packed. */
  take(): DatagramBatch | null {
    if (this.used === 0) return null;
    const bytes = this.staging.buffer.slice(this.staging.byteOffset, this.staging.byteOffset + this.used);
    const batch = { bytes, sources: this.sources };
    this.used = 0;
    this.sources = [];
    this.sourceIndexes = new Map();
    return batch;
  }
}

/** Hands each datagram of `batch` to `each`, as a view of the batch's memory; throws on a batch this module did not pack. */
export function unpackBatch(batch: DatagramBatch, each: (datagram: Buffer, source: string) => void): void {
  const bytes = Buffer.from(batch.bytes);
  let at = 0;
  while (at < bytes.length) {
    const source = batch.sources[bytes.readUInt16BE(at)];
    const length = bytes.readUInt16BE(at + 2);
    const start = at + UDP_ENTRY_HEADER_BYTES;
    if (source === undefined || length > UDP_DATAGRAM_BYTES_MAX || start + length > bytes.length) throw new RangeError(`a datagram batch broken at byte ${at}`);
    at = start + length;
    each(bytes.subarray(start, at), source);
  }
}

/** Entry bytes one datagram takes in a batch and in the handoff budget. */
export function entryBytes(datagram: Uint8Array): number {
  return UDP_ENTRY_HEADER_BYTES + datagram.length;
}

/**
 * The bytes packed and not yet taken, in memory both threads share: the receiver reserves, the
 * broker's thread releases. Atomic adds, so neither waits for the other.
 */
export class HandoffBudget {
  readonly buffer: SharedArrayBuffer;
  private readonly bytes: Int32Array;

  /** A new budget of `bytesMax`, or (with `buffer`) the one another thread made. */
  constructor(
    readonly bytesMax: number,
    buffer?: SharedArrayBuffer,
  ) {
    this.buffer = buffer ?? new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
    this.bytes = new Int32Array(this.buffer);
  }

  /** Bytes packed and not yet taken now. */
  get used(): number {
    return Atomics.load(this.bytes, 0);
  }

  /** Takes `bytes` from the budget; false (nothing taken) when they do not fit. */
  reserve(bytes: number): boolean {
    if (Atomics.load(this.bytes, 0) + bytes > this.bytesMax) return false;
    Atomics.add(this.bytes, 0, bytes);
    return true;
  }

  release(bytes: number): void {
    Atomics.sub(this.bytes, 0, bytes);
  }
}

/** What the receiver thread is started with (its workerData). */
export interface ReceiverSettings {
  host: string;
  port: number;
  /** The socket's receive buffer asked of the kernel. */
  receiveBufferBytes: number;
  /** Longer datagrams are dropped (and counted) by the receiver as `oversized`. */
  datagramBytesMax: number;
  /** DatagramCounts.buffer: the receiver counts its drops into the broker's counters. */
  countsBuffer: SharedArrayBuffer;
  /** HandoffBudget.buffer, and its bytesMax. */
  handoffBuffer: SharedArrayBuffer;
  handoffBytesMax: number;
  /** The nice value the receiver asks for its thread (kept at the process's when not permitted). */
  nice: number;
}

/** What the receiver thread posts: `listening` or `bind_failed` first, then batches and socket errors; asked to close, its last batch before it ends. */
export type ReceiverEvent =
  | { kind: 'listening'; host: string; port: number; receiveBufferBytes: number; nice: number }
  | { kind: 'bind_failed'; message: string; code: string | undefined }
  | ({ kind: 'batch' } & DatagramBatch)
  | { kind: 'socket_error'; message: string; code: string | undefined };

/** What the broker's thread posts to the receiver: only the request to close (pack and post what is left, then end). */
export interface ReceiverCommand {
  kind: 'close';
}
