/**
 * Reliable-delivery benchmark: the redelivery path and delayed messages, against the real broker
 * process (`node bin/ferry.js serve`, compiled dist/) over TCP with Ferry's client. Topics are
 * `durability: 'always'` and payloads 1 KiB.
 *
 *   node --import tsx bench/delivery.ts [--quick] [--only redelivery,delayed] [--write-docs] [--no-build]
 *
 * Redelivery: N messages (100,000) drained by one group consumer that acks each (plain), and N
 * more drained by one that nacks every message once with `nack({ delayMs: 0 })` — so the figure is
 * the cost of the path, not of a backoff — and acks its second delivery. msgs/s is N over the time
 * from subscribe until the broker reports the group fully settled (every ack durable).
 *
 * Delayed: a fresh broker; 1,000,000 messages published with delays spread uniformly over an hour
 * (publish rate), the broker's RSS (VmRSS, VmHWM from /proc) once they are stored, then a sample of
 * 1,000 messages due within the run (delays of 1–20 s) consumed by a group: lateness = receipt
 * time − the deliverAt the broker returned, p50 and p99.
 *
 * Prints a markdown section, writes bench/results/<date>-delivery-<commit>.json, and with
 * --write-docs replaces the "## Reliable delivery" section of docs/BENCHMARKS.md.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { connect, type FerryClient } from '../src/client/index.js';
import { LOOPBACK_HOST, ProcessRegistry, type ServerProcess } from './processes.js';
import { summarizeLatencies } from './stats.js';
import { currentCommit, ensureBuilt, LAUNCHER, launcherNodeFlags, REPO_ROOT } from './checkout.js';

const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const DOCS_FILE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const DOCS_HEADING = '## Reliable delivery';

const PAYLOAD_BYTES = 1024;
/** Unsettled deliveries per consumer: the same window as the broker workloads (bench/workloads.ts). */
const PREFETCH = 256;
/** Messages per publishBatch call while filling, and calls in flight: fills fast without huge frames. */
const FILL_BATCH = 500;
const FILL_BATCHES_IN_FLIGHT = 8;
const DELAY_SPREAD_MS = 3_600_000;
const SAMPLE_DELAY_MS_MIN = 1_000;
const SAMPLE_DELAY_MS_MAX = 20_000;
/** Sample messages must all arrive this long after the last one is due, or the run fails. */
const SAMPLE_GRACE_MS = 30_000;
const SETTLED_POLL_MS = 10;
const SEED = 20_261_126;

interface Scale {
  redeliveryMessages: number;
  delayedMessages: number;
  samples: number;
}
const FULL: Scale = { redeliveryMessages: 100_000, delayedMessages: 1_000_000, samples: 1_000 };
const QUICK: Scale = { redeliveryMessages: 10_000, delayedMessages: 50_000, samples: 200 };

interface Memory {
  rssBytes: number;
  hwmBytes: number;
}

interface DrainResult {
  messages: number;
  deliveries: number;
  elapsedMs: number;
  msgsPerSec: number;
}

interface Results {
  redelivery?: { publishMsgsPerSec: number; plain: DrainResult; nackOnce: DrainResult };
  delayed?: {
    messages: number;
    publishMsgsPerSec: number;
    publishElapsedMs: number;
    afterPublish: Memory;
    afterSample: Memory;
    dueDuringRun: number;
    lateness: { count: number; p50Ms: number; p99Ms: number; maxMs: number };
  };
}

