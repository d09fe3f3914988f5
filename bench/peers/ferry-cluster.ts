/**
 * Ferry replicated (`ferry-cluster`): one etcd (peers/etcd.ts) and three `ferry serve` processes
 * from this checkout's dist/, with the same V8 flags as the single broker (bin/ferry.js's shebang),
 * joined through etcd. Topics have 3 replicas, 2 in sync at least, durability `always`; the client
 * knows all three brokers.
 *
 * Written against the cluster contract before the cluster exists: `ferry serve --node-id ID --etcd
 * URL --advertise HOST:PORT`, `createTopic(name, { replicas, minInSync, durability })`,
 * `connect({ servers: ['host:port', ...] })`, and `describeTopic(name).partitions[0].leader` (a
 * node id). A build without them fails to start with a FerryUnavailableError, which the harness
 * prints as "skipped: <reason>" before going on with the peers.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LAUNCHER, launcherNodeFlags, REPO_ROOT } from '../checkout.js';
import { CLUSTER_FORM_TIMEOUT_MS, CLUSTER_NODES, stopCluster, waitFor, type ClusterSystem, type StartedCluster } from '../cluster.js';
import { freePort, LOOPBACK_HOST, type ProcessRegistry, type ServerProcess } from '../processes.js';
import {
  ensureBuilt,
  FerryConnectionAdapter,
  FerryUnavailableError,
  loadClient,
  type FerryClient,
  type FerryClientModule,
  type FerrySystemOptions,
  type FerryTopicOptions,
} from './ferry.js';
import { startEtcd } from './etcd.js';

const TOPIC_OPTIONS: FerryTopicOptions = { replicas: 3, minInSync: 2, durability: 'always' };

/**
 * HOOK (the contract to confirm when the cluster lands): what `describeTopic` is expected to
 * return. The failover benchmark needs only the leader; `inSync` is used, where present, to know
 * that a restarted broker has caught up.
 */
interface FerryTopicDescription {
  partitions: Array<{ leader: string; inSync?: string[] }>;
}

interface FerryClusterClient extends FerryClient {
  describeTopic(name: string): Promise<FerryTopicDescription>;
}

interface FerryNode {
  readonly id: string;
  readonly port: number;
  readonly httpPort: number;
  readonly dir: string;
  server: ServerProcess;
}

type NodeLayout = Omit<FerryNode, 'server'>;

function startNode(processes: ProcessRegistry, node: NodeLayout, etcdUrl: string): Promise<ServerProcess> {
  return processes.start({
    name: `ferry-${node.id}`,
    command: process.execPath,
    port: node.port,
    dataDir: node.dir,
    cwd: REPO_ROOT,
    args: () => [
      ...launcherNodeFlags(),
      LAUNCHER, 'serve',
      '--node-id', node.id,
      '--etcd', etcdUrl,
      '--advertise', `${LOOPBACK_HOST}:${node.port}`,
      '--dir', node.dir,
      '--port', String(node.port),
      '--host', LOOPBACK_HOST,
      '--http-port', String(node.httpPort),
    ],
  });
}

async function ready(node: NodeLayout): Promise<boolean> {
  const response = await fetch(`http://${LOOPBACK_HOST}:${node.httpPort}/readyz`);
  return response.ok;
}

function describable(client: FerryClient): FerryClusterClient {
  const candidate = client as Partial<FerryClusterClient>;
  if (typeof candidate.describeTopic !== 'function') throw new FerryUnavailableError("Ferry's client has no describeTopic()");
  return client as FerryClusterClient;
}

