/**
 * Runs the `ferry` command as a child process (bin/ferry.js over the compiled dist/, which
 * `npm test` builds first), against a broker in this process.
 */
import { spawn } from 'node:child_process';
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
