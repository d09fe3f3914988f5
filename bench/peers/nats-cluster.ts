/**
 * NATS JetStream R3 as a replicated benchmark peer (`nats-r3`): three Debian nats-server processes
 * with JetStream on, one cluster with routes on loopback, each with its own store dir; streams are
 * file-storage streams with `num_replicas: 3`, and the client knows all three servers. Publishes,
 * consumers and acks are those of the single-node adapter (peers/nats.ts).
 *
 * Sync settings: none to choose. Debian 12's nats-server is 2.9.10, which has no `sync_interval`
 * (added in 2.10), so each node fsyncs its files every two minutes, exactly as the single-node
 * peer runs. A publish is acked once the stream's leader has it in its Raft log and a majority of
 * the three (the leader and one follower) has written it to its log file, not fsynced it: a
 * write-to-two-page-caches ack, where Ferry's `always` and RabbitMQ's quorum queues fsync on a
 * majority before they confirm.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLUSTER_FORM_TIMEOUT_MS, CLUSTER_NODES, stopCluster, waitFor, type ClusterSystem, type StartedCluster } from '../cluster.js';
import { freePort, LOOPBACK_HOST, type ProcessRegistry, type ServerProcess } from '../processes.js';
import { API_TIMEOUT_MS, NatsConnectionAdapter } from './nats.js';
import { commandVersion, installedPackageVersion } from './versions.js';

const SERVER_COMMAND = 'nats-server';
const CLUSTER_NAME = 'ferry-bench';
const REPLICAS = 3;
/** One try at JetStream's account info while the cluster forms; retried until CLUSTER_FORM_TIMEOUT_MS. */
const META_LEADER_PROBE_MS = 2_000;

interface NatsNode {
  readonly id: string;
  readonly clientPort: number;
  readonly routePort: number;
  readonly dir: string;
  readonly configFile: string;
  server: ServerProcess;
}

/** The node's config: its name (what JetStream reports as a leader), its store and its routes to the others. */
function nodeConfig(id: string, clientPort: number, routePort: number, storeDir: string, otherRoutePorts: readonly number[]): string {
  const routes = otherRoutePorts.map((port) => `"nats-route://${LOOPBACK_HOST}:${port}"`).join(', ');
  return [
    `server_name: ${id}`,
    `listen: ${LOOPBACK_HOST}:${clientPort}`,
    `jetstream { store_dir: "${storeDir}" }`,
    `cluster { name: ${CLUSTER_NAME}, listen: ${LOOPBACK_HOST}:${routePort}, routes: [${routes}] }`,
    '',
  ].join('\n');
}

function startNode(processes: ProcessRegistry, node: Omit<NatsNode, 'server'>): Promise<ServerProcess> {
  return processes.start({
    name: `nats-${node.id}`,
    command: SERVER_COMMAND,
    port: node.clientPort,
    dataDir: node.dir,
    args: () => ['-c', node.configFile],
  });
}

export async function startNatsCluster(processes: ProcessRegistry): Promise<StartedCluster> {
  const root = processes.makeTempDir('nats-r3');
  const nodes = new Map<string, NatsNode>();
  try {
    const ports: Array<{ client: number; route: number }> = [];
    for (let index = 0; index < CLUSTER_NODES; index++) ports.push({ client: await freePort(), route: await freePort() });
    const layouts = ports.map((port, index) => {
      const id = `n${index + 1}`;
      const dir = join(root, id);
      const configFile = join(root, `${id}.conf`);
      const others = ports.filter((_, other) => other !== index).map((other) => other.route);
      writeFileSync(configFile, nodeConfig(id, port.client, port.route, join(dir, 'store'), others));
      return { id, clientPort: port.client, routePort: port.route, dir, configFile };
    });
    // All three at once: each waits for its routes, and JetStream needs a majority to elect its meta leader.
    const servers = await Promise.all(layouts.map((layout) => startNode(processes, layout)));
    layouts.forEach((layout, index) => nodes.set(layout.id, { ...layout, server: servers[index]! }));
  } catch (error) {
    await stopCluster(processes, [...nodes.values()].map((node) => node.server), root);
    throw error;
  }
  const allPorts = [...nodes.values()].map((node) => node.clientPort);
  const node = (id: string): NatsNode => {
    const found = nodes.get(id);
    if (found === undefined) throw new Error(`nats-r3: no node ${id}`);
    return found;
  };
  // One management connection for the harness's questions (leader, replicas); it follows the
  // cluster. Opening it asks for JetStream's account info, which fails until the meta leader is
  // elected (a majority is up and routed): retried until then.
  let admin: NatsConnectionAdapter | undefined;
  const stop = async (): Promise<void> => {
    await admin?.close().catch(() => {});
    await stopCluster(processes, [...nodes.values()].map((entry) => entry.server), root);
  };
  try {
    await waitFor('nats-r3: JetStream meta leader', CLUSTER_FORM_TIMEOUT_MS, async () => {
      const probe = await NatsConnectionAdapter.open(allPorts, { reconnect: false, timeoutMs: META_LEADER_PROBE_MS });
      await probe.close();
      return true;
    });
    admin = await NatsConnectionAdapter.open(allPorts, { reconnect: true, timeoutMs: API_TIMEOUT_MS });
  } catch (error) {
    await stop();
    throw error;
  }
  const manager = admin!.manager;
  return {
    stop,
    connect: () => NatsConnectionAdapter.open(allPorts, { reconnect: false, replicas: REPLICAS, timeoutMs: API_TIMEOUT_MS }),
    get servers() {
      return [...nodes.values()].map((entry) => entry.server);
    },
    nodeIds: [...nodes.keys()],
    server: (id) => node(id).server,
    async leaderOf(topic) {
      const info = await manager.streams.info(topic);
      const leader = info.cluster?.leader;
      if (leader === undefined || leader === '') throw new Error(`nats-r3: stream ${topic} has no leader now`);
      return leader;
    },
    async restart(id) {
      const entry = node(id);
      if (entry.server.running) throw new Error(`nats-r3: ${id} (pid ${entry.server.pid}) is still running`);
      await processes.stop(entry.server); // forgets the exited process; the node's dir stays
      entry.server = await startNode(processes, entry);
    },
    async replicasCurrent(topic) {
      const info = await manager.streams.info(topic);
      const replicas = info.cluster?.replicas ?? [];
      return replicas.length === REPLICAS - 1 && replicas.every((peer) => peer.current && !peer.offline);
    },
    async connectTo(id) {
      // The library's defaults: reconnect on, a 5 s publish-ack timeout, one try for a 503.
      return NatsConnectionAdapter.open([node(id).clientPort], { reconnect: true, replicas: REPLICAS });
    },
  };
}

export const natsR3System: ClusterSystem = {
  id: 'nats-r3',
  label: 'NATS JetStream R3',
  shortLabel: 'JetStream-R3',

  async describe() {
    const server = await commandVersion(SERVER_COMMAND, ['--version']);
    const client = await installedPackageVersion('nats');
    return `${server} ×3 (one cluster, routes on loopback), nats.js ${client}; file storage, num_replicas 3, ` +
      'ack once a majority has written it (fsync every 2 min: no sync_interval in 2.9)';
  },

  start: startNatsCluster,
};
