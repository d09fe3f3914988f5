/**
 * An in-memory FileSystem that models the page cache, so that tests can crash a "machine" and see
 * exactly what a real disk could have kept:
 *
 * - A file has current bytes (what reads see) and durable bytes (as of its last datasync).
 * - A directory has current entries (create, rename, unlink change them) and durable entries (as
 *   of its last syncDir). A file or directory whose entry was never made durable is gone after a
 *   crash, whatever was synced inside it.
 * - `crash()` keeps only durable state. With `tearLastWrite`, a random-length prefix of each
 *   file's last unsynced write survives as well (a torn sector write), optionally ending in garbage.
 *   Handles from before the crash fail with EBADF, as do calls through a `session()` view, which
 *   stands for the killed process.
 * - `cutPowerAfter(n)`: the disk stops after n more operations (later ones never complete), so a
 *   crash can land between any two I/O steps even of work that runs within one event-loop turn.
 * - Faults: a capacity (a write past it stores the prefix that fits, then throws ENOSPC) and
 *   `failNext(op, code)` for one-off errors such as EIO.
 *
 * Deterministic: all randomness comes from the `random` functions the caller passes in.
 */
import assert from 'node:assert/strict';
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import { dataDirLocked, type DirLock, type LockHolder } from '../../src/platform/dir-lock.js';
import type { FileHandle, FileStat, FileSystem, OpenMode } from '../../src/platform/fs.js';

/** Reported by `freeBytes` when no capacity is set: more than any test writes. */
const UNLIMITED_FREE_BYTES = 2 ** 40;
/** A torn write ends in at most this much garbage: one 4 KiB page written half-way is the usual damage. */
const TORN_GARBAGE_BYTES_MAX = 4096;

export type SimFsOp =
  | 'open' | 'read' | 'write' | 'datasync' | 'truncate' | 'rename' | 'unlink' | 'rmdir' | 'syncDir' | 'readdir' | 'mkdir' | 'readFile';

export interface SimFsOptions {
  /** Total bytes files may hold; writes past it fail with ENOSPC. Default: unlimited. */
  capacityBytes?: number;
  /**
   * Source of randomness for `asyncTurnsMax`. Seed it (test/sim/random.ts) to replay a run.
   */
  random?: () => number;
  /**
   * Every operation first waits a random number (0..this) of microtask turns, so that concurrent
   * operations complete in varying orders, as they do on a thread pool. Default 0: call order.
   */
  asyncTurnsMax?: number;
}

export interface CrashOptions {
  /** Keep a random-length prefix of each file's last unsynced write. */
  tearLastWrite?: boolean;
  /** With tearing: the surviving prefix may end in random bytes instead of the data written. */
  garbage?: boolean;
  /** Decides tear lengths and garbage; seed it to replay. */
  random: () => number;
}

export interface CrashReport {
  /** Operations that were started after a `cutPowerAfter` point and so never completed. */
  operationsCut: number;
  /** Paths (as of before the crash) whose entry was not durable and so vanished. */
  pathsLost: string[];
  /** Files that kept a torn prefix of their last write, with the bytes kept. */
  torn: { path: string; position: number; bytesKept: number; garbageBytes: number }[];
}

interface FileNode {
  kind: 'file';
  id: number;
  data: Uint8Array;
  size: number;
  durable: Uint8Array;
  durableSize: number;
  /** Lowest position changed since the last datasync (Infinity when clean). */
  dirtyFrom: number;
  /** The last write since the last datasync, for tearing. */
  lastWrite: { position: number; data: Uint8Array } | null;
  links: number;
  openHandles: number;
  /** Counted in `usedBytes` (linked or open). */
  allocated: boolean;
}

interface DirNode {
  kind: 'dir';
  current: Map<string, Node>;
  durable: Map<string, Node>;
}

type Node = FileNode | DirNode;

interface Fault {
  op: SimFsOp;
  code: string;
  pathIncludes: string | undefined;
}

