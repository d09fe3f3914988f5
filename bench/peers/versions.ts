/**
 * Versions of what a benchmark run measured, for its report: the server binaries (asked directly)
 * and the npm clients (read from their installed package.json).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** First line a command prints for e.g. `--version`, or a note that it could not be run. */
export async function commandVersion(command: string, args: readonly string[]): Promise<string> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args);
    return (stdout.trim() || stderr.trim()).split('\n')[0] ?? '';
  } catch (error) {
    return `${command} not runnable (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`;
  }
}

/** The version of an installed npm package, from node_modules/<name>/package.json. */
export async function installedPackageVersion(name: string): Promise<string> {
  const url = new URL(`../../node_modules/${name}/package.json`, import.meta.url);
  const manifest = JSON.parse(await readFile(url, 'utf8')) as { version?: string };
  return manifest.version ?? 'unknown';
}
