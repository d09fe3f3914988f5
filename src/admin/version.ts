/**
 * Ferry's version, from the package.json above this module (the same walk works from src/ under
 * tsx and from dist/src/ after the build).
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** package.json is at most this many directories above any module. */
const PARENT_DIRS_MAX = 6;

let cached: string | undefined;

export function ferryVersion(): string {
  if (cached !== undefined) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < PARENT_DIRS_MAX; i++) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'ferry' && typeof manifest.version === 'string') return (cached = manifest.version);
    } catch {
      // No package.json here: keep walking up.
    }
    dir = dirname(dir);
  }
  return (cached = 'unknown');
}
