/**
 * W3 under a microscope: where each message's latency goes. Runs W3's load (5,000 publishes a
 * second, open loop, 1 KiB, `always`, one group consumer acking each) against one fresh broker that
 * carries bench/trace/broker-preload.ts, then lines the harness's timestamps up with the broker's
 * writes, syncs, collections and event-loop gaps.
 *
 *   npm run bench:w3trace [-- --seconds N] [--broker PATH]
 *
 * It prints the latency percentiles over the run, after its first second and after its first three;
 * the messages over W3's target by second; the log's syncs by second; and, for the messages after
 * the first three seconds, the parts of their latency (latency-breakdown.ts), for all of them and
 * for those over the target. --broker PATH runs another checkout's broker (built), as bench:driver
 * does. The tracing costs the broker a little time per write; compare traced runs with traced runs.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadBuiltConnect, type Connect } from './built-client.js';
import { launcherNodeFlags, REPO_ROOT } from './checkout.js';
import { sendPaced } from './pacer.js';
import { LOOPBACK_HOST, ProcessRegistry } from './processes.js';
import { percentileOfSorted } from './stats.js';
import { busiestWriter, breakDown, countBySecond, emptyBreakdown, PARTS, type Breakdown, type MessageTimes } from './trace/latency-breakdown.js';
import { epochNowMs, LOOP_GAP_MS, observeProcess, type ProcessTrace } from './trace/process-observer.js';

const RATE_PER_SEC = 5_000;
const PAYLOAD_BYTES = 1024;
const PREFETCH = 256;
const DEFAULT_SECONDS = 10;
/** W3's p99 target: a message slower than this counts as slow. */
const TARGET_MS = 2;
/** Seconds left out of the breakdown: the warm-up of the broker and of the disk (docs/BENCHMARKS.md). */
const WARMUP_SECONDS = 3;
const SEQUENCE_AT = 0;
/** After the last send, every message must be received within this long, or the run fails. */
const RECEIVE_GRACE_MS = 30_000;

/** Runs the load; fills `times` (index = sequence number). */
async function runLoad(connect: Connect, port: number, times: MessageTimes): Promise<void> {
  const count = times.sentMs.length;
  const options = { host: LOOPBACK_HOST, port, reconnect: false };
  const producer = await connect(options);
  const consumer = await connect(options);
  await producer.createTopic('w3', { durability: 'always' });
  let received = 0;
  let allReceived!: () => void;
  const done = new Promise<void>((resolve) => (allReceived = resolve));
  const consuming = (async () => {
    for await (const message of await consumer.subscribe('w3', { group: 'g', from: 'earliest', prefetch: PREFETCH })) {
      times.receivedMs[message.value.readUInt32BE(SEQUENCE_AT)] = epochNowMs();
      void message.ack();
      if (++received === count) {
        allReceived();
        return;
      }
    }
  })();
  await sendPaced(count, RATE_PER_SEC, (sequence) => {
    const value = Buffer.alloc(PAYLOAD_BYTES, 7);
    value.writeUInt32BE(sequence, SEQUENCE_AT);
    times.sentMs[sequence] = epochNowMs();
    void producer.publish('w3', value).then(() => {
      times.confirmedMs[sequence] = epochNowMs();
    });
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`received ${received} of ${count} messages ${RECEIVE_GRACE_MS} ms after the last send`)), RECEIVE_GRACE_MS);
  });
  try {
    await Promise.race([done, late]);
  } finally {
    clearTimeout(timer);
  }
  await consuming;
  await producer.close();
  await consumer.close();
}

function percentiles(values: ArrayLike<number>): string {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return 'none';
  return `p50 ${percentileOfSorted(sorted, 50).toFixed(2)}, p99 ${percentileOfSorted(sorted, 99).toFixed(2)}, p99.9 ${percentileOfSorted(sorted, 99.9).toFixed(2)} ms`;
}

function printBreakdown(label: string, breakdown: Breakdown): void {
  console.log(`${label} (${breakdown.messages.length} messages), ms:`);
  console.log('| part | p50 | p90 | p99 |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const part of PARTS) {
    const sorted = Float64Array.from(breakdown.parts[part]).sort();
    if (sorted.length === 0) continue;
    console.log(`| ${part} | ${[50, 90, 99].map((p) => percentileOfSorted(sorted, p).toFixed(2)).join(' | ')} |`);
  }
}

