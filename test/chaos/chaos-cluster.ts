/**
 * The cluster a cluster chaos run works on: etcd (one member or three, test/cluster/etcd-server.ts),
 * the fault network (fault-proxy.ts) and three brokers (cluster-processes.ts), wired so that every
 * broker-to-broker and broker-to-etcd connection passes through a proxy the harness controls:
 *
 *   broker nX listens on its own port, advertises its proxy's port (the others and the clients
 *   dial that), and reaches etcd member mY through a proxy of its own for the link nX → etcd-mY.
 *
 * The topic's state (leader, epoch, in-sync set) is read from etcd itself, not from a broker.
 */
import { join } from 'node:path';
import { EtcdClient } from '../../src/cluster/etcd/index.js';
import type { TopicState } from '../../src/cluster/cluster-store.js';
import { ETCD_PREFIX_DEFAULT } from '../../src/cluster/limits.js';
import { EtcdCluster, type EtcdMember } from '../cluster/etcd-server.js';
import { ChaosBroker } from './cluster-processes.js';
import { FaultNetwork } from './fault-proxy.js';
import type { HistoryWriter } from './history.js';
import { freePort } from './processes.js';

export const NODE_IDS = ['n1', 'n2', 'n3'] as const;
/** How the harness reads etcd: a call that takes longer means etcd is down or between leaders. */
const ETCD_READ_TIMEOUT_MS = 2_000;
const POLL_MS = 200;

export interface ChaosClusterOptions {
  workDir: string;
  history: HistoryWriter;
  etcdMembers: number;
  leaseTtlMs: number;
  recordSyncs: boolean;
}

/** Name of an etcd member as a destination of the fault network. */
export function etcdDestination(member: EtcdMember): string {
  return `etcd-${member.name}`;
}

export class ChaosCluster {
  private constructor(
    readonly etcd: EtcdCluster,
    readonly network: FaultNetwork,
    readonly brokers: ChaosBroker[],
    private readonly etcdClient: EtcdClient,
  ) {}

  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const etcd = await EtcdCluster.start({ members: options.etcdMembers });
    const network = new FaultNetwork();
    const brokers: ChaosBroker[] = [];
    const etcdClient = new EtcdClient({ endpoints: etcd.endpoints, timeoutMs: ETCD_READ_TIMEOUT_MS });
    const cluster = new ChaosCluster(etcd, network, brokers, etcdClient);
    try {
      for (const nodeId of NODE_IDS) {
        const port = await freePort();
        const advertisePort = await network.brokerProxy(nodeId, port);
        const endpoints: string[] = [];
        for (const member of etcd.members) endpoints.push(`http://127.0.0.1:${await network.etcdProxy(nodeId, etcdDestination(member), member.clientPort)}`);
        brokers.push(
          new ChaosBroker({
            nodeId,
            dir: join(options.workDir, 'data', nodeId),
            port,
            advertise: `127.0.0.1:${advertisePort}`,
            etcd: endpoints.join(','),
            leaseTtlMs: options.leaseTtlMs,
            workDir: options.workDir,
            history: options.history,
            network,
            recordSyncs: options.recordSyncs,
          }),
        );
      }
      await Promise.all(brokers.map((broker) => broker.start()));
    } catch (error) {
      await cluster.close();
      throw error;
    }
    return cluster;
  }

  /** Where clients connect: every broker's advertised address. */
  get servers(): string[] {
    return this.brokers.map((broker) => broker.advertise);
  }

  broker(nodeId: string): ChaosBroker {
    const found = this.brokers.find((broker) => broker.nodeId === nodeId);
    if (found === undefined) throw new Error(`no broker ${nodeId}`);
    return found;
  }

  /** The topic's state in etcd; null when etcd does not answer (or the topic has none yet). */
  async state(topic: string): Promise<TopicState | null> {
    try {
      const { kv } = await this.etcdClient.get(`${ETCD_PREFIX_DEFAULT}topics/${topic}/state`);
      return kv === undefined ? null : (JSON.parse(kv.value) as TopicState);
    } catch {
      return null;
    }
  }

  /** The topic's leader as etcd names it; a running broker picked by `random` when there is none. */
  async leader(topic: string, random: () => number): Promise<ChaosBroker> {
    const leader = (await this.state(topic))?.leader;
    const running = this.brokers.filter((broker) => broker.running);
    const found = running.find((broker) => broker.nodeId === leader);
    return found ?? running[Math.floor(random() * running.length)] ?? this.brokers[0]!;
  }

  /** A running broker other than `leader`, picked by `random`. */
  follower(leader: ChaosBroker, random: () => number): ChaosBroker {
    const others = this.brokers.filter((broker) => broker !== leader && broker.running);
    const pool = others.length > 0 ? others : this.brokers.filter((broker) => broker !== leader);
    return pool[Math.floor(random() * pool.length)]!;
  }

  /** Every etcd member and broker running, every link whole. */
  async allBack(): Promise<void> {
    this.network.healAll();
    for (const member of this.etcd.members) {
      if (!member.running) {
        member.launch();
        await member.waitHealthy();
        await this.network.destinationDown(etcdDestination(member), false);
      }
    }
    for (const broker of this.brokers) if (!broker.running) await broker.start();
  }

  /**
   * Waits until etcd has a leader for the topic and every replica in sync; resolves with the state,
   * or null after `timeoutMs`.
   */
  async waitInSync(topic: string, timeoutMs: number): Promise<TopicState | null> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const state = await this.state(topic);
      if (state !== null && state.leader !== null && state.inSync.length === this.brokers.length) return state;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return null;
  }

  async close(): Promise<void> {
    for (const broker of this.brokers) broker.killNow();
    await this.network.close();
    await this.etcdClient.close().catch(() => undefined);
    await this.etcd.close();
  }
}