/** mulberry32: a seeded generator, so every run uses the same delays. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function memoryOf(server: ServerProcess): Memory {
  const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)\\s+kB$`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024;
  return { rssBytes: field('VmRSS'), hwmBytes: field('VmHWM') };
}

const progress = (text: string): void => void process.stderr.write(`bench delivery: ${text}\n`);
const mib = (bytes: number): string => (bytes / 1024 ** 2).toFixed(0);
const rate = (value: number): string => Math.round(value).toLocaleString('en-US');

async function startBroker(processes: ProcessRegistry): Promise<ServerProcess> {
  return processes.start({
    name: 'ferry',
    command: process.execPath,
    args: (port, dataDir) => [...launcherNodeFlags(), LAUNCHER, 'serve', '--dir', dataDir, '--port', String(port), '--host', LOOPBACK_HOST, '--log-level', 'warn'],
    cwd: REPO_ROOT,
  });
}

/** Publishes `count` 1 KiB messages in batches; `options(i)` adds per-message fields. Returns msgs/s. */
async function fill(client: FerryClient, topic: string, count: number, options: (index: number) => { delayMs?: number } = () => ({})): Promise<number> {
  const payload = Buffer.alloc(PAYLOAD_BYTES, 'ferry-delivery-bench;');
  const inFlight = new Set<Promise<unknown>>();
  const startedMs = performance.now();
  for (let sent = 0; sent < count; ) {
    const size = Math.min(FILL_BATCH, count - sent);
    const batch = Array.from({ length: size }, (_, i) => ({ value: payload, ...options(sent + i) }));
    const pending = client.publishBatch(topic, batch);
    inFlight.add(pending);
    void pending.finally(() => inFlight.delete(pending));
    sent += size;
    if (inFlight.size >= FILL_BATCHES_IN_FLIGHT) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  return count / ((performance.now() - startedMs) / 1000);
}

/** Waits until the broker reports nothing pending and nothing in flight for the group. */
async function settled(admin: FerryClient, topic: string, group: string): Promise<void> {
  for (;;) {
    const info = await admin.describeGroup(topic, group);
    if (info.pending === 0 && info.inFlight === 0 && info.pendingRedelivery === 0) return;
    await new Promise((resolve) => setTimeout(resolve, SETTLED_POLL_MS));
  }
}

/** One group consumer drains `count` messages: acking each, or nacking each first delivery (delay 0) first. */
async function drain(consumer: FerryClient, admin: FerryClient, topic: string, count: number, nackOnce: boolean): Promise<DrainResult> {
  const startedMs = performance.now();
  const sub = await consumer.subscribe(topic, { group: 'bench', prefetch: PREFETCH });
  let deliveries = 0;
  let acked = 0;
  for await (const message of sub) {
    deliveries++;
    if (nackOnce && message.deliveryCount === 1) {
      void message.nack({ delayMs: 0 });
      continue;
    }
    void message.ack();
    if (++acked === count) break;
  }
  await settled(admin, topic, 'bench');
  const elapsedMs = performance.now() - startedMs;
  return { messages: count, deliveries, elapsedMs, msgsPerSec: count / (elapsedMs / 1000) };
}

async function redelivery(processes: ProcessRegistry, scale: Scale): Promise<NonNullable<Results['redelivery']>> {
  const server = await startBroker(processes);
  try {
    const admin = await connect({ host: LOOPBACK_HOST, port: server.port, reconnect: false });
    const consumer = await connect({ host: LOOPBACK_HOST, port: server.port, reconnect: false });
    try {
      for (const topic of ['plain', 'redeliver']) await admin.createTopic(topic, { durability: 'always' });
      const publishMsgsPerSec = await fill(admin, 'plain', scale.redeliveryMessages);
      await fill(admin, 'redeliver', scale.redeliveryMessages);
      progress(`filled 2 × ${scale.redeliveryMessages} messages (publish ${rate(publishMsgsPerSec)} msgs/s)`);
      const plain = await drain(consumer, admin, 'plain', scale.redeliveryMessages, false);
      progress(`plain ack: ${rate(plain.msgsPerSec)} msgs/s`);
      const nackOnce = await drain(consumer, admin, 'redeliver', scale.redeliveryMessages, true);
      progress(`nack once, then ack: ${rate(nackOnce.msgsPerSec)} msgs/s (${nackOnce.deliveries} deliveries)`);
      return { publishMsgsPerSec, plain, nackOnce };
    } finally {
      await consumer.close();
      await admin.close();
    }
  } finally {
    await processes.stop(server);
  }
}

async function delayed(processes: ProcessRegistry, scale: Scale): Promise<NonNullable<Results['delayed']>> {
  const server = await startBroker(processes);
  const random = seeded(SEED);
  try {
    const producer = await connect({ host: LOOPBACK_HOST, port: server.port, reconnect: false });
    const consumer = await connect({ host: LOOPBACK_HOST, port: server.port, reconnect: false });
    try {
      await producer.createTopic('delayed', { durability: 'always' });
      const sub = await consumer.subscribe('delayed', { group: 'g', prefetch: PREFETCH });
      const dueAtMs = new Map<string, number>();
      const lateness: number[] = [];
      let dueDuringRun = 0;
      const samplesArrived: { resolve: (() => void) | null } = { resolve: null };
      const consuming = (async () => {
        for await (const message of sub) {
          const receivedMs = Date.now();
          // After close() an ack rejects (the subscription is gone): the message stays unsettled, which is fine here.
          message.ack().catch(() => undefined);
          const head = message.value.toString('latin1', 0, 16);
          const due = head.startsWith('sample-') ? dueAtMs.get(head.trim()) : undefined;
          if (due === undefined) {
            dueDuringRun++;
            continue;
          }
          lateness.push(receivedMs - due);
          if (lateness.length === scale.samples) samplesArrived.resolve?.();
        }
      })();

      const startedMs = performance.now();
      const publishMsgsPerSec = await fill(producer, 'delayed', scale.delayedMessages, () => ({ delayMs: 1 + Math.floor(random() * DELAY_SPREAD_MS) }));
      const publishElapsedMs = performance.now() - startedMs;
      const afterPublish = memoryOf(server);
      progress(`published ${scale.delayedMessages} delayed: ${rate(publishMsgsPerSec)} msgs/s; RSS ${mib(afterPublish.rssBytes)} MiB, HWM ${mib(afterPublish.hwmBytes)} MiB`);

      const samplesDone = new Promise<void>((resolve) => (samplesArrived.resolve = resolve));
      const samples = Array.from({ length: scale.samples }, (_, i) => {
        const value = Buffer.alloc(PAYLOAD_BYTES, ' ');
        value.write(`sample-${i}`.padEnd(16, ' '), 'latin1');
        const delayMs = SAMPLE_DELAY_MS_MIN + Math.floor(random() * (SAMPLE_DELAY_MS_MAX - SAMPLE_DELAY_MS_MIN));
        return { value, delayMs };
      });
      const results = await producer.publishBatch('delayed', samples);
      results.forEach((result, i) => dueAtMs.set(`sample-${i}`, result.deliverAt!.getTime()));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`only ${lateness.length} of ${scale.samples} samples arrived`)), SAMPLE_DELAY_MS_MAX + SAMPLE_GRACE_MS);
      });
      if (lateness.length < scale.samples) await Promise.race([samplesDone, deadline]);
      clearTimeout(timer);
      const afterSample = memoryOf(server);
      await sub.close();
      await consuming;
      const summary = summarizeLatencies(lateness);
      progress(`lateness p50 ${summary.p50Ms} ms, p99 ${summary.p99Ms} ms, max ${summary.maxMs} ms; HWM ${mib(afterSample.hwmBytes)} MiB`);
      return {
        messages: scale.delayedMessages,
        publishMsgsPerSec,
        publishElapsedMs,
        afterPublish,
        afterSample,
        dueDuringRun,
        lateness: { count: summary.count, p50Ms: summary.p50Ms, p99Ms: summary.p99Ms, maxMs: summary.maxMs },
      };
    } finally {
      await consumer.close();
      await producer.close();
    }
  } finally {
    await processes.stop(server);
  }
}

