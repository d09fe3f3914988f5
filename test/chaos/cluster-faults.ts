/**
 * Injects one step of a cluster chaos schedule (cluster-scenarios.ts) into the running cluster and
 * returns once the fault is over (the broker restarted, the link healed, etcd back). Which broker a
 * step hits is decided here, from etcd's state and the seeded fault random. Returns what was hit,
 * for the run's log and its faults-by-kind figures.
 */
import type { ChaosCluster } from './chaos-cluster.js';
import { etcdDestination } from './chaos-cluster.js';
import type { ChaosBroker } from './cluster-processes.js';
import type { ClusterStep, PartitionShape } from './cluster-scenarios.js';
import type { LinkFault } from './fault-proxy.js';
import { nowT, type HistoryWriter } from './history.js';

export interface FaultContext {
  cluster: ChaosCluster;
  topic: string;
  random: () => number;
  history: HistoryWriter;
}

export interface Injected {
  /** The kind counted in the run's figures, e.g. `kill:leader`, `partition:isolate:drop`. */
  kind: string;
  /** Broker processes killed (all-kill counts three). */
  processKills: number;
  detail: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function inject(step: ClusterStep, context: FaultContext): Promise<Injected | null> {
  const { cluster, topic, random } = context;
  switch (step.fault) {
    case 'none':
      return null;
    case 'kill':
    case 'power-loss': {
      const targets = await pickTargets(step.target, context);
      const powerLoss = step.fault === 'power-loss';
      for (const broker of targets) await broker.kill(powerLoss, random);
      await sleep(step.downMs);
      await Promise.all(targets.map((broker) => broker.start()));
      return { kind: `${step.fault}:${step.target}`, processKills: targets.length, detail: targets.map((broker) => broker.nodeId).join(',') };
    }
    case 'pause': {
      const leader = await cluster.leader(topic, random);
      await leader.pause(step.ms);
      return { kind: 'pause:leader', processKills: 0, detail: `${leader.nodeId} ${step.ms} ms` };
    }
    case 'bit-flip': {
      const follower = cluster.follower(await cluster.leader(topic, random), random);
      await follower.kill(false, random);
      const flip = follower.flipBit(topic, random);
      await sleep(step.downMs);
      await follower.start();
      return { kind: 'bit-flip:follower', processKills: 1, detail: `${follower.nodeId} ${flip === null ? 'no segment yet' : `${flip.file}@${flip.position} bit ${flip.bit}`}` };
    }
    case 'clock-step': {
      const leader = await cluster.leader(topic, random);
      const broker = step.target === 'leader' ? leader : cluster.follower(leader, random);
      broker.stepClock(step.offsetMs);
      return { kind: `clock-step:${step.target}`, processKills: 0, detail: `${broker.nodeId} to ${Math.round(step.offsetMs / 1000)} s` };
    }
    case 'etcd-kill':
      return killEtcd(step.member, step.downMs, context);
    case 'partition':
      return partition(step, context);
  }
}

async function pickTargets(target: 'leader' | 'follower' | 'all', context: FaultContext): Promise<ChaosBroker[]> {
  const { cluster, topic, random } = context;
  if (target === 'all') return cluster.brokers.filter((broker) => broker.running);
  const leader = await cluster.leader(topic, random);
  return [target === 'leader' ? leader : cluster.follower(leader, random)];
}

async function killEtcd(index: number, downMs: number, context: FaultContext): Promise<Injected> {
  const { cluster, history } = context;
  const member = cluster.etcd.members[index % cluster.etcd.members.length]!;
  const destination = etcdDestination(member);
  history.record({ k: 'fx', t: nowT(), kind: 'etcd-kill', detail: member.name });
  await member.kill();
  await cluster.network.destinationDown(destination, true);
  await sleep(downMs);
  member.launch();
  await member.waitHealthy();
  await cluster.network.destinationDown(destination, false);
  history.record({ k: 'fh', t: nowT() });
  return { kind: cluster.etcd.members.length === 1 ? 'etcd-kill' : 'etcd-member-kill', processKills: 0, detail: `${member.name} ${downMs} ms` };
}

/** The links a partition shape cuts, as [source, destination] pairs, and what it names. */
async function linksOf(shape: PartitionShape, context: FaultContext): Promise<{ links: Array<[string, string]>; who: string }> {
  const { cluster, topic, random } = context;
  const leader = await cluster.leader(topic, random);
  const nodes = cluster.brokers.map((broker) => broker.nodeId);
  const etcd = cluster.etcd.members.map(etcdDestination);
  const L = leader.nodeId;
  const followers = nodes.filter((node) => node !== L);
  const both = (a: string, b: string): Array<[string, string]> => [
    [a, b],
    [b, a],
  ];
  switch (shape) {
    case 'leader-from-followers':
      return { links: followers.flatMap((follower) => both(follower, L)), who: L };
    case 'leader-from-etcd':
      return { links: etcd.map((member): [string, string] => [L, member]), who: L };
    case 'follower-from-leader': {
      const follower = cluster.follower(leader, random).nodeId;
      return { links: both(follower, L), who: `${follower}|${L}` };
    }
    case 'one-way':
      return { links: followers.map((follower): [string, string] => [follower, L]), who: L };
    case 'isolate':
    case 'slow': {
      const broker = nodes[Math.floor(random() * nodes.length)]!;
      const others = nodes.filter((node) => node !== broker);
      return { links: [...others.flatMap((other) => both(broker, other)), ...etcd.map((member): [string, string] => [broker, member])], who: broker };
    }
  }
}

async function partition(step: Extract<ClusterStep, { fault: 'partition' }>, context: FaultContext): Promise<Injected> {
  const { cluster, history } = context;
  const { links, who } = await linksOf(step.shape, context);
  const fault: LinkFault =
    step.shape === 'slow'
      ? { kind: 'slow', delayMs: step.delayMs }
      : step.shape === 'one-way'
        ? { kind: 'one-way', passes: 'request' }
        : step.mode === 'drop'
          ? { kind: 'drop' }
          : { kind: 'blackhole' };
  const kind = `partition:${step.shape}${step.shape === 'slow' || step.shape === 'one-way' ? '' : `:${step.mode}`}`;
  const detail = `${who}: ${links.map(([from, to]) => `${from}>${to}`).join(' ')} for ${step.ms} ms${step.shape === 'slow' ? ` (+${step.delayMs} ms)` : ''}`;
  history.record({ k: 'fx', t: nowT(), kind, detail });
  for (const [from, to] of links) cluster.network.set(from, to, fault);
  await sleep(step.ms);
  for (const [from, to] of links) cluster.network.set(from, to, { kind: 'ok' });
  history.record({ k: 'fh', t: nowT() });
  return { kind, processKills: 0, detail };
}