export function fsError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: simulated ${syscall} '${path}'`);
  error.code = code;
  error.syscall = syscall;
  error.path = path;
  const errno = (osConstants.errno as Record<string, number | undefined>)[code];
  if (errno !== undefined) error.errno = -errno;
  return error;
}

function grow(bytes: Uint8Array, sizeMin: number): Uint8Array {
  if (bytes.byteLength >= sizeMin) return bytes;
  const grown = new Uint8Array(Math.max(sizeMin, bytes.byteLength * 2, 256));
  grown.set(bytes);
  return grown;
}

export class SimFileSystem implements FileSystem {
  private root: DirNode = { kind: 'dir', current: new Map(), durable: new Map() };
  private capacityBytes: number;
  private usedBytes = 0;
  private nextId = 1;
  private faults: Fault[] = [];
  /** Operations left before the power is cut (see cutPowerAfter); null: no cut planned. */
  private opsUntilCut: number | null = null;
  private operationsCut = 0;
  /** Incremented by every crash; handles and sessions of an older boot are dead. */
  private boot = 0;
  private readonly random: () => number;
  private readonly asyncTurnsMax: number;
  /** Directory locks by path, with the boot that took them: a crash (the process dying) frees them all. */
  private readonly locks = new Map<string, { boot: number; holder: LockHolder }>();
  private nextLockPid = 1;
  /** Operation counts, for tests that check how often the engine syncs. */
  readonly counts: Record<SimFsOp, number> = {
    open: 0, read: 0, write: 0, datasync: 0, truncate: 0, rename: 0, unlink: 0, rmdir: 0, syncDir: 0, readdir: 0, mkdir: 0, readFile: 0,
  };

  constructor(options: SimFsOptions = {}) {
    this.capacityBytes = options.capacityBytes ?? Infinity;
    this.random = options.random ?? Math.random;
    this.asyncTurnsMax = options.asyncTurnsMax ?? 0;
    assert.ok(this.asyncTurnsMax === 0 || options.random !== undefined, 'asyncTurnsMax needs a seeded random');
  }

  // ---- fault injection and inspection -------------------------------------------------------

  /** Changes the capacity (e.g. to free space again after ENOSPC). */
  setCapacity(capacityBytes: number): void {
    this.capacityBytes = capacityBytes;
  }

  /** Bytes the files hold now (what counts against the capacity). */
  get used(): number {
    return this.usedBytes;
  }

  get capacity(): number {
    return this.capacityBytes;
  }

  /** Injected faults that have not fired yet. */
  faultsPending(): number {
    return this.faults.length;
  }

  /** The next `op` (on a path containing `pathIncludes`, if given) fails with `code`, having done nothing. */
  failNext(op: SimFsOp, code: string, pathIncludes?: string): void {
    this.faults.push({ op, code, pathIncludes });
  }

  /**
   * The power goes out after `operations` more operations: every later one never completes, as
   * if the machine stopped right there. Call `crash()` afterwards to see what the disk kept. This
   * is how a test crashes between any two I/O steps of work that runs inside one event-loop turn.
   */
  cutPowerAfter(operations: number): void {
    assert.ok(Number.isInteger(operations) && operations >= 0);
    this.opsUntilCut = operations;
  }

  /** Operations that have hung since the planned power cut (they will never complete). */
  get operationsCutSoFar(): number {
    return this.operationsCut;
  }

  /** A FileSystem bound to the current boot: after the next crash every call on it fails with EBADF. */
  session(): FileSystem {
    const boot = this.boot;
    return {
      open: (path, mode) => this.doOpen(path, mode, boot),
      readFile: (path) => this.doReadFile(path, boot),
      readdir: (path) => this.doReaddir(path, boot),
      mkdir: (path) => this.doMkdir(path, boot),
      rename: (from, to) => this.doRename(from, to, boot),
      unlink: (path) => this.doUnlink(path, boot),
      rmdir: (path) => this.doRmdir(path, boot),
      stat: (path) => this.doStat(path, boot),
      syncDir: (path) => this.doSyncDir(path, boot),
      freeBytes: (path) => this.doFreeBytes(path, boot),
      lockDir: (path) => this.doLockDir(path, boot),
    };
  }

  /** Bytes of a file: what reads see now, or what a crash would keep (without tearing). */
  fileBytes(path: string, which: 'current' | 'durable' = 'current'): Buffer | null {
    const node = this.lookup(path, which);
    if (node === null || node.kind !== 'file') return null;
    return which === 'current' ? Buffer.from(node.data.subarray(0, node.size)) : Buffer.from(node.durable.subarray(0, node.durableSize));
  }

  /** Overwrites bytes of a file in place, durably, bypassing faults and capacity: bit rot for recovery tests. */
  damage(path: string, position: number, bytes: Uint8Array): void {
    const node = this.lookup(path, 'current');
    assert.ok(node !== null && node.kind === 'file', `no file at ${path}`);
    assert.ok(position + bytes.byteLength <= node.size, 'damage stays inside the file');
    node.data.set(bytes, position);
    if (position < node.durableSize) node.durable.set(bytes.subarray(0, node.durableSize - position), position);
  }

  /**
   * The machine loses power: only durable state stays (plus torn prefixes if asked). Open handles
   * and sessions from before are dead; this object goes on with the surviving state.
   */
  crash(options: CrashOptions): CrashReport {
    const report: CrashReport = { operationsCut: this.operationsCut, pathsLost: [], torn: [] };
    this.boot++;
    this.faults = [];
    this.opsUntilCut = null;
    this.operationsCut = 0;
    this.usedBytes = 0;
    const seen = new Set<FileNode>();
    const visit = (dir: DirNode, dirPath: string): void => {
      for (const [name, node] of dir.current) {
        if (dir.durable.get(name) !== node) report.pathsLost.push(posix.join(dirPath, name));
      }
      dir.current = new Map(dir.durable);
      for (const name of [...dir.current.keys()].sort()) {
        const node = dir.current.get(name)!;
        const path = posix.join(dirPath, name);
        if (node.kind === 'dir') {
          visit(node, path);
        } else {
          if (!seen.has(node)) {
            seen.add(node);
            this.restoreFile(node, path, options, report);
          }
          node.links++;
        }
      }
    };
    visit(this.root, '/');
    for (const file of seen) this.usedBytes += file.size;
    return report;
  }

  private restoreFile(file: FileNode, path: string, options: CrashOptions, report: CrashReport): void {
    const lastWrite = file.lastWrite;
    file.data = new Uint8Array(file.durable.subarray(0, file.durableSize));
    file.size = file.durableSize;
    file.dirtyFrom = Infinity;
    file.lastWrite = null;
    file.openHandles = 0;
    file.links = 0;
    file.allocated = true;
    if (options.tearLastWrite !== true || lastWrite === null) return;
    const bytesKept = Math.floor(options.random() * (lastWrite.data.byteLength + 1));
    if (bytesKept === 0) return;
    const kept = new Uint8Array(lastWrite.data.subarray(0, bytesKept));
    let garbageBytes = 0;
    if (options.garbage === true) {
      garbageBytes = Math.floor(options.random() * (Math.min(bytesKept, TORN_GARBAGE_BYTES_MAX) + 1));
      for (let i = bytesKept - garbageBytes; i < bytesKept; i++) kept[i] = Math.floor(options.random() * 256);
    }
    // A write past the durable end leaves a hole of zeros: the size reached disk, the earlier data did not.
    this.storeBytes(file, kept, lastWrite.position);
    // What survived the crash is on the disk: durable from now on.
    file.durable = new Uint8Array(file.data.subarray(0, file.size));
    file.durableSize = file.size;
    file.dirtyFrom = Infinity;
    report.torn.push({ path, position: lastWrite.position, bytesKept, garbageBytes });
  }

  // ---- FileSystem: these act on whatever boot is current ---------------------------------------

  open(path: string, mode: OpenMode): Promise<FileHandle> {
    return this.doOpen(path, mode, null);
  }
  readFile(path: string): Promise<Buffer> {
    return this.doReadFile(path, null);
  }
  readdir(path: string): Promise<string[]> {
    return this.doReaddir(path, null);
  }
  mkdir(path: string): Promise<void> {
    return this.doMkdir(path, null);
  }
  rename(fromPath: string, toPath: string): Promise<void> {
    return this.doRename(fromPath, toPath, null);
  }
  unlink(path: string): Promise<void> {
    return this.doUnlink(path, null);
  }
  rmdir(path: string): Promise<void> {
    return this.doRmdir(path, null);
  }
  stat(path: string): Promise<FileStat | null> {
    return this.doStat(path, null);
  }
  syncDir(path: string): Promise<void> {
    return this.doSyncDir(path, null);
  }
  freeBytes(path: string): Promise<number> {
    return this.doFreeBytes(path, null);
  }
  lockDir(path: string): Promise<DirLock> {
    return this.doLockDir(path, null);
  }

  /** Whether a live process (this boot) holds the lock on `path`. */
  isLocked(path: string): boolean {
    return this.locks.get(posix.normalize(path))?.boot === this.boot;
  }

  // ---- the operations; `boot` is the session's boot, or null for the current one -------------

  private async doLockDir(path: string, boot: number | null): Promise<DirLock> {
    if (boot !== null && boot !== this.boot) throw fsError('EBADF', 'lockDir', path);
    const key = posix.normalize(path);
    if ((await this.doStat(key, boot))?.isDirectory !== true) throw fsError('ENOENT', 'lockDir', path);
    const held = this.locks.get(key);
    if (held !== undefined && held.boot === this.boot) throw dataDirLocked(path, held.holder);
    // Each lock stands for a process of its own: pids tell two holders apart in messages.
    const holder: LockHolder = { pid: this.nextLockPid++, host: 'sim', since: new Date(0).toISOString() };
    const entry = { boot: this.boot, holder };
    this.locks.set(key, entry);
    return {
      dir: path,
      holder,
      release: async () => {
        if (this.locks.get(key) === entry) this.locks.delete(key);
      },
    };
  }

  private async doOpen(path: string, mode: OpenMode, boot: number | null): Promise<FileHandle> {
    await this.enter('open', 'open', path, boot);
    const { dir, name } = this.parent(path, 'open');
    let node = dir.current.get(name);
    if (node === undefined) {
      if (mode !== 'create') throw fsError('ENOENT', 'open', path);
      node = {
        kind: 'file', id: this.nextId++, data: new Uint8Array(0), size: 0, durable: new Uint8Array(0), durableSize: 0,
        dirtyFrom: Infinity, lastWrite: null, links: 1, openHandles: 0, allocated: true,
      };
      dir.current.set(name, node);
    }
    if (node.kind === 'dir') throw fsError('EISDIR', 'open', path);
    node.openHandles++;
    return new SimFileHandle(this, posix.resolve('/', path), node, this.boot, mode === 'read');
  }

  private async doReadFile(path: string, boot: number | null): Promise<Buffer> {
    await this.enter('readFile', 'open', path, boot);
    const node = this.lookup(path, 'current');
    if (node === null) throw fsError('ENOENT', 'open', path);
    if (node.kind === 'dir') throw fsError('EISDIR', 'read', path);
    return Buffer.from(node.data.subarray(0, node.size));
  }

  private async doReaddir(path: string, boot: number | null): Promise<string[]> {
    await this.enter('readdir', 'scandir', path, boot);
    const node = this.lookup(path, 'current');
    if (node === null) throw fsError('ENOENT', 'scandir', path);
    if (node.kind !== 'dir') throw fsError('ENOTDIR', 'scandir', path);
    return [...node.current.keys()];
  }

  /** Like `mkdir -p`: creates missing parents, and an existing directory is not an error. */
  private async doMkdir(path: string, boot: number | null): Promise<void> {
    await this.enter('mkdir', 'mkdir', path, boot);
    let dir = this.root;
    for (const name of this.split(path)) {
      let next = dir.current.get(name);
      if (next === undefined) {
        next = { kind: 'dir', current: new Map(), durable: new Map() };
        dir.current.set(name, next);
      }
      if (next.kind !== 'dir') throw fsError('ENOTDIR', 'mkdir', path);
      dir = next;
    }
  }

  private async doRename(fromPath: string, toPath: string, boot: number | null): Promise<void> {
    await this.enter('rename', 'rename', fromPath, boot);
    const from = this.parent(fromPath, 'rename');
    const to = this.parent(toPath, 'rename');
    const node = from.dir.current.get(from.name);
    if (node === undefined) throw fsError('ENOENT', 'rename', fromPath);
    const replaced = to.dir.current.get(to.name);
    if (replaced === node) return;
    if (replaced !== undefined && replaced.kind === 'dir') throw fsError('EISDIR', 'rename', toPath);
    from.dir.current.delete(from.name);
    to.dir.current.set(to.name, node);
    if (replaced !== undefined) this.dropLink(replaced);
  }

  private async doUnlink(path: string, boot: number | null): Promise<void> {
    await this.enter('unlink', 'unlink', path, boot);
    const { dir, name } = this.parent(path, 'unlink');
    const node = dir.current.get(name);
    if (node === undefined) throw fsError('ENOENT', 'unlink', path);
    if (node.kind === 'dir') throw fsError('EISDIR', 'unlink', path);
    dir.current.delete(name);
    this.dropLink(node);
  }

  private async doRmdir(path: string, boot: number | null): Promise<void> {
    await this.enter('rmdir', 'rmdir', path, boot);
    const { dir, name } = this.parent(path, 'rmdir');
    const node = dir.current.get(name);
    if (node === undefined) throw fsError('ENOENT', 'rmdir', path);
    if (node.kind !== 'dir') throw fsError('ENOTDIR', 'rmdir', path);
    if (node.current.size > 0) throw fsError('ENOTEMPTY', 'rmdir', path);
    dir.current.delete(name);
  }

  private async doStat(path: string, boot: number | null): Promise<FileStat | null> {
    await this.enter(null, 'stat', path, boot);
    const node = this.lookup(path, 'current');
    if (node === null) return null;
    return node.kind === 'dir' ? { size: 0, isDirectory: true } : { size: node.size, isDirectory: false };
  }

  private async doSyncDir(path: string, boot: number | null): Promise<void> {
    await this.enter('syncDir', 'fsync', path, boot);
    const node = this.lookup(path, 'current');
    if (node === null) throw fsError('ENOENT', 'open', path);
    if (node.kind !== 'dir') throw fsError('ENOTDIR', 'fsync', path);
    node.durable = new Map(node.current);
  }

  private async doFreeBytes(path: string, boot: number | null): Promise<number> {
    await this.enter(null, 'statfs', path, boot);
    if (this.lookup(path, 'current') === null) throw fsError('ENOENT', 'statfs', path);
    return this.capacityBytes === Infinity ? UNLIMITED_FREE_BYTES : Math.max(0, this.capacityBytes - this.usedBytes);
  }

  // ---- used by SimFileHandle ----------------------------------------------------------------

  /** @internal Waits its turn, then checks the handle is alive and applies any injected fault. */
  async handleOp(handle: SimFileHandle, op: SimFsOp | null, syscall: string): Promise<FileNode> {
    await this.jitter();
    await this.powerCheck();
    if (handle.closed || handle.boot !== this.boot) throw fsError('EBADF', syscall, handle.path);
    if (op !== null) this.takeFault(op, handle.path);
    return handle.node;
  }

  /** @internal Stores as much of `data` as capacity allows; throws ENOSPC if that is not all of it. */
  writeFile(file: FileNode, data: Uint8Array, position: number, path: string): void {
    const growthBytes = Math.max(0, position + data.byteLength - file.size);
    const freeBytes = this.capacityBytes - this.usedBytes;
    if (growthBytes > freeBytes) {
      const fitting = Math.max(0, file.size + Math.max(0, freeBytes) - position);
      if (fitting > 0) this.writeFile(file, data.subarray(0, fitting), position, path);
      throw fsError('ENOSPC', 'write', path);
    }
    this.storeBytes(file, data, position);
    file.lastWrite = { position, data: new Uint8Array(data) };
  }

  /** @internal */
  truncateFile(file: FileNode, length: number): void {
    if (length > file.size) {
      file.data = grow(file.data, length);
      file.data.fill(0, file.size, length);
    }
    if (file.allocated) this.usedBytes += length - file.size;
    file.size = length;
    file.dirtyFrom = Math.min(file.dirtyFrom, length);
  }

  /** @internal */
  datasyncFile(file: FileNode): void {
    if (file.dirtyFrom !== Infinity || file.durableSize !== file.size) {
      file.durable = grow(file.durable, file.size);
      const from = Math.min(file.dirtyFrom, file.size);
      file.durable.set(file.data.subarray(from, file.size), from);
      file.durableSize = file.size;
    }
    file.dirtyFrom = Infinity;
    file.lastWrite = null;
  }

  /** @internal */
  closeHandle(file: FileNode, boot: number): void {
    if (boot !== this.boot) return;
    file.openHandles--;
    this.release(file);
  }

  // ---- internals ----------------------------------------------------------------------------

  private storeBytes(file: FileNode, data: Uint8Array, position: number): void {
    const end = position + data.byteLength;
    if (end > file.size) {
      file.data = grow(file.data, end);
      file.data.fill(0, file.size, position);
      if (file.allocated) this.usedBytes += end - file.size;
      file.size = end;
    }
    file.data.set(data, position);
    file.dirtyFrom = Math.min(file.dirtyFrom, position);
  }

  private dropLink(node: Node): void {
    if (node.kind !== 'file') return;
    node.links--;
    this.release(node);
  }

  private release(file: FileNode): void {
    if (file.allocated && file.links <= 0 && file.openHandles <= 0) {
      file.allocated = false;
      this.usedBytes -= file.size;
    }
  }

  /** Start of every fs-level operation: its turn, the session check, then any injected fault. */
  private async enter(op: SimFsOp | null, syscall: string, path: string, boot: number | null): Promise<void> {
    await this.jitter();
    await this.powerCheck();
    if (boot !== null && boot !== this.boot) throw fsError('EBADF', syscall, path);
    if (op !== null) this.takeFault(op, path);
  }

  private takeFault(op: SimFsOp, path: string): void {
    this.counts[op]++;
    const index = this.faults.findIndex((f) => f.op === op && (f.pathIncludes === undefined || path.includes(f.pathIncludes)));
    if (index === -1) return;
    const [fault] = this.faults.splice(index, 1);
    throw fsError(fault!.code, op, path);
  }

  /** Past the planned power cut an operation never completes (until crash() resets the machine). */
  private async powerCheck(): Promise<void> {
    if (this.opsUntilCut === null) return;
    if (this.opsUntilCut > 0) {
      this.opsUntilCut--;
      return;
    }
    this.operationsCut++;
    await new Promise<never>(() => {});
  }

  private async jitter(): Promise<void> {
    if (this.asyncTurnsMax === 0) return;
    const turns = Math.floor(this.random() * (this.asyncTurnsMax + 1));
    for (let i = 0; i < turns; i++) await Promise.resolve();
  }

  private split(path: string): string[] {
    return posix.resolve('/', path).split('/').filter((part) => part.length > 0);
  }

  private lookup(path: string, which: 'current' | 'durable'): Node | null {
    let node: Node = this.root;
    for (const name of this.split(path)) {
      if (node.kind !== 'dir') return null;
      const next: Node | undefined = node[which].get(name);
      if (next === undefined) return null;
      node = next;
    }
    return node;
  }

  private parent(path: string, syscall: string): { dir: DirNode; name: string } {
    const parts = this.split(path);
    const name = parts.pop();
    if (name === undefined) throw fsError('EISDIR', syscall, path);
    const dir = this.lookup('/' + parts.join('/'), 'current');
    if (dir === null) throw fsError('ENOENT', syscall, path);
    if (dir.kind !== 'dir') throw fsError('ENOTDIR', syscall, path);
    return { dir, name };
  }
}

class SimFileHandle implements FileHandle {
  closed = false;

  constructor(
    private readonly fs: SimFileSystem,
    readonly path: string,
    readonly node: FileNode,
    readonly boot: number,
    private readonly readOnly: boolean,
  ) {}

  async write(data: Uint8Array, position: number): Promise<void> {
    const file = await this.fs.handleOp(this, 'write', 'write');
    if (this.readOnly) throw fsError('EBADF', 'write', this.path);
    this.fs.writeFile(file, data, position, this.path);
  }

  async read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const file = await this.fs.handleOp(this, 'read', 'read');
    const count = Math.max(0, Math.min(length, file.size - position));
    buffer.set(file.data.subarray(position, position + count), offset);
    return count;
  }

  async datasync(): Promise<void> {
    const file = await this.fs.handleOp(this, 'datasync', 'fdatasync');
    this.fs.datasyncFile(file);
  }

  async truncate(length: number): Promise<void> {
    const file = await this.fs.handleOp(this, 'truncate', 'ftruncate');
    if (this.readOnly) throw fsError('EINVAL', 'ftruncate', this.path);
    this.fs.truncateFile(file, length);
  }

  async size(): Promise<number> {
    const file = await this.fs.handleOp(this, null, 'fstat');
    return file.size;
  }

  async close(): Promise<void> {
    if (this.closed) throw fsError('EBADF', 'close', this.path);
    this.closed = true;
    this.fs.closeHandle(this.node, this.boot);
  }
}
