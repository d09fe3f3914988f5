/**
 * The history of a chaos run: every operation of the chaos clients and every fault the harness
 * injects, one JSON object per line, one file per process (test/chaos/checker.ts reads them all).
 *
 * Messages are named by producer and per-producer sequence number, carried in the message value
 * (see encodeValue), so a delivery says which publish it is whatever offset it landed at.
 *
 * Times (`t`) are wall-clock milliseconds with a fraction (performance.timeOrigin + now()), so
 * that files written by different processes on one machine merge into one order. The broker's
 * clock may be jumped by a scenario; the clients' never is.
 *
 * Writes are buffered and flushed with one synchronous write; `flush()` before an action whose
 * record must survive a SIGKILL of this process (an ack, before it is sent) — the page cache
 * keeps what write(2) accepted when the process dies.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';

/** A flush is forced when this much is buffered, bounding memory between flushes. */
const BUFFER_BYTES_MAX = 256 * 1024;

export type DeliveryKind =
  /** A delivery to the queue group under test. */
  | 'group'
  /** A copy found in the dead-letter topic (by the final drain). */
  | 'dlq'
  /** A copy found by the final scan of the topic (a stream from earliest). */
  | 'scan';

/** Events; short keys keep multi-million-event histories small. */
export type HistoryEvent =
  /** Publish invoked: producer p, sequence s, attempt a (1 = first), delay d ms if delayed. */
  | { k: 'pi'; t: number; p: string; s: number; a: number; d?: number }
  /** Publish confirmed: stored at (part, off); dup = the broker answered from its dedup window. */
  | { k: 'po'; t: number; p: string; s: number; a: number; part: number; off: number; dup?: boolean }
  /** Publish failed: the broker rejected it (definitely not stored), with the error code. */
  | { k: 'pf'; t: number; p: string; s: number; a: number; code: string }
  /** Publish outcome unknown (timeout, connection lost, storage failed): it may or may not be stored. */
  | { k: 'pu'; t: number; p: string; s: number; a: number; code: string }
  /**
   * A message received. c = consumer, sub = its subscription instance, g = its connection
   * generation at receipt, dc = the broker's delivery count; p/s/a from the value (or bad = the
   * value did not parse).
   */
  | { k: 'd'; t: number; kind: DeliveryKind; c: string; sub: number; g: number; part: number; off: number; dc: number; p?: string; s?: number; a?: number; bad?: string }
  /** Ack sent for a delivery of (part, off) received in generation dg; g = the generation when sent. */
  | { k: 'ak'; t: number; c: string; sub: number; dg: number; g: number; part: number; off: number; p: string; s: number }
  | { k: 'nk'; t: number; c: string; sub: number; dg: number; g: number; part: number; off: number; p: string; s: number }
  /**
   * Barrier: subscription `sub` of consumer c was closed in generation g and the broker answered
   * UNSUBSCRIBE after settling every ack sent before it (ok) — or that cannot be shown (!ok, and
   * `why`: not attached, reconnected meanwhile, a settle error, or no answer to the UNSUBSCRIBE).
   */
  | { k: 'bar'; t: number; c: string; sub: number; g: number; ok: boolean; why?: 'detached' | 'reconnected' | 'settle-error' | 'unanswered' }
  /**
   * Consumer c's connection was lost, or (`moved`) the client moved one of its subscriptions to
   * another broker (a cluster client following the topic's leader); its generation is now g.
   */
  | { k: 'rc'; t: number; c: string; g: number; moved?: true }
  /** The broker rejected an ack or nack of consumer c (the consumer also fails that subscription's barrier). */
  | { k: 'se'; t: number; c: string; code: string }
  /**
   * Harness: broker started (listening) after recoveryMs; broker SIGKILLed. In a cluster run, `n`
   * names the broker (here and in pl, pz, cj).
   */
  | { k: 'bs'; t: number; recoveryMs: number; openMs: number; n?: string }
  | { k: 'bk'; t: number; n?: string }
  /** Harness: power loss emulated on the data directory after the kill at time `at`. */
  | { k: 'pl'; t: number; at: number; bytesCut: number; filesTorn: number; datasyncMsMax: number; n?: string }
  /** Harness: broker paused (SIGSTOP) from t for ms. */
  | { k: 'pz'; t: number; ms: number; n?: string }
  /** Harness: consumer process c SIGKILLed. */
  | { k: 'ck'; t: number; c: string }
  /** Harness: the broker's wall clock now runs `offsetMs` ahead of real time. */
  | { k: 'cj'; t: number; offsetMs: number; n?: string }
  /** Harness (cluster): one bit flipped in a stopped broker's segment file. */
  | { k: 'bf'; t: number; n: string; file: string; position: number; bit: number }
  /** Harness (cluster): a fault of the network or of etcd began (`kind`), with what it hit. */
  | { k: 'fx'; t: number; kind: string; detail: string }
  /** Harness (cluster): the network and etcd are whole again. */
  | { k: 'fh'; t: number }
  /** Harness (cluster): etcd names a new leader or epoch for the topic (polled: recorded late by up to a poll). */
  | { k: 'le'; t: number; leader: string | null; epoch: number }
  /** Harness: a phase boundary (e.g. 'drain', 'release', 'disk-full', 'space-back'). */
  | { k: 'ph'; t: number; name: string }
  /** Harness: resource sample of the broker process. */
  | { k: 'm'; t: number; rssBytes: number; openFiles: number; diskBytes: number }
  /** The final scan found partition `part` starting at offset `off`: retention removed what was below. */
  | { k: 'ls'; t: number; part: number; off: number };

