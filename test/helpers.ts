/**
 * Shared test helpers: waiting for a condition without sleeping for a fixed time, and temporary
 * directories that are always removed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Long enough for a loaded 2-core CI machine, short enough that a hang fails the test quickly. */
const EVENTUALLY_TIMEOUT_MS = 5_000;
/** Often enough to add little latency, rarely enough not to starve the code under test. */
const EVENTUALLY_INTERVAL_MS = 10;

export interface EventuallyOptions {
  timeoutMs?: number;
  intervalMs?: number;
}

/**
 * Calls `fn` until it returns without throwing (a value other than `false`), then returns that
 * value. After `timeoutMs` it rethrows the last error, so the failure says what was not yet true.
 */
export async function eventually<T>(fn: () => T | Promise<T>, options: EventuallyOptions = {}): Promise<Exclude<T, false>> {
  const timeoutMs = options.timeoutMs ?? EVENTUALLY_TIMEOUT_MS;
  const intervalMs = options.intervalMs ?? EVENTUALLY_INTERVAL_MS;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown = undefined;
  for (;;) {
    try {
      const value = await fn();
      if (value !== false) return value as Exclude<T, false>;
      lastError = new Error('condition still false');
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      throw new Error(`eventually: not true after ${timeoutMs} ms: ${describe(lastError)}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export interface TempDir {
  path: string;
  /** Removes the directory and everything in it; safe to call twice. */
  remove(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** A fresh directory under os.tmpdir(); call `remove()` in a finally (or `await using`). */
export async function tempDir(prefix = 'ferry-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  const remove = (): Promise<void> => rm(path, { recursive: true, force: true });
  return { path, remove, [Symbol.asyncDispose]: remove };
}
