/**
 * One process per data directory: an exclusive lock the operating system releases when the holder
 * dies, so a SIGKILL never blocks the restart (docs/STORAGE.md, "The data directory lock").
 *
 * On Linux the lock is a listening socket in the abstract namespace, named after the directory's
 * device and inode: binding it is atomic, a second bind fails with EADDRINUSE, and the kernel frees
 * the name with the process. The holder answers a connection with who it is. Elsewhere a lock file
 * created exclusively stands in, taken over when the process it names is gone.
 */
import { hostname } from 'node:os';
import { createServer, connect, type Server } from 'node:net';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors.js';

/** How long a contender waits for the holder to say who it is (a stopped holder never answers). */
const HOLDER_ANSWER_TIMEOUT_MS = 500;
/** The lock file of the non-Linux fallback, inside the data directory. */
export const LOCK_FILE = 'ferry.lock';
/** Bytes of a holder's answer read at most: a JSON line of pid, host and start time. */
const HOLDER_ANSWER_BYTES_MAX = 1024;

/** Who holds a data directory. */
export interface LockHolder {
  pid: number;
  host: string;
  /** When the holder took the lock (ISO 8601). */
  since: string;
}

export interface DirLock {
  readonly dir: string;
  readonly holder: LockHolder;
  /** Frees the lock; idempotent. */
  release(): Promise<void>;
}

/** Takes the lock on an existing directory, or fails at once with DATA_DIR_LOCKED naming the holder. */
export async function lockDir(dir: string): Promise<DirLock> {
  const me: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  return process.platform === 'linux' ? lockWithAbstractSocket(dir, me) : lockWithFile(dir, me);
}

export function dataDirLocked(dir: string, holder: LockHolder | null): FerryError {
  const who = holder === null ? 'another process (it did not say which: stopped, or starting)' : `process ${holder.pid} on ${holder.host} (since ${holder.since})`;
  return new FerryError('DATA_DIR_LOCKED', `data directory ${dir} is in use by ${who}; one broker per data directory: stop it, or give this one its own --dir`, {
    detail: holder === null ? { dir } : { dir, pid: holder.pid, host: holder.host, since: holder.since },
  });
}

async function lockWithAbstractSocket(dir: string, me: LockHolder): Promise<DirLock> {
  const { dev, ino } = await fsp.stat(dir, { bigint: true });
  const address = `\0ferry-data-dir/${dev}/${ino}`;
  const server = createServer({ allowHalfOpen: false }, (socket) => {
    socket.on('error', () => {});
    socket.end(JSON.stringify(me) + '\n');
  });
  try {
    await listen(server, address);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
    throw dataDirLocked(dir, await askHolder(address));
  }
  // The lock must not keep the process alive on its own.
  server.unref();
  return heldLock(dir, me, () => new Promise<void>((resolve) => server.close(() => resolve())));
}

/** A lock held by `me`, whose release (once, whatever the calls) runs `free`. */
function heldLock(dir: string, me: LockHolder, free: () => Promise<void>): DirLock {
  let released = false;
  return {
    dir,
    holder: me,
    release: async () => {
      if (released) return;
      released = true;
      await free();
    },
  };
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen({ path, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** The holder's answer, or null when it does not give one in time. */
function askHolder(address: string): Promise<LockHolder | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const socket = connect({ path: address });
    const finish = (holder: LockHolder | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(holder);
    };
    const timer = setTimeout(() => finish(null), HOLDER_ANSWER_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > HOLDER_ANSWER_BYTES_MAX) return finish(null);
      chunks.push(chunk);
    });
    socket.on('end', () => finish(parseHolder(Buffer.concat(chunks).toString('utf8'))));
    socket.on('error', () => finish(null));
  });
}

function parseHolder(text: string): LockHolder | null {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid !== 'number' || typeof value.host !== 'string' || typeof value.since !== 'string') return null;
    return { pid: value.pid, host: value.host, since: value.since };
  } catch {
    return null;
  }
}

/**
 * The fallback: `ferry.lock` created exclusively, holding the holder's JSON. A file left by a
 * process that died is taken over when it names this host and a pid that is not running.
 */
async function lockWithFile(dir: string, me: LockHolder): Promise<DirLock> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await fsp.open(path, 'wx', 0o600);
      try {
        await handle.writeFile(JSON.stringify(me) + '\n');
        await handle.datasync();
      } finally {
        await handle.close();
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = parseHolder(await fsp.readFile(path, 'utf8').catch(() => ''));
      if (attempt > 0 || holder === null || holder.host !== me.host || isRunning(holder.pid)) throw dataDirLocked(dir, holder);
      await fsp.unlink(path).catch(() => {});
    }
  }
  return heldLock(dir, me, () => fsp.unlink(path).catch(() => {}));
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