function report(times: MessageTimes, broker: ProcessTrace, harness: ProcessTrace, seconds: number): void {
  const count = times.sentMs.length;
  const originMs = times.sentMs[0]!;
  const latencies = times.receivedMs.map((receivedMs, index) => receivedMs - times.sentMs[index]!);
  console.log(`latency, publish to receipt: ${percentiles(latencies)}`);
  console.log(`  after the first second: ${percentiles(latencies.subarray(RATE_PER_SEC))}`);
  console.log(`  after the first ${WARMUP_SECONDS} seconds: ${percentiles(latencies.subarray(WARMUP_SECONDS * RATE_PER_SEC))}`);
  const slowStarts: number[] = [];
  latencies.forEach((latency, index) => {
    if (latency > TARGET_MS) slowStarts.push(times.sentMs[index]!);
  });
  console.log(`messages over ${TARGET_MS} ms by second: ${countBySecond(slowStarts, originMs, seconds).join(' ')}`);
  const fd = busiestWriter(broker.writes);
  const logSyncs = broker.syncs.filter((span) => span[2] === fd);
  console.log(`log syncs by second: ${countBySecond(logSyncs.map((span) => span[0]), originMs, seconds).join(' ')}`);
  const bySecond = Array.from({ length: seconds }, (_, second) =>
    logSyncs.filter((span) => Math.floor((span[0] - originMs) / 1000) === second).map((span) => span[1]),
  );
  console.log(`log sync p99 by second, ms: ${bySecond.map((durations) => (durations.length === 0 ? '-' : percentileOfSorted(Float64Array.from(durations).sort(), 99).toFixed(2))).join(' ')}`);
  console.log(`other syncs: ${broker.syncs.length - logSyncs.length} (the group's journal and checkpoints)`);
  const over = (spans: ProcessTrace['collections'], ms: number): number => spans.filter((span) => span[1] > ms).length;
  console.log(`broker: ${broker.collections.length} collections (${over(broker.collections, 1)} over 1 ms), ${broker.loopGaps.length} loop gaps over ${LOOP_GAP_MS} ms`);
  console.log(`harness: ${harness.collections.length} collections (${over(harness.collections, 1)} over 1 ms), ${harness.loopGaps.length} loop gaps over ${LOOP_GAP_MS} ms`);
  const from = WARMUP_SECONDS * RATE_PER_SEC;
  const all = breakDown(times, broker.writes, broker.syncs, fd, from, count);
  printBreakdown(`after the first ${WARMUP_SECONDS} seconds, every message`, all);
  const slow: Breakdown = emptyBreakdown();
  all.messages.forEach((index, at) => {
    if (latencies[index]! <= TARGET_MS) return;
    slow.messages.push(index);
    for (const part of PARTS) slow.parts[part].push(all.parts[part][at]!);
  });
  printBreakdown(`after the first ${WARMUP_SECONDS} seconds, the messages over ${TARGET_MS} ms`, slow);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string' }, broker: { type: 'string' } } });
  const seconds = Number(values.seconds ?? DEFAULT_SECONDS);
  if (!Number.isSafeInteger(seconds) || seconds <= WARMUP_SECONDS) throw new Error(`--seconds: an integer over ${WARMUP_SECONDS}`);
  const checkout = values.broker ?? REPO_ROOT;
  const connect = await loadBuiltConnect();
  const traceDir = mkdtempSync(join(tmpdir(), 'ferry-w3-trace-'));
  const traceFile = join(traceDir, 'broker.json');
  process.env['FERRY_TRACE_OUT'] = traceFile;
  const processes = new ProcessRegistry();
  const harness = await observeProcess({ files: false });
  const count = seconds * RATE_PER_SEC;
  const times: MessageTimes = { sentMs: new Float64Array(count), confirmedMs: new Float64Array(count), receivedMs: new Float64Array(count) };
  try {
    const preload = join(REPO_ROOT, 'bench', 'trace', 'broker-preload.ts');
    const server = await processes.start({
      name: 'ferry-traced',
      command: process.execPath,
      args: (port, dataDir) => [...launcherNodeFlags(), '--import', 'tsx', '--import', preload, join(checkout, 'bin', 'ferry.js'), 'serve', '--dir', dataDir, '--port', String(port), '--host', LOOPBACK_HOST, '--http-port', '0'],
      cwd: REPO_ROOT,
    });
    console.log(`W3 load, ${RATE_PER_SEC} msgs/s for ${seconds} s, against a traced broker (pid ${server.pid}) from ${checkout}`);
    await runLoad(connect, server.port, times);
    await processes.stop(server);
    const broker = JSON.parse(readFileSync(traceFile, 'utf8')) as ProcessTrace;
    report(times, broker, harness, seconds);
  } finally {
    await processes.stopAll();
    processes.dispose();
    rmSync(traceDir, { recursive: true, force: true });
  }
}

await main();
