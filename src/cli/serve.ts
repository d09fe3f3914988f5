/**
 * `ferry serve`: the composition root of the broker process. It is the one place that builds the
 * real clock, filesystem and logger and wires them into the broker, its TCP listener and the admin
 * HTTP port (API, /metrics, dashboard). Configuration comes from src/config: defaults < file <
 * FERRY_* environment < flags, checked before anything is opened.
 *
 * Security is wired here too (docs/SECURITY.md): TLS material is read at start and, like the users
 * file, watched and reloaded on SIGHUP; one AccessGuard authorizes every transport; and a broker
 * without users refuses to listen anywhere but on loopback.
 */
import { resolve } from 'node:path';
import { chmod, stat } from 'node:fs/promises';
import { SystemClock } from '../platform/clock.js';
import { NodeFileSystem, parseUmask } from '../platform/fs.js';
import { createLogger, type Logger } from '../platform/logger.js';
import { Broker, lockDataDir } from '../broker/broker.js';
import type { DirLock } from '../platform/dir-lock.js';
import { isFerryError } from '../errors.js';
import { EXIT_CODES } from './failure.js';
import { TcpServer } from '../transport/tcp/server.js';
import { AdminServer } from '../admin/admin-server.js';
import { CountingLogger } from '../admin/log-tap.js';
import { ObservedBroker } from '../admin/observed-broker.js';
import { Traffic } from '../admin/traffic.js';
import { admissionLimits, brokerOptions, ensureTopics, serverOptions, tlsFiles } from '../config/apply.js';
import { Authenticator } from '../security/authenticator.js';
import { AUDIT_LOGGER_NAME, AuditLog } from '../security/audit.js';
import { TlsReloader } from '../security/tls-reload.js';
import { AccessGuard } from '../security/guard.js';
import { HttpSecurity } from '../security/http-auth.js';
import { PublishQuota } from '../security/quota.js';
import { Rejections } from '../security/rejections.js';
import { isLoopbackHost, readTlsFiles, type TlsMaterial } from '../security/tls.js';
import { ConfigError, formatConfig, loadConfig } from '../config/load.js';
import { checkOpenFiles } from '../config/open-files.js';
import { DEFAULT_HTTP_PORT, type FerryConfig } from '../config/schema.js';
import { DEFAULT_HOST, DEFAULT_PORT, parse, UsageError } from './args.js';
import { missingNodeFlags, nodeFlagsHint } from './node-flags.js';
import { clusterParts, type ClusterParts } from './serve-cluster.js';
import { startUdp } from './serve-udp.js';
import { DEFAULT_UDP_PORT } from '../protocol/limits.js';
import type { UdpServer } from '../transport/udp/server.js';
import { startMqtt } from './serve-mqtt.js';
import { MQTT_DEFAULT_PORT } from '../transport/mqtt/limits.js';
import type { MqttServer } from '../transport/mqtt/server.js';
import { MqttWebSocketAcceptor } from '../transport/mqtt/websocket.js';

export const SERVE_USAGE =
  `ferry serve [--config ferry.yaml] [--dir ./data] [--port ${DEFAULT_PORT}] [--host ${DEFAULT_HOST}]\n` +
  `            [--http-port ${DEFAULT_HTTP_PORT}|0] [--http-host ${DEFAULT_HOST}] [--log-level info] [--log-format auto|json|pretty]\n` +
  `            [--tls-cert FILE --tls-key FILE [--tls-ca FILE] [--tls-required]] [--users FILE]\n` +
  `            [--node-id ID --etcd URL[,URL...] [--etcd-ca FILE] [--etcd-cert FILE --etcd-key FILE] [--advertise HOST:PORT]]\n` +
  `            [--udp-port ${DEFAULT_UDP_PORT}] [--mqtt-port ${MQTT_DEFAULT_PORT}] [--set key=value]... [--print-config]`;

