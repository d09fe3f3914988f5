/**
 * Metadata files are replaced atomically: write a temp file, datasync it, rename it over the
 * target, then sync the directory so the rename itself survives a crash. A reader therefore sees
 * either the old file or the new one, never a mix.
 */
import { dirname } from 'node:path';
import type { FileSystem } from './fs.js';

export const TEMP_SUFFIX = '.tmp';

export async function writeFileAtomic(fs: FileSystem, path: string, data: Uint8Array): Promise<void> {
  const tempPath = path + TEMP_SUFFIX;
  const handle = await fs.open(tempPath, 'create');
  try {
    await handle.truncate(0);
    await handle.write(data, 0);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await fs.rename(tempPath, path);
  await fs.syncDir(dirname(path));
}

/** Removes a directory and everything below it, using only the FileSystem interface. */
export async function removeTree(fs: FileSystem, path: string): Promise<void> {
  const stat = await fs.stat(path);
  if (stat === null) return;
  if (!stat.isDirectory) {
    await fs.unlink(path);
    return;
  }
  for (const name of await fs.readdir(path)) await removeTree(fs, `${path}/${name}`);
  await fs.rmdir(path);
}

/** Creates a directory (and missing parents) so that it survives a crash: each new entry's parent is synced. */
export async function mkdirDurable(fs: FileSystem, path: string): Promise<void> {
  if ((await fs.stat(path)) !== null) return;
  const parent = dirname(path);
  if (parent !== path) await mkdirDurable(fs, parent);
  await fs.mkdir(path);
  await fs.syncDir(parent);
}
