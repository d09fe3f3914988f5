/**
 * `ferry serve` as a child process that a test can SIGKILL and start again on the same directory
 * and port. It runs bin/ferry.js over the compiled dist/ (`npm test` builds it first); a warning is
 * printed when dist/ is older than src/, because the test would then exercise stale code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { BUILT_CLI, LAUNCHER, newestSourceMs, REPO_ROOT } from '../../bench/checkout.js';

/** A broker that does not listen within this long (recovery included) has failed to start. */
const START_TIMEOUT_MS = 20_000;
/** Output kept to explain a failure. */
const OUTPUT_TAIL_CHARS = 4_000;

/** Warns once when dist/ is missing or older than src/. */
export function warnIfStale(): void {
  let builtMs = 0;
  try {
    builtMs = statSync(BUILT_CLI).mtimeMs;
  } catch {
    throw new Error(`${BUILT_CLI} is missing: run npm run build (npm test does) before this test`);
  }
  if (builtMs < newestSourceMs(join(REPO_ROOT, 'src'))) {
    process.stderr.write('warning: dist/ is older than src/; this test runs the built broker (npm run build)\n');
  }
}

export class BrokerProcess {
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly exited: Promise<void>,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  get outputTail(): string {
    return this.output.slice(-OUTPUT_TAIL_CHARS);
  }

  /** Starts `ferry serve` on `dir` (port 0: any free port) and resolves once it listens. */
  static start(dir: string, port: number): Promise<BrokerProcess> {
    const child = spawn(process.execPath, [LAUNCHER, 'serve', '--dir', dir, '--port', String(port), '--host', '127.0.0.1', '--http-port', '0'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return new Promise((resolve, reject) => {
      let output = '';
      const fail = (why: string): void => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`ferry serve ${why}; output:\n${output.slice(-OUTPUT_TAIL_CHARS)}`));
      };
      const timer = setTimeout(() => fail(`did not listen within ${START_TIMEOUT_MS} ms`), START_TIMEOUT_MS);
      const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null): void => fail(`exited before listening (${signal ?? `code ${code}`})`);
      child.once('exit', onEarlyExit);
      child.stderr!.on('data', (chunk: Buffer) => {
        output += chunk.toString('utf8');
        const listeningPort = listeningPortIn(output);
        if (listeningPort === undefined) return;
        clearTimeout(timer);
        child.off('exit', onEarlyExit);
        const broker = new BrokerProcess(child, listeningPort, exited);
        broker.output = output;
        child.stderr!.removeAllListeners('data');
        child.stderr!.on('data', (more: Buffer) => {
          broker.output = (broker.output + more.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
        });
        resolve(broker);
      });
    });
  }

  /** SIGKILL: no shutdown, no flush; resolves once the process is gone. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** The port of the `broker.listening` log line (JSON, one per line) in the output so far. */
function listeningPortIn(output: string): number | undefined {
  for (const line of output.split('\n')) {
    if (!line.startsWith('{') || !line.includes('broker.listening')) continue;
    try {
      const event = JSON.parse(line) as Record<string, unknown>;
      if (event['event'] === 'broker.listening' && typeof event['port'] === 'number') return event['port'];
    } catch {
      // A line still being written: the next chunk completes it.
    }
  }
  return undefined;
}
