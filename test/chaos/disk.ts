/**
 * A small disk for the disk-full faults: a size-limited tmpfs mounted by the harness (root only),
 * and a ballast file that fills it to the last byte on demand and gives the space back when removed.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** Fill in large chunks first, then in pages, so the disk ends up full to the page. */
const FILL_CHUNK_BYTES = [1024 * 1024, 4096] as const;

export class SmallDisk {
  private readonly ballastPath: string;
  private mounted = false;

  private constructor(readonly mountPoint: string) {
    this.ballastPath = join(mountPoint, 'ballast');
  }

  /** Mounts a tmpfs of `sizeBytes` at `mountPoint`; returns the reason instead when it cannot. */
  static mount(mountPoint: string, sizeBytes: number): SmallDisk | string {
    if (process.getuid?.() !== 0) return 'not root: mounting a size-limited tmpfs needs root';
    mkdirSync(mountPoint, { recursive: true });
    const result = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes}`, 'tmpfs', mountPoint], { encoding: 'utf8' });
    if (result.status !== 0) return `mount -t tmpfs failed: ${(result.stderr || result.error?.message || '').trim()}`;
    const disk = new SmallDisk(mountPoint);
    disk.mounted = true;
    return disk;
  }

  /** Writes the ballast until the filesystem refuses; returns the bytes it took. */
  fill(): number {
    const fd = openSync(this.ballastPath, 'a');
    let written = 0;
    try {
      for (const chunkBytes of FILL_CHUNK_BYTES) {
        const chunk = Buffer.alloc(chunkBytes);
        for (;;) {
          try {
            written += writeSync(fd, chunk);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
            throw error;
          }
        }
      }
    } finally {
      closeSync(fd);
    }
    return written;
  }

  free(): void {
    rmSync(this.ballastPath, { force: true });
  }

  unmount(): void {
    if (!this.mounted) return;
    this.mounted = false;
    // Lazy: a broker that did not exit in time must not keep the mount (and the run) hanging.
    spawnSync('umount', ['-l', this.mountPoint]);
  }
}
