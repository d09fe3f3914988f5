/**
 * `npm run bench:handover -- [--handovers 3] [--rate 2000] [--no-build]`: where the time of a
 * controlled handover (SIGTERM on a topic's leader) goes, under the failover benchmark's steady
 * publish load. A microscope beside bench/failover.ts, not a figure for docs/BENCHMARKS.md.
 *
 * Per handover it prints one timeline, in milliseconds from the SIGTERM: the brokers' own log lines
 * about the topic's leadership (JSON, wall clock: every process here shares one machine's clock),
 * and the client's side — the last confirm before the longest gap and the first after it, and every
 * try of a publish that failed, grouped by broker and error code (the tries are seen by wrapping
 * the built client's router, so nothing in src/ knows of this script).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { waitFor, type StartedCluster } from './cluster.js';
import { longestGapMs, TimeSeries } from './failover-stats.js';
import { createFerryClusterSystem } from './peers/ferry-cluster.js';
import type { FerryConnectionAdapter } from './peers/ferry.js';
import { ProcessRegistry } from './processes.js';
import { median } from './stats.js';
import { makePayload, type BrokerSubscription } from './workloads.js';

const TOPIC = 'bench-handover';
const GROUP = 'bench-handover-drain';
const HANDOVERS_DEFAULT = 3;
const HANDOVERS_MAX = 10;
const RATE_DEFAULT = 2_000;
const RATE_MAX = 20_000;
const STEADY_BEFORE_MS = 2_000;
const WATCH_AFTER_MS = 1_500;
const REJOIN_TIMEOUT_MS = 120_000;
const POLL_MS = 100;
/** Broker log lines this long before the SIGTERM are shown too. */
const LOG_BEFORE_MS = 20;
/** Log events about a topic's leadership (and the broker's stop); the rest is noise here. */
const EVENT_PATTERN = /^(cluster\.(leader|follower|handover|in_sync|election)|broker\.shutdown)/;
const USAGE = 'usage: npm run bench:handover -- [--handovers N] [--rate N] [--no-build]';

/** Wall-clock milliseconds with a fraction: comparable with the brokers' log times. */
const wallMs = (): number => performance.timeOrigin + performance.now();

interface Attempt {
  node: string;
  startMs: number;
  endMs: number;
  code: string;
  leaderNamed: string;
}

/** Wraps the client's router so that every try of a request is recorded (bench only). */
function recordAttempts(adapter: FerryConnectionAdapter, attempts: Attempt[]): void {
  const router = (adapter.client as unknown as { router: Record<string, unknown> | null }).router;
  if (router === null || typeof router['callOnLink'] !== 'function') throw new Error('the built client has no cluster router to watch');
  const original = router['callOnLink'] as (topic: string | null, kind: string, run: (link: { nodeId: string }) => Promise<unknown>) => Promise<unknown>;
  router['callOnLink'] = function (this: unknown, topic: string | null, kind: string, run: (link: { nodeId: string }) => Promise<unknown>) {
    if (kind !== 'publish') return original.call(this, topic, kind, run);
    return original.call(this, topic, kind, (link) => {
      const startMs = wallMs();
      return run(link).then((value) => {
        attempts.push({ node: link.nodeId, startMs, endMs: wallMs(), code: 'ok', leaderNamed: '-' });
        return value;
      }, (error: unknown) => {
        const detail = (error as { detail?: Record<string, unknown> }).detail;
        attempts.push({ node: link.nodeId, startMs, endMs: wallMs(), code: String((error as { code?: unknown }).code ?? 'error'), leaderNamed: String(detail?.['leader'] ?? '-') });
        throw error;
      });
    });
  };
}

class Publisher {
  readonly confirmedAt = new TimeSeries();
  private sentCount = 0;
  latestConfirmedSentMs = -Infinity;
  outstanding = 0;
  failed = 0;
  private sending = false;

  constructor(
    private readonly adapter: FerryConnectionAdapter,
    private readonly ratePerSec: number,
  ) {}

  start(): void {
    const startMs = performance.now();
    this.sending = true;
    const tick = (): void => {
      if (!this.sending) return;
      const due = Math.floor(((performance.now() - startMs) * this.ratePerSec) / 1000) + 1;
      while (this.sentCount < due) this.send();
      setTimeout(tick, 1);
    };
    tick();
  }

  private send(): void {
    const sentMs = wallMs();
    const sequence = this.sentCount++;
    this.outstanding++;
    const attempt = (): void => {
      this.adapter.publish(TOPIC, makePayload(sequence, sentMs)).then(
        () => {
          this.outstanding--;
          this.confirmedAt.push(wallMs());
          this.latestConfirmedSentMs = Math.max(this.latestConfirmedSentMs, sentMs);
        },
        () => {
          this.failed++;
          setTimeout(attempt, 100);
        },
      );
    };
    attempt();
  }

  stop(): void {
    this.sending = false;
  }
}

interface LogEvent {
  atMs: number;
  node: string;
  event: string;
  fields: Record<string, unknown>;
}

function brokerEvents(node: string, output: string, fromMs: number, toMs: number): LogEvent[] {
  const events: LogEvent[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    const event = String(entry['event'] ?? '');
    const atMs = Date.parse(String(entry['time'] ?? ''));
    if (!EVENT_PATTERN.test(event) || !(atMs >= fromMs && atMs <= toMs)) continue;
    const { time: _time, level: _level, event: _event, ...fields } = entry;
    events.push({ atMs, node, event, fields });
  }
  return events;
}

