/**
 * What one catch-up chunk costs each side's main thread, in-process and without the network: the
 * leader's `readChunk` (read, digests, the chunk's buffer) and its answer frame (encoded and taken
 * as the connection takes it, not written to a socket), and the replica's check and write
 * (`checkChunk`, `appendBatches`), as CPU time per chunk (process.cpuUsage, so a busy machine
 * inflates it far less than latency) and the longest the event loop went without a turn.
 *
 *   node --import tsx bench/catch-up-chunk-cost.ts [--mib 256] [--root <checkout>]
 *
 * `--root` runs another checkout's code (its src/) on the same data, for an A/B of the two.
 * A log of `--mib` MiB of 1 KiB records (batches of 500, as bench/catch-up.ts fills) in 64 MiB
 * segments on the real disk (the temp dir), written back before the copy starts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './checkout.js';

const VALUE_BYTES = 1024;
const BATCH_RECORDS = 500;
const SEGMENT_BYTES = 64 * 1024 * 1024;
const CHUNK_BYTES = 4 * 1024 * 1024;

const { values } = parseArgs({ options: { mib: { type: 'string', default: '256' }, root: { type: 'string', default: REPO_ROOT } } });
const root = resolve(values.root!);
const load = async <T>(path: string): Promise<T> => (await import(pathToFileURL(join(root, path)).href)) as T;
const { Log } = await load<typeof import('../src/storage/log.js')>('src/storage/log.ts');
const { NodeFileSystem } = await load<typeof import('../src/platform/fs.js')>('src/platform/fs.ts');
const { SystemClock } = await load<typeof import('../src/platform/clock.js')>('src/platform/clock.ts');
const { readChunk, checkChunk } = await load<typeof import('../src/cluster/catch-up.js')>('src/cluster/catch-up.ts');
const { FrameWriter } = await load<typeof import('../src/protocol/writer.js')>('src/protocol/writer.ts');
const { encodeCatchUpReadOk } = await load<typeof import('../src/protocol/codec-catch-up.js')>('src/protocol/codec-catch-up.ts');
const frames = new FrameWriter();

const dir = mkdtempSync(join(tmpdir(), 'ferry-chunk-cost-'));
try {
  const open = (name: string) => Log.open({ dir: join(dir, name), fs: new NodeFileSystem(), clock: new SystemClock(), durability: 'never', segmentBytes: SEGMENT_BYTES });
  const leader = await open('leader');
  await leader.beginEpoch(1);
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  const total = Math.ceil((Number(values.mib) * 1048576) / VALUE_BYTES);
  for (let i = 0; i < total; i += BATCH_RECORDS) await leader.append(Array.from({ length: BATCH_RECORDS }, () => ({ value })));
  execFileSync('sync');
  const replica = await open('replica');
  const side = { leaderUs: [] as number[], replicaUs: [] as number[] };
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  let bytes = 0;
  for (;;) {
    const a = process.cpuUsage();
    const chunk = await readChunk(leader, { topic: 't', replicaId: 'n2', epoch: 1, logId: 'p0', fromOffset: replica.nextOffset, bytesMax: CHUNK_BYTES }, CHUNK_BYTES);
    if (chunk.batches.length === 0) break;
    // The answer frame as the connection takes it (an older checkout has take() only).
    encodeCatchUpReadOk(frames, 1, chunk);
    const parts = (frames as { takeParts?: () => Buffer[] | null }).takeParts?.() ?? [frames.take()!];
    frames.release(parts[0]!);
    const b = process.cpuUsage(a);
    side.leaderUs.push(b.user + b.system);
    const c = process.cpuUsage();
    // As the follower writes a chunk that matched (an older checkout ignores the option).
    await replica.appendBatches(checkChunk(chunk), { matchedLeaderDigests: true });
    const d = process.cpuUsage(c);
    side.replicaUs.push(d.user + d.system);
    bytes += chunk.batches.length;
  }
  delay.disable();
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]! / 1000;
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / 1e6;
  const result = {
    root,
    chunks: side.leaderUs.length,
    mib: Math.round(bytes / 1048576),
    seconds: Math.round((performance.now() - started) / 10) / 100,
    leader: { cpuMsPerChunkMedian: median(side.leaderUs), cpuSecondsPerGiB: (sum(side.leaderUs) * 1073741824) / bytes },
    replica: { cpuMsPerChunkMedian: median(side.replicaUs), cpuSecondsPerGiB: (sum(side.replicaUs) * 1073741824) / bytes },
    eventLoopDelayMaxMs: delay.max / 1e6,
    eventLoopDelayP99Ms: delay.percentile(99) / 1e6,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
  await Promise.all([leader.close(), replica.close()]);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
