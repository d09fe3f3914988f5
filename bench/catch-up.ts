/**
 * Catch-up from the leader's segments (docs/CLUSTERING.md): how fast an empty replica of a large
 * topic gets in sync while the leader serves a publish load, and what that does to the leader's
 * publish latency.
 *
 *   npm run bench -- --catch-up [--mib 1024] [--rate 5000] [--load-seconds 5] [--segment-mib 128] [--bytes-per-sec N]
 *                   [--set key=value]... [--plain-copy-bytes-per-sec N] [--no-build]
 *
 * Three brokers and etcd on loopback (peers/etcd.ts). A topic with 2 replicas is filled with
 * `--mib` MiB of 1 KiB messages; then publishes run at `--rate` per second (open loop, pacer.ts),
 * first alone (the unloaded p99), then while the replica on one broker moves to the third
 * (`reassignReplica`): the new, empty replica copies the leader's sealed segments and fetches the
 * tail. Reported: seconds until it is in the in-sync set, MiB/s (the leader's partition bytes when
 * it is, the load's included, over that time), publish p50/p99 unloaded and during the catch-up (every
 * publish of every round until the replica is in sync), and the 1-minute load average at start and
 * end — figures from a busy machine are labelled so, never final. The unloaded round starts once the
 * kernel has written the fill back (`sync`, then until /proc/meminfo's Dirty is small), so its p99
 * is the broker's and not the disk's writeback.
 *
 * `--bytes-per-sec N` sets `cluster.replicaCatchUpBytesPerSec` (else the brokers' default, 48 MiB/s;
 * a very large N, e.g. 10737418240, copies unbounded). `--set key=value` passes a setting to every broker (`ferry serve --set`). `--plain-copy-bytes-per-sec N`
 * measures the floor instead of a catch-up: no replica moves; the leader's data directory is copied
 * as plain files at N bytes/s on the same disk (bench/paced-copy.ts, its own process) while the same
 * load runs, and "during" is the publishes of that time: what the disk alone costs at that rate.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LAUNCHER, launcherNodeFlags, REPO_ROOT, currentCommit } from './checkout.js';
import { waitFor } from './cluster.js';
import { sendPaced } from './pacer.js';
import { ensureBuilt, loadClient } from './peers/ferry.js';
import { startEtcd } from './peers/etcd.js';
import { freePort, LOOPBACK_HOST, ProcessRegistry, type ServerProcess } from './processes.js';
import { summarizeLatencies, type LatencySummary } from './stats.js';

const TOPIC = 'bench-catch-up';
const VALUE_BYTES = 1024;
/** Messages per publishBatch while filling the topic. */
const FILL_BATCH = 500;
const FILL_IN_FLIGHT = 8;
/** The unloaded round waits until the kernel's dirty page cache is below this (the fill written back). */
const SETTLED_DIRTY_KIB = 64 * 1024;
const SETTLE_TIMEOUT_MS = 60_000;
/** USER_HZ: the unit of /proc/<pid>/stat's CPU times on Linux. */
const CLOCK_TICKS_PER_SEC = 100;
/** How long the new replica may take before the run gives up. */
const CATCH_UP_TIMEOUT_MS = 600_000;

interface CatchUpClient {
  createTopic(name: string, options: Record<string, unknown>): Promise<unknown>;
  publish(topic: string, value: Buffer): Promise<unknown>;
  publishBatch(topic: string, messages: Array<{ value: Buffer }>): Promise<unknown>;
  describeTopic(name: string): Promise<{ partitions: Array<{ leader?: string; replicas?: string[]; inSync?: string[]; bytes?: number }> }>;
  reassignReplica(topic: string, move: { replace: string; with: string }): Promise<unknown>;
  close(): Promise<void>;
}

