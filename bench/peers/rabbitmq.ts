/**
 * RabbitMQ quorum queues on three local nodes as a replicated benchmark peer (`rabbitmq-qq`):
 * Debian's rabbitmq-server started three times as separate processes (rabbit1..3@localhost, each
 * with its own AMQP and distribution ports on 127.0.0.1, its own data dir, no plugins, so no
 * management listener), one epmd of our own on a free port, a shared Erlang cookie, and nodes 2
 * and 3 joined to node 1 with `rabbitmqctl join_cluster`. Driven by `amqplib`.
 *
 * Durability: every topic is a durable queue with `x-queue-type: quorum` (three Ra members).
 * Publishes go through a confirm channel, persistent, and resolve on the broker's ack: for a
 * quorum queue that ack is sent once the command is committed, i.e. written and fsynced by a
 * majority (Ra's write-ahead log syncs before it reports a write, `wal_sync_method` datasync by
 * default). Consumers use a channel with prefetch PREFETCH_MESSAGES and one manual ack per message.
 * A queue is its own consumer group (its consumers compete), so the group name has no counterpart.
 *
 * Placement: the workload clients all connect to node 1, so each queue's leader is on node 1 (a
 * quorum queue's leader starts on the node of the connection that declares it): RabbitMQ's best
 * case, no hop between the client's node and the leader.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import amqp from 'amqplib';
import type { ChannelModel, ConfirmChannel } from 'amqplib';
import { CLUSTER_FORM_TIMEOUT_MS, CLUSTER_NODES, stopCluster, waitFor, type ClusterSystem, type StartedCluster } from '../cluster.js';
import { freePort, LOOPBACK_HOST, type ProcessRegistry, type ServerProcess } from '../processes.js';
import {
  PREFETCH_MESSAGES,
  type BrokerConnection,
  type BrokerSubscription,
  type MessageHandler,
} from '../workloads.js';
import { commandVersion, installedPackageVersion } from './versions.js';

const execFileAsync = promisify(execFile);

/**
 * The scripts themselves, not /usr/sbin's wrappers: those switch to the rabbitmq user, and with it
 * the process would no longer be ours to signal by PID.
 */
const SERVER_SCRIPT = '/usr/lib/rabbitmq/bin/rabbitmq-server';
const CTL_SCRIPT = '/usr/lib/rabbitmq/bin/rabbitmqctl';
const EPMD_COMMAND = 'epmd';
/** An Erlang VM booting RabbitMQ takes about 8 s on an idle two-core machine; a busy one, more. */
const NODE_START_TIMEOUT_MS = 90_000;
/** One rabbitmqctl call (an Erlang VM of its own) on a busy machine. */
const CTL_TIMEOUT_MS = 60_000;
const QUEUE_MEMBERS = 3;
const COOKIE_BYTES = 20;

interface RabbitNode {
  readonly id: string;
  readonly nodeName: string;
  readonly amqpPort: number;
  readonly distPort: number;
  readonly dir: string;
  server: ServerProcess;
}

type NodeLayout = Omit<RabbitNode, 'server'>;

// ---- The cluster -----------------------------------------------------------------------------

class RabbitCluster {
  readonly nodes = new Map<string, RabbitNode>();
  epmd: ServerProcess | undefined;

  constructor(
    private readonly processes: ProcessRegistry,
    readonly root: string,
  ) {}

  /** What every Erlang VM of this cluster (servers and rabbitmqctl) needs: the cookie and our epmd. */
  erlangEnv(): Record<string, string> {
    if (this.epmd === undefined) throw new Error('rabbitmq-qq: epmd is not running');
    return { HOME: this.root, ERL_EPMD_PORT: String(this.epmd.port) };
  }

  nodeEnv(node: NodeLayout): Record<string, string> {
    return {
      ...this.erlangEnv(),
      RABBITMQ_NODENAME: node.nodeName,
      RABBITMQ_DIST_PORT: String(node.distPort),
      RABBITMQ_MNESIA_BASE: join(node.dir, 'mnesia'),
      RABBITMQ_LOG_BASE: join(node.dir, 'log'),
      RABBITMQ_CONFIG_FILE: join(node.dir, 'rabbitmq.conf'),
      RABBITMQ_ENABLED_PLUGINS_FILE: join(this.root, 'enabled_plugins'),
      // Exec the VM in place of the script (so the PID we hold is beam.smp's), without a shell.
      RABBITMQ_ALLOW_INPUT: '1',
      RABBITMQ_SERVER_START_ARGS: '-noinput',
      RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: '-kernel inet_dist_use_interface {127,0,0,1}',
    };
  }

  startNode(node: NodeLayout): Promise<ServerProcess> {
    return this.processes.start({
      name: `rabbitmq-${node.id}`,
      command: SERVER_SCRIPT,
      port: node.amqpPort,
      dataDir: node.dir,
      env: this.nodeEnv(node),
      args: () => [],
      readyTimeoutMs: NODE_START_TIMEOUT_MS,
    });
  }

