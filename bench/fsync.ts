/**
 * What one durable write costs on this disk, by how the file is written: the floor under W3's
 * latency and the evidence for how the log writes its segments.
 *
 *   npm run bench:fsync                        every mode, paced and back to back (~1 minute)
 *   npm run bench:fsync -- --mode append       one mode: append | overwrite | dsync
 *   npm run bench:fsync -- --bytes 1048576     write size (default 5,600: W3's ~5 messages per sync)
 *   npm run bench:fsync -- --pace-ms 0         back to back instead of one write a millisecond
 *   npm run bench:fsync -- --dir PATH          where to put the files (default: os.tmpdir())
 *   npm run bench:fsync -- --seconds N         how long each run lasts (default 6)
 *
 * Modes, each a loop of "write `bytes`, then make it durable", timed from the write to durability:
 *   append     write at the end of the file, then fdatasync: what the log does. Every sync grows
 *              the file, so ext4 commits its journal for the new size.
 *   overwrite  the same into a file written full of zeros and synced beforehand (a preallocated
 *              segment): the sync has no metadata to commit.
 *   dsync      append through a descriptor opened with O_DSYNC: the write returns once durable,
 *              one thread-pool job instead of two.
 *
 * The last column counts the slow writes (SLOW_WRITE_MS or more, W3's latency target) in each second
 * of the run: when in the run the disk's tail comes, not only how long it is.
 */
import { constants } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const MODES = ['append', 'overwrite', 'dsync'] as const;
type Mode = (typeof MODES)[number];
const DEFAULT_BYTES = 5_600;
const DEFAULT_PACE_MS = 1;
const DEFAULT_RUN_SECONDS = 6;
/** A write this slow alone breaks W3's p99 target (2 ms); counted per second of the run. */
const SLOW_WRITE_MS = 2;
/**
 * Zeros written ahead for `overwrite`, and the most any mode writes in one run (so the modes stay
 * comparable): about what 6 s of back-to-back 5.6 KB syncs write here. A run stops at whichever
 * limit comes first.
 */
const PREALLOCATED_BYTES = 256 * 1024 * 1024;
const ZERO_CHUNK_BYTES = 4 * 1024 * 1024;

interface Result {
  mode: Mode;
  bytes: number;
  paceMs: number;
  writes: number;
  mbPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  /** Writes of SLOW_WRITE_MS or more, by the second of the run they started in. */
  slowBySecond: number[];
}

function quantile(sorted: Float64Array, q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}

async function run(dir: string, mode: Mode, bytes: number, paceMs: number, runMs: number): Promise<Result> {
  const path = join(dir, `${mode}.dat`);
  const flags = constants.O_RDWR | constants.O_CREAT | constants.O_TRUNC | (mode === 'dsync' ? constants.O_DSYNC : 0);
  const handle = await open(path, flags, 0o644);
  try {
    if (mode === 'overwrite') {
      const zeros = Buffer.alloc(ZERO_CHUNK_BYTES);
      for (let at = 0; at < PREALLOCATED_BYTES; at += ZERO_CHUNK_BYTES) await handle.write(zeros, 0, zeros.length, at);
      await handle.datasync();
    }
    const data = Buffer.alloc(bytes, 0x5a);
    const latencies: number[] = [];
    const slowBySecond = new Array<number>(Math.ceil(runMs / 1000)).fill(0);
    let position = 0;
    const startedMs = performance.now();
    while (performance.now() - startedMs < runMs && position + bytes <= PREALLOCATED_BYTES) {
      if (paceMs > 0) await new Promise((resolve) => setTimeout(resolve, paceMs));
      const t0 = performance.now();
      await handle.write(data, 0, bytes, position);
      if (mode !== 'dsync') await handle.datasync();
      const latencyMs = performance.now() - t0;
      latencies.push(latencyMs);
      if (latencyMs >= SLOW_WRITE_MS) slowBySecond[Math.min(slowBySecond.length - 1, Math.floor((t0 - startedMs) / 1000))]! += 1;
      position += bytes;
    }
    const elapsedMs = performance.now() - startedMs;
    const sorted = Float64Array.from(latencies).sort();
    return {
      mode,
      bytes,
      paceMs,
      writes: latencies.length,
      mbPerSec: position / 1e6 / (elapsedMs / 1000),
      p50Ms: quantile(sorted, 0.5),
      p90Ms: quantile(sorted, 0.9),
      p99Ms: quantile(sorted, 0.99),
      p999Ms: quantile(sorted, 0.999),
      slowBySecond,
    };
  } finally {
    await handle.close();
    await rm(path, { force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mode: { type: 'string' },
      bytes: { type: 'string' },
      'pace-ms': { type: 'string' },
      dir: { type: 'string' },
      seconds: { type: 'string' },
    },
  });
  const modes = values.mode === undefined ? [...MODES] : [values.mode as Mode];
  for (const mode of modes) if (!MODES.includes(mode)) throw new Error(`--mode: one of ${MODES.join(', ')}`);
  const bytes = Number(values.bytes ?? DEFAULT_BYTES);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw new Error('--bytes: a positive integer');
  const runSeconds = Number(values.seconds ?? DEFAULT_RUN_SECONDS);
  if (!Number.isSafeInteger(runSeconds) || runSeconds < 1) throw new Error('--seconds: a positive integer');
  const paces = values['pace-ms'] === undefined ? [DEFAULT_PACE_MS, 0] : [Number(values['pace-ms'])];
  const dir = await mkdtemp(join(values.dir ?? tmpdir(), 'ferry-fsync-'));
  console.log(`machine: ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}; files in ${dir}`);
  console.log(`| mode | bytes | pace | writes | MB/s | p50 ms | p90 ms | p99 ms | p99.9 ms | writes >= ${SLOW_WRITE_MS} ms, by second |`);
  console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  try {
    for (const paceMs of paces) {
      for (const mode of modes) {
        const r = await run(dir, mode, bytes, paceMs, runSeconds * 1000);
        const pace = paceMs > 0 ? `${paceMs} ms` : 'none';
        console.log(
          `| ${r.mode} | ${r.bytes} | ${pace} | ${r.writes} | ${r.mbPerSec.toFixed(1)} | ${r.p50Ms.toFixed(2)} | ${r.p90Ms.toFixed(2)} | ${r.p99Ms.toFixed(2)} | ${r.p999Ms.toFixed(2)} | ${r.slowBySecond.join(' ')} |`,
        );
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
