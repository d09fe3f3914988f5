/**
 * A real process, a real filesystem, a real SIGKILL: a child appends in `always` mode from several
 * writers and reports every acknowledged append; the parent kills it at a random moment, opens the
 * log itself and checks that every acknowledged record is there and intact, then restarts the child
 * on the same directory — again and again.
 *
 * A process kill (unlike a power cut) keeps the page cache, so this test catches what the simulated
 * disk cannot: real file handling, real partial writes of an interrupted batch, real recovery code
 * paths over NodeFileSystem. Replay the kill timings with FERRY_CRASH_SEED=<seed>.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Log } from '../../src/storage/log.js';
import { NodeFileSystem } from '../../src/platform/fs.js';
import { SystemClock } from '../../src/platform/clock.js';
import { checkRecord, type RecordId } from './fixtures/records.js';
import { eventually, tempDir } from '../helpers.js';
import { randomInt, seededRandom } from '../sim/random.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/appender.ts', import.meta.url));
const KILLS = 20;
/** Kill points after the child reports ready: early (mid-recovery follow-up) to well into steady appends. */
const KILL_AFTER_MS_MIN = 50;
const KILL_AFTER_MS_MAX = 300;
/** Child start-up (Node + tsx + recovery) on a loaded 2-core machine. */
const READY_TIMEOUT_MS = 10_000;
const TEST_TIMEOUT_MS = 60_000;

interface ReadyReport {
  startOffset: number;
  nextOffset: number;
}

/** One appender process: started early (it loads, then waits), let go, killed. */
class Appender {
  private readonly child: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly exited: Promise<NodeJS.Signals | null>;
  private readonly linesClosed: Promise<void>;
  private stderr = '';
  private ready: ReadyReport | null = null;
  ackedRecords = 0;

  constructor(dir: string, run: number, acked: Map<number, RecordId>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, dir, String(run)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.on('exit', (_code, signal) => resolve(signal)));
    this.child.stdin.on('error', () => {});
    this.child.stderr.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    const lines = createInterface({ input: this.child.stdout });
    this.linesClosed = new Promise((resolve) => lines.once('close', resolve));
    lines.on('line', (line) => {
      const [kind, ...fields] = line.split(' ');
      if (kind === 'ready') {
        this.ready = JSON.parse(fields.join(' ')) as ReadyReport;
      } else if (kind === 'ack') {
        const [baseOffset, writer, firstSeq, count] = fields.map(Number) as [number, number, number, number];
        for (let i = 0; i < count; i++) acked.set(baseOffset + i, { writer, seq: firstSeq + i });
        this.ackedRecords += count;
      }
    });
  }

  /** Lets it open the log; resolves with what it recovered. */
  async start(): Promise<ReadyReport> {
    this.child.stdin.write('go\n');
    return eventually(
      () => {
        if (this.child.exitCode !== null) throw new Error(`appender exited with ${this.child.exitCode} before ready: ${this.stderr}`);
        return this.ready ?? false;
      },
      { timeoutMs: READY_TIMEOUT_MS },
    );
  }

  /** SIGKILL; resolves once every line it wrote has been read. */
  async kill(): Promise<void> {
    assert.equal(this.child.exitCode, null, `appender died on its own: ${this.stderr}`);
    this.child.kill('SIGKILL');
    assert.equal(await this.exited, 'SIGKILL', `appender ended otherwise: ${this.stderr}`);
    await this.linesClosed;
  }

  /** For cleanup: kills it if it is still running. */
  dispose(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** Opens the log in this process and checks every record, and every acknowledged offset. */
async function verifyLog(dir: string, acked: Map<number, RecordId>): Promise<{ nextOffset: number; records: number }> {
  const log = await Log.open({ dir, fs: new NodeFileSystem(), clock: new SystemClock(), durability: 'always' });
  try {
    const ackedEnd = acked.size === 0 ? 0 : Math.max(...acked.keys()) + 1;
    assert.ok(log.nextOffset >= ackedEnd, `acknowledged offsets up to ${ackedEnd - 1} but the log ends at ${log.nextOffset}: ${JSON.stringify(log.recovery)}`);
    assert.equal(log.startOffset, 0, 'no retention configured: nothing leaves the front');
    let offset = log.startOffset;
    while (offset < log.nextOffset) {
      const records = await log.read(offset);
      assert.ok(records.length > 0, `read(${offset}) returned nothing below nextOffset ${log.nextOffset}`);
      for (const record of records) {
        assert.equal(record.offset, offset);
        const id = checkRecord(record);
        const expected = acked.get(offset);
        if (expected !== undefined) assert.deepEqual(id, expected, `offset ${offset} holds another record than was acknowledged`);
        offset++;
      }
    }
    return { nextOffset: log.nextOffset, records: log.nextOffset - log.startOffset };
  } finally {
    await log.close();
  }
}

test('log - every acknowledged append survives SIGKILL of the appending process', { timeout: TEST_TIMEOUT_MS }, async () => {
  const seed = Number(process.env.FERRY_CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const random = seededRandom(seed);
  const dir = await tempDir('ferry-process-crash-');
  const acked = new Map<number, RecordId>();
  let verifiedNext = 0;
  let ackedTotal = 0;
  const started = performance.now();
  // The next child loads (Node + tsx, the slow part) while the current one runs.
  let next: Appender | null = new Appender(dir.path, 0, acked);
  try {
    for (let run = 0; run < KILLS; run++) {
      const current: Appender = next!;
      const killAfterMs = randomInt(random, KILL_AFTER_MS_MIN, KILL_AFTER_MS_MAX);
      const context = `run ${run}, killed ${killAfterMs} ms after ready (FERRY_CRASH_SEED=${seed})`;
      const ready = await current.start();
      assert.equal(ready.nextOffset, verifiedNext, `${context}: the child recovered another end than the last clean close`);
      next = run + 1 < KILLS ? new Appender(dir.path, run + 1, acked) : null;
      // The crash point: a deliberate wall-clock delay, not a synchronisation.
      await new Promise((resolve) => setTimeout(resolve, killAfterMs));
      await current.kill();
      ackedTotal += current.ackedRecords;
      const verified = await verifyLog(dir.path, acked).catch((error: unknown) => {
        throw new Error(`${context}: ${(error as Error).message}`, { cause: error });
      });
      verifiedNext = verified.nextOffset;
    }
    assert.ok(ackedTotal > KILLS, `the children acknowledged only ${ackedTotal} records: the test exercised little`);
    console.log(`process crash: ${KILLS} kills, ${ackedTotal} acknowledged records, log of ${verifiedNext}, ${Math.round(performance.now() - started)} ms, seed ${seed}`);
  } finally {
    next?.dispose();
    await dir.remove();
  }
});
