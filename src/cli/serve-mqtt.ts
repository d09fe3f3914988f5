/**
 * The MQTT port of `ferry serve` (docs/MQTT.md), opened only when `mqtt.port` is set. Logins and
 * permissions are the Ferry port's (the users file, one guard); TLS, when configured, shares the
 * port with plaintext as on the Ferry port. Sessions and retained messages live under `<dir>/mqtt/`.
 */
import type { BrokerApi } from '../broker/types.js';
import type { FerryConfig } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import type { Logger } from '../platform/logger.js';
import type { TlsMaterial } from '../security/tls.js';
import type { MqttSecurity } from '../transport/mqtt/connect.js';
import { MqttServer } from '../transport/mqtt/server.js';
import { MQTT_WEBSOCKET_PATH } from '../transport/mqtt/limits.js';
import { TopicMap } from '../transport/mqtt/topic-map.js';

/** Opens the MQTT port over `broker` (the observed broker, so its traffic is counted); null when none is configured. */
export async function startMqtt(
  config: FerryConfig,
  parts: { broker: BrokerApi; security: MqttSecurity; tls: TlsMaterial | null; fs: FileSystem; dir: string; clock: Clock; logger: Logger },
): Promise<MqttServer | null> {
  const mqtt = config.mqtt;
  if (mqtt.port === undefined) return null;
  const { logger } = parts;
  const server = new MqttServer(parts.broker, {
    limits: {
      packetBytesMax: mqtt.packetBytesMax,
      topicBytesMax: mqtt.topicBytesMax,
      subscriptionsMax: mqtt.subscriptionsMax,
      inflightMax: mqtt.inflightMax,
      connectTimeoutMs: mqtt.connectTimeoutMs,
      sessionExpirySecondsMax: mqtt.sessionExpirySecondsMax,
    },
    connectionsMax: mqtt.connectionsMax,
    perAddress: { acceptsPerSecond: mqtt.acceptsPerSecondPerIp, acceptBurst: mqtt.acceptBurstPerIp, connectionsMax: mqtt.connectionsPerIpMax },
    topicMap: TopicMap.parse(mqtt.topicMap),
    admissionLimits: config.limits,
    security: parts.security,
    tls: parts.tls === null ? null : { material: parts.tls, handshakeTimeoutMs: config.tls.handshakeTimeoutMs },
    dataDir: parts.dir,
    fs: parts.fs,
    clock: parts.clock,
    logger,
  });
  const address = await server.listen(mqtt.port, mqtt.host);
  logger.info('mqtt.listening', { host: address.host, port: address.port, tls: parts.tls !== null, webSocketPath: MQTT_WEBSOCKET_PATH, sessions: server.sessions.storedCount, retained: server.retained.size });
  return server;
}