interface Options {
  mib: number;
  rate: number;
  loadSeconds: number;
  bytesPerSec: number | undefined;
  /** The topic's segment size (the broker's default is 128 MiB): only sealed segments are copied in chunks. */
  segmentMib: number;
  /** Settings passed to every broker (`--set key=value`). */
  settings: string[];
  /** Copy the leader's files at this rate instead of catching up (the floor); undefined: catch up. */
  plainCopyBytesPerSec: number | undefined;
  build: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: { mib: { type: 'string', default: '1024' }, rate: { type: 'string', default: '5000' }, 'load-seconds': { type: 'string', default: '5' }, 'bytes-per-sec': { type: 'string' }, 'segment-mib': { type: 'string', default: '128' }, set: { type: 'string', multiple: true, default: [] }, 'plain-copy-bytes-per-sec': { type: 'string' }, 'no-build': { type: 'boolean', default: false } },
  });
  const number = (name: string, text: string): number => {
    const value = Number(text);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number, got ${text}`);
    return value;
  };
  return {
    mib: number('mib', values.mib!),
    rate: number('rate', values.rate!),
    loadSeconds: number('load-seconds', values['load-seconds']!),
    bytesPerSec: values['bytes-per-sec'] === undefined ? undefined : number('bytes-per-sec', values['bytes-per-sec']),
    segmentMib: number('segment-mib', values['segment-mib']!),
    settings: values.set!,
    plainCopyBytesPerSec: values['plain-copy-bytes-per-sec'] === undefined ? undefined : number('plain-copy-bytes-per-sec', values['plain-copy-bytes-per-sec']),
    build: !values['no-build'],
  };
}

function progress(text: string): void {
  process.stderr.write(`catch-up: ${text}\n`);
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ');
  // After the command: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC;
}

/** Fails, naming the broker, its exit and its last output, when one of them is no longer running. */
function checkRunning(brokers: Map<string, ServerProcess>): void {
  for (const [nodeId, server] of brokers) if (!server.running) throw new Error(`broker ${nodeId} exited (${server.exitReason}) during the run; its last output:\n${server.output}`);
}

async function startBrokers(processes: ProcessRegistry, options: Options): Promise<{ servers: string[]; root: string; brokers: Map<string, ServerProcess> }> {
  const etcd = await startEtcd(processes);
  const root = processes.makeTempDir('ferry-catch-up');
  const servers: string[] = [];
  const brokers = new Map<string, ServerProcess>();
  for (let index = 1; index <= 3; index++) {
    const dir = join(root, `n${index}`);
    mkdirSync(dir);
    const port = await freePort();
    const httpPort = await freePort();
    const settings = options.bytesPerSec === undefined ? [] : ['--set', `cluster.replicaCatchUpBytesPerSec=${options.bytesPerSec}`];
    for (const setting of options.settings) settings.push('--set', setting);
    const server = await processes.start({
      name: `ferry-n${index}`,
      command: process.execPath,
      port,
      dataDir: dir,
      cwd: REPO_ROOT,
      args: () => [...launcherNodeFlags(), LAUNCHER, 'serve', '--node-id', `n${index}`, '--etcd', etcd.url, '--dir', dir, '--port', String(port), '--host', LOOPBACK_HOST, '--http-port', String(httpPort), ...settings],
    });
    await waitFor(`n${index} /readyz`, 60_000, async () => (await fetch(`http://${LOOPBACK_HOST}:${httpPort}/readyz`)).ok);
    servers.push(`${LOOPBACK_HOST}:${port}`);
    brokers.set(`n${index}`, server);
  }
  return { servers, root, brokers };
}

/** The floor: the leader's files copied plainly at `bytesPerSec` (bench/paced-copy.ts); resolves when done. */
function plainCopy(from: string, to: string, bytesPerSec: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench', 'paced-copy.ts'), from, to, String(bytesPerSec)], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`paced-copy exited with ${code}`))));
  });
}

async function fill(client: CatchUpClient, mib: number): Promise<void> {
  const total = Math.ceil((mib * 1024 * 1024) / VALUE_BYTES);
  const value = Buffer.alloc(VALUE_BYTES, 0x61);
  let sent = 0;
  const worker = async (): Promise<void> => {
    while (sent < total) {
      const count = Math.min(FILL_BATCH, total - sent);
      sent += count;
      await client.publishBatch(TOPIC, Array.from({ length: count }, () => ({ value })));
    }
  };
  await Promise.all(Array.from({ length: FILL_IN_FLIGHT }, worker));
}

