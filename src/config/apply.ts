/**
 * From the effective configuration to the options of the pieces `ferry serve` builds, and the
 * declared topics: created at start when missing, so a deployment is reproducible from its file.
 */
import type { BrokerOptions } from '../broker/broker.js';
import type { AdmissionLimits } from '../broker/limits.js';
import type { BrokerApi, TopicConfig } from '../broker/types.js';
import type { Logger } from '../platform/logger.js';
import type { TcpServerOptions } from '../transport/tcp/options.js';
import type { TlsFiles } from '../security/tls.js';
import type { FerryConfig, TopicSettings } from './schema.js';

export function brokerOptions(config: FerryConfig): Omit<BrokerOptions, 'fs' | 'clock' | 'logger'> {
  return {
    dir: config.dir,
    topicDefaults: { ...config.topicDefaults, retention: { ...config.topicDefaults.retention } },
    groupDefaults: { ...config.groupDefaults, backoffMs: [...config.groupDefaults.backoffMs] },
    tailCacheBytes: config.storage.tailCacheBytes,
    admission: { memoryHighWatermarkBytes: config.storage.memoryHighWatermarkBytes, diskFreeLowBytes: config.storage.diskFreeLowBytes },
  };
}

/** The TCP server's limits and timeouts; security and TLS are wired by `ferry serve`, which owns those objects. */
export function serverOptions(config: FerryConfig): Omit<TcpServerOptions, 'clock' | 'logger'> {
  const { host: _host, port: _port, ...options } = config.server;
  return { ...options, authTimeoutMs: config.security.authTimeoutMs };
}

/** The TLS files named by the configuration, or null for plaintext. */
export function tlsFiles(config: FerryConfig): TlsFiles | null {
  const { cert, key, ca } = config.tls;
  if (cert === undefined || key === undefined) return null;
  return ca === undefined ? { cert, key } : { cert, key, ca };
}

export function admissionLimits(config: FerryConfig): AdmissionLimits {
  return { ...config.limits };
}

/**
 * Creates each declared topic that does not exist. An existing topic keeps its stored settings
 * (they are fixed at creation); where the file asks for something else, a warning says so.
 */
export async function ensureTopics(broker: BrokerApi, topics: FerryConfig['topics'], logger: Logger): Promise<{ created: string[] }> {
  const existing = new Map(broker.listTopics().map((info) => [info.name, info.config]));
  const created: string[] = [];
  for (const [name, settings] of Object.entries(topics)) {
    const stored = existing.get(name);
    if (stored === undefined) {
      await broker.createTopic(name, settings as Partial<TopicConfig>);
      created.push(name);
      continue;
    }
    for (const [key, wanted] of Object.entries(settings) as Array<[keyof TopicSettings, unknown]>) {
      const actual = stored[key as keyof TopicConfig];
      if (JSON.stringify(actual) !== JSON.stringify(key === 'retention' ? { ...(actual as object), ...(wanted as object) } : wanted)) {
        logger.warn('config.topic.differs', { topic: name, key, configured: wanted, stored: actual, note: 'topic settings are fixed at creation; delete and recreate the topic to change them' });
      }
    }
  }
  if (created.length > 0) logger.info('config.topics.created', { topics: created });
  return { created };
}
