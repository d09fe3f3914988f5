/**
 * The well-behaved client of the abuse tests, in a process of its own so that its latency is the
 * broker's and not the attackers' event loop: it publishes one small message at a time (the next
 * once the last is confirmed, at most one per PROBE_INTERVAL_MS) and answers each `window` line on
 * stdin with one JSON line of the round trips since the previous window: count, p50, p99, max (ms).
 * Arguments: port, user, password, topic. Exits when stdin ends.
 */
import { createInterface } from 'node:readline';
import { connect } from '../../src/client/index.js';

/** Time between two probes: ~300-500 samples a second, a steady load that does not load the broker. */
const PROBE_INTERVAL_MS = 2;

export interface ProbeWindow {
  count: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const [port, user, password, topic] = process.argv.slice(2) as [string, string, string, string];
const client = await connect({ port: Number(port), user, password, reconnect: false, name: 'prober' });
let samples: number[] = [];
let errors = 0;
let running = true;

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() !== 'window') return;
  const sorted = samples.sort((a, b) => a - b);
  const window: ProbeWindow = { count: sorted.length, errors, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: sorted.at(-1) ?? 0 };
  samples = [];
  errors = 0;
  process.stdout.write(JSON.stringify(window) + '\n');
});
lines.on('close', () => {
  running = false;
});

process.stdout.write(JSON.stringify({ ready: true }) + '\n');
const payload = Buffer.alloc(64, 1);
while (running) {
  const started = performance.now();
  try {
    await client.publish(topic, payload);
    samples.push(performance.now() - started);
  } catch {
    errors++;
  }
  await new Promise((resolve) => setTimeout(resolve, PROBE_INTERVAL_MS));
}
await client.close();
process.exit(0);