  /** rabbitmqctl against `nodeName`; its stdout. */
  async ctl(nodeName: string, args: readonly string[]): Promise<string> {
    const { stdout } = await execFileAsync(CTL_SCRIPT, ['-n', nodeName, ...args], {
      env: { ...process.env, ...this.erlangEnv() },
      timeout: CTL_TIMEOUT_MS,
    });
    return stdout;
  }

  node(id: string): RabbitNode {
    const found = this.nodes.get(id);
    if (found === undefined) throw new Error(`rabbitmq-qq: no node ${id}`);
    return found;
  }

  /** A node to ask questions: running and not frozen (a frozen VM would hang rabbitmqctl). */
  queryNode(): RabbitNode {
    for (const node of this.nodes.values()) if (node.server.running && !node.server.isFrozen) return node;
    throw new Error('rabbitmq-qq: no node is running');
  }

  async queueInfo(topic: string): Promise<{ leader: string; members: string[]; online: string[] }> {
    const output = await this.ctl(this.queryNode().nodeName, ['-q', 'list_queues', 'name', 'leader', 'members', 'online', '--formatter', 'json']);
    const queues = JSON.parse(output) as Array<{ name: string; leader: string; members: string[]; online: string[] }>;
    const queue = queues.find((entry) => entry.name === topic);
    if (queue === undefined) throw new Error(`rabbitmq-qq: no queue ${topic}`);
    return queue;
  }

  servers(): ServerProcess[] {
    const servers = [...this.nodes.values()].map((node) => node.server);
    return this.epmd === undefined ? servers : [...servers, this.epmd];
  }
}

async function layoutNodes(root: string): Promise<NodeLayout[]> {
  const layouts: NodeLayout[] = [];
  for (let index = 1; index <= CLUSTER_NODES; index++) {
    const id = `n${index}`;
    const dir = join(root, id);
    const layout = { id, nodeName: `rabbit${index}@localhost`, amqpPort: await freePort(), distPort: await freePort(), dir };
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'rabbitmq.conf'),
      [`listeners.tcp.1 = ${LOOPBACK_HOST}:${layout.amqpPort}`, 'log.console = true', 'log.console.level = warning', 'log.file = false', ''].join('\n'),
    );
    layouts.push(layout);
  }
  return layouts;
}

async function formCluster(cluster: RabbitCluster, processes: ProcessRegistry): Promise<void> {
  const cookieFile = join(cluster.root, '.erlang.cookie');
  writeFileSync(cookieFile, randomBytes(COOKIE_BYTES).toString('hex'));
  chmodSync(cookieFile, 0o400); // Erlang refuses a cookie others can read
  writeFileSync(join(cluster.root, 'enabled_plugins'), '[].\n');
  cluster.epmd = await processes.start({
    name: 'rabbitmq-epmd',
    command: EPMD_COMMAND,
    args: (port) => ['-port', String(port), '-address', LOOPBACK_HOST],
  });
  const layouts = await layoutNodes(cluster.root);
  const servers = await Promise.all(layouts.map((layout) => cluster.startNode(layout)));
  layouts.forEach((layout, index) => cluster.nodes.set(layout.id, { ...layout, server: servers[index]! }));
  const [first, ...others] = layouts;
  for (const node of others) {
    await cluster.ctl(node.nodeName, ['stop_app']);
    await cluster.ctl(node.nodeName, ['join_cluster', first!.nodeName]);
    await cluster.ctl(node.nodeName, ['start_app']);
  }
  await waitFor('rabbitmq-qq: three running nodes', CLUSTER_FORM_TIMEOUT_MS, async () => {
    const status = JSON.parse(await cluster.ctl(first!.nodeName, ['-q', 'cluster_status', '--formatter', 'json'])) as { running_nodes?: string[] };
    return (status.running_nodes ?? []).length === CLUSTER_NODES;
  });
}