export const SERVE_FLAGS = {
  config: { type: 'string' },
  dir: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'http-port': { type: 'string' },
  'http-host': { type: 'string' },
  'log-level': { type: 'string' },
  'log-format': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
  'tls-ca': { type: 'string' },
  'tls-required': { type: 'boolean' },
  users: { type: 'string' },
  'node-id': { type: 'string' },
  etcd: { type: 'string' },
  'etcd-ca': { type: 'string' },
  'etcd-cert': { type: 'string' },
  'etcd-key': { type: 'string' },
  advertise: { type: 'string' },
  'udp-port': { type: 'string' },
  'mqtt-port': { type: 'string' },
  set: { type: 'string', multiple: true },
  'print-config': { type: 'boolean' },
} as const;

/** Flags that are shorthands for config keys. */
export const FLAG_KEYS = {
  dir: 'dir',
  port: 'server.port',
  host: 'server.host',
  'http-port': 'http.port',
  'http-host': 'http.host',
  'log-level': 'log.level',
  'log-format': 'log.format',
  'tls-cert': 'tls.cert',
  'tls-key': 'tls.key',
  'tls-ca': 'tls.ca',
  users: 'security.usersFile',
  'node-id': 'nodeId',
  etcd: 'etcd',
  'etcd-ca': 'etcdCa',
  'etcd-cert': 'etcdCert',
  'etcd-key': 'etcdKey',
  advertise: 'advertise',
  'udp-port': 'udp.port',
  'mqtt-port': 'mqtt.port',
} as const;