function describeFields(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .filter(([key]) => key !== 'topic')
    .map(([key, value]) => `${key}=${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join(' ')
    .slice(0, 160);
}

/** The gap's ends: the last confirm before the longest gap after `fromMs`, and the first after it. */
function gapEnds(times: Float64Array, length: number, fromMs: number): { startMs: number; endMs: number } {
  let previous = fromMs;
  let best = { startMs: fromMs, endMs: fromMs };
  for (let index = 0; index < length; index++) {
    const at = times[index]!;
    if (at < fromMs) {
      previous = at;
      continue;
    }
    if (at - previous > best.endMs - best.startMs) best = { startMs: previous, endMs: at };
    previous = at;
  }
  return best;
}

interface HandoverResult {
  gapMs: number;
  lines: string[];
}

async function oneHandover(cluster: StartedCluster, publisher: Publisher, attempts: Attempt[], index: number): Promise<HandoverResult> {
  await waitFor('every replica in sync', REJOIN_TIMEOUT_MS, () => cluster.replicasCurrent(TOPIC), POLL_MS);
  const victim = await cluster.leaderOf(TOPIC);
  await sleep(STEADY_BEFORE_MS);
  attempts.length = 0;
  const server = cluster.server(victim);
  const termMs = wallMs();
  server.signal('SIGTERM');
  while (!(publisher.latestConfirmedSentMs > termMs && publisher.outstanding < 100)) await sleep(10);
  await sleep(WATCH_AFTER_MS);
  await server.waitForExit();
  const endMs = wallMs();
  const events = cluster.nodeIds.flatMap((node) => brokerEvents(node, cluster.server(node).output, termMs - LOG_BEFORE_MS, endMs));
  const { times, length } = publisher.confirmedAt;
  const gap = gapEnds(times, length, termMs);
  const gapMs = longestGapMs(times, termMs, endMs, length);
  const rows: Array<{ atMs: number; text: string }> = events.map((event) => ({ atMs: event.atMs, text: `${event.node.padEnd(6)} ${event.event} ${describeFields(event.fields)}` }));
  rows.push({ atMs: gap.startMs, text: 'client last confirm before the longest gap' });
  rows.push({ atMs: gap.endMs, text: 'client first confirm after the longest gap' });
  const groups = new Map<string, Attempt[]>();
  for (const attempt of attempts) {
    if (attempt.code === 'ok' && (attempt.endMs < gap.startMs || attempt.startMs > gap.endMs + 50)) continue;
    const key = `${attempt.node} ${attempt.code} leader=${attempt.leaderNamed}`;
    groups.set(key, [...(groups.get(key) ?? []), attempt]);
  }
  for (const [key, group] of groups) {
    const first = group[0]!;
    const last = group.at(-1)!;
    const firstEnd = Math.min(...group.map((attempt) => attempt.endMs));
    rows.push({ atMs: firstEnd, text: `client ${group.length}× ${group[0]!.code === 'ok' ? 'confirmed' : 'failed'} try on ${key} (tries sent ${(first.startMs - termMs).toFixed(1)}..${(last.startMs - termMs).toFixed(1)}, answered until ${(last.endMs - termMs).toFixed(1)})` });
  }
  rows.sort((a, b) => a.atMs - b.atMs);
  const lines = [`handover ${index}: leader ${victim}, longest gap ${gapMs.toFixed(1)} ms`, ...rows.map((row) => `  ${(row.atMs - termMs).toFixed(1).padStart(8)} ms  ${row.text}`)];
  await cluster.restart(victim);
  return { gapMs, lines };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      handovers: { type: 'string', default: String(HANDOVERS_DEFAULT) },
      rate: { type: 'string', default: String(RATE_DEFAULT) },
      'no-build': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const handovers = Number(values.handovers);
  const rate = Number(values.rate);
  if (!Number.isInteger(handovers) || handovers < 1 || handovers > HANDOVERS_MAX) throw new Error(`--handovers must be 1..${HANDOVERS_MAX}\n${USAGE}`);
  if (!Number.isInteger(rate) || rate < 1 || rate > RATE_MAX) throw new Error(`--rate must be 1..${RATE_MAX}\n${USAGE}`);
  const processes = new ProcessRegistry();
  const system = createFerryClusterSystem({ build: !values['no-build'] });
  await system.prepare?.();
  const cluster = (await system.start(processes)) as StartedCluster;
  let subscription: BrokerSubscription | undefined;
  let client: FerryConnectionAdapter | undefined;
  let publisher: Publisher | undefined;
  try {
    client = (await cluster.connectTo(cluster.nodeIds[0]!)) as FerryConnectionAdapter;
    await client.createTopic(TOPIC);
    const attempts: Attempt[] = [];
    recordAttempts(client, attempts);
    subscription = await client.subscribe(TOPIC, GROUP, { onMessage: () => {}, onError: () => {} });
    publisher = new Publisher(client, rate);
    publisher.start();
    const gaps: number[] = [];
    for (let index = 1; index <= handovers; index++) {
      const result = await oneHandover(cluster, publisher, attempts, index);
      gaps.push(result.gapMs);
      process.stdout.write(`${result.lines.join('\n')}\n\n`);
    }
    process.stdout.write(`gaps: ${gaps.map((gap) => gap.toFixed(0)).join(', ')} ms; median ${median(gaps).toFixed(0)}, max ${Math.max(...gaps).toFixed(0)}; failed publishes seen ${publisher.failed}\n`);
  } finally {
    publisher?.stop();
    await subscription?.close().catch(() => {});
    await client?.close().catch(() => {});
    await cluster.stop();
    await processes.stopAll();
    processes.dispose();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