/** Flushes the page cache and waits until little is left to write back (Dirty in /proc/meminfo). */
async function settleWriteback(): Promise<number> {
  execFileSync('sync');
  const dirtyKib = (): number => Number(/^Dirty:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  const deadline = performance.now() + SETTLE_TIMEOUT_MS;
  while (dirtyKib() > SETTLED_DIRTY_KIB && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  return dirtyKib();
}

interface LoadRound {
  samples: number[];
  failed: number;
}

/** Publishes `count` messages at `rate` per second, adding each publish's confirm latency to `round`. */
async function load(client: CatchUpClient, rate: number, count: number, round: LoadRound = { samples: [], failed: 0 }): Promise<LatencySummary & { failed: number }> {
  const { samples } = round;
  const pending: Promise<void>[] = [];
  const value = Buffer.alloc(VALUE_BYTES, 0x62);
  await sendPaced(count, rate, () => {
    const started = performance.now();
    pending.push(client.publish(TOPIC, value).then(() => void samples.push(performance.now() - started), () => void round.failed++));
  });
  await Promise.all(pending);
  return { ...summarizeLatencies(samples), failed: round.failed };
}

export async function runCatchUpBench(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  ensureBuilt(options.build);
  const processes = new ProcessRegistry();
  const startedAt = new Date().toISOString();
  const loadStart = loadavg()[0]!;
  try {
    const { servers, root, brokers } = await startBrokers(processes, options);
    const client = (await (await loadClient()).connect({ servers })) as unknown as CatchUpClient;
    await client.createTopic(TOPIC, { replicas: 2, minInSync: 1, durability: 'interval', partitions: 1, segmentBytes: Math.round(options.segmentMib * 1024 * 1024) });
    const filledAt = performance.now();
    await fill(client, options.mib);
    progress(`filled ${options.mib} MiB in ${((performance.now() - filledAt) / 1000).toFixed(1)} s`);
    progress(`written back: ${await settleWriteback()} KiB dirty`);
    const cpuAt = (): Map<string, number> => {
      checkRunning(brokers);
      return new Map([...brokers].map(([nodeId, server]) => [nodeId, cpuSeconds(server.pid)]));
    };
    const cpuUnloaded = { before: cpuAt(), startedMs: performance.now() };
    const unloaded = await load(client, options.rate, Math.round(options.rate * options.loadSeconds));
    const cpuUnloadedAfter = cpuAt();
    const unloadedSeconds = (performance.now() - cpuUnloaded.startedMs) / 1000;
    progress(`unloaded: p50 ${unloaded.p50Ms.toFixed(2)} ms, p99 ${unloaded.p99Ms.toFixed(2)} ms`);
    const before = (await client.describeTopic(TOPIC)).partitions[0]!;
    const spare = ['n1', 'n2', 'n3'].find((nodeId) => !(before.replicas ?? []).includes(nodeId))!;
    const leaving = (before.replicas ?? []).find((nodeId) => nodeId !== before.leader)!;
    const cpuBefore = cpuAt();
    const t0 = performance.now();
    const copying = options.plainCopyBytesPerSec === undefined ? null : plainCopy(join(root, before.leader!), join(root, 'plain-copy'), options.plainCopyBytesPerSec);
    if (copying === null) await client.reassignReplica(TOPIC, { replace: leaving, with: spare });
    let loaded: (LatencySummary & { failed: number }) | null = null;
    let inSync = false;
    const duringRounds: LoadRound = { samples: [], failed: 0 };
    const loading = (async () => {
      // Keep the load on until the replica is in sync (in rounds of --load-seconds, all counted).
      while (!inSync) loaded = await load(client, options.rate, Math.round(options.rate * options.loadSeconds), duringRounds);
    })();
    if (copying !== null) await copying;
    else await waitFor('the new replica in sync', CATCH_UP_TIMEOUT_MS, async () => ((await client.describeTopic(TOPIC)).partitions[0]!.inSync ?? []).includes(spare), 50);
    inSync = true;
    const seconds = (performance.now() - t0) / 1000;
    const cpuAfter = cpuAt();
    // Each broker's CPU time from the move until in sync: what the catch-up costs whatever the machine's load.
    const roles = { leader: before.leader!, inSyncFollower: leaving, newReplica: spare };
    const cpu = Object.fromEntries(Object.entries(roles).map(([role, nodeId]) => [role, Math.round((cpuAfter.get(nodeId)! - cpuBefore.get(nodeId)!) * 100) / 100]));
    // Less what the same time of the load alone cost each (its rate in the unloaded round): the catch-up's own CPU.
    const cpuExtra = Object.fromEntries(
      Object.entries(roles).map(([role, nodeId]) => {
        const loadOnly = ((cpuUnloadedAfter.get(nodeId)! - cpuUnloaded.before.get(nodeId)!) / unloadedSeconds) * seconds;
        return [role, Math.round((cpu[role]! - loadOnly) * 100) / 100];
      }),
    );
    await loading;
    const bytes = (await client.describeTopic(TOPIC)).partitions[0]!.bytes ?? 0;
    const result = {
      command: `npm run bench -- --catch-up ${argv.join(' ')}`.trim(),
      startedAt,
      commit: currentCommit(),
      loadAverage: { start: loadStart, end: loadavg()[0]! },
      mode: copying === null ? 'catch-up' : 'plain-copy',
      options,
      catchUp: { seconds, bytes, mibPerSec: bytes / 1048576 / seconds },
      cpuSeconds: cpu,
      cpuSecondsBeyondLoad: cpuExtra,
      publish: { unloaded, duringCatchUp: loaded },
    };
    await client.close();
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}-${result.mode}-${result.commit}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    const during = result.publish.duringCatchUp as (LatencySummary & { failed: number }) | null;
    process.stdout.write(
      `${copying === null ? 'catch-up' : 'plain copy (the floor) alongside a partition'} of ${(bytes / 1048576).toFixed(0)} MiB: ${copying === null ? 'in sync' : 'copied'} after ${seconds.toFixed(1)} s (${result.catchUp.mibPerSec.toFixed(1)} MiB/s); ` +
        `publish p99 unloaded ${unloaded.p99Ms.toFixed(2)} ms, during ${during?.p99Ms.toFixed(2) ?? '-'} ms (${during?.failed ?? 0} failed); ` +
        `CPU s leader ${cpu['leader']}, in-sync follower ${cpu['inSyncFollower']}, new replica ${cpu['newReplica']} ` +
        `(beyond the load alone: ${cpuExtra['leader']}, ${cpuExtra['inSyncFollower']}, ${cpuExtra['newReplica']}); ` +
        `load average ${result.loadAverage.start.toFixed(1)} -> ${result.loadAverage.end.toFixed(1)}\nresults: ${file}\n`,
    );
    return 0;
  } finally {
    await processes.stopAll();
    processes.dispose();
  }
}