async function startFerryCluster(processes: ProcessRegistry, client: FerryClientModule): Promise<StartedCluster> {
  const root = processes.makeTempDir('ferry-cluster');
  const nodes = new Map<string, FerryNode>();
  const helpers: ServerProcess[] = [];
  const allServers = (): ServerProcess[] => [...[...nodes.values()].map((node) => node.server), ...helpers];
  const stopAll = (): Promise<void> => stopCluster(processes, allServers(), root);
  let etcdUrl: string;
  try {
    const etcd = await startEtcd(processes);
    helpers.push(etcd.server);
    etcdUrl = etcd.url;
    const layouts: NodeLayout[] = [];
    for (let index = 1; index <= CLUSTER_NODES; index++) {
      const dir = join(root, `n${index}`);
      mkdirSync(dir);
      layouts.push({ id: `n${index}`, port: await freePort(), httpPort: await freePort(), dir });
    }
    const started = await Promise.allSettled(layouts.map((layout) => startNode(processes, layout, etcd.url)));
    started.forEach((result, index) => {
      if (result.status === 'fulfilled') nodes.set(layouts[index]!.id, { ...layouts[index]!, server: result.value });
    });
    const failed = started.find((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed !== undefined) {
      const reason = failed.reason instanceof Error ? failed.reason.message : String(failed.reason);
      throw new FerryUnavailableError(`ferry serve did not start as a cluster node (--node-id/--etcd): ${reason.split('\n').slice(0, 3).join(' ')}`);
    }
    for (const layout of layouts) await waitFor(`ferry-cluster: ${layout.id} /readyz`, CLUSTER_FORM_TIMEOUT_MS, () => ready(layout));
  } catch (error) {
    await stopAll();
    throw error;
  }
  const servers = [...nodes.values()].map((node) => `${LOOPBACK_HOST}:${node.port}`);
  const node = (id: string): FerryNode => {
    const found = nodes.get(id);
    if (found === undefined) throw new Error(`ferry-cluster: no node ${id}`);
    return found;
  };
  let admin: FerryClusterClient | undefined;
  const adminClient = async (): Promise<FerryClusterClient> => (admin ??= describable(await client.connect({ servers })));
  const describePartition = async (topic: string): Promise<{ leader: string; inSync?: string[] }> => {
    const partition = (await (await adminClient()).describeTopic(topic)).partitions[0];
    if (partition === undefined) throw new Error(`ferry-cluster: topic ${topic} has no partition 0`);
    return partition;
  };
  return {
    get servers() {
      return [...nodes.values()].map((entry) => entry.server);
    },
    async stop() {
      await admin?.close().catch(() => {});
      await stopAll();
    },
    connect: async () => new FerryConnectionAdapter(await client.connect({ servers }), TOPIC_OPTIONS),
    nodeIds: [...nodes.keys()],
    server: (id) => node(id).server,
    // HOOK: the leader is a node id, and this start keeps the map node id -> process (`nodes`).
    leaderOf: async (topic) => (await describePartition(topic)).leader,
    async restart(id) {
      const entry = node(id);
      if (entry.server.running) throw new Error(`ferry-cluster: ${id} (pid ${entry.server.pid}) is still running`);
      await processes.stop(entry.server);
      entry.server = await startNode(processes, entry, etcdUrl);
      await waitFor(`ferry-cluster: ${id} /readyz after restart`, CLUSTER_FORM_TIMEOUT_MS, () => ready(entry));
    },
    async replicasCurrent(topic) {
      const partition = await describePartition(topic);
      return partition.inSync === undefined ? true : partition.inSync.length === CLUSTER_NODES;
    },
    connectTo: async (id) => new FerryConnectionAdapter(await client.connect({ servers: [`${LOOPBACK_HOST}:${node(id).port}`] }), TOPIC_OPTIONS),
  };
}

export function createFerryClusterSystem(options: FerrySystemOptions): ClusterSystem {
  let client: FerryClientModule | undefined;
  return {
    id: 'ferry-cluster',
    label: 'Ferry cluster',
    shortLabel: 'Ferry-3',

    async describe() {
      return `ferry ×3 + etcd (this checkout, dist/), Node ${process.version} ${launcherNodeFlags().join(' ') || '(no flags)'}; ` +
        'replicas 3, minInSync 2, durability always';
    },

    async prepare() {
      ensureBuilt(options.build);
      client = await loadClient();
    },

    async start(processes) {
      if (client === undefined) throw new FerryUnavailableError('Ferry was not prepared (build and client check)');
      return startFerryCluster(processes, client);
    },
  };
}