export async function startRabbitCluster(processes: ProcessRegistry): Promise<StartedCluster> {
  const cluster = new RabbitCluster(processes, processes.makeTempDir('rabbitmq-qq'));
  const stop = (): Promise<void> => stopCluster(processes, cluster.servers(), cluster.root);
  try {
    await formCluster(cluster, processes);
  } catch (error) {
    await stop();
    throw error;
  }
  const idOf = (nodeName: string): string => {
    for (const node of cluster.nodes.values()) if (node.nodeName === nodeName) return node.id;
    throw new Error(`rabbitmq-qq: unknown node ${nodeName}`);
  };
  return {
    get servers() {
      return [...cluster.nodes.values()].map((node) => node.server);
    },
    stop,
    connect: () => RabbitConnectionAdapter.open(cluster.node('n1').amqpPort),
    nodeIds: [...cluster.nodes.keys()],
    server: (id) => cluster.node(id).server,
    async leaderOf(topic) {
      return idOf((await cluster.queueInfo(topic)).leader);
    },
    async restart(id) {
      const node = cluster.node(id);
      if (node.server.running) throw new Error(`rabbitmq-qq: ${id} (pid ${node.server.pid}) is still running`);
      await processes.stop(node.server);
      // The node's data dir remembers the cluster: it rejoins on its own.
      node.server = await cluster.startNode(node);
    },
    async replicasCurrent(topic) {
      const queue = await cluster.queueInfo(topic);
      return queue.members.length === QUEUE_MEMBERS && queue.online.length === QUEUE_MEMBERS;
    },
    connectTo: (id) => RabbitConnectionAdapter.open(cluster.node(id).amqpPort),
  };
}

// ---- The client adapter ------------------------------------------------------------------------

class RabbitSubscription implements BrokerSubscription {
  constructor(
    private readonly channel: amqp.Channel,
    private readonly topic: string,
    private readonly consumerTag: string,
  ) {}

  /** basic.ack has no reply; an RPC on the same channel returns after the broker has read them all. */
  async flushAcks(): Promise<void> {
    await this.channel.checkQueue(this.topic);
  }

  async close(): Promise<void> {
    await this.channel.cancel(this.consumerTag);
    await this.channel.close();
  }
}

export class RabbitConnectionAdapter implements BrokerConnection {
  private publisher: Promise<ConfirmChannel> | undefined;
  private closing = false;

  private constructor(private readonly model: ChannelModel) {
    // Without listeners an 'error' event would be thrown; the failed calls report it.
    model.on('error', () => {});
  }

  static async open(port: number): Promise<RabbitConnectionAdapter> {
    const model = await amqp.connect({ protocol: 'amqp', hostname: LOOPBACK_HOST, port, username: 'guest', password: 'guest' });
    return new RabbitConnectionAdapter(model);
  }

  /** The confirm channel publishes go through; a new one if the broker closed the last. */
  private confirmChannel(): Promise<ConfirmChannel> {
    if (this.publisher === undefined) {
      const opening = this.model.createConfirmChannel();
      this.publisher = opening;
      opening.then(
        (channel) => {
          channel.on('error', () => {});
          channel.on('close', () => {
            if (this.publisher === opening) this.publisher = undefined;
          });
        },
        () => {
          if (this.publisher === opening) this.publisher = undefined;
        },
      );
    }
    return this.publisher;
  }

  async createTopic(topic: string): Promise<void> {
    const channel = await this.confirmChannel();
    await channel.assertQueue(topic, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-quorum-initial-group-size': QUEUE_MEMBERS } });
  }

  async publish(topic: string, payload: Uint8Array): Promise<void> {
    const channel = await this.confirmChannel();
    const content = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    await new Promise<void>((resolve, reject) => {
      // The callback runs on the broker's ack (resolve) or nack, or when the channel closes first.
      channel.sendToQueue(topic, content, { persistent: true }, (error: unknown) => (error === null || error === undefined ? resolve() : reject(error)));
    });
  }

  async subscribe(topic: string, _group: string, handler: MessageHandler): Promise<BrokerSubscription> {
    const channel = await this.model.createChannel();
    channel.on('error', (error: unknown) => {
      if (!this.closing) handler.onError(error);
    });
    await channel.prefetch(PREFETCH_MESSAGES);
    const { consumerTag } = await channel.consume(
      topic,
      (message) => {
        if (message === null) {
          if (!this.closing) handler.onError(new Error(`rabbitmq-qq: the broker cancelled the consumer of ${topic}`));
          return;
        }
        try {
          handler.onMessage(message.content);
          channel.ack(message);
        } catch (error) {
          handler.onError(error);
        }
      },
      { noAck: false },
    );
    return new RabbitSubscription(channel, topic, consumerTag);
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.model.close();
  }
}

export const rabbitQqSystem: ClusterSystem = {
  id: 'rabbitmq-qq',
  label: 'RabbitMQ quorum queue',
  shortLabel: 'RabbitMQ-QQ',

  async describe() {
    const server = await commandVersion('dpkg-query', ['-W', '-f=${Version}', 'rabbitmq-server']);
    const erlang = await commandVersion('dpkg-query', ['-W', '-f=${Version}', 'erlang-base']);
    const client = await installedPackageVersion('amqplib');
    return `rabbitmq-server ${server} (Erlang ${erlang}) ×3 (join_cluster, loopback), amqplib ${client}; quorum queues of 3, ` +
      'persistent publishes with publisher confirms (majority fsync), prefetch 256, manual acks; clients on node 1';
  },

  start: startRabbitCluster,
};
