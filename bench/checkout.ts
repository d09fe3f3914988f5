/**
 * The checkout the benchmarks measure: where it is, whether dist/ is built from the current src/,
 * and which commit it is. Shared by every bench entry point (run.ts, delivery.ts, grpc.ts, and the
 * Ferry adapter in peers/ferry.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
/** The compiled CLI the brokers run from; `npm run build` writes it. */
export const BUILT_CLI = join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');
/** The `ferry` command; the brokers run as `node <its Node flags> bin/ferry.js serve …`. */
export const LAUNCHER = join(REPO_ROOT, 'bin', 'ferry.js');

/**
 * The Node flags the `ferry` command starts with (its `#!/usr/bin/env -S node …` line), so that a
 * benchmarked broker runs as `ferry serve` and `npm start` run it. FERRY_BENCH_NODE_FLAGS
 * (space-separated, possibly empty) replaces them, to compare V8 settings.
 */
export function launcherNodeFlags(): string[] {
  const override = process.env['FERRY_BENCH_NODE_FLAGS'];
  if (override !== undefined) return override.split(' ').filter((flag) => flag.length > 0);
  return shebangNodeFlags();
}

/** The Node flags on the `#!/usr/bin/env -S node …` line of bin/ferry.js. */
export function shebangNodeFlags(): string[] {
  const shebang = readFileSync(LAUNCHER, 'utf8').split('\n', 1)[0]!;
  const match = /^#!\/usr\/bin\/env -S node((?: --[\w-]+(?:=\S+)?)*)$/.exec(shebang);
  if (match === null) throw new Error(`${LAUNCHER}: unexpected first line ${JSON.stringify(shebang)}`);
  return match[1]!.split(' ').filter((flag) => flag.length > 0);
}

/** Newest modification time of a `.ts` file under `dir`. */
export function newestSourceMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMs(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Rebuilds dist/ when any file in src/ is newer than the built CLI. With `build` false (`--no-build`)
 * dist/ is measured as it is: `warn` hears that it is stale, and a missing build is an error.
 */
export function ensureBuilt(build: boolean, log: (text: string) => void): void {
  const fresh = existsSync(BUILT_CLI) && statSync(BUILT_CLI).mtimeMs >= newestSourceMs(join(REPO_ROOT, 'src'));
  if (fresh) return;
  if (!build) {
    if (!existsSync(BUILT_CLI)) throw new Error(`--no-build, but ${BUILT_CLI} is missing: run npm run build`);
    log('warning: dist/ is older than src/ (--no-build)');
    return;
  }
  log('dist/ is older than src/, running npm run build');
  const result = spawnSync('npm', ['run', 'build'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`npm run build failed:\n${result.stdout}${result.stderr}`);
}

/** The short commit, with `-dirty` when tracked files are modified; 'unknown' outside git. */
export function currentCommit(): string {
  // GIT_OPTIONAL_LOCKS=0: `git status` must not refresh the index of a tree others are editing.
  const git = (args: string[]): string =>
    execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' } }).trim();
  try {
    const head = git(['rev-parse', '--short', 'HEAD']);
    return git(['status', '--porcelain', '--untracked-files=no']) === '' ? head : `${head}-dirty`;
  } catch {
    return 'unknown';
  }
}