// ---- build check, report, docs ------------------------------------------------------------------

function machineLine(): string {
  return (
    `${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB memory, ` +
    `Linux ${release()}, Node ${process.version}`
  );
}

function section(results: Results, command: string, stamp: string, head: string, resultsPath: string, quick: boolean): string {
  const lines = [
    DOCS_HEADING,
    '',
    'Reliable delivery over TCP (`bench/delivery.ts`): the broker as a child process (`node bin/ferry.js serve`,',
    "compiled dist/), Ferry's client in the harness process, topics `durability: always`, 1 KiB payloads, one",
    `consumer with at most ${PREFETCH} unsettled deliveries. A drain's msgs/s counts from subscribe until the broker`,
    'reports the group settled (every ack durable in the group journal).',
    '',
  ];
  const r = results.redelivery;
  if (r !== undefined) {
    lines.push(
      `| Redelivery path, ${rate(r.plain.messages)} messages | msgs/s | deliveries |`,
      '| --- | --- | --- |',
      `| ack each (plain) | ${rate(r.plain.msgsPerSec)} | ${rate(r.plain.deliveries)} |`,
      `| nack each once (\`nack({ delayMs: 0 })\`), then ack | ${rate(r.nackOnce.msgsPerSec)} | ${rate(r.nackOnce.deliveries)} |`,
      '',
      `Filling a topic with the same messages (publishBatch of ${FILL_BATCH}, ${FILL_BATCHES_IN_FLIGHT} in flight): ${rate(r.publishMsgsPerSec)} msgs/s.`,
      '',
    );
  }
  const d = results.delayed;
  if (d !== undefined) {
    lines.push(
      `| Delayed messages: ${rate(d.messages)} with delays spread over 1 hour | value |`,
      '| --- | --- |',
      `| publish (publishBatch of ${FILL_BATCH}, ${FILL_BATCHES_IN_FLIGHT} in flight) | ${rate(d.publishMsgsPerSec)} msgs/s (${(d.publishElapsedMs / 1000).toFixed(1)} s) |`,
      `| broker RSS once all are stored: VmRSS / VmHWM | ${mib(d.afterPublish.rssBytes)} MiB / ${mib(d.afterPublish.hwmBytes)} MiB |`,
      `| broker RSS after the sample: VmRSS / VmHWM | ${mib(d.afterSample.rssBytes)} MiB / ${mib(d.afterSample.hwmBytes)} MiB |`,
      `| lateness of ${d.lateness.count} messages due in 1–20 s, consumed by a group: p50 / p99 / max | ${d.lateness.p50Ms} / ${d.lateness.p99Ms} / ${d.lateness.maxMs} ms |`,
      '',
      `Lateness is receipt time minus the \`deliverAt\` the broker returned (same machine, wall clock, ms resolution); ${rate(d.dueDuringRun)} bulk messages came due during the run and were consumed too.`,
      '',
    );
  }
  lines.push(
    `Command: \`${command}\`${quick ? ' (quick scale)' : ''}  `,
    `Commit: ${head}, ${stamp}  `,
    `Machine: ${machineLine()}  `,
    `Results: \`${resultsPath}\``,
    '',
  );
  return lines.join('\n');
}

