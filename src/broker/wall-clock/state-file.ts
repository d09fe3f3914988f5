/**
 * The broker's small JSON state files (the clock references of wall-history.ts and
 * wall-epochs.ts): replaced atomically, and read leniently — a file that does not parse or is of
 * another version is reported and treated as absent, since each of them has a safe fallback.
 */
import type { FileSystem } from '../../platform/fs.js';
import { writeFileAtomic } from '../../platform/atomic-write.js';
import { FerryError } from '../../errors.js';

/** Replaces the file; a failure is a FerryError: DISK_FULL when the disk is full, else STORAGE_FAILED. */
export async function writeStateFile(fs: FileSystem, path: string, value: unknown): Promise<void> {
  try {
    await writeFileAtomic(fs, path, Buffer.from(JSON.stringify(value)));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | null)?.code;
    throw new FerryError(code === 'ENOSPC' || code === 'EDQUOT' ? 'DISK_FULL' : 'STORAGE_FAILED', `${path}: ${(error as Error)?.message ?? String(error)}`, { cause: error });
  }
}

/** Why a state file that exists was not used. */
export type UnusableStateFile = { kind: 'unknown'; version: unknown } | { kind: 'unreadable'; error: unknown };

/** The file's content when it exists and `accept` takes it; otherwise null (after `unusable` for a file that exists). */
export async function readStateFile<T extends { version: number }>(
  fs: FileSystem,
  path: string,
  accept: (file: T) => boolean,
  unusable: (why: UnusableStateFile) => void,
): Promise<T | null> {
  if ((await fs.stat(path)) === null) return null;
  try {
    const file = JSON.parse((await fs.readFile(path)).toString('utf8')) as T;
    if (accept(file)) return file;
    unusable({ kind: 'unknown', version: file?.version });
  } catch (error) {
    // Written atomically, so this is damage from outside.
    unusable({ kind: 'unreadable', error });
  }
  return null;
}
