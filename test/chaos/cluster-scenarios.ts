/**
 * The cluster chaos scenarios (`npm run chaos -- --cluster --scenario <name>`): three brokers, one
 * topic with 3 replicas and minInSync 2, and a fault schedule drawn from the seed. A step waits,
 * then injects; which broker a step hits (the leader, a follower) is decided when it is injected,
 * from etcd's state and the seeded fault random, so a run is described by its scenario and seed
 * (the timing of the brokers' own work is not reproducible, the faults and their order are).
 */
import type { TopicOptions } from '../../src/client/index.js';
import { randomInt } from '../sim/random.js';
import type { Profile } from './scenarios.js';

/** Shapes of a network partition (fault-proxy.ts links). */
export const PARTITION_SHAPES = [
  /** The leader cut off from both followers; everyone still reaches etcd. */
  'leader-from-followers',
  /** The leader cut off from etcd; it still reaches its followers and they it. */
  'leader-from-etcd',
  /** One follower and the leader cut off from each other. */
  'follower-from-leader',
  /** One broker cut off from everything: the other brokers and etcd. */
  'isolate',
  /** Followers' requests reach the leader, its answers never come back. */
  'one-way',
  /** Every link of one broker slowed down. */
  'slow',
] as const;
export type PartitionShape = (typeof PARTITION_SHAPES)[number];

export type ClusterStep = { waitMs: number } & (
  | { fault: 'kill'; target: 'leader' | 'follower' | 'all'; downMs: number }
  | { fault: 'pause'; target: 'leader'; ms: number }
  | { fault: 'partition'; shape: PartitionShape; mode: 'blackhole' | 'drop'; ms: number; delayMs: number }
  | { fault: 'etcd-kill'; member: number; downMs: number }
  | { fault: 'power-loss'; target: 'follower' | 'leader' | 'all'; downMs: number }
  | { fault: 'bit-flip'; downMs: number }
  | { fault: 'clock-step'; target: 'leader' | 'follower'; offsetMs: number }
  | { fault: 'none' }
);

export interface ClusterScenario {
  name: string;
  summary: string;
  /** etcd members: 1, or 3 to lose one. */
  etcdMembers: number;
  /** Brokers record what is durable (power-loss steps). */
  recordSyncs: boolean;
  /** The faults damage replicas on purpose (bit flips): the final verification finding them is expected. */
  damagesReplicas?: boolean;
  /** `count`: faults in a full run instead of the scenario's own number (`--faults`). */
  plan(random: () => number, profile: Profile, count?: number): ClusterStep[];
}

const KiB = 1024;
/** The lease TTL of the chaos brokers: how long a frozen or cut-off leader keeps its topic. */
export const CHAOS_LEASE_TTL_MS = 2_000;
/** Small segments: rolls are frequent and most of the log sits in sealed segments (bit flips). */
export const CLUSTER_TOPIC: TopicOptions & { durability: 'always' } = {
  partitions: 2,
  replicas: 3,
  minInSync: 2,
  durability: 'always',
  segmentBytes: 256 * KiB,
};
/** The durability modes a cluster scenario runs its topic in (`--durability`; `always` by default). */
export const CLUSTER_DURABILITIES = ['always', 'interval', 'never'] as const;
export type ClusterDurability = (typeof CLUSTER_DURABILITIES)[number];
/** An `interval` topic syncs this often: the single-node `interval` scenario's period, the broker's default. */
export const CLUSTER_SYNC_INTERVAL_MS = 50;
export type ClusterTopic = TopicOptions & { durability: ClusterDurability };

/** The scenarios' topic in `durability` mode, otherwise CLUSTER_TOPIC. */
export function clusterTopic(durability: ClusterDurability): ClusterTopic {
  if (durability === 'interval') return { ...CLUSTER_TOPIC, durability, syncIntervalMs: CLUSTER_SYNC_INTERVAL_MS };
  return { ...CLUSTER_TOPIC, durability };
}
/** Faults per run: at least 30 each in the full profile (the bar), a few in the short one. */
const FULL_FAULTS = 30;
const SHORT_FAULTS = 2;
const MINUTE_MS = 60_000;

function faults(profile: Profile, count: number | undefined, full = FULL_FAULTS): number {
  return profile === 'full' ? (count ?? full) : SHORT_FAULTS;
}

function repeat(count: number, step: () => ClusterStep): ClusterStep[] {
  return Array.from({ length: count }, step);
}

const between = (random: () => number, min: number, max: number): number => randomInt(random, min, max);