export async function serve(args: string[]): Promise<number> {
  const { values } = parse(args, SERVE_FLAGS, 0);
  const flags: Record<string, string> = {};
  for (const [flag, key] of Object.entries(FLAG_KEYS)) {
    const value = values[flag as keyof typeof FLAG_KEYS];
    if (value !== undefined) flags[key] = value;
  }
  if (values['tls-required'] === true) flags['tls.required'] = 'true';
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

/** The security pieces of one broker process. */
interface Security {
  authenticator: Authenticator;
  tls: TlsMaterial | null;
  quota: PublishQuota | null;
  rejections: Rejections;
}

/**
 * Reads the TLS files and the users file and checks the listening addresses, before anything is
 * opened. A broker without users serves anyone who can reach it, so it listens on loopback only.
 */
function prepareSecurity(config: FerryConfig, clock: SystemClock, logger: Logger, audit: AuditLog): Security {
  const files = tlsFiles(config);
  let tls: TlsMaterial | null;
  let authenticator: Authenticator;
  try {
    tls = files === null ? null : readTlsFiles(files);
    const usersFile = config.security.usersFile ?? null;
    authenticator = new Authenticator(usersFile === null ? null : resolve(usersFile), clock, logger, undefined, { required: usersFile !== null, audit });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (authenticator.userCount === 0) {
    const exposed = [config.server.host, ...(config.http.enabled ? [config.http.host] : []), ...(config.mqtt.port === undefined ? [] : [config.mqtt.host])].filter((host) => !isLoopbackHost(host));
    if (exposed.length > 0) {
      throw new UsageError(
        `refusing to listen on ${exposed.join(' and ')} without users: anyone who can reach the broker could publish, consume and delete topics. ` +
          `Add a user (ferry users add NAME --file users.json --admin) and start with --users users.json, or listen on 127.0.0.1.`,
      );
    }
  }
  const rate = config.security.publishMessagesPerSecond;
  const quota = rate > 0 ? new PublishQuota(rate, config.security.publishBurstMessages || rate, clock) : null;
  return { authenticator, tls, quota, rejections: new Rejections() };
}

/** The first lines of a broker's log: what starts, whether Node has the broker's tuning, and its security. */
function logStart(config: FerryConfig, parts: { dir: string; security: Security; logger: Logger }): void {
  const { dir, security, logger } = parts;
  logger.info('broker.starting', { dir, pid: process.pid, node: process.version });
  const missing = missingNodeFlags(process.execArgv);
  if (missing.length > 0) logger.warn('broker.node_flags_missing', { missing, hint: nodeFlagsHint() });
  logSecurity(config, security, logger);
}

function logSecurity(config: FerryConfig, security: Security, logger: Logger): void {
  const fields = {
    usersFile: config.security.usersFile ?? null,
    users: security.authenticator.userCount,
    tls: security.tls !== null,
    tlsRequired: config.tls.required,
    mutualTls: security.tls?.ca !== undefined,
    httpTls: security.tls !== null && config.http.tls,
    publishMessagesPerSecond: config.security.publishMessagesPerSecond,
  };
  if (security.authenticator.enabled) {
    logger.info('security.auth.on', fields);
    if (security.authenticator.userCount === 0) logger.warn('security.auth.no_users', { ...fields, note: 'nobody can log in until a user is added (ferry users add); the file is reloaded on change' });
  } else {
    logger.warn('security.auth.off', { ...fields, note: 'no users configured: every client may do everything; listening on loopback only (start with --users FILE to require logins)' });
  }
}

/**
 * One broker per data directory: the lock comes before any port, so a second broker started on the
 * same directory says so (and who holds it) instead of failing on a port. The lock, or the exit code.
 */
async function takeDirLock(fs: NodeFileSystem, dir: string, logger: Logger): Promise<DirLock | number> {
  try {
    const lock = await lockDataDir(fs, dir);
    await tightenDataDir(fs, dir, logger);
    return lock;
  } catch (error) {
    logger.error('broker.open_failed', { dir, error });
    return isFerryError(error, 'DATA_DIR_LOCKED') ? EXIT_CODES.dataDirLocked : EXIT_CODES.failed;
  }
}

/** A data directory made before storage.umask (or looser than it) is closed to others at start; what is in it keeps its modes. */
async function tightenDataDir(fs: NodeFileSystem, dir: string, logger: Logger): Promise<void> {
  const mode = (await stat(dir)).mode & 0o777;
  if ((mode & ~fs.dirMode) === 0) return;
  await chmod(dir, mode & fs.dirMode);
  logger.warn('storage.data_dir.mode_tightened', { dir, from: mode.toString(8), to: (mode & fs.dirMode).toString(8) });
}

/** Security events on a logger of their own (docs/SECURITY.md, "Audit log"), at info even when the rest logs less. */
function auditLog(config: FerryConfig, format: 'json' | 'pretty', clock: SystemClock): AuditLog {
  const level = config.log.level === 'debug' ? 'debug' : 'info';
  return new AuditLog(createLogger({ level, format, base: { name: AUDIT_LOGGER_NAME } }), clock);
}

async function run(config: FerryConfig): Promise<number> {
  const format = config.log.format === 'auto' ? (process.stderr.isTTY === true ? 'pretty' : 'json') : config.log.format;
  const logger = new CountingLogger(createLogger({ level: config.log.level, format }));
  const clock = new SystemClock();
  const dir = resolve(config.dir);
  const startedMs = performance.now();
  const security = prepareSecurity(config, clock, logger, auditLog(config, format, clock));
  const { authenticator, rejections } = security;
  logStart(config, { dir, security, logger });

  // One guard for every transport: it holds the open subscriptions to check again on reload.
  const guard = new AccessGuard(authenticator, { quota: security.quota, logger });

  const fs = new NodeFileSystem({ umask: parseUmask(config.storage.umask) });
  const dirLock = await takeDirLock(fs, dir, logger);
  if (typeof dirLock === 'number') {
    guard.close();
    return dirLock;
  }
  // Cluster mode (docs/CLUSTERING.md): replicated logs, and only the topics this broker leads.
  const cluster = config.etcd === undefined ? null : clusterParts(config, { clock, logger, tls: security.tls });
  // The admin port comes up first: liveness answers during recovery, readiness once it finished.
  const admin = config.http.enabled ? await startAdmin(config, { security, guard, clock, logger, dir, cluster }).catch((error: unknown) => logStartFailure(logger, error, 'http')) : null;
  if (admin === undefined) {
    guard.close();
    await dirLock.release();
    return EXIT_CODES.failed;
  }
  let broker: Broker;
  try {
    broker = await Broker.open({
      ...brokerOptions(config),
      dir,
      fs,
      clock,
      logger,
      dirLock,
      ...(cluster === null ? {} : cluster.brokerOptions),
      ...(admin === null ? {} : { storageObserver: admin.metrics }),
    });
  } catch (error) {
    logger.error('broker.open_failed', { dir, error });
    await admin?.close();
    guard.close();
    return EXIT_CODES.failed;
  }
  logRecovery(broker, dir, logger, startedMs);
  const observed = new ObservedBroker(cluster === null ? broker : cluster.serve(broker), admin?.metrics.traffic ?? new Traffic(), clock, admissionLimits(config));
  const tcp = new TcpServer(observed, {
    ...serverOptions(config),
    clock,
    logger,
    security: { authenticator, guard },
    tls: security.tls === null ? null : { ...security.tls, required: config.tls.required, handshakeTimeoutMs: config.tls.handshakeTimeoutMs },
    rejections,
    cluster: cluster?.node ?? null,
  });
  let extra: ExtraPorts = { udp: null, mqtt: null };
  const close = async (): Promise<void> => {
    // Datagrams and MQTT stop first: what was received is stored while the broker is still open.
    await extra.udp?.close();
    await extra.mqtt?.close();
    // A leader hands its topics to in-sync followers first, while its port still serves them.
    await cluster?.leave();
    await tcp.close();
    await broker.close();
    await admin?.close();
    guard.close();
  };
  try {
    await openPorts(config, { broker, observed, tcp, admin, logger, cluster });
    extra = await startExtraPorts(config, { observed, admin, security, guard, fs, dir, clock, logger });
  } catch (error) {
    logStartFailure(logger, error, 'tcp');
    await close();
    return EXIT_CODES.failed;
  }
  const stopWatching = watchSecurity(config, { authenticator, tls: security.tls, tcp, admin, mqtt: extra.mqtt, logger, cluster });
  return untilStopped({ logger, admin, startedMs, close, stopWatching });
}

/** The ports beside the Ferry protocol's, each off unless configured. */
interface ExtraPorts {
  udp: UdpServer | null;
  mqtt: MqttServer | null;
}

/** The UDP ingest port and the MQTT port (with MQTT over WebSocket at the HTTP port's /mqtt), over the observed broker. */
async function startExtraPorts(
  config: FerryConfig,
  parts: { observed: ObservedBroker; admin: AdminServer | null; security: Security; guard: AccessGuard; fs: NodeFileSystem; dir: string; clock: SystemClock; logger: Logger },
): Promise<ExtraPorts> {
  const { observed, admin, security, guard, fs, dir, clock, logger } = parts;
  const udp = await startUdp(config, { broker: observed, clock, logger });
  admin?.attachUdp(udp);
  const mqtt = await startMqtt(config, { broker: observed, security: { authenticator: security.authenticator, guard }, tls: security.tls, fs, dir, clock, logger });
  admin?.attachMqtt(mqtt);
  admin?.attachMqttWebSocket(mqtt === null ? null : new MqttWebSocketAcceptor(mqtt, config.mqtt.packetBytesMax).upgrade);
  return { udp, mqtt };
}

/** The flag that moves each port, and the event that logs where a port 0 ended up. */
const PORT_FLAGS = { tcp: { flag: '--port', logged: 'broker.listening' }, http: { flag: '--http-port', logged: 'admin.listening' } } as const;

/**
 * Logs why the broker could not start; a port in use (a second broker on the host, with the
 * defaults) says which flag gives this one another. Returns undefined: nothing was started.
 */
function logStartFailure(logger: Logger, error: unknown, port: keyof typeof PORT_FLAGS): undefined {
  const { flag, logged } = PORT_FLAGS[port];
  const inUse = (error as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
  const hint = `the ${port === 'http' ? 'HTTP' : 'Ferry protocol'} port is in use (another broker on this host?): give this broker its own with ${flag} PORT, or ${flag} 0 for any free port (logged as ${logged})`;
  logger.error('broker.start_failed', { error, ...(inUse ? { hint } : {}) });
  return undefined;
}

/**
 * A changed users file, certificate or key applies within a second (polled), or at once on SIGHUP:
 * new TLS connections on both ports get the new certificate, open ones keep theirs, and a set that
 * is not usable is logged and the old one kept (security/tls-reload.ts). In cluster mode the CA the
 * broker's own connections to the others trust follows the broker's certificates, and the etcd
 * client's CA and certificate are watched the same way. Returns what stops watching.
 */
function watchSecurity(config: FerryConfig, parts: { authenticator: Authenticator; tls: TlsMaterial | null; tcp: TcpServer; admin: AdminServer | null; mqtt: MqttServer | null; logger: Logger; cluster: ClusterParts | null }): () => void {
  const { authenticator, tcp, admin, logger, cluster } = parts;
  authenticator.watch();
  const files = tlsFiles(config);
  const certificates = files === null || parts.tls === null ? null : new TlsReloader(files, logger, parts.tls);
  certificates?.onChange((material) => {
    tcp.setTlsMaterial(material);
    parts.mqtt?.setTlsMaterial(material);
    if (config.http.tls) admin?.setTlsMaterial(material);
    cluster?.serverTlsChanged(material);
  });
  certificates?.watch();
  const etcdCertificates = cluster?.etcdCertificates ?? null;
  etcdCertificates?.watch();
  const reload = (): void => {
    logger.info('security.users.reload_requested', { signal: 'SIGHUP' });
    authenticator.reload();
    certificates?.reload();
    etcdCertificates?.reload();
  };
  process.on('SIGHUP', reload);
  return () => {
    process.off('SIGHUP', reload);
    authenticator.close();
    certificates?.close();
    etcdCertificates?.close();
  };
}

/** The HTTP port (admin API, metrics, dashboard, gRPC), with the TCP port's users and TLS. */
function startAdmin(config: FerryConfig, parts: { security: Security; guard: AccessGuard; clock: SystemClock; logger: CountingLogger; dir: string; cluster: ClusterParts | null }): Promise<AdminServer> {
  const { security, guard, clock, logger, dir, cluster } = parts;
  const httpTls = security.tls !== null && config.http.tls ? { ...security.tls, requestCert: security.tls.ca !== undefined, rejectUnauthorized: false } : undefined;
  return AdminServer.start({
    host: config.http.host,
    port: config.http.port,
    clock,
    logger,
    log: logger,
    dir,
    rejections: security.rejections,
    ...(httpTls === undefined ? {} : { tls: httpTls }),
    security: new HttpSecurity(security.authenticator, guard, security.rejections, logger),
    ...(cluster === null ? {} : { cluster: cluster.node }),
  });
}

/** Creates the declared topics, checks the open-files limit, and opens the TCP port (joining the cluster once it listens). */
async function openPorts(config: FerryConfig, parts: { broker: Broker; observed: ObservedBroker; tcp: TcpServer; admin: AdminServer | null; logger: Logger; cluster: ClusterParts | null }): Promise<void> {
  const { broker, observed, tcp, admin, logger, cluster } = parts;
  if (cluster !== null) {
    // Other brokers dial this one as soon as it is registered: its port listens first.
    const listening = await tcp.listen(config.server.port, config.server.host);
    await cluster.join(broker, listening);
    await ensureTopics(observed, config.topics, logger);
    admin?.attach({ broker: observed, rawBroker: broker, connections: tcp, tcp: listening, describeRemote: cluster.describeRemote });
    logger.info('broker.listening', { host: listening.host, port: listening.port, nodeId: cluster.node.nodeId, http: admin === null ? null : admin.url });
    return;
  }
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
  logger.info('broker.listening', { host: address.host, port: address.port, http: admin === null ? null : admin.url });
}

/** Serves until SIGINT or SIGTERM, then closes everything (a second signal forces the exit); resolves with the exit code. */
function untilStopped(parts: { logger: Logger; admin: AdminServer | null; startedMs: number; stopWatching: () => void; close: () => Promise<void> }): Promise<number> {
  const { logger, admin, startedMs } = parts;
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
      parts.stopWatching();
      parts.close().then(
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