export type EventOf<K extends HistoryEvent['k']> = Extract<HistoryEvent, { k: K }>;

/** The current time as history records it. */
export function nowT(): number {
  return performance.timeOrigin + performance.now();
}

export class HistoryWriter {
  private readonly fd: number;
  private buffer: string[] = [];
  private bufferedBytes = 0;
  private closed = false;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }

  record(event: HistoryEvent): void {
    if (this.closed) return;
    const line = JSON.stringify(event) + '\n';
    this.buffer.push(line);
    this.bufferedBytes += line.length;
    if (this.bufferedBytes >= BUFFER_BYTES_MAX) this.flush();
  }

  flush(): void {
    if (this.buffer.length === 0 || this.closed) return;
    const text = this.buffer.join('');
    this.buffer = [];
    this.bufferedBytes = 0;
    writeSync(this.fd, text);
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    closeSync(this.fd);
  }
}

/** Histories are read this much at a time: a file may be larger than the longest string V8 allows. */
const READ_CHUNK_BYTES = 8 * 1024 * 1024;

/** Calls `visit` for every event of one file, in write order; a last line cut by a SIGKILL is skipped. */
export function forEachEvent(path: string, visit: (event: HistoryEvent) => void): void {
  const fd = openSync(path, 'r');
  const decoder = new StringDecoder('utf8');
  const chunk = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let carry = '';
  const visitLine = (line: string): void => {
    if (line.length === 0) return;
    let event: HistoryEvent | null = null;
    try {
      event = JSON.parse(line) as HistoryEvent;
    } catch {
      // Only a line torn by a kill can fail to parse; its action had not happened yet.
    }
    if (event !== null) visit(event);
  };
  try {
    for (;;) {
      const bytesRead = readSync(fd, chunk, 0, READ_CHUNK_BYTES, null);
      if (bytesRead === 0) break;
      const text = carry + decoder.write(chunk.subarray(0, bytesRead));
      let start = 0;
      for (let end = text.indexOf('\n'); end >= 0; end = text.indexOf('\n', start)) {
        visitLine(text.slice(start, end));
        start = end + 1;
      }
      carry = text.slice(start);
    }
    visitLine(carry + decoder.end());
  } finally {
    closeSync(fd);
  }
}

/** Reads history files and merges them by time (a stable sort keeps each file's order for equal times). */
export function readHistories(paths: readonly string[]): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (const path of paths) forEachEvent(path, (event) => events.push(event));
  return events.sort((a, b) => a.t - b.t);
}

/** What a chaos message carries in its value. */
export interface MessageIdentity {
  p: string;
  s: number;
  a: number;
  /** Poison: every consumer nacks it, so it must end in the dead-letter topic. */
  x?: 1;
  /** Delayed by this many ms. */
  d?: number;
}

/** Padding to reach a realistic message size. */
const PAD = 'x'.repeat(4096);

export function encodeValue(identity: MessageIdentity, valueBytes: number): Buffer {
  const head = JSON.stringify(identity);
  const padBytes = Math.max(0, valueBytes - head.length - 8);
  return Buffer.from(JSON.stringify({ ...identity, pad: PAD.slice(0, Math.min(padBytes, PAD.length)) }));
}

export function decodeValue(value: Buffer): MessageIdentity | string {
  try {
    const parsed = JSON.parse(value.toString('utf8')) as Partial<MessageIdentity>;
    if (typeof parsed.p !== 'string' || !Number.isInteger(parsed.s) || !Number.isInteger(parsed.a)) return 'missing p, s or a';
    return parsed as MessageIdentity;
  } catch {
    return 'not JSON';
  }
}
