/**
 * Password checks on threads of their own, at a lower CPU priority than the broker. A login's
 * scrypt is ~50–100 ms of a core and 32 MiB, on purpose; run on libuv's threadpool (crypto.scrypt)
 * it kept the broker's thread free but took a core at the broker's own priority, so a password
 * brute force still slowed every established client on a machine with few cores. Here each check
 * runs scrypt synchronously in a worker thread whose nice value is PASSWORD_THREAD_NICE: the
 * broker's thread (and whatever else runs at normal priority) is scheduled first, and a check
 * takes the CPU that is left. Unknown users are checked the same way against the decoy (the
 * authenticator's equal work for every name), so a check's time still tells nothing.
 *
 * Threads are started as checks need them, at most one per concurrent check (the authenticator
 * allows PASSWORD_CHECKS_CONCURRENT_MAX), kept for the next check, and never hold the process
 * open while idle. Where a thread cannot be started, a check runs on libuv's threadpool as before.
 */
import type { ScryptOptions } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { deriveOnThreadpool } from './password.js';

/**
 * The nice value of a password thread (0 is normal, 19 the lowest): 10 gives it about a tenth of
 * the CPU share of a normal-priority thread when both want the same core, and all of an idle one.
 */
export const PASSWORD_THREAD_NICE = 10;

/** The thread's code (plain JavaScript, evaluated: no module to resolve in any build). */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { scryptSync } = require('node:crypto');
const { getPriority, setPriority } = require('node:os');
const { readlinkSync } = require('node:fs');
try {
  // Linux keeps a nice value per thread: this thread's id names it.
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
  if (getPriority(tid) < workerData.nice) setPriority(tid, workerData.nice);
} catch {
  // Not Linux, or not allowed: the thread runs at the broker's priority.
}
parentPort.on('message', ({ id, password, salt, keyBytes, options }) => {
  try {
    const key = scryptSync(password, Buffer.from(salt), keyBytes, options);
    parentPort.postMessage({ id, key });
  } catch (error) {
    parentPort.postMessage({ id, error: String(error && error.message) });
  }
});
`;

interface Pending {
  resolve(key: Buffer): void;
  reject(error: Error): void;
}

interface PasswordThread {
  worker: Worker;
  pending: Map<number, Pending>;
}

export class PasswordThreads {
  private readonly idle: PasswordThread[] = [];
  private readonly all = new Set<PasswordThread>();
  private nextId = 1;
  private closed = false;

  /** scrypt of `password` on an idle thread (started if none is idle); a ScryptDerivation (password.ts). */
  readonly derive = (password: string, salt: Buffer, keyBytes: number, options: ScryptOptions): Promise<Buffer> => {
    const thread = this.closed ? null : (this.idle.pop() ?? this.start());
    if (thread === null) return deriveOnThreadpool(password, salt, keyBytes, options);
    const id = this.nextId++;
    return new Promise<Buffer>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.ref();
      thread.worker.postMessage({ id, password, salt, keyBytes, options });
    }).finally(() => {
      if (!this.all.has(thread)) return;
      if (thread.pending.size === 0) thread.worker.unref();
      this.idle.push(thread);
    });
  };

  /** Ends every thread; checks still running fail, later ones run on the threadpool. */
  close(): void {
    this.closed = true;
    for (const thread of this.all) void thread.worker.terminate();
    this.all.clear();
    this.idle.length = 0;
  }

  private start(): PasswordThread | null {
    let worker: Worker;
    try {
      // No execArgv: the thread's plain code needs none of the process's loaders (a TypeScript
      // loader would take hundreds of milliseconds to start in every thread).
      worker = new Worker(THREAD_SOURCE, { eval: true, execArgv: [], workerData: { nice: PASSWORD_THREAD_NICE } });
    } catch {
      return null;
    }
    const thread: PasswordThread = { worker, pending: new Map() };
    worker.unref();
    worker.on('message', (message: { id: number; key?: Uint8Array; error?: string }) => {
      const pending = thread.pending.get(message.id);
      if (pending === undefined) return;
      thread.pending.delete(message.id);
      if (message.key !== undefined) pending.resolve(Buffer.from(message.key));
      else pending.reject(new Error(message.error ?? 'password check failed'));
    });
    const fail = (error: Error): void => {
      this.all.delete(thread);
      const index = this.idle.indexOf(thread);
      if (index >= 0) this.idle.splice(index, 1);
      for (const pending of thread.pending.values()) pending.reject(error);
      thread.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', () => fail(new Error('the password thread ended')));
    this.all.add(thread);
    return thread;
  }
}
