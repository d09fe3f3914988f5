/**
 * A FileSystem that records what a power loss would leave (completed datasyncs and the lengths they
 * covered, creations, renames, directory syncs), so the chaos harness can cut a killed broker's
 * directory back to it.
 * The rest: docs/INTERNALS.md.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { stat as statPath } from 'node:fs/promises';
import type { DirLock } from './dir-lock.js';
import type { FileHandle, FileStat, FileSystem, OpenMode } from './fs.js';

/** The broker process wraps its FileSystem in a FaultFileSystem when this names a sidecar path. */
export const SYNC_LOG_ENV = 'FERRY_FAULT_SYNC_LOG';

/** One line of the sidecar log (JSON). `seq` numbers the entries of one log from 0. */
export type SyncLogEntry =
  /** A file that did not exist was created (its directory entry is not durable until a syncDir covers it). */
  | { op: 'create'; seq: number; ino: number; path: string }
  /** A datasync of `ino` completed; it covered `length` bytes and took `durationMs`. */
  | { op: 'datasync'; seq: number; ino: number; path: string; length: number; durationMs: number }
  /** `from` was renamed to `to`; `replaced` says whether `to` existed before. */
  | { op: 'rename'; seq: number; ino: number; from: string; to: string; replaced: boolean }
  | { op: 'mkdir'; seq: number; path: string }
  /** A directory sync completed; it covers the entries with seq < `since`. */
  | { op: 'syncdir'; seq: number; path: string; since: number };

/** Distributes Omit over the union, so each entry keeps its own fields. */
type Unsequenced<T> = T extends unknown ? Omit<T, 'seq'> : never;

/** Appends entries to the sidecar, one synchronous write each (see the module comment for why). */
export class SyncLog {
  private readonly fd: number;
  private nextSeq = 0;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'a');
  }

  /** The sequence number the next entry will get: a syncDir starting now covers entries below it. */
  get position(): number {
    return this.nextSeq;
  }

  append(entry: Unsequenced<SyncLogEntry>): void {
    const line = JSON.stringify({ ...entry, seq: this.nextSeq++ }) + '\n';
    writeSync(this.fd, line);
  }

  close(): void {
    closeSync(this.fd);
  }
}

class FaultFileHandle implements FileHandle {
  constructor(
    private readonly inner: FileHandle,
    private readonly ino: number,
    private readonly log: SyncLog,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  write(data: Uint8Array, position: number): Promise<void> {
    return this.inner.write(data, position);
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.inner.read(buffer, offset, length, position);
  }

  async datasync(): Promise<void> {
    // Measured before the sync starts: only bytes already written are covered by it.
    const length = await this.inner.size();
    const startedMs = performance.now();
    await this.inner.datasync();
    this.log.append({ op: 'datasync', ino: this.ino, path: this.inner.path, length, durationMs: performance.now() - startedMs });
  }

  truncate(length: number): Promise<void> {
    return this.inner.truncate(length);
  }

  size(): Promise<number> {
    return this.inner.size();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

export class FaultFileSystem implements FileSystem {
  constructor(
    private readonly inner: FileSystem,
    private readonly log: SyncLog,
  ) {}

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    const existed = mode === 'create' ? (await this.inner.stat(path)) !== null : true;
    const handle = await this.inner.open(path, mode);
    const { ino } = await statPath(path);
    if (!existed) this.log.append({ op: 'create', ino, path });
    return new FaultFileHandle(handle, ino, this.log);
  }

  readFile(path: string): Promise<Buffer> {
    return this.inner.readFile(path);
  }

  readdir(path: string): Promise<string[]> {
    return this.inner.readdir(path);
  }

  async mkdir(path: string): Promise<void> {
    const existed = (await this.inner.stat(path)) !== null;
    await this.inner.mkdir(path);
    if (!existed) this.log.append({ op: 'mkdir', path });
  }

  async rename(fromPath: string, toPath: string): Promise<void> {
    const { ino } = await statPath(fromPath);
    const replaced = (await this.inner.stat(toPath)) !== null;
    await this.inner.rename(fromPath, toPath);
    this.log.append({ op: 'rename', ino, from: fromPath, to: toPath, replaced });
  }

  unlink(path: string): Promise<void> {
    return this.inner.unlink(path);
  }

  rmdir(path: string): Promise<void> {
    return this.inner.rmdir(path);
  }

  stat(path: string): Promise<FileStat | null> {
    return this.inner.stat(path);
  }

  async syncDir(path: string): Promise<void> {
    const since = this.log.position;
    await this.inner.syncDir(path);
    this.log.append({ op: 'syncdir', path, since });
  }

  freeBytes(path: string): Promise<number> {
    return this.inner.freeBytes(path);
  }

  lockDir(path: string): Promise<DirLock> {
    return this.inner.lockDir(path);
  }
}