function writeDocs(text: string): void {
  const current = existsSync(DOCS_FILE) ? readFileSync(DOCS_FILE, 'utf8') : '# Benchmarks\n';
  const lines = current.split('\n');
  const start = lines.findIndex((line) => line.trim() === DOCS_HEADING);
  if (start === -1) {
    writeFileSync(DOCS_FILE, `${current.replace(/\n*$/, '')}\n\n${text}`);
    return;
  }
  const rest = lines.slice(start + 1).findIndex((line) => /^## /.test(line));
  const end = rest === -1 ? lines.length : start + 1 + rest;
  writeFileSync(DOCS_FILE, [...lines.slice(0, start), ...text.replace(/\n$/, '').split('\n'), ...(end < lines.length ? ['', ...lines.slice(end)] : [''])].join('\n'));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      'write-docs': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const parts = values.only === undefined ? ['redelivery', 'delayed'] : values.only.split(',').map((part) => part.trim());
  for (const part of parts) if (part !== 'redelivery' && part !== 'delayed') throw new Error(`--only: unknown part '${part}' (redelivery, delayed)`);
  const scale = values.quick ? QUICK : FULL;
  ensureBuilt(!values['no-build'], progress);
  const processes = new ProcessRegistry();
  const onSignal = (): void => {
    processes.killAllNow();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const startedAt = new Date().toISOString();
  const head = currentCommit();
  const results: Results = {};
  try {
    if (parts.includes('redelivery')) results.redelivery = await redelivery(processes, scale);
    if (parts.includes('delayed')) results.delayed = await delayed(processes, scale);
  } finally {
    await processes.stopAll();
    processes.dispose();
  }
  const command = `node --import tsx bench/delivery.ts${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
  const stamp = startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsFile = join(RESULTS_DIR, `${stamp}-delivery-${head}.json`);
  writeFileSync(resultsFile, `${JSON.stringify({ command, startedAt, commit: head, machine: machineLine(), scale, results }, null, 2)}\n`);
  const text = section(results, command, startedAt, head, relative(REPO_ROOT, resultsFile), values.quick);
  process.stdout.write(text);
  if (values['write-docs']) {
    writeDocs(text);
    progress(`updated the "${DOCS_HEADING}" section of ${relative(REPO_ROOT, DOCS_FILE)}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench delivery: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
