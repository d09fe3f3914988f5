/**
 * Runs the `ferry` command as a child process (bin/ferry.js over the compiled dist/, which
 * `npm test` builds first), against a broker in this process.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Broker } from '../../src/index.js';
import { tempDir } from '../helpers.js';

export const BIN = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));
/** A CLI command that takes longer than this is hung. */
export const COMMAND_TIMEOUT_MS = 20_000;

/** The connection settings of whoever runs the tests must not reach the commands under test ('' counts as unset). */
const UNSET_CONNECTION_ENV = { FERRY_URL: '', FERRY_USER: '', FERRY_PASSWORD: '', FERRY_TOKEN: '', FERRY_CA: '' };

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function ferry(args: string[], options: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...UNSET_CONNECTION_ENV, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, COMMAND_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.input ?? '');
  });
}

/** CLI processes at once in ferryAll: enough to keep two cores busy. */
const PARALLEL_RUNS = 4;

/** Runs each command line (a few at a time); the results in the same order. */
export async function ferryAll(commands: string[][]): Promise<Run[]> {
  const results: Run[] = new Array(commands.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < commands.length) {
      const index = next++;
      results[index] = await ferry(commands[index]!);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL_RUNS }, worker));
  return results;
}

export type LogLine = Record<string, unknown>;

export interface Serving {
  child: ChildProcess;
  events: LogLine[];
  /** Resolves with the first event of that name (or with null if the process exits first). */
  waitFor(event: string): Promise<LogLine | null>;
}

/**
 * `ferry serve` with JSON logs, collected as they come. `launch` is how the process starts:
 * `node bin/ferry.js` by default, or the given command line in front of `serve`.
 */
export function serve(args: string[], launch: string[] = [process.execPath, BIN]): Serving {
  const child = spawn(launch[0]!, [...launch.slice(1), 'serve', '--log-format', 'json', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const events: LogLine[] = [];
  let pending = '';
  const exited = once(child, 'exit');
  child.stderr!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line.startsWith('{')) events.push(JSON.parse(line) as LogLine);
  });
  const waitFor = async (event: string): Promise<LogLine | null> => {
    const deadline = Date.now() + COMMAND_TIMEOUT_MS;
    let done = false;
    void exited.then(() => (done = true));
    while (Date.now() < deadline) {
      const found = events.find((line) => line['event'] === event);
      if (found !== undefined) return found;
      if (done) return null;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error(`no ${event} within ${COMMAND_TIMEOUT_MS} ms: ${JSON.stringify(events)}`);
  };
  return { child, events, waitFor };
}

/** A broker in a temp dir, listening on a free port, for the duration of `run`. */
export async function withBroker(run: (port: string, broker: Broker) => Promise<void>): Promise<void> {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  const listener = await broker.listen({ port: 0, host: '127.0.0.1' });
  try {
    await run(String(listener.port), broker);
  } finally {
    await broker.close();
  }
}
