/**
 * The minimal driver: one workload, one fresh broker, nothing else in the client process, for A/B
 * comparisons of two builds and for profiling (`--broker-flags "--cpu-prof …"`). The benchmark
 * (run.ts) is the reference; this is the microscope. It starts `node <flags> <checkout>/bin/ferry.js
 * serve` on loopback with an empty temp dir, drives it with this checkout's built client, prints the
 * figure, the broker's CPU seconds (all threads), its peak RSS and its storage counters, then stops
 * it with SIGTERM.
 *
 *   npm run bench:driver -- w1|w2|w3|w4 [--count N] [--broker PATH] [--broker-flags "…"]
 *
 *   w1  one producer, --count messages (default 200,000), at most 1,000 unconfirmed: msgs/s
 *   w2  w1 into a topic, then one consumer in a group drains it acking each (prefetch 256): both figures
 *   w3  5,000 msgs/s open loop for --count messages (default 50,000): latency p50/p99/p99.9
 *   w4  4 producers (250 unconfirmed each) and 4 consumers in one group, --count (default 100,000)
 *
 * --broker PATH is another checkout (built) whose broker to run, e.g. a `git worktree` of a base
 * commit; the client is always this checkout's, so only the broker differs. --broker-flags replaces
 * the launcher's Node flags (default: the `#!` line's, as `ferry serve` runs). With `--trace-gc`
 * among them, the driver also counts the broker's collections (a steadier measure of allocation
 * than throughput on a shared machine).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadBuiltConnect, type BenchClient as Client, type Connect } from './built-client.js';
import { launcherNodeFlags, REPO_ROOT } from './checkout.js';
import { sendPaced } from './pacer.js';
import { canConnect, LOOPBACK_HOST } from './processes.js';
import { summarizeLatencies } from './stats.js';

const PORT = 17_711;
const HTTP_PORT = 17_712;
const PAYLOAD_BYTES = 1024;
const WINDOW = 1_000;
const PREFETCH = 256;
const LATENCY_RATE_PER_SEC = 5_000;
const GROUP_SIDES = 4;
const STARTUP_WAIT_MS = 10_000;
const DEFAULT_COUNTS = { w1: 200_000, w2: 200_000, w3: 50_000, w4: 100_000 } as const;
type Workload = keyof typeof DEFAULT_COUNTS;

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + STARTUP_WAIT_MS;
  while (!(await canConnect(port))) {
    if (Date.now() > deadline) throw new Error(`the broker did not listen on ${port} within ${STARTUP_WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Publishes `count` messages keeping at most `window` unconfirmed; msgs/s. */
