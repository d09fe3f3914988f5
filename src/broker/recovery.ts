/**
 * Recovery of the data directory entry by entry: one topic or group directory that does not open
 * must not stop the broker.
 * The rest: docs/INTERNALS.md.
 */
import { dirname, join } from 'node:path';
import type { Clock } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import type { Logger } from '../platform/logger.js';
import { mkdirDurable, removeTree } from '../platform/atomic-write.js';
import { FerryError } from '../errors.js';

/** Where bad entries go, under the data directory. */
export const QUARANTINE_DIR = 'quarantine';
/**
 * An entry's name is cut to this many bytes in quarantine/: with the timestamp and a counter in
 * front it stays within the 255 bytes a file name may have, whatever name the bad entry had.
 */
const QUARANTINE_NAME_BYTES_MAX = 200;
/** Error codes that say the machine is in trouble, not the entry (see above). */
const MACHINE_ERROR_CODES: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'ENOSPC', 'EDQUOT', 'EIO', 'EROFS']);
/**
 * Ferry error codes that say the cluster cannot take a write now, not that the entry is bad: a
 * leader opening a topic whose in-sync set is still below minInSync, or that lost its leadership
 * meanwhile. Such an open is tried again later; quarantining would throw the group's state away
 * (every acked message delivered again).
 */
const CONDITION_ERROR_CODES: ReadonlySet<string> = new Set(['NOT_ENOUGH_REPLICAS', 'NOT_LEADER', 'STALE_EPOCH', 'LOG_CLOSED', 'BROKER_CLOSING']);
/** How deep to look through `cause` for a machine error wrapped by the storage layer. */
const CAUSE_DEPTH_MAX = 4;

export interface BadEntry {
  kind: 'topic' | 'group';
  /** The directory to move aside. */
  path: string;
  topic: string;
  /** For a group: its name (the directory's). */
  group?: string;
}

/** Moves a bad entry into quarantine and logs it; rethrows `error` when it is the machine's or the cluster's (above). */
export type Quarantine = (entry: BadEntry, error: unknown) => Promise<void>;

/**
 * With `replicated` (cluster mode) a bad entry is logged (`broker.<kind>.left_in_place`) and left
 * where it is, not served: its logs are replicas that replication holds open and followers copy,
 * and moving their files from under it made every later write to them fail (ENOENT) and kept the
 * replica out of the in-sync set for good. A damaged replica is the replica checks' to repair.
 */
export function quarantiner(fs: FileSystem, dataDir: string, clock: Clock, logger: Logger, replicated = false): Quarantine {
  return async (entry, error) => {
    if (isMachineError(error) || isConditionError(error)) throw error;
    const fields = { topic: entry.topic, ...(entry.group === undefined ? {} : { group: entry.group }) };
    if (replicated) {
      logger.error(`broker.${entry.kind}.left_in_place`, { ...fields, path: entry.path, error });
      return;
    }
    const dir = join(dataDir, QUARANTINE_DIR);
    await mkdirDurable(fs, dir);
    const name = cutName(entry.group === undefined ? entry.topic : `${entry.topic}.groups.${entry.group}`);
    const stampMs = clock.nowMs();
    let target = join(dir, `${stampMs}-${name}`);
    for (let n = 1; (await fs.stat(target)) !== null; n++) target = join(dir, `${stampMs}-${n}-${name}`);
    await fs.rename(entry.path, target);
    await fs.syncDir(dirname(entry.path));
    await fs.syncDir(dir);
    logger.error(`broker.${entry.kind}.quarantined`, {
      ...fields,
      from: entry.path,
      to: target,
      error,
    });
  };
}

/**
 * Removes `dir` (durably) when its metadata file is missing (a creation that crashed before
 * renaming it into place); true when it did.
 */
export async function removedIfIncomplete(fs: FileSystem, dir: string, metadataFile: string, logger: Logger, event: string, fields: Record<string, unknown>): Promise<boolean> {
  if ((await fs.stat(join(dir, metadataFile))) !== null) return false;
  logger.warn(event, { ...fields, dir });
  await removeTree(fs, dir);
  // Durably: after a power loss the entry must not come back to be removed again.
  await fs.syncDir(dirname(dir));
  return true;
}

function isConditionError(error: unknown): boolean {
  return error instanceof FerryError && CONDITION_ERROR_CODES.has(error.code);
}

function isMachineError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < CAUSE_DEPTH_MAX && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && MACHINE_ERROR_CODES.has(code)) return true;
    current = current.cause;
  }
  return false;
}

function cutName(name: string): string {
  const bytes = Buffer.from(name);
  if (bytes.length <= QUARANTINE_NAME_BYTES_MAX) return name;
  // A cut inside a multi-byte character leaves a replacement character: still a valid name.
  return bytes.subarray(0, QUARANTINE_NAME_BYTES_MAX).toString('utf8');
}
