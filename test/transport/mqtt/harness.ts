/**
 * An in-process broker with its MQTT port on 127.0.0.1 (port 0) and, optionally, its Ferry port
 * and security (the users file, one guard), as `ferry serve --mqtt-port` wires it. Clients are
 * mqtt.js, in 5.0 or 3.1.1 mode; `collect` gathers what a client receives.
 */
import { connect as connectMqtt, connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import type { IConnackPacket, IPublishPacket } from 'mqtt-packet';
import { Broker } from '../../../src/index.js';
import { NodeFileSystem } from '../../../src/platform/fs.js';
import { SystemClock } from '../../../src/platform/clock.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { Authenticator } from '../../../src/security/authenticator.js';
import { AccessGuard } from '../../../src/security/guard.js';
import type { TlsMaterial } from '../../../src/security/tls.js';
import type { UsersFile } from '../../../src/security/users-file.js';
import { MqttServer, type MqttLimits, type MqttServerOptions } from '../../../src/transport/mqtt/server.js';
import type { TopicMap } from '../../../src/transport/mqtt/topic-map.js';
import {
  MQTT_CONNECT_TIMEOUT_MS_DEFAULT,
  MQTT_INFLIGHT_MAX_DEFAULT,
  MQTT_PACKET_BYTES_MAX_DEFAULT,
  MQTT_SESSION_EXPIRY_S_MAX_DEFAULT,
  MQTT_SUBSCRIPTIONS_MAX_DEFAULT,
  MQTT_TOPIC_BYTES_MAX_DEFAULT,
} from '../../../src/transport/mqtt/limits.js';
import { tempDir, type TempDir } from '../../helpers.js';

/** The MQTT port's limits at their defaults (limits.ts), as `ferry serve` sets them without `mqtt.*` keys. */
export const MQTT_LIMITS_DEFAULT: MqttLimits = {
  packetBytesMax: MQTT_PACKET_BYTES_MAX_DEFAULT,
  topicBytesMax: MQTT_TOPIC_BYTES_MAX_DEFAULT,
  subscriptionsMax: MQTT_SUBSCRIPTIONS_MAX_DEFAULT,
  inflightMax: MQTT_INFLIGHT_MAX_DEFAULT,
  connectTimeoutMs: MQTT_CONNECT_TIMEOUT_MS_DEFAULT,
  sessionExpirySecondsMax: MQTT_SESSION_EXPIRY_S_MAX_DEFAULT,
};

export interface MqttHarness {
  dir: TempDir;
  broker: Broker;
  server: MqttServer;
  url: string;
  /** The Ferry protocol port (for the native client). */
  ferryPort: number;
  close(): Promise<void>;
}

export interface HarnessOptions {
  topics?: string[];
  limits?: Partial<MqttLimits>;
  users?: UsersFile;
  /** Reuse a data directory (a restart); it is not removed by close(). */
  dir?: TempDir;
  /** TLS on the same port as plaintext. */
  tls?: TlsMaterial;
  /** The operator's MQTT prefixes (mqtt.topicMap). */
  topicMap?: TopicMap;
  /** Per-address accept limits (mqtt.acceptsPerSecondPerIp and the rest). */
  perAddress?: MqttServerOptions['perAddress'];
}

export async function startMqtt(options: HarnessOptions = {}): Promise<MqttHarness> {
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? (await tempDir('ferry-mqtt-'));
  const clock = new SystemClock();
  const fs = new NodeFileSystem();
  const broker = await Broker.open({ dir: dir.path, clock, fs, logger: silentLogger });
  for (const topic of options.topics ?? []) if (!broker.listTopics().some((info) => info.name === topic)) await broker.createTopic(topic);
  const listener = await broker.listen({ port: 0, host: '127.0.0.1' });
  const authenticator = options.users === undefined ? null : new Authenticator(null, clock, silentLogger, options.users, { required: true, failureDelayMsMin: 1, failureDelayMsMax: 5 });
  const server = new MqttServer(broker, {
    limits: { ...MQTT_LIMITS_DEFAULT, ...options.limits },
    connectionsMax: 1000,
    ...(options.topicMap === undefined ? {} : { topicMap: options.topicMap }),
    ...(options.perAddress === undefined ? {} : { perAddress: options.perAddress }),
    security: authenticator === null ? null : { authenticator, guard: new AccessGuard(authenticator) },
    tls: options.tls === undefined ? null : { material: options.tls, handshakeTimeoutMs: 5_000 },
    dataDir: dir.path,
    fs,
    clock,
    logger: silentLogger,
  });
  const address = await server.listen(0, '127.0.0.1');
  return {
    dir,
    broker,
    server,
    url: `mqtt://127.0.0.1:${address.port}`,
    ferryPort: listener.port,
    close: async () => {
      await server.close();
      await broker.close();
      if (ownDir) await dir.remove();
    },
  };
}

/** An mqtt.js client that does not reconnect on its own (a test says when). */
export function client(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  return connectAsync(url, { reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 5, ...options });
}

/** A client returned at once, before its CONNACK: listeners added now see everything (a resumed session delivers right after CONNACK). */
export function clientNow(url: string, options: IClientOptions = {}): MqttClient {
  return connectMqtt(url, { reconnectPeriod: 0, connectTimeout: 5_000, protocolVersion: 5, ...options });
}

/** The SUBACK's codes, refusals included (subscribeAsync rejects on any refusal). */
export function subscribeCodes(mqttClient: MqttClient, topics: Record<string, { qos: 0 | 1 | 2 }>): Promise<number[]> {
  return new Promise((resolve, reject) => {
    mqttClient.subscribe(topics, (error: unknown, _granted: unknown, packet?: unknown) => {
      const granted = (packet as { granted?: number[] } | undefined)?.granted;
      if (granted !== undefined) resolve(granted);
      else reject(error);
    });
  });
}

/** The CONNACK of a client made with clientNow. */
export function connected(mqttClient: MqttClient): Promise<IConnackPacket> {
  return new Promise((resolve, reject) => {
    mqttClient.once('connect', resolve);
    mqttClient.once('error', reject);
  });
}

export interface Received {
  topic: string;
  payload: string;
  packet: IPublishPacket;
}

/** Everything `mqttClient` receives from now on, in order. */
export function collect(mqttClient: MqttClient): Received[] {
  const received: Received[] = [];
  mqttClient.on('message', (topic, payload, packet) => received.push({ topic, payload: payload.toString(), packet }));
  return received;
}
