/**
 * Storage engine benchmark: append throughput and latency of one Log for 1 KiB records, per
 * durability mode and number of concurrent appenders (each appends one record and awaits it, in a
 * loop), beside the ceiling of the disk measured in the same directory by the same process.
 *
 *   npm run bench:storage                 full run (~1 minute)
 *   npm run bench:storage -- --quick      shorter cells, for a smoke check
 *   npm run bench:storage -- --dir PATH   where to put the temp directory (default: os.tmpdir())
 *
 * MB/s counts record values (payload), not framing. Latency is from append() to its resolution.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SystemClock } from '../src/platform/clock.js';
import { NodeFileSystem } from '../src/platform/fs.js';
import { crc32cImplementation } from '../src/storage/crc32c.js';
import { Log } from '../src/storage/log.js';
import { DURABILITY_MODES, type Durability } from '../src/storage/types.js';

const RECORD_VALUE_BYTES = 1024;
const CONCURRENCY = [1, 16, 256] as const;
/** Long enough for a steady state (several segment rolls in `never`), short enough for < 1.5 min in all. */
const CELL_MS = 2_500;
const QUICK_CELL_MS = 700;
const CEILING_MS = 2_000;
const QUICK_CEILING_MS = 600;
/** Latency samples kept per cell (a reservoir would be fairer, but cells never reach this). */
const LATENCY_SAMPLES_MAX = 4_000_000;
const MiB = 1024 * 1024;

interface CellResult {
  durability: Durability;
  concurrency: number;
  records: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  /** Process CPU (user + system, all threads) per record: the hot path's cost, robust to a busy machine. */
  cpuUsPerRecord: number;
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))]!;
}

async function runCell(root: string, durability: Durability, concurrency: number, cellMs: number): Promise<CellResult> {
  const dir = await mkdtemp(join(root, `${durability}-${concurrency}-`));
  const log = await Log.open({ dir, fs: new NodeFileSystem(), clock: new SystemClock(), durability });
  const value = Buffer.alloc(RECORD_VALUE_BYTES, 0x5a);
  const latencies = new Float64Array(LATENCY_SAMPLES_MAX);
  let records = 0;
  const cpuStart = process.cpuUsage();
  const started = performance.now();
  const deadline = started + cellMs;
  const appender = async (): Promise<void> => {
    const batch = [{ value }];
    while (performance.now() < deadline) {
      const t0 = performance.now();
      await log.append(batch);
      const latency = performance.now() - t0;
      if (records < LATENCY_SAMPLES_MAX) latencies[records] = latency;
      records++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, appender));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  await log.close();
  await rm(dir, { recursive: true, force: true });
  const sorted = latencies.subarray(0, Math.min(records, LATENCY_SAMPLES_MAX)).sort();
  return {
    durability,
    concurrency,
    records,
    seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    cpuUsPerRecord: (cpu.user + cpu.system) / Math.max(1, records),
  };
}

/** The disk's own numbers: sequential 1 MiB writes, and 64 KiB writes each followed by fdatasync. */
async function measureCeiling(root: string, ceilingMs: number): Promise<{ sequentialMBps: number; syncedMBps: number; syncsPerSecond: number }> {
  const path = join(root, 'ceiling.bin');
  const handle = await open(path, 'w+');
  try {
    const big = Buffer.alloc(MiB, 0xa5);
    let position = 0;
    let started = performance.now();
    while (performance.now() - started < ceilingMs) {
      await handle.write(big, 0, big.length, position);
      position += big.length;
    }
    await handle.datasync();
    const sequentialMBps = position / MiB / ((performance.now() - started) / 1000);
    await handle.truncate(0);
    const small = Buffer.alloc(64 * 1024, 0xa5);
    position = 0;
    let syncs = 0;
    started = performance.now();
    while (performance.now() - started < ceilingMs) {
      await handle.write(small, 0, small.length, position);
      position += small.length;
      await handle.datasync();
      syncs++;
    }
    const seconds = (performance.now() - started) / 1000;
    return { sequentialMBps, syncedMBps: position / MiB / seconds, syncsPerSecond: syncs / seconds };
  } finally {
    await handle.close();
    await rm(path, { force: true });
  }
}

function fixed(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, dir: { type: 'string' } } });
  const cellMs = values.quick ? QUICK_CELL_MS : CELL_MS;
  const root = await mkdtemp(join(values.dir ?? tmpdir(), 'ferry-bench-storage-'));
  const loadBefore = loadavg().map((l) => l.toFixed(2)).join(' ');
  try {
    console.log(`# Ferry storage benchmark`);
    console.log(`node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB memory, crc32c ${crc32cImplementation}`);
    console.log(`dir ${root}, 1 KiB values, ${cellMs} ms per cell\n`);
    const ceiling = await measureCeiling(root, values.quick ? QUICK_CEILING_MS : CEILING_MS);
    console.log(`disk: sequential 1 MiB writes ${fixed(ceiling.sequentialMBps)} MB/s; 64 KiB write + fdatasync ${fixed(ceiling.syncedMBps, 1)} MB/s (${fixed(ceiling.syncsPerSecond)} syncs/s)\n`);
    const results: CellResult[] = [];
    for (const durability of DURABILITY_MODES) {
      for (const concurrency of CONCURRENCY) {
        const result = await runCell(root, durability, concurrency, cellMs);
        results.push(result);
        const perSecond = result.records / result.seconds;
        console.log(
          `${durability.padEnd(8)} x${String(concurrency).padEnd(4)} ${fixed(perSecond).padStart(8)} rec/s ${fixed((perSecond * RECORD_VALUE_BYTES) / MiB, 1).padStart(7)} MB/s  p50 ${fixed(result.p50Ms, 3)} ms  p99 ${fixed(result.p99Ms, 3)} ms  cpu ${fixed(result.cpuUsPerRecord, 2)} us/rec`,
        );
      }
    }
    console.log('\n| durability | appenders | records/s | MB/s | p50 ms | p99 ms | CPU µs/record | vs 64 KiB+fdatasync |');
    console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
    for (const result of results) {
      const perSecond = result.records / result.seconds;
      const mbps = (perSecond * RECORD_VALUE_BYTES) / MiB;
      const versus = result.durability === 'always' ? `${fixed((100 * mbps) / ceiling.syncedMBps)}%` : '';
      console.log(
        `| ${result.durability} | ${result.concurrency} | ${fixed(perSecond)} | ${fixed(mbps, 1)} | ${fixed(result.p50Ms, 3)} | ${fixed(result.p99Ms, 3)} | ${fixed(result.cpuUsPerRecord, 2)} | ${versus} |`,
      );
    }
    console.log(`| disk: 1 MiB sequential writes | | | ${fixed(ceiling.sequentialMBps)} | | | | |`);
    console.log(`| disk: 64 KiB write + fdatasync | | | ${fixed(ceiling.syncedMBps, 1)} | | | | 100% |`);
    console.log(`\nload average before/after: ${loadBefore} / ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
