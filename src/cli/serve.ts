/**
 * `ferry serve`: the composition root of the broker process. It is the one place that builds the
 * real clock, filesystem and logger and wires them into the broker, its TCP listener and the admin
 * HTTP port (API, /metrics, dashboard). Configuration comes from src/config: defaults < file <
 * FERRY_* environment < flags, checked before anything is opened.
 */
import { resolve } from 'node:path';
import { SystemClock } from '../platform/clock.js';
import { NodeFileSystem } from '../platform/fs.js';
import { createLogger, type Logger } from '../platform/logger.js';
import { Broker } from '../broker/broker.js';
import { TcpServer } from '../transport/tcp/server.js';
import { AdminServer } from '../admin/admin-server.js';
import { CountingLogger } from '../admin/log-tap.js';
import { ObservedBroker } from '../admin/observed-broker.js';
import { Traffic } from '../admin/traffic.js';
import { admissionLimits, brokerOptions, ensureTopics, serverOptions } from '../config/apply.js';
import { ConfigError, formatConfig, loadConfig } from '../config/load.js';
import { checkOpenFiles } from '../config/open-files.js';
import { DEFAULT_HTTP_PORT, type FerryConfig } from '../config/schema.js';
import { DEFAULT_HOST, DEFAULT_PORT, parse, UsageError } from './args.js';

export const SERVE_USAGE =
  `ferry serve [--config ferry.yaml] [--dir ./data] [--port ${DEFAULT_PORT}] [--host ${DEFAULT_HOST}] ` +
  `[--http-port ${DEFAULT_HTTP_PORT}] [--http-host ${DEFAULT_HOST}] [--log-level info] [--log-format auto|json|pretty] ` +
  `[--set key=value]... [--print-config]`;

/** Flags that are shorthands for config keys. */
const FLAG_KEYS = {
  dir: 'dir',
  port: 'server.port',
  host: 'server.host',
  'http-port': 'http.port',
  'http-host': 'http.host',
  'log-level': 'log.level',
  'log-format': 'log.format',
} as const;

export async function serve(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      config: { type: 'string' },
      dir: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'http-port': { type: 'string' },
      'http-host': { type: 'string' },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
      set: { type: 'string', multiple: true },
      'print-config': { type: 'boolean' },
    },
    0,
  );
  const flags: Record<string, string> = {};
  for (const [flag, key] of Object.entries(FLAG_KEYS)) {
    const value = values[flag as keyof typeof FLAG_KEYS];
    if (value !== undefined) flags[key] = value;
  }
  for (const assignment of values.set ?? []) {
    const equals = assignment.indexOf('=');
    if (equals <= 0) throw new UsageError(`--set '${assignment}' must look like key=value (e.g. server.maxConnections=5000)`);
    flags[assignment.slice(0, equals)] = assignment.slice(equals + 1);
  }
  let config: FerryConfig;
  try {
    config = loadConfig({ file: values.config, env: process.env, flags });
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  if (values['print-config'] === true) {
    process.stdout.write(formatConfig(config));
    return 0;
  }
  return run(config);
}

async function run(config: FerryConfig): Promise<number> {
  const format = config.log.format === 'auto' ? (process.stderr.isTTY === true ? 'pretty' : 'json') : config.log.format;
  const logger = new CountingLogger(createLogger({ level: config.log.level, format }));
  const clock = new SystemClock();
  const dir = resolve(config.dir);
  const startedMs = performance.now();
  logger.info('broker.starting', { dir, pid: process.pid, node: process.version });

  // The admin port comes up first: liveness answers during recovery, readiness once it finished.
  const admin = config.http.enabled ? await AdminServer.start({ host: config.http.host, port: config.http.port, clock, logger, log: logger, dir }) : null;
  let broker: Broker;
  try {
    broker = await Broker.open({
      ...brokerOptions(config),
      dir,
      fs: new NodeFileSystem(),
      clock,
      logger,
      ...(admin === null ? {} : { storageObserver: admin.metrics }),
    });
  } catch (error) {
    logger.error('broker.open_failed', { dir, error });
    await admin?.close();
    return 1;
  }
  logRecovery(broker, dir, logger, startedMs);
  const observed = new ObservedBroker(broker, admin?.metrics.traffic ?? new Traffic(), clock, admissionLimits(config));
  const tcp = new TcpServer(observed, { ...serverOptions(config), clock, logger });
  try {
    await ensureTopics(observed, config.topics, logger);
    const topics = broker.listTopics();
    checkOpenFiles(logger, {
      maxConnections: config.server.maxConnections,
      segments: topics.reduce((sum, topic) => sum + topic.partitions.reduce((n, p) => n + p.segments, 0), 0),
      partitions: topics.reduce((sum, topic) => sum + topic.partitions.length, 0),
      groups: topics.reduce((sum, topic) => sum + topic.groups.length, 0),
    });
    const address = await tcp.listen(config.server.port, config.server.host);
    admin?.attach({ broker: observed, rawBroker: broker, connections: tcp, tcp: address });
    logger.info('broker.listening', { host: address.host, port: address.port, http: admin === null ? null : `http://${admin.host}:${admin.port}/` });
  } catch (error) {
    logger.error('broker.start_failed', { error });
    await tcp.close();
    await broker.close();
    await admin?.close();
    return 1;
  }

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn('broker.shutdown.forced', { signal });
        process.exit(1);
      }
      stopping = true;
      logger.info('broker.shutdown.started', { signal });
      admin?.drain();
      const shutdown = async (): Promise<void> => {
        await tcp.close();
        await broker.close();
        await admin?.close();
      };
      shutdown().then(
        () => {
          logger.info('broker.shutdown.finished', { uptimeMs: Math.round(performance.now() - startedMs) });
          resolveExit(0);
        },
        (error: unknown) => {
          logger.error('broker.shutdown.failed', { error });
          resolveExit(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

function logRecovery(broker: Broker, dir: string, logger: Logger, startedMs: number): void {
  const topics = broker.listTopics();
  let truncatedBytes = 0;
  let indexesRebuilt = 0;
  for (const reports of broker.recovery.values()) {
    for (const report of reports) {
      truncatedBytes += report.truncatedBytes;
      indexesRebuilt += report.indexesRebuilt;
    }
  }
  const fields = {
    dir,
    topics: topics.length,
    partitions: topics.reduce((sum, topic) => sum + topic.partitions.length, 0),
    messages: topics.reduce((sum, topic) => sum + topic.partitions.reduce((n, p) => n + (p.nextOffset - p.startOffset), 0), 0),
    truncatedBytes,
    indexesRebuilt,
    recoveryMs: Math.round(performance.now() - startedMs),
  };
  // A recovery that had to cut or rebuild something is worth an operator's look.
  if (truncatedBytes > 0 || indexesRebuilt > 0) logger.warn('broker.recovered', fields);
  else logger.info('broker.recovered', fields);
}
