/**
 * The filesystem as the storage engine sees it: positional reads and writes, explicit durability
 * (datasync of a file, sync of a directory) and nothing else. The real implementation is
 * NodeFileSystem below; tests substitute test/sim/sim-fs.ts, which models the page cache so that
 * a simulated crash discards every byte that no datasync covered.
 */
import * as fsp from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import assert from 'node:assert/strict';
import { FerryError } from '../errors.js';
import { lockDir, type DirLock } from './dir-lock.js';

export type OpenMode =
  /** Read only; the file must exist. */
  | 'read'
  /** Read and write; the file must exist. */
  | 'readwrite'
  /** Read and write; created (empty) when missing, never truncated. */
  | 'create';

export interface FileHandle {
  readonly path: string;
  /**
   * Writes all of `data` at `position`. On failure (ENOSPC, EIO) it throws the system error; a
   * prefix of `data` may have reached the file, so the caller truncates back to `position`.
   */
  write(data: Uint8Array, position: number): Promise<void>;
  /** Reads up to `length` bytes at `position` into `buffer[offset..]`; returns the count (0 at end of file). */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** fdatasync: every byte written so far is durable when this resolves. */
  datasync(): Promise<void>;
  truncate(length: number): Promise<void>;
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface FileStat {
  size: number;
  isDirectory: boolean;
}

export interface FileSystem {
  open(path: string, mode: OpenMode): Promise<FileHandle>;
  readFile(path: string): Promise<Buffer>;
  /** Names (not paths) in a directory, in no particular order. */
  readdir(path: string): Promise<string[]>;
  mkdir(path: string): Promise<void>;
  rename(fromPath: string, toPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Removes an empty directory. */
  rmdir(path: string): Promise<void>;
  /** Stat of a path, or null when nothing is there. */
  stat(path: string): Promise<FileStat | null>;
  /** fsync of a directory: creations, renames and deletions in it are durable when this resolves. */
  syncDir(path: string): Promise<void>;
  /** Bytes free for an unprivileged writer on the filesystem holding `path`. */
  freeBytes(path: string): Promise<number>;
  /**
   * Takes the exclusive lock on an existing directory for this process, or fails with
   * DATA_DIR_LOCKED naming the holder. The lock ends with `release()` or with the process.
   */
  lockDir(path: string): Promise<DirLock>;
}

class NodeFileHandle implements FileHandle {
  constructor(
    readonly path: string,
    private readonly handle: fsp.FileHandle,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    let written = 0;
    while (written < data.byteLength) {
      const { bytesWritten } = await this.handle.write(data, written, data.byteLength - written, position + written);
      written += bytesWritten;
    }
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buffer, offset, length, position);
    return bytesRead;
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  truncate(length: number): Promise<void> {
    return this.handle.truncate(length);
  }

  async size(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

const OPEN_FLAGS: Record<OpenMode, number> = {
  read: fsConstants.O_RDONLY,
  readwrite: fsConstants.O_RDWR,
  create: fsConstants.O_RDWR | fsConstants.O_CREAT,
};

/**
 * Permission bits taken away from every file and directory the broker creates: by default all but
 * the owner's (files 0600, directories 0700), as the users file already is — messages are nobody
 * else's to read. `storage.umask` changes it (e.g. 027 lets a group read); the process umask still
 * applies on top.
 */
export const DATA_UMASK_DEFAULT = 0o077;
const FILE_MODE_FULL = 0o666;
const DIR_MODE_FULL = 0o777;

/** A umask written as octal digits (`077`, `0027`), or INVALID_ARGUMENT. */
export function parseUmask(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text.trim())) throw new FerryError('INVALID_ARGUMENT', `a umask is three octal digits such as 077 or 027, got ${JSON.stringify(text)}`);
  return Number.parseInt(text.trim(), 8);
}

export interface NodeFileSystemOptions {
  /** Bits removed from new files (0666) and directories (0777); default DATA_UMASK_DEFAULT. */
  umask?: number;
}

export class NodeFileSystem implements FileSystem {
  /** Mode of every file created (0600 by default). */
  readonly fileMode: number;
  /** Mode of every directory created (0700 by default). */
  readonly dirMode: number;

  constructor(options: NodeFileSystemOptions = {}) {
    const umask = options.umask ?? DATA_UMASK_DEFAULT;
    assert.ok(Number.isInteger(umask) && umask >= 0 && umask <= 0o777, 'umask is 0 to 0777');
    this.fileMode = FILE_MODE_FULL & ~umask;
    this.dirMode = DIR_MODE_FULL & ~umask;
  }

  async open(path: string, mode: OpenMode): Promise<FileHandle> {
    return new NodeFileHandle(path, await fsp.open(path, OPEN_FLAGS[mode], this.fileMode));
  }

  readFile(path: string): Promise<Buffer> {
    return fsp.readFile(path);
  }

  readdir(path: string): Promise<string[]> {
    return fsp.readdir(path);
  }

  async mkdir(path: string): Promise<void> {
    await fsp.mkdir(path, { recursive: true, mode: this.dirMode });
  }

  rename(fromPath: string, toPath: string): Promise<void> {
    return fsp.rename(fromPath, toPath);
  }

  unlink(path: string): Promise<void> {
    return fsp.unlink(path);
  }

  rmdir(path: string): Promise<void> {
    return fsp.rmdir(path);
  }

  async stat(path: string): Promise<FileStat | null> {
    try {
      const stats = await fsp.stat(path);
      return { size: stats.size, isDirectory: stats.isDirectory() };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
  }

  async syncDir(path: string): Promise<void> {
    const handle = await fsp.open(path, fsConstants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async freeBytes(path: string): Promise<number> {
    const stats = await fsp.statfs(path);
    return stats.bavail * stats.bsize;
  }

  lockDir(path: string): Promise<DirLock> {
    return lockDir(path);
  }
}
