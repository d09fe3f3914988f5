/**
 * TcpServer options, their defaults and the reason for each, and validation. Every queue the server
 * keeps per connection is bounded by one of these.
 */
import type { ClusterFrames } from './cluster-frames.js';
import { SystemClock, type Clock } from '../../platform/clock.js';
import { silentLogger, type Logger } from '../../platform/logger.js';
import { FerryError } from '../../errors.js';
import {
  FRAME_BYTES_MAX_CEILING,
  FRAME_BYTES_MAX_DEFAULT,
  FRAME_BYTES_MAX_MIN,
  HEARTBEAT_INTERVAL_MS_DEFAULT,
  HEARTBEAT_MISSES_MAX_DEFAULT,
} from '../../protocol/limits.js';
import type { Authenticator } from '../../security/authenticator.js';
import type { AccessGuard } from '../../security/guard.js';
import type { Rejections } from '../../security/rejections.js';
import { TLS_HANDSHAKE_TIMEOUT_MS_DEFAULT, type TlsMaterial } from '../../security/tls.js';

const MiB = 1024 * 1024;

/** The server's settings that have a default (SERVER_DEFAULTS, with the reason for each); `ferry serve` reads them from its configuration. */
export interface ServerSettings {
  /** Name announced in HELLO_OK. */
  serverName: string;
  /** Period of heartbeats; a peer silent for heartbeatMissesMax periods is disconnected. */
  heartbeatIntervalMs: number;
  heartbeatMissesMax: number;
  /** Largest frame accepted from a client (and announced in HELLO_OK). */
  maxFrameBytes: number;
  /** Bytes queued on a socket above which deliveries to it pause until it drains. */
  writeHighWaterBytes: number;
  /** A connection backed up above the high-water mark this long is disconnected (SLOW_CONSUMER). */
  slowConsumerGraceMs: number;
  maxConnections: number;
  /** Requests awaiting the broker per connection; above it the server stops reading that socket. */
  inFlightRequestsMax: number;
  /** Subscriptions per connection. */
  subscriptionsMax: number;
  /** Time graceful close() waits for in-flight requests before closing sockets anyway. */
  closeTimeoutMs: number;
  /** Open connections from one IP address at most (TLS handshakes in progress included). */
  maxConnectionsPerIp: number;
  /** New connections one IP address may open per second on average (accept-gate.ts); 0: no limit. */
  acceptsPerSecondPerIp: number;
  /** New connections one IP address may open at once, above its rate. */
  acceptBurstPerIp: number;
  /** A connection that has not sent its HELLO (with credentials) this long after it opened is closed. */
  authTimeoutMs: number;
  /** Deliveries one subscription may hold unsettled (groups) or may be granted ahead (streams): its credit cap. */
  subscriptionUnackedMax: number;
}

export interface TcpServerOptions extends Partial<ServerSettings> {
  clock?: Clock;
  logger?: Logger;
  /** Authentication and authorization; absent: every client may do everything (embedded use). */
  security?: TcpSecurity | null;
  /** TLS on this port; absent: plaintext only. */
  tls?: TcpTlsOptions | null;
  /** Counts every refusal sent (ERROR frames, refused connections) for the metrics. */
  rejections?: Rejections | null;
  /** Cluster mode: METADATA and the replication frames are answered by it (cluster.ts); absent: a single broker. */
  cluster?: ClusterFrames | null;
}

export interface TcpSecurity {
  authenticator: Authenticator;
  guard: AccessGuard;
}

export interface TcpTlsOptions extends TlsMaterial {
  /** Refuse plaintext clients (AUTH_REQUIRED); otherwise both are served, told apart by their first byte. */
  required?: boolean;
  /** Time from accept to a finished TLS handshake. */
  handshakeTimeoutMs?: number;
}

export interface ResolvedTls {
  material: TlsMaterial;
  required: boolean;
  handshakeTimeoutMs: number;
}

export interface ResolvedServerOptions extends ServerSettings {
  clock: Clock;
  logger: Logger;
  security: TcpSecurity | null;
  tls: ResolvedTls | null;
  rejections: Rejections | null;
  cluster: ClusterFrames | null;
  /** Queued bytes above which the server also stops reading requests (their replies would queue too). */
  readPauseBytes: number;
}

