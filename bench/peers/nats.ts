/**
 * NATS JetStream as a benchmark peer: Debian's nats-server with JetStream on file storage, driven
 * by the official `nats` npm client. Topics are file-storage streams (one subject each); publishes
 * wait for the JetStream publish ack; consumers are one durable pull consumer per group with
 * explicit acks, shared by every subscriber of the group (W4: four competing subscribers).
 *
 * Durability caveat: Debian's nats-server is 2.9, which acks a publish once it is written to the
 * stream file but fsyncs only every two minutes (`sync_interval: always` arrived in 2.10). Its
 * figures are therefore for write-before-ack, not fsync-before-ack as Ferry and Redis are run.
 */
import {
  AckPolicy,
  DeliverPolicy,
  RetentionPolicy,
  StorageType,
  connect,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type NatsConnection,
} from 'nats';
import { LOOPBACK_HOST, type ProcessRegistry } from '../processes.js';
import {
  PREFETCH_MESSAGES,
  type BrokerConnection,
  type BrokerSubscription,
  type BrokerSystem,
  type MessageHandler,
  type StartedBroker,
} from '../workloads.js';
import { commandVersion, installedPackageVersion } from './versions.js';

const SERVER_COMMAND = 'nats-server';
/** A group's durable may have every subscriber's prefetch outstanding at once (W4 has four). */
const MAX_ACK_PENDING = PREFETCH_MESSAGES * 4;
/** JetStream API requests (stream and consumer creation) on an idle loopback server. */
export const API_TIMEOUT_MS = 10_000;

class NatsSubscription implements BrokerSubscription {
  constructor(
    private readonly connection: NatsConnection,
    private readonly messages: ConsumerMessages,
  ) {}

  /** Acks are plain publishes: a PING/PONG round trip means the server has read all of them. */
  async flushAcks(): Promise<void> {
    await this.connection.flush();
  }

  async close(): Promise<void> {
    await this.messages.close();
  }
}

export interface NatsOpenOptions {
  reconnect: boolean;
  /** Stream replicas: 1 for the single server, 3 for the cluster (nats-r3). */
  replicas?: number;
  /** JetStream request and publish-ack timeout; the library's default (5 s) when absent. */
  timeoutMs?: number;
}

export class NatsConnectionAdapter implements BrokerConnection {
  private constructor(
    readonly connection: NatsConnection,
    private readonly jetstream: JetStreamClient,
    readonly manager: JetStreamManager,
    private readonly replicas: number,
  ) {}

  /** `ports`: one server, or every node of a cluster (the client picks one and knows the rest). */
  static async open(ports: readonly number[], options: NatsOpenOptions = { reconnect: false, timeoutMs: API_TIMEOUT_MS }): Promise<NatsConnectionAdapter> {
    // No reconnects by default: a server that goes away mid-run must fail the run, not stall it.
    const connection = await connect({ servers: ports.map((port) => `${LOOPBACK_HOST}:${port}`), reconnect: options.reconnect });
    const jetstreamOptions = options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs };
    const jetstream = connection.jetstream(jetstreamOptions);
    let manager: JetStreamManager;
    try {
      // Asks the server for the account's JetStream info: fails until a cluster has its meta leader.
      manager = await connection.jetstreamManager(jetstreamOptions);
    } catch (error) {
      await connection.close();
      throw error;
    }
    return new NatsConnectionAdapter(connection, jetstream, manager, options.replicas ?? 1);
  }

  async createTopic(topic: string): Promise<void> {
    await this.manager.streams.add({
      name: topic,
      subjects: [topic],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      num_replicas: this.replicas,
    });
  }

  async publish(topic: string, payload: Uint8Array): Promise<void> {
    await this.jetstream.publish(topic, payload);
  }

  async subscribe(topic: string, group: string, handler: MessageHandler): Promise<BrokerSubscription> {
    // Adding a durable that exists with the same configuration is accepted, so every subscriber
    // of the group can make the same call.
    await this.manager.consumers.add(topic, {
      durable_name: group,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: MAX_ACK_PENDING,
    });
    const consumer = await this.jetstream.consumers.get(topic, group);
    const messages = await consumer.consume({
      max_messages: PREFETCH_MESSAGES,
      callback: (message) => {
        try {
          handler.onMessage(message.data);
          message.ack();
        } catch (error) {
          handler.onError(error);
        }
      },
    });
    messages.closed().then(
      (error) => {
        if (error instanceof Error) handler.onError(error);
      },
      (error: unknown) => handler.onError(error),
    );
    return new NatsSubscription(this.connection, messages);
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

export const natsSystem: BrokerSystem = {
  id: 'nats',
  label: 'NATS JetStream',
  shortLabel: 'JetStream',

  async describe() {
    const server = await commandVersion(SERVER_COMMAND, ['--version']);
    const client = await installedPackageVersion('nats');
    return `${server}, nats.js ${client}; file storage, ack after write (fsync every 2 min: no sync_interval in 2.9)`;
  },

  async start(processes: ProcessRegistry): Promise<StartedBroker> {
    const server = await processes.start({
      name: 'nats',
      command: SERVER_COMMAND,
      args: (port, dataDir) => ['--jetstream', '--store_dir', dataDir, '--addr', LOOPBACK_HOST, '--port', String(port)],
    });
    return { servers: [server], stop: () => processes.stop(server), connect: () => NatsConnectionAdapter.open([server.port]) };
  },
};
