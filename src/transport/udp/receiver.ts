/**
 * The UDP socket as the broker's thread sees it: a receiver thread (receiver-worker.ts) owns the
 * socket and posts its datagrams in batches (handoff.ts); each batch is unpacked here, its
 * datagrams handed one by one to `onDatagram`, and its bytes released from the handoff budget.
 * `close()` asks the receiver to stop, takes the batch it posts last, and waits for the thread to
 * end (terminating it when it does not end in time), so nothing of it outlives the server. A thread
 * that ends unasked after it listened (a bug, its heap's limit) is reported through `onEnded`; the
 * server starts a new one (server.ts).
 */
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../../platform/logger.js';
import { siblingModuleUrl, startModuleWorker } from '../../platform/module-worker.js';
import { HandoffBudget, unpackBatch, UDP_HANDOFF_BYTES_MAX, type DatagramBatch, type ReceiverCommand, type ReceiverEvent, type ReceiverSettings } from './handoff.js';
import type { DatagramCounts } from './outcomes.js';

/** How long close() waits for the receiver to post its last batch and end before terminating it. */
const RECEIVER_CLOSE_MS_MAX = 5_000;
/**
 * The receiver asks to run at this nice value, for its thread alone, so that on a busy machine it
 * is woken before the threads it shares the cores with, the broker's own among them: it does little
 * per datagram, and every wait beyond what the receive buffer covers is loss. Lowering a nice value
 * needs privilege (CAP_SYS_NICE, or RLIMIT_NICE: systemd's LimitNICE=, set in
 * deploy/systemd/ferry.service); without it the receiver keeps the process's value.
 */
export const UDP_RECEIVER_NICE = -10;
/** The receiver's heap: it holds one packing buffer and the datagrams of one socket read, so a small one. */
const RECEIVER_OLD_GENERATION_MB = 64;

export interface UdpAddress {
  host: string;
  port: number;
  /** What the kernel granted (Linux reports twice the usable size). */
  receiveBufferBytes: number;
  /** The receiver thread's nice value (UDP_RECEIVER_NICE when the process may lower it, else the process's). */
  receiverNice: number;
}

export interface UdpReceiverOptions {
  host: string;
  port: number;
  receiveBufferBytes: number;
  datagramBytesMax: number;
  /** Bytes packed by the receiver and not yet taken here, at most (default UDP_HANDOFF_BYTES_MAX). */
  handoffBytesMax?: number;
  counts: DatagramCounts;
  logger: Logger;
  /** Each datagram received, with its source address; called on this thread, in the order received. */
  onDatagram: (datagram: Buffer, source: string) => void;
  /** The thread ended after it listened without close() asking it to (its socket is closed with it). */
  onEnded?: (exitCode: number) => void;
}

export class UdpReceiver {
  private readonly budget: HandoffBudget;
  private exited: Promise<void> = Promise.resolve();
  private closing = false;

  private constructor(
    private readonly worker: Worker,
    private readonly options: UdpReceiverOptions,
    budget: HandoffBudget,
  ) {
    this.budget = budget;
  }

  /** Starts the receiver thread and binds its socket; rejects with the bind's error (EADDRINUSE, …). */
  static open(options: UdpReceiverOptions): Promise<{ receiver: UdpReceiver; address: UdpAddress }> {
    const budget = new HandoffBudget(options.handoffBytesMax ?? UDP_HANDOFF_BYTES_MAX);
    const settings: ReceiverSettings = {
      host: options.host,
      port: options.port,
      receiveBufferBytes: options.receiveBufferBytes,
      datagramBytesMax: options.datagramBytesMax,
      countsBuffer: options.counts.buffer,
      handoffBuffer: budget.buffer,
      handoffBytesMax: budget.bytesMax,
      nice: UDP_RECEIVER_NICE,
    };
    const worker = startModuleWorker(siblingModuleUrl(import.meta.url, 'receiver-worker'), {
      workerData: settings,
      resourceLimits: { maxOldGenerationSizeMb: RECEIVER_OLD_GENERATION_MB },
    });
    const receiver = new UdpReceiver(worker, options, budget);
    receiver.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    return new Promise((resolve, reject) => {
      const failed = (error: Error): void => {
        void worker.terminate();
        reject(error);
      };
      worker.once('error', failed);
      // Ending without a word (no bind result, no error) still settles open(); after listening this is a no-op.
      worker.once('exit', (code) => reject(new Error(`the UDP receiver thread ended before it listened (exit code ${code})`)));
      worker.on('message', (event: ReceiverEvent) => {
        if (event.kind === 'listening') {
          worker.off('error', failed);
          worker.on('error', receiver.failed);
          worker.once('exit', receiver.ended);
          resolve({ receiver, address: { host: event.host, port: event.port, receiveBufferBytes: event.receiveBufferBytes, receiverNice: event.nice } });
        } else if (event.kind === 'bind_failed') {
          failed(Object.assign(new Error(event.message), { code: event.code }));
        } else {
          receiver.handle(event);
        }
      });
    });
  }

  /** Bytes the receiver has packed that this thread has not taken yet. */
  get handoffBytes(): number {
    return this.budget.used;
  }

  /** Stops receiving: the receiver's last batch is taken, then its thread ends (Node delivers its messages before its exit). */
  async close(): Promise<void> {
    this.closing = true;
    this.worker.postMessage({ kind: 'close' } satisfies ReceiverCommand);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), RECEIVER_CLOSE_MS_MAX)));
    const tooLate = await Promise.race([this.exited.then(() => false), late]);
    clearTimeout(timer);
    if (!tooLate) return;
    this.options.logger.warn('udp.receiver_close_timeout', { waitedMs: RECEIVER_CLOSE_MS_MAX });
    await this.worker.terminate();
  }

  private handle(event: Exclude<ReceiverEvent, { kind: 'listening' | 'bind_failed' }>): void {
    if (event.kind === 'batch') this.take(event);
    else if (event.kind === 'socket_error') this.options.logger.warn('udp.socket_error', { error: event.message, code: event.code });
  }

  private take(batch: DatagramBatch): void {
    try {
      unpackBatch(batch, this.options.onDatagram);
    } finally {
      this.budget.release(batch.bytes.byteLength);
    }
  }

  private readonly failed = (error: Error): void => {
    this.options.logger.error('udp.receiver_failed', { error });
  };

  private readonly ended = (exitCode: number): void => {
    if (!this.closing) this.options.onEnded?.(exitCode);
  };
}
