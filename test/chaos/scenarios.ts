/**
 * The chaos scenarios: for each, the topic, the workload, and the fault schedule drawn from the
 * seed. A schedule is a list of steps (wait, then inject); it is printed before the run starts, so
 * a run is described by `--scenario <name> --seed <n>` alone (the timing of the broker's own work
 * is not reproducible, the faults and their order are).
 */
import type { TopicOptions } from '../../src/client/index.js';
import { randomInt } from '../sim/random.js';
import type { ConsumerSettings } from './consumer.js';
import type { ProducerSettings } from './producer.js';

export type Profile = 'full' | 'short';

export type FaultStep =
  | { waitMs: number; fault: 'kill' | 'power-loss' | 'disk-full' | 'space-back' | 'kill-while-full' | 'none' }
  | { waitMs: number; fault: 'pause'; ms: number }
  | { waitMs: number; fault: 'consumer-kill'; consumer: number }
  | { waitMs: number; fault: 'clock-jump'; offsetMs: number };

export interface Workload {
  producers: number;
  consumers: number;
  /** Consumers run one per process when they are to be killed; otherwise all in one. */
  consumerProcesses: 'one' | 'each';
  producer?: Partial<ProducerSettings>;
  consumer?: Partial<ConsumerSettings>;
}

export interface Scenario {
  name: string;
  summary: string;
  topic: TopicOptions & { durability: 'always' | 'interval' };
  workload: Workload;
  /** The fault schedule; `durationMs` overrides the scenario's length where it has one (soak). */
  plan(random: () => number, profile: Profile, durationMs?: number): FaultStep[];
  /** Record durability (FaultFileSystem sidecar): needed by power-loss steps. */
  recordSyncs: boolean;
  /** A size-limited tmpfs holds the data directory (disk-full steps); needs root. */
  tmpfsBytes?: number;
  /** The broker's wall clock can be stepped (clock-jump steps). */
  jumpClock?: boolean;
  /** Measure the maximum throughput first and run at half of it (the soak). */
  calibrate?: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const MINUTE_MS = 60_000;

/** The topic every scenario uses unless it says otherwise: small segments, so rolls happen often. */
const BASE_TOPIC = { partitions: 4, segmentBytes: 1 * MiB } as const;
/** The soak's retention: well past any restart (seconds), short enough to reach a steady state early in 20 minutes. */
const SOAK_RETENTION_MS = 3 * MINUTE_MS;
const BASE_WORKLOAD: Workload = { producers: 4, consumers: 4, consumerProcesses: 'one' };

function repeat(count: number, step: () => FaultStep[]): FaultStep[] {
  const steps: FaultStep[] = [];
  for (let i = 0; i < count; i++) steps.push(...step());
  return steps;
}

export const SCENARIOS: Record<string, Scenario> = {
  baseline: {
    name: 'baseline',
    summary: 'the same load with no fault at all: the control every other scenario is compared with',
    topic: { ...BASE_TOPIC, durability: 'always' },
    workload: BASE_WORKLOAD,
    recordSyncs: false,
    plan: (_random, profile) => [{ waitMs: profile === 'full' ? 120_000 : 20_000, fault: 'none' }],
  },
  kill: {
    name: 'kill',
    summary: 'SIGKILL loop: the broker is killed at random 1–5 s intervals under load and restarted',
    topic: { ...BASE_TOPIC, durability: 'always' },
    workload: BASE_WORKLOAD,
    recordSyncs: false,
    plan: (random, profile) => repeat(profile === 'full' ? 50 : 4, () => [{ waitMs: randomInt(random, 1_000, 5_000), fault: 'kill' }]),
  },
  'power-loss': {
    name: 'power-loss',
    summary: 'SIGKILL, then every file cut to its fdatasync-ed length (sometimes a torn tail of garbage), then restart',
    topic: { ...BASE_TOPIC, durability: 'always' },
    workload: BASE_WORKLOAD,
    recordSyncs: true,
    plan: (random, profile) => repeat(profile === 'full' ? 50 : 4, () => [{ waitMs: randomInt(random, 1_000, 5_000), fault: 'power-loss' }]),
  },
  interval: {
    name: 'interval',
    summary: 'power losses on an `interval` topic (syncIntervalMs 50): losses only within the window, only as a suffix per producer',
    topic: { ...BASE_TOPIC, durability: 'interval', syncIntervalMs: 50 },
    // The full workload, nacks and poison messages included: retries and dead-letter moves must
    // survive power losses that cut the partitions and the group's journal apart.
    workload: BASE_WORKLOAD,
    recordSyncs: true,
    plan: (random, profile) => repeat(profile === 'full' ? 30 : 4, () => [{ waitMs: randomInt(random, 1_000, 5_000), fault: 'power-loss' }]),
  },
  pause: {
    name: 'pause',
    summary: 'SIGSTOP pauses of 3–30 s (120 s in all): clients time out and retry; no loss; no redelivery storm',
    topic: { ...BASE_TOPIC, durability: 'always' },
    workload: BASE_WORKLOAD,
    recordSyncs: false,
    plan: (random, profile) => {
      const budgetMs = profile === 'full' ? 120_000 : 8_000;
      const longestMs = profile === 'full' ? 30_000 : 4_000;
      const steps: FaultStep[] = [];
      let totalMs = 0;
      while (totalMs < budgetMs) {
        const ms = Math.min(randomInt(random, 3_000, longestMs), Math.max(3_000, budgetMs - totalMs));
        steps.push({ waitMs: randomInt(random, 3_000, 8_000), fault: 'pause', ms });
        totalMs += ms;
      }
      return steps;
    },
  },
  'consumer-kill': {
    name: 'consumer-kill',
    summary: 'consumer processes SIGKILLed while holding messages: each held message is redelivered, no acked one is',
    topic: { ...BASE_TOPIC, durability: 'always' },
    // Holding messages up to 300 ms makes a kill land between receive and ack most of the time.
    workload: { ...BASE_WORKLOAD, consumerProcesses: 'each', consumer: { holdMsMax: 300 } },
    recordSyncs: false,
    plan: (random, profile) =>
      repeat(profile === 'full' ? 40 : 4, () => [{ waitMs: randomInt(random, 1_000, 3_000), fault: 'consumer-kill', consumer: randomInt(random, 0, 3) }]),
  },
  'disk-full': {
    name: 'disk-full',
    summary: 'the data directory on a small tmpfs filled to the last byte: DISK_FULL, no damage, resume when space returns',
    topic: { ...BASE_TOPIC, durability: 'always' },
    // Rate-limited so that the disk fills when the harness says, not on its own.
    workload: { ...BASE_WORKLOAD, producer: { ratePerSec: 500 } },
    recordSyncs: false,
    tmpfsBytes: 256 * MiB,
    plan: (random, profile) => {
      const cycles = profile === 'full' ? 5 : 1;
      const steps: FaultStep[] = [];
      for (let cycle = 0; cycle < cycles; cycle++) {
        steps.push({ waitMs: randomInt(random, 2_000, 4_000), fault: 'disk-full' });
        // One cycle also kills the broker while the disk is full: recovery must cope.
        if (cycle === 2) steps.push({ waitMs: randomInt(random, 1_000, 2_000), fault: 'kill-while-full' });
        steps.push({ waitMs: randomInt(random, 3_000, 6_000), fault: 'space-back' });
      }
      steps.push({ waitMs: 3_000, fault: 'none' });
      return steps;
    },
  },
  clock: {
    name: 'clock',
    summary: 'wall-clock steps of ±30 s..10 min (within ±10 min), some followed by a kill: no early delayed delivery or expiry, no mass redelivery',
    // Retention by age far beyond the run: anything expired was expired early.
    topic: { ...BASE_TOPIC, durability: 'always', retention: { ageMs: 60 * MINUTE_MS } },
    workload: { ...BASE_WORKLOAD, producer: { delayChance: 0.2 } },
    recordSyncs: false,
    jumpClock: true,
    plan: (random, profile) => {
      const limitMs = 10 * MINUTE_MS;
      let offsetMs = 0;
      const steps: FaultStep[] = [];
      const jumps = profile === 'full' ? 20 : 4;
      for (let jump = 1; jump <= jumps; jump++) {
        const stepMs = randomInt(random, 30_000, limitMs) * (random() < 0.5 ? -1 : 1);
        offsetMs = Math.max(-limitMs, Math.min(limitMs, offsetMs + stepMs));
        steps.push({ waitMs: randomInt(random, 2_000, 5_000), fault: 'clock-jump', offsetMs });
        if (jump % 3 === 0) steps.push({ waitMs: randomInt(random, 500, 1_500), fault: 'kill' });
      }
      return steps;
    },
  },
  soak: {
    name: 'soak',
    summary: 'a soak at half the measured maximum throughput with a kill every quarter of the run (20 min: every 5 min), retention 3 min',
    // Retention keeps the data bounded, so disk use, open files and memory can be flat after warm-up
    // (without it they grow with the data: one open segment file per MiB). Consumers keep up at half
    // the maximum rate, so nothing is deleted before it is delivered.
    topic: { ...BASE_TOPIC, durability: 'always', retention: { ageMs: SOAK_RETENTION_MS } },
    workload: BASE_WORKLOAD,
    recordSyncs: false,
    calibrate: true,
    plan: (_random, profile, durationMs) => {
      const totalMs = durationMs ?? (profile === 'full' ? 20 * MINUTE_MS : 3 * MINUTE_MS);
      const quarterMs = Math.round(totalMs / 4);
      return [
        { waitMs: quarterMs, fault: 'kill' },
        { waitMs: quarterMs, fault: 'kill' },
        { waitMs: quarterMs, fault: 'kill' },
        { waitMs: quarterMs, fault: 'none' },
      ];
    },
  },
  short: {
    name: 'short',
    summary: 'the npm test profile: two kills, one power loss, one disk-full cycle (skipped without root), in about half a minute',
    topic: { ...BASE_TOPIC, durability: 'always' },
    workload: { producers: 2, consumers: 2, consumerProcesses: 'one', producer: { window: 16 } },
    recordSyncs: true,
    tmpfsBytes: 128 * MiB,
    plan: (random) => [
      { waitMs: randomInt(random, 1_500, 2_500), fault: 'kill' },
      { waitMs: randomInt(random, 1_500, 2_500), fault: 'kill' },
      { waitMs: randomInt(random, 1_500, 2_500), fault: 'power-loss' },
      { waitMs: randomInt(random, 1_000, 2_000), fault: 'disk-full' },
      { waitMs: randomInt(random, 1_500, 2_500), fault: 'space-back' },
      { waitMs: 1_500, fault: 'none' },
    ],
  },
};