export const SERVER_DEFAULTS: Readonly<ServerSettings> = {
  serverName: 'ferry',
  heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS_DEFAULT,
  heartbeatMissesMax: HEARTBEAT_MISSES_MAX_DEFAULT,
  maxFrameBytes: FRAME_BYTES_MAX_DEFAULT,
  /** 1 MiB: about a thousand 1 KiB deliveries in flight on the socket, enough to keep a fast reader busy. */
  writeHighWaterBytes: 1 * MiB,
  /** 30 s: far beyond a GC pause or a burst, short enough that a stuck reader does not pin its backlog. */
  slowConsumerGraceMs: 30_000,
  /** 10,000: each connection costs a socket, a decoder and its buffers; an operator raises it knowingly. */
  maxConnections: 10_000,
  /** 4,096: above the 1,000 publishes a fast producer keeps in flight; bounds memory held for one client. */
  inFlightRequestsMax: 4096,
  /** 1,024 per connection: applications use a handful; more is a leak in the client. */
  subscriptionsMax: 1024,
  /** 10 s: an fsync takes milliseconds; a request still pending after this is stuck. */
  closeTimeoutMs: 10_000,
  /**
   * 1,000: a tenth of maxConnections, so one host (or one attacker) cannot take every slot, while
   * a NAT gateway or a node running many clients still fits. NATS and RabbitMQ have no per-IP limit.
   */
  maxConnectionsPerIp: 1000,
  /**
   * 200 a second, in bursts of 500: a client reconnects a few times a second at most, a host of
   * many clients restarting still fits, and a storm from one address costs the broker at most
   * that many accepts a second (each about 0.3 ms of its thread before its HELLO is refused).
   */
  acceptsPerSecondPerIp: 200,
  acceptBurstPerIp: 500,
  /** 2 s, NATS's AUTH_TIMEOUT: a HELLO is one round trip; a silent socket is let go at once. RabbitMQ allows 10 s. */
  authTimeoutMs: 2000,
  /**
   * 65,535: the client SDK's largest prefetch, so no SDK client is ever clamped; it bounds the
   * broker's in-flight bookkeeping per subscription. NATS JetStream's max_ack_pending defaults to
   * 1,000; RabbitMQ's prefetch is unlimited unless set.
   */
  subscriptionUnackedMax: 65_535,
};

/** Reading stops when this many high-water marks are queued: replies to a client that does not read are bounded. */
const READ_PAUSE_HIGH_WATER_MULTIPLE = 4;

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || chosen < min || chosen > max) {
    throw new FerryError('INVALID_ARGUMENT', `${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return chosen;
}

export function resolveServerOptions(options: TcpServerOptions): ResolvedServerOptions {
  const writeHighWaterBytes = positiveInt('writeHighWaterBytes', options.writeHighWaterBytes, SERVER_DEFAULTS.writeHighWaterBytes);
  return {
    clock: options.clock ?? new SystemClock(),
    logger: options.logger ?? silentLogger,
    serverName: options.serverName ?? SERVER_DEFAULTS.serverName,
    heartbeatIntervalMs: positiveInt('heartbeatIntervalMs', options.heartbeatIntervalMs, SERVER_DEFAULTS.heartbeatIntervalMs, 10, 0xffff_ffff),
    heartbeatMissesMax: positiveInt('heartbeatMissesMax', options.heartbeatMissesMax, SERVER_DEFAULTS.heartbeatMissesMax),
    maxFrameBytes: positiveInt('maxFrameBytes', options.maxFrameBytes, SERVER_DEFAULTS.maxFrameBytes, FRAME_BYTES_MAX_MIN, FRAME_BYTES_MAX_CEILING),
    writeHighWaterBytes,
    slowConsumerGraceMs: positiveInt('slowConsumerGraceMs', options.slowConsumerGraceMs, SERVER_DEFAULTS.slowConsumerGraceMs),
    maxConnections: positiveInt('maxConnections', options.maxConnections, SERVER_DEFAULTS.maxConnections),
    inFlightRequestsMax: positiveInt('inFlightRequestsMax', options.inFlightRequestsMax, SERVER_DEFAULTS.inFlightRequestsMax),
    subscriptionsMax: positiveInt('subscriptionsMax', options.subscriptionsMax, SERVER_DEFAULTS.subscriptionsMax),
    closeTimeoutMs: positiveInt('closeTimeoutMs', options.closeTimeoutMs, SERVER_DEFAULTS.closeTimeoutMs),
    maxConnectionsPerIp: positiveInt('maxConnectionsPerIp', options.maxConnectionsPerIp, SERVER_DEFAULTS.maxConnectionsPerIp),
    acceptsPerSecondPerIp: positiveInt('acceptsPerSecondPerIp', options.acceptsPerSecondPerIp, SERVER_DEFAULTS.acceptsPerSecondPerIp, 0),
    acceptBurstPerIp: positiveInt('acceptBurstPerIp', options.acceptBurstPerIp, SERVER_DEFAULTS.acceptBurstPerIp),
    authTimeoutMs: positiveInt('authTimeoutMs', options.authTimeoutMs, SERVER_DEFAULTS.authTimeoutMs),
    subscriptionUnackedMax: positiveInt('subscriptionUnackedMax', options.subscriptionUnackedMax, SERVER_DEFAULTS.subscriptionUnackedMax),
    security: options.security ?? null,
    tls: resolveTls(options.tls ?? null),
    rejections: options.rejections ?? null,
    cluster: options.cluster ?? null,
    readPauseBytes: writeHighWaterBytes * READ_PAUSE_HIGH_WATER_MULTIPLE,
  };
}

function resolveTls(tls: TcpTlsOptions | null): ResolvedTls | null {
  if (tls === null) return null;
  const { required, handshakeTimeoutMs, ...material } = tls;
  return {
    material,
    required: required ?? false,
    handshakeTimeoutMs: positiveInt('tls.handshakeTimeoutMs', handshakeTimeoutMs, TLS_HANDSHAKE_TIMEOUT_MS_DEFAULT),
  };
}