export const CLUSTER_SCENARIOS: Record<string, ClusterScenario> = {
  'leader-kill': {
    name: 'leader-kill',
    summary: "the topic's leader SIGKILLed under load, restarted 0.5–3 s later",
    etcdMembers: 1,
    recordSyncs: false,
    plan: (random, profile, count) =>
      repeat(faults(profile, count), () => ({ waitMs: between(random, 1_500, 4_000), fault: 'kill', target: 'leader', downMs: between(random, 500, 3_000) })),
  },
  'follower-kill': {
    name: 'follower-kill',
    summary: 'a follower SIGKILLed under load, restarted 0.5–3 s later',
    etcdMembers: 1,
    recordSyncs: false,
    plan: (random, profile, count) =>
      repeat(faults(profile, count), () => ({ waitMs: between(random, 1_500, 4_000), fault: 'kill', target: 'follower', downMs: between(random, 500, 3_000) })),
  },
  'all-kill': {
    name: 'all-kill',
    summary: 'all three brokers SIGKILLed at once, restarted together 0.5–2 s later',
    etcdMembers: 1,
    recordSyncs: false,
    plan: (random, profile, count) =>
      repeat(faults(profile, count), () => ({ waitMs: between(random, 2_000, 5_000), fault: 'kill', target: 'all', downMs: between(random, 500, 2_000) })),
  },
  'leader-pause': {
    name: 'leader-pause',
    summary: `the leader SIGSTOPped past its lease (${CHAOS_LEASE_TTL_MS / 1000} s): 2.5–6 s, then SIGCONT`,
    etcdMembers: 1,
    recordSyncs: false,
    plan: (random, profile, count) =>
      repeat(faults(profile, count), () => ({ waitMs: between(random, 1_500, 4_000), fault: 'pause', target: 'leader', ms: between(random, CHAOS_LEASE_TTL_MS + 500, 6_000) })),
  },
  partition: {
    name: 'partition',
    summary: 'network partitions through the fault proxies (blackhole or reset; leader from followers, leader from etcd, a follower from the leader, one broker isolated, one-way, slow links), 2–8 s each',
    etcdMembers: 1,
    recordSyncs: false,
    plan: (random, profile, count) =>
      repeat(faults(profile, count, 36), () => ({
        waitMs: between(random, 1_500, 4_000),
        fault: 'partition',
        shape: PARTITION_SHAPES[between(random, 0, PARTITION_SHAPES.length - 1)]!,
        mode: random() < 0.5 ? 'blackhole' : 'drop',
        ms: between(random, 2_000, 8_000),
        delayMs: between(random, 100, 1_500),
      })),
  },
  etcd: {
    name: 'etcd',
    summary: 'the one etcd member SIGKILLed and restarted 1–6 s later: leaders keep serving, changes wait',
    etcdMembers: 1,
    recordSyncs: false,
    plan: (random, profile, count) =>
      repeat(faults(profile, count), () => ({ waitMs: between(random, 1_500, 4_000), fault: 'etcd-kill', member: 0, downMs: between(random, 1_000, 6_000) })),
  },
  'etcd-member': {
    name: 'etcd-member',
    summary: 'three etcd members; one of them SIGKILLed and restarted 1–6 s later',
    etcdMembers: 3,
    recordSyncs: false,
    plan: (random, profile, count) =>
      repeat(faults(profile, count), () => ({ waitMs: between(random, 1_500, 4_000), fault: 'etcd-kill', member: between(random, 0, 2), downMs: between(random, 1_000, 6_000) })),
  },
  'power-loss': {
    name: 'power-loss',
    summary: 'power losses (SIGKILL, then every file cut to what was synced, sometimes torn) on one follower, on the leader, and on all three replicas at once',
    etcdMembers: 1,
    recordSyncs: true,
    plan: (random, profile, count) => {
      const targets = ['follower', 'leader', 'all'] as const;
      return repeat(faults(profile, count), () => ({
        waitMs: between(random, 1_500, 4_000),
        fault: 'power-loss',
        target: targets[between(random, 0, targets.length - 1)]!,
        downMs: between(random, 500, 2_000),
      }));
    },
  },
  'bit-flip': {
    name: 'bit-flip',
    summary: "a follower SIGKILLed, one bit flipped in one of its segment files, restarted",
    etcdMembers: 1,
    recordSyncs: false,
    damagesReplicas: true,
    plan: (random, profile, count) => repeat(faults(profile, count), () => ({ waitMs: between(random, 1_500, 4_000), fault: 'bit-flip', downMs: between(random, 300, 1_000) })),
  },
  clock: {
    name: 'clock',
    summary: "one broker's wall clock stepped by ±30 s..10 min (within ±10 min of real time), the leader's or a follower's",
    etcdMembers: 1,
    recordSyncs: false,
    plan: (random, profile, count) => {
      const limitMs = 10 * MINUTE_MS;
      let offsetMs = 0;
      return repeat(faults(profile, count), () => {
        offsetMs = Math.max(-limitMs, Math.min(limitMs, offsetMs + between(random, 30_000, limitMs) * (random() < 0.5 ? -1 : 1)));
        return { waitMs: between(random, 1_500, 4_000), fault: 'clock-step', target: random() < 0.5 ? 'leader' : 'follower', offsetMs };
      });
    },
  },
  short: {
    name: 'short',
    summary: 'the npm test profile: a leader and a follower SIGKILL, the leader frozen past its lease, the leader cut off from its followers and then from etcd, etcd killed, a power loss on a follower',
    etcdMembers: 1,
    recordSyncs: true,
    plan: (random) => [
      { waitMs: between(random, 2_000, 3_000), fault: 'kill', target: 'leader', downMs: between(random, 500, 1_500) },
      { waitMs: between(random, 1_500, 2_500), fault: 'kill', target: 'follower', downMs: between(random, 500, 1_500) },
      { waitMs: between(random, 1_500, 2_500), fault: 'pause', target: 'leader', ms: CHAOS_LEASE_TTL_MS + 1_500 },
      { waitMs: between(random, 1_500, 2_500), fault: 'partition', shape: 'leader-from-followers', mode: 'blackhole', ms: 4_000, delayMs: 0 },
      { waitMs: between(random, 1_500, 2_500), fault: 'partition', shape: 'leader-from-etcd', mode: 'drop', ms: 4_000, delayMs: 0 },
      { waitMs: between(random, 1_500, 2_500), fault: 'etcd-kill', member: 0, downMs: 2_000 },
      { waitMs: between(random, 1_500, 2_500), fault: 'power-loss', target: 'follower', downMs: 1_000 },
      { waitMs: 2_000, fault: 'none' },
    ],
  },
};

/** The scenarios `--cluster` runs when none is named: all but the CI profile. */
export const FULL_CLUSTER_SCENARIOS = Object.keys(CLUSTER_SCENARIOS).filter((name) => name !== 'short');
