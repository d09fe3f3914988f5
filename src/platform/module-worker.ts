/**
 * Starts a `worker_threads` worker from one of the project's own modules, whether the project runs
 * built (dist/, plain JavaScript: the module is the worker's entry) or from its TypeScript sources
 * through tsx (tests, benchmarks): Node 20 does not carry the parent's `--import tsx` loader into a
 * worker's entry point, so there the worker first registers tsx's loader, then imports the module.
 */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/** The URL of module `name` (no extension) beside `callerUrl`, with the caller's extension (.ts from sources, .js built). */
export function siblingModuleUrl(callerUrl: string, name: string): URL {
  return new URL(`./${name}${extname(fileURLToPath(callerUrl))}`, callerUrl);
}

export function startModuleWorker(moduleUrl: URL, options: Omit<WorkerOptions, 'eval'>): Worker {
  if (!moduleUrl.pathname.endsWith('.ts')) return new Worker(moduleUrl, options);
  const loader = import.meta.resolve('tsx/esm/api');
  const entry = `import(${JSON.stringify(loader)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(moduleUrl.href)}); });`;
  return new Worker(entry, { ...options, eval: true });
}