async function publishWindowed(client: Client, topic: string, count: number, window: number, payload: Buffer): Promise<number> {
  const startedMs = performance.now();
  let sent = 0;
  let confirmed = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = (): void => {
      while (sent - confirmed < window && sent < count) {
        sent++;
        client.publish(topic, payload).then(() => {
          confirmed++;
          if (confirmed === count) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
  return count / ((performance.now() - startedMs) / 1000);
}

async function drain(client: Client, topic: string, group: string, count: number, onMessage?: (value: Buffer) => void): Promise<void> {
  if (count === 0) return;
  let received = 0;
  for await (const message of await client.subscribe(topic, { group, from: 'earliest', prefetch: PREFETCH })) {
    onMessage?.(message.value);
    void message.ack();
    if (++received >= count) return;
  }
}

async function runWorkload(connect: Connect, workload: Workload, count: number): Promise<string> {
  const options = { host: LOOPBACK_HOST, port: PORT, reconnect: false };
  const client = await connect(options);
  const payload = Buffer.alloc(PAYLOAD_BYTES, 7);
  try {
    if (workload === 'w1' || workload === 'w2') {
      await client.createTopic('t', { durability: 'always' });
      const publishRate = await publishWindowed(client, 't', count, WINDOW, payload);
      if (workload === 'w1') return `w1 ${Math.round(publishRate)} msgs/s`;
      const startedMs = performance.now();
      await drain(client, 't', 'g', count);
      return `fill ${Math.round(publishRate)} msgs/s, w2 ${Math.round(count / ((performance.now() - startedMs) / 1000))} msgs/s`;
    }
    if (workload === 'w4') {
      await client.createTopic('t', { durability: 'always' });
      const producers = await Promise.all(Array.from({ length: GROUP_SIDES }, () => connect(options)));
      const consumers = await Promise.all(Array.from({ length: GROUP_SIDES }, () => connect(options)));
      const startedMs = performance.now();
      let received = 0;
      let done!: () => void;
      const all = new Promise<void>((resolve) => (done = resolve));
      const counted = (): void => {
        if (++received === count) done();
      };
      for (const consumer of consumers) void drain(consumer, 't', 'g', count, counted);
      await Promise.all(producers.map((producer) => publishWindowed(producer, 't', count / GROUP_SIDES, WINDOW / GROUP_SIDES, payload)));
      await all;
      const rate = count / ((performance.now() - startedMs) / 1000);
      for (const side of [...producers, ...consumers]) await side.close();
      return `w4 ${Math.round(rate)} msgs/s`;
    }
    // w3: the payload carries its sequence number and send time.
    await client.createTopic('t', { durability: 'always' });
    const consumer = await connect(options);
    const latencies = new Float64Array(count);
    let received = 0;
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    void drain(consumer, 't', 'g', count, (value) => {
      latencies[value.readUInt32BE(0)] = performance.now() - value.readDoubleBE(4);
      if (++received === count) done();
    });
    await sendPaced(count, LATENCY_RATE_PER_SEC, (sequence) => {
      const value = Buffer.alloc(PAYLOAD_BYTES, 7);
      value.writeUInt32BE(sequence, 0);
      value.writeDoubleBE(performance.now(), 4);
      void client.publish('t', value);
    });
    await all;
    await consumer.close();
    // Percentiles as the benchmark reads them (stats.ts: nearest rank).
    const whole = summarizeLatencies(latencies);
    const afterFirstSecond = summarizeLatencies(latencies.subarray(Math.min(count - 1, LATENCY_RATE_PER_SEC)));
    const ms = (value: number): string => value.toFixed(2);
    return `w3 p50 ${ms(whole.p50Ms)} ms, p99 ${ms(whole.p99Ms)} ms, p99.9 ${ms(whole.p999Ms)} ms; p99 after the first second ${ms(afterFirstSecond.p99Ms)} ms`;
  } finally {
    await client.close();
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { count: { type: 'string' }, broker: { type: 'string' }, 'broker-flags': { type: 'string' } },
  });
  const workload = positionals[0] as Workload;
  if (!(workload in DEFAULT_COUNTS)) throw new Error('usage: npm run bench:driver -- w1|w2|w3|w4 [--count N] [--broker PATH] [--broker-flags "…"]');
  const count = Number(values.count ?? DEFAULT_COUNTS[workload]);
  if (!Number.isSafeInteger(count) || count < GROUP_SIDES || count % GROUP_SIDES !== 0) throw new Error('--count: a positive multiple of 4');
  const checkout = values.broker ?? REPO_ROOT;
  const flags = values['broker-flags'] === undefined ? launcherNodeFlags() : values['broker-flags'].split(' ').filter((flag) => flag.length > 0);
  const connect = await loadBuiltConnect();
  const dataDir = mkdtempSync(join(tmpdir(), 'ferry-driver-'));
  const broker = spawn(
    process.execPath,
    [...flags, join(checkout, 'bin', 'ferry.js'), 'serve', '--dir', dataDir, '--port', String(PORT), '--host', LOOPBACK_HOST, '--http-port', String(HTTP_PORT)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  // The broker logs to stderr; its stdout carries only what V8 prints, such as --trace-gc's lines.
  const collections = { scavenges: 0, markCompacts: 0 };
  broker.stdout.setEncoding('utf8');
  broker.stdout.on('data', (chunk: string) => {
    collections.scavenges += chunk.split('Scavenge').length - 1;
    collections.markCompacts += chunk.split('Mark-Compact').length - 1;
  });
  const exited = new Promise<void>((resolve) => broker.once('exit', () => resolve()));
  try {
    await waitForPort(PORT);
    console.log(await runWorkload(connect, workload, count));
    const stat = readFileSync(`/proc/${broker.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const cpuSeconds = (Number(stat[11]) + Number(stat[12])) / 100;
    const peakKiB = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${broker.pid}/status`, 'utf8'))?.[1];
    const metrics = await (await fetch(`http://${LOOPBACK_HOST}:${HTTP_PORT}/metrics`)).text();
    const counters = metrics
      .split('\n')
      .filter((line) => /^ferry_storage_(fsync_seconds_(sum|count)|batch_records_(sum|count)|written_bytes_total)\b/.test(line))
      .map((line) => line.replace(/^ferry_storage_/, '').replace(/\{[^}]*\}/, ''))
      .join(', ');
    console.log(`broker: ${cpuSeconds.toFixed(2)} s CPU, peak RSS ${Math.round(Number(peakKiB) / 1024)} MiB; ${counters}`);
    if (flags.includes('--trace-gc')) console.log(`broker collections: ${collections.scavenges} scavenges, ${collections.markCompacts} mark-compacts`);
  } finally {
    broker.kill('SIGTERM');
    await exited;
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
