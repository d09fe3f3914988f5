/**
 * Emulated power loss: after the broker is SIGKILLed, cut its data directory back to what a real
 * power cut could have left, using the sidecar log its FaultFileSystem kept
 * (src/platform/fault-fs.ts):
 *
 * - every file is cut to the length its last completed datasync covered; a file created by this
 *   incarnation and never synced is cut to 0 bytes; a file older than this incarnation and never
 *   synced by it keeps its length (the harness left it durable at the previous cut);
 * - some files keep a random prefix of their unsynced bytes (some pages reached the disk), and
 *   some end in garbage (a torn write) — only ever beyond the synced length;
 * - a file or directory whose creation (or rename into place) no directory sync covered may vanish,
 *   or a fresh rename may be undone (the file is back under its temporary name).
 *
 * What it cannot emulate (documented in docs/RELIABILITY.md): a rename over an existing file that
 * is undone (the old content is gone), and an unlink that is undone. Everything is decided by the
 * seeded `random`, so a run is replayed by its seed.
 */
import { existsSync, lstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, truncateSync, writeSync, closeSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { SyncLogEntry } from '../../src/platform/fault-fs.js';
import { randomBytes, randomInt } from '../sim/random.js';

/** Chance that a file with unsynced bytes keeps a random prefix of them. */
const KEEP_UNSYNCED_PREFIX_CHANCE = 0.25;
/** Chance that a file with unsynced bytes ends in garbage: a torn write. */
const TORN_WRITE_CHANCE = 0.3;
/** A torn write leaves at most one page of garbage. */
const TORN_GARBAGE_BYTES_MAX = 4096;
/** Chance that an entry no directory sync covered is lost. */
const UNSYNCED_ENTRY_LOSS_CHANCE = 0.5;

export interface PowerLossReport {
  filesSeen: number;
  filesCut: number;
  bytesCut: number;
  filesTorn: number;
  garbageBytes: number;
  unsyncedPrefixesKept: number;
  filesLost: string[];
  dirsLost: string[];
  renamesUndone: string[];
  /** Longest datasync seen in the sidecar: the interval mode's loss window includes one. */
  datasyncMsMax: number;
}

interface InodeState {
  createdSeq: number | null;
  syncedLength: number | null;
  /** The op that put the inode under its current name: create or rename. */
  namedBy: { seq: number; kind: 'create' } | { seq: number; kind: 'rename'; from: string; replaced: boolean } | null;
}

export function readSyncLog(path: string): SyncLogEntry[] {
  if (!existsSync(path)) return [];
  const entries: SyncLogEntry[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line.length === 0) continue;
    try {
      entries.push(JSON.parse(line) as SyncLogEntry);
    } catch {
      // The last line may be torn by the kill itself (a write(2) interrupted): it described an
      // operation that had not been reported complete, so ignoring it is what the broker saw.
    }
  }
  return entries;
}

/** Applies the emulated power loss to `dataDir` in place. */
export function cutPower(dataDir: string, syncLogPath: string, random: () => number): PowerLossReport {
  const entries = readSyncLog(syncLogPath);
  const inodes = new Map<number, InodeState>();
  const dirSyncs = new Map<string, number>(); // dir → highest `since` of its completed syncs
  const mkdirs: Array<{ seq: number; path: string }> = [];
  let datasyncMsMax = 0;
  const state = (ino: number): InodeState => {
    let found = inodes.get(ino);
    if (found === undefined) {
      found = { createdSeq: null, syncedLength: null, namedBy: null };
      inodes.set(ino, found);
    }
    return found;
  };
  for (const entry of entries) {
    switch (entry.op) {
      case 'create':
        // A new file, possibly on a reused inode number: forget what the old one did.
        inodes.set(entry.ino, { createdSeq: entry.seq, syncedLength: null, namedBy: { seq: entry.seq, kind: 'create' } });
        break;
      case 'datasync':
        state(entry.ino).syncedLength = entry.length;
        datasyncMsMax = Math.max(datasyncMsMax, entry.durationMs);
        break;
      case 'rename':
        state(entry.ino).namedBy = { seq: entry.seq, kind: 'rename', from: entry.from, replaced: entry.replaced };
        break;
      case 'mkdir':
        mkdirs.push({ seq: entry.seq, path: entry.path });
        break;
      case 'syncdir':
        dirSyncs.set(entry.path, Math.max(dirSyncs.get(entry.path) ?? -1, entry.since));
        break;
    }
  }
  const covered = (path: string, seq: number): boolean => (dirSyncs.get(dirname(path)) ?? -1) > seq;
  const report: PowerLossReport = {
    filesSeen: 0,
    filesCut: 0,
    bytesCut: 0,
    filesTorn: 0,
    garbageBytes: 0,
    unsyncedPrefixesKept: 0,
    filesLost: [],
    dirsLost: [],
    renamesUndone: [],
    datasyncMsMax,
  };

  for (const { seq, path } of mkdirs) {
    if (covered(path, seq) || !existsSync(path) || random() >= UNSYNCED_ENTRY_LOSS_CHANCE) continue;
    rmSync(path, { recursive: true, force: true });
    report.dirsLost.push(relative(dataDir, path));
  }

  for (const path of listFiles(dataDir)) {
    report.filesSeen++;
    const stats = lstatSync(path);
    const inode = inodes.get(stats.ino);
    if (inode !== undefined && inode.namedBy !== null && !covered(path, inode.namedBy.seq) && random() < UNSYNCED_ENTRY_LOSS_CHANCE) {
      const namedBy = inode.namedBy;
      if (namedBy.kind === 'create') {
        rmSync(path);
        report.filesLost.push(relative(dataDir, path));
        continue;
      }
      if (!namedBy.replaced && !existsSync(namedBy.from)) {
        renameSync(path, namedBy.from);
        report.renamesUndone.push(relative(dataDir, path));
        cutFile(namedBy.from, stats.size, inode, random, report);
        continue;
      }
    }
    cutFile(path, stats.size, inode, random, report);
  }
  return report;
}

function cutFile(path: string, size: number, inode: InodeState | undefined, random: () => number, report: PowerLossReport): void {
  // Untouched by this incarnation's syncs and not created by it: durable as the last cut left it.
  let syncedLength = size;
  if (inode !== undefined && inode.syncedLength !== null) syncedLength = Math.min(size, inode.syncedLength);
  else if (inode !== undefined && inode.createdSeq !== null) syncedLength = 0;
  if (syncedLength >= size) return;
  let keep = syncedLength;
  if (random() < KEEP_UNSYNCED_PREFIX_CHANCE) {
    keep = randomInt(random, syncedLength, size);
    report.unsyncedPrefixesKept++;
  }
  truncateSync(path, keep);
  report.filesCut++;
  report.bytesCut += size - keep;
  if (random() < TORN_WRITE_CHANCE) {
    const length = randomInt(random, 1, TORN_GARBAGE_BYTES_MAX);
    // Half the torn writes leave zeros (a page allocated, never written), half random bytes.
    const garbage = random() < 0.5 ? Buffer.alloc(length) : randomBytes(random, length);
    const fd = openSync(path, 'a');
    try {
      writeSync(fd, garbage);
    } finally {
      closeSync(fd);
    }
    report.filesTorn++;
    report.garbageBytes += length;
  }
}

function listFiles(dir: string): string[] {
  const found: string[] = [];
  if (!existsSync(dir)) return found;
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stats = lstatSync(path);
    if (stats.isDirectory()) found.push(...listFiles(path));
    else if (stats.isFile()) found.push(path);
  }
  return found;
}
