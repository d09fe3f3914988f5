/**
 * Every configuration key of `ferry serve`: its type, bounds, default and one line of meaning.
 * This table is the single source for validation (load.ts), environment variable names,
 * `--print-config` and docs/CONFIG.md (a test keeps the doc in step). Bounds come from the limit
 * modules that enforce them, so the config cannot accept a value the broker would refuse later.
 */
import { DEFAULT_DISK_FREE_LOW_BYTES, DEFAULT_MEMORY_HIGH_WATERMARK_FRACTION } from '../broker/admission.js';
import { totalmem } from 'node:os';
import { DEFAULT_GROUP_CONFIG, DEFAULT_TOPIC_CONFIG } from '../broker/config.js';
import { BACKOFF_DELAY_MS_MAX, BACKOFF_STEPS_MAX } from '../broker/delivery/backoff.js';
import { ACK_TIMEOUT_MS_MAX, ACK_TIMEOUT_MS_MIN, CREDIT_MAX, DELIVERIES_MAX_LIMIT, PARTITIONS_MAX } from '../broker/limits.js';
import type { Durability, RetentionPolicy } from '../broker/types.js';
import { DEFAULT_HOST, DEFAULT_PORT, FRAME_BYTES_MAX_CEILING, FRAME_BYTES_MAX_MIN, PUBLISH_MESSAGES_MAX } from '../protocol/limits.js';
import { UDP_DATAGRAM_BYTES_MAX } from '../protocol/udp-datagram.js';
import {
  DEFAULT_TAIL_CACHE_BYTES,
  HEADERS_BYTES_MAX,
  HEADERS_COUNT_MAX,
  KEY_BYTES_MAX,
  RECORD_BYTES_MAX,
  SEGMENT_BYTES_MAX,
  SEGMENT_BYTES_MIN,
} from '../storage/limits.js';
import { DURABILITY_MODES } from '../storage/types.js';
import { SERVER_DEFAULTS, type ServerSettings } from '../transport/tcp/options.js';
import { TLS_HANDSHAKE_TIMEOUT_MS_DEFAULT } from '../security/tls.js';
import {
  MQTT_CONNECT_TIMEOUT_MS_DEFAULT,
  MQTT_CONNECT_TIMEOUT_MS_MAX,
  MQTT_CONNECTIONS_MAX_DEFAULT,
  MQTT_INFLIGHT_MAX_CEILING,
  MQTT_INFLIGHT_MAX_DEFAULT,
  MQTT_PACKET_BYTES_MAX_CEILING,
  MQTT_PACKET_BYTES_MAX_DEFAULT,
  MQTT_PACKET_BYTES_MAX_MIN,
  MQTT_SESSION_EXPIRY_S_CEILING,
  MQTT_SESSION_EXPIRY_S_MAX_DEFAULT,
  MQTT_SUBSCRIPTIONS_MAX_CEILING,
  MQTT_SUBSCRIPTIONS_MAX_DEFAULT,
  MQTT_TOPIC_BYTES_MAX_CEILING,
  MQTT_TOPIC_BYTES_MAX_DEFAULT,
} from '../transport/mqtt/limits.js';
import { MQTT_TOPIC_MAP_ENTRIES_MAX, MQTT_TOPIC_MAP_ENTRY_PATTERN } from '../transport/mqtt/topic-map.js';
import type { Unit } from './units.js';
import { ETCD_PREFIX_DEFAULT, LEASE_TTL_MS_DEFAULT, REPLICA_CATCH_UP_BYTES_PER_SEC_DEFAULT, REPLICA_LAG_MAX_MS_DEFAULT, REPLICA_VERIFY_INTERVAL_MS_DEFAULT } from '../cluster/limits.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `auto`: human-readable lines when stderr is a terminal, JSON lines otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** The admin HTTP port: next to the broker's 7700, easy to remember. */
export const DEFAULT_HTTP_PORT = 7780;
const PORT_MAX = 65_535;
/** A day: any interval or timeout beyond it is a unit mistake (seconds typed as ms, or worse). */
const DAY_MS = 24 * 3600 * 1000;
const YEAR_MS = 365 * DAY_MS;
/** Tail cache ceiling: it is process memory; 64 GiB is beyond any machine this runs on sensibly. */
const TAIL_CACHE_BYTES_MAX = 64 * 1024 ** 3;
const INT_MAX = Number.MAX_SAFE_INTEGER;

export type FieldKind =
  | { type: 'int'; min: number; max: number; unit?: Unit; example?: number }
  | { type: 'string'; example: string }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'bool' }
  | { type: 'intList'; min: number; max: number; lengthMax: number; unit?: Unit }
  /** Strings each matching `pattern` (described by `form`); in env and flags comma-separated. */
  | { type: 'stringList'; lengthMax: number; pattern: RegExp; form: string; example: string };

export interface FieldSpec {
  /** Dotted path in the config object, e.g. `server.maxConnections`. */
  path: string;
  kind: FieldKind;
  /** Undefined: optional, no default (e.g. retention limits: keep everything). */
  default: unknown;
  /** The default in words where it depends on the machine (the example config leaves such a key commented out). */
  defaultText?: string;
  doc: string;
}

export interface TopicSettings {
  partitions: number;
  durability: Durability;
  syncIntervalMs: number;
  segmentBytes: number;
  dedupWindowMs: number;
  retention: RetentionPolicy;
}

export interface FerryConfig {
  dir: string;
  /** Cluster mode: this broker's node id (with `etcd`). */
  nodeId?: string;
  /** Cluster mode: etcd's client URLs, comma-separated. */
  etcd?: string;
  /** TLS to etcd (`https://` endpoints): the CA etcd's certificate is checked against (default: the system's). */
  etcdCa?: string;
  /** A client certificate and key for etcd's client-certificate authentication. */
  etcdCert?: string;
  etcdKey?: string;
  /** Cluster mode: host:port clients and other brokers dial (default: the TCP listener's address). */
  advertise?: string;
  cluster: {
    etcdPrefix: string;
    replicaLagMaxMs: number;
    /** A leader compares one follower with its logs (by digests) per this interval; 0: only on request. */
    replicaVerifyIntervalMs: number;
    /** Bytes per second a catching-up replica copies at most (REPLICA_CATCH_UP_BYTES_PER_SEC_DEFAULT unless set). */
    replicaCatchUpBytesPerSec: number;
    leaseTtlMs: number;
    /** Credentials this broker logs in to the other brokers with (their users file's `replicate` grant). */
    user?: string;
    passwordFile?: string;
    tokenFile?: string;
  };
  /** The TCP server's settings (its HELLO timeout is `security.authTimeoutMs`), plus where it listens. */
  server: { host: string; port: number } & Omit<ServerSettings, 'authTimeoutMs'>;
  http: { enabled: boolean; host: string; port: number; tls: boolean };
  /** TLS for both ports; without a certificate, plaintext only. */
  tls: { cert?: string; key?: string; ca?: string; required: boolean; handshakeTimeoutMs: number };
  security: {
    /** The users file (`ferry users`); set, authentication is required. */
    usersFile?: string;
    authTimeoutMs: number;
    /** Per-user publish quota; 0: none. */
    publishMessagesPerSecond: number;
    /** Messages a user may publish at once above the rate; 0: one second's worth. */
    publishBurstMessages: number;
  };
  log: { level: LogLevel; format: LogFormat };
  storage: { tailCacheBytes: number; memoryHighWatermarkBytes: number; diskFreeLowBytes: number; umask: string };
  /** Admission limits: each at most the ceiling the storage engine or broker enforces anyway. */
  limits: {
    recordBytesMax: number;
    keyBytesMax: number;
    headersCountMax: number;
    headersBytesMax: number;
    publishMessagesMax: number;
  };
  topicDefaults: TopicSettings;
  groupDefaults: { ackTimeoutMs: number; backoffMs: number[]; deliveriesMax: number };
  /** The UDP ingest port (docs/OPERATIONS.md, "UDP ingest"); without `port`, none is opened. */
  udp: {
    port?: number;
    host: string;
    topics: string[];
    sourceMessagesPerSecond: number;
    sourceBurstMessages: number;
    datagramBytesMax: number;
    receiveBufferBytes: number;
  };
  /** The MQTT port (docs/MQTT.md); without `port`, none is opened. */
  mqtt: {
    port?: number;
    host: string;
    packetBytesMax: number;
    topicBytesMax: number;
    subscriptionsMax: number;
    inflightMax: number;
    connectTimeoutMs: number;
    sessionExpirySecondsMax: number;
    connectionsMax: number;
    acceptsPerSecondPerIp: number;
    acceptBurstPerIp: number;
    connectionsPerIpMax: number;
    /** `<MQTT prefix>=<Ferry topic>` entries (docs/MQTT.md, "Topics"). */
    topicMap: string[];
  };
  /** Topics created at start when missing; existing topics keep their stored settings. */
  topics: Record<string, Partial<TopicSettings>>;
}

/** A minute: a handshake or a HELLO that takes longer is an attack or a broken client, whatever the network. */
const HANDSHAKE_MS_MAX = 60_000;
/** Publish quotas: a billion messages per second is "unlimited" for any broker; more is a typo. */
const QUOTA_MESSAGES_MAX = 1_000_000_000;

/** udp.topics entries at most: a handful of patterns is the use; thousands would be checked per new topic name. */
const UDP_TOPIC_PATTERNS_MAX = 256;
/** A topic pattern: the characters of a name plus the wildcards `*` and `?`. */
const TOPIC_PATTERN_FORM = /^[A-Za-z0-9._*?-]{1,200}$/;
/**
 * Per-source UDP rate by default: every local producer shares 127.0.0.1, so it is generous, and
 * still stops one runaway sender from taking the whole store.
 */
const UDP_SOURCE_MESSAGES_PER_SECOND_DEFAULT = 100_000;
/** Smallest datagram limit: the binary form's prefix, a topic and a few bytes of value. */
const UDP_DATAGRAM_BYTES_MIN = 64;
/**
 * Receive buffer asked for the UDP socket: 8 MiB holds about 80 ms of 512-byte datagrams at
 * 200,000 a second, so a GC pause or a slow turn does not drop them. Linux grants at most
 * net.core.rmem_max (often 208 KiB) to an unprivileged process; raise it to get this.
 */
const UDP_RECEIVE_BUFFER_BYTES_DEFAULT = 8 * 1024 * 1024;
const UDP_RECEIVE_BUFFER_BYTES_MIN = 4 * 1024;
const UDP_RECEIVE_BUFFER_BYTES_MAX = 1024 * 1024 * 1024;

/** The memory watermark's floor: below this the broker could not even recover. */
const MEMORY_WATERMARK_BYTES_MIN = 64 * 1024 * 1024;
const DEFAULT_MEMORY_HIGH_WATERMARK_BYTES = Math.floor(totalmem() * DEFAULT_MEMORY_HIGH_WATERMARK_FRACTION);

const int = (min: number, max: number, unit?: Unit): FieldKind => (unit === undefined ? { type: 'int', min, max } : { type: 'int', min, max, unit });

/** The settings of one topic; used under `topicDefaults.` and under `topics.<name>.`. */
export const TOPIC_FIELDS: readonly FieldSpec[] = [
  { path: 'partitions', kind: int(1, PARTITIONS_MAX), default: DEFAULT_TOPIC_CONFIG.partitions, doc: 'Partitions of a new topic (each is a log with its own files).' },
  { path: 'durability', kind: { type: 'enum', values: DURABILITY_MODES }, default: DEFAULT_TOPIC_CONFIG.durability, doc: 'When a publish is confirmed: `always` after fdatasync, `interval` after the write (sync every syncIntervalMs), `never` after the write.' },
  { path: 'syncIntervalMs', kind: int(1, DAY_MS, 'ms'), default: DEFAULT_TOPIC_CONFIG.syncIntervalMs, doc: '`interval` durability: a sync runs at least this often.' },
  { path: 'segmentBytes', kind: int(SEGMENT_BYTES_MIN, SEGMENT_BYTES_MAX, 'bytes'), default: DEFAULT_TOPIC_CONFIG.segmentBytes, doc: 'A segment file rolls at this size; retention deletes whole segments.' },
  { path: 'dedupWindowMs', kind: int(0, DAY_MS, 'ms'), default: DEFAULT_TOPIC_CONFIG.dedupWindowMs, doc: 'Exactly-once publish: how long a message id is remembered.' },
  { path: 'retention.ageMs', kind: int(0, 100 * YEAR_MS, 'ms'), default: undefined, doc: 'Delete a sealed segment once its newest message is older than this (unset: keep).' },
  { path: 'retention.bytesMax', kind: int(0, INT_MAX, 'bytes'), default: undefined, doc: 'Delete the oldest sealed segments while a partition is larger than this (unset: keep).' },
  { path: 'retention.recordsMax', kind: int(0, INT_MAX), default: undefined, doc: 'Delete the oldest sealed segments while a partition holds more messages than this (unset: keep).' },
];

export const FIELDS: readonly FieldSpec[] = [
  { path: 'dir', kind: { type: 'string', example: './data' }, default: './data', doc: 'Data directory (topics, groups, checkpoints).' },

  { path: 'nodeId', kind: { type: 'string', example: 'n1' }, default: undefined, doc: 'Cluster mode: this broker\'s node id, unique in the cluster (flag --node-id; needs etcd).' },
  { path: 'etcd', kind: { type: 'string', example: 'https://10.0.0.1:2379,https://10.0.0.2:2379' }, default: undefined, doc: 'Cluster mode: etcd client URLs, comma-separated; set, the broker joins the cluster (flag --etcd; docs/CLUSTERING.md).' },
  { path: 'etcdCa', kind: { type: 'string', example: '/etc/ferry/etcd-ca.crt' }, default: undefined, doc: 'Cluster mode, `https://` etcd endpoints: PEM CA bundle etcd\'s server certificate must be signed by (default: the system\'s CAs; flag --etcd-ca). Re-read on change and on SIGHUP.' },
  { path: 'etcdCert', kind: { type: 'string', example: '/etc/ferry/etcd-client.crt' }, default: undefined, doc: 'PEM client certificate presented to etcd, for its --client-cert-auth (with etcdKey; flag --etcd-cert). Re-read on change and on SIGHUP.' },
  { path: 'etcdKey', kind: { type: 'string', example: '/etc/ferry/etcd-client.key' }, default: undefined, doc: 'PEM private key of etcdCert (flag --etcd-key).' },
  { path: 'advertise', kind: { type: 'string', example: 'broker-1.example.com:7700' }, default: undefined, doc: 'Cluster mode: host:port clients and the other brokers dial to reach this broker (flag --advertise; default: the TCP listener\'s address).' },
  { path: 'cluster.etcdPrefix', kind: { type: 'string', example: '/ferry/' }, default: ETCD_PREFIX_DEFAULT, doc: 'The key prefix of the cluster\'s metadata in etcd (several clusters may share one etcd).' },
  { path: 'cluster.replicaLagMaxMs', kind: int(100, DAY_MS, 'ms'), default: REPLICA_LAG_MAX_MS_DEFAULT, doc: 'A follower that has not caught up with its leader for this long leaves the in-sync set.' },
  { path: 'cluster.replicaVerifyIntervalMs', kind: int(0, DAY_MS, 'ms'), default: REPLICA_VERIFY_INTERVAL_MS_DEFAULT, doc: 'A leader compares one of its followers with its own logs, by digests, per this interval (round robin; 0: only on ferry topics verify).' },
  { path: 'cluster.replicaCatchUpBytesPerSec', kind: int(1, INT_MAX, 'bytes'), default: REPLICA_CATCH_UP_BYTES_PER_SEC_DEFAULT, doc: 'Bytes per second a replica catching up from its leader\'s segments copies at most, over all its topics (48 MiB; raise it where the leader has cores to spare).' },
  { path: 'cluster.leaseTtlMs', kind: int(1_000, 60_000, 'ms'), default: LEASE_TTL_MS_DEFAULT, doc: 'The broker\'s etcd lease: how long a frozen broker holds its topics before the others take them over (whole seconds).' },
  { path: 'cluster.user', kind: { type: 'string', example: 'replicator' }, default: undefined, doc: 'User this broker logs in as on the other brokers (with cluster.passwordFile); it needs the replicate grant.' },
  { path: 'cluster.passwordFile', kind: { type: 'string', example: '/etc/ferry/replicator.password' }, default: undefined, doc: 'File holding cluster.user\'s password.' },
  { path: 'cluster.tokenFile', kind: { type: 'string', example: '/etc/ferry/replicator.token' }, default: undefined, doc: 'File holding a token to log in to the other brokers with (instead of a user and password).' },

  { path: 'server.host', kind: { type: 'string', example: DEFAULT_HOST }, default: DEFAULT_HOST, doc: 'Address the TCP protocol listens on (loopback by default; 0.0.0.0 for all).' },
  { path: 'server.port', kind: int(0, PORT_MAX), default: DEFAULT_PORT, doc: 'TCP port of the Ferry protocol (0: any free port).' },
  { path: 'server.serverName', kind: { type: 'string', example: 'ferry' }, default: SERVER_DEFAULTS.serverName, doc: 'Name announced to clients in HELLO_OK.' },
  { path: 'server.heartbeatIntervalMs', kind: int(10, 0xffff_ffff, 'ms'), default: SERVER_DEFAULTS.heartbeatIntervalMs, doc: 'Heartbeat period; a peer silent for heartbeatMissesMax periods is disconnected.' },
  { path: 'server.heartbeatMissesMax', kind: int(1, 1000), default: SERVER_DEFAULTS.heartbeatMissesMax, doc: 'Missed heartbeat periods before a silent peer is disconnected.' },
  { path: 'server.maxFrameBytes', kind: int(FRAME_BYTES_MAX_MIN, FRAME_BYTES_MAX_CEILING, 'bytes'), default: SERVER_DEFAULTS.maxFrameBytes, doc: 'Largest frame accepted from a client (announced in HELLO_OK); bounds read memory per connection.' },
  { path: 'server.writeHighWaterBytes', kind: int(1, FRAME_BYTES_MAX_CEILING, 'bytes'), default: SERVER_DEFAULTS.writeHighWaterBytes, doc: 'Bytes queued on a socket above which deliveries to it pause.' },
  { path: 'server.slowConsumerGraceMs', kind: int(1, DAY_MS, 'ms'), default: SERVER_DEFAULTS.slowConsumerGraceMs, doc: 'A connection backed up above the high-water mark this long is disconnected (SLOW_CONSUMER).' },
  { path: 'server.maxConnections', kind: int(1, 1_000_000), default: SERVER_DEFAULTS.maxConnections, doc: 'Open connections at most; further ones are refused with TOO_MANY_CONNECTIONS.' },
  { path: 'server.acceptsPerSecondPerIp', kind: int(0, 1_000_000), default: SERVER_DEFAULTS.acceptsPerSecondPerIp, doc: 'New TCP connections one IP address may open per second on average; past it (and its burst) a socket is closed at accept, before any TLS or HELLO work (ferry_connections_refused_total{reason="accept_rate"}). 0: no limit.' },
  { path: 'server.acceptBurstPerIp', kind: int(1, 1_000_000), default: SERVER_DEFAULTS.acceptBurstPerIp, doc: 'New TCP connections one IP address may open at once above server.acceptsPerSecondPerIp.' },
  { path: 'server.maxConnectionsPerIp', kind: int(1, 1_000_000), default: SERVER_DEFAULTS.maxConnectionsPerIp, doc: 'Open connections from one IP address at most (TLS handshakes included); further ones are refused with TOO_MANY_CONNECTIONS.' },
  { path: 'server.subscriptionUnackedMax', kind: int(1, CREDIT_MAX), default: SERVER_DEFAULTS.subscriptionUnackedMax, doc: 'Credit cap of a subscription: deliveries unsettled (groups) or granted ahead (streams) at most; larger grants are clamped.' },
  { path: 'server.inFlightRequestsMax', kind: int(1, 1_000_000), default: SERVER_DEFAULTS.inFlightRequestsMax, doc: 'Requests awaiting the broker per connection; above it the server stops reading that socket.' },
  { path: 'server.subscriptionsMax', kind: int(1, 1_000_000), default: SERVER_DEFAULTS.subscriptionsMax, doc: 'Subscriptions per connection.' },
  { path: 'server.closeTimeoutMs', kind: int(1, DAY_MS, 'ms'), default: SERVER_DEFAULTS.closeTimeoutMs, doc: 'Graceful shutdown waits this long for in-flight requests.' },

  { path: 'http.enabled', kind: { type: 'bool' }, default: true, doc: 'Serve the admin API, /metrics and the dashboard.' },
  { path: 'http.host', kind: { type: 'string', example: DEFAULT_HOST }, default: DEFAULT_HOST, doc: 'Address of the admin HTTP port. Without users (security.usersFile) it must stay on loopback; with users, /api and gRPC need a login.' },
  { path: 'http.port', kind: int(0, PORT_MAX), default: DEFAULT_HTTP_PORT, doc: 'Admin HTTP port: JSON API, /metrics, /healthz, /readyz and the dashboard at /. 0: any free port, logged as admin.listening. When server.port is 0 and this is not set, it is 0 too. A second broker on the host needs its own (--http-port).' },
  { path: 'http.tls', kind: { type: 'bool' }, default: true, doc: 'With tls.cert set: serve the HTTP port over TLS too (HTTPS only, same certificate and CA). false keeps it plaintext (e.g. behind a TLS proxy).' },

  { path: 'tls.cert', kind: { type: 'string', example: '/etc/ferry/server.crt' }, default: undefined, doc: 'PEM certificate (chain) of the server; with tls.key, turns TLS on (flag --tls-cert).' },
  { path: 'tls.key', kind: { type: 'string', example: '/etc/ferry/server.key' }, default: undefined, doc: 'PEM private key of tls.cert (flag --tls-key).' },
  { path: 'tls.ca', kind: { type: 'string', example: '/etc/ferry/clients-ca.crt' }, default: undefined, doc: 'PEM CA bundle: clients may log in with a certificate signed by it, its subject CN naming the user (mutual TLS; flag --tls-ca).' },
  { path: 'tls.required', kind: { type: 'bool' }, default: false, doc: 'Refuse plaintext clients on the TCP port (AUTH_REQUIRED); otherwise TLS and plaintext share it (flag --tls-required).' },
  { path: 'tls.handshakeTimeoutMs', kind: int(1, HANDSHAKE_MS_MAX, 'ms'), default: TLS_HANDSHAKE_TIMEOUT_MS_DEFAULT, doc: 'A connection that has not finished its TLS handshake this long after it opened is dropped.' },

  { path: 'security.usersFile', kind: { type: 'string', example: '/etc/ferry/users.json' }, default: undefined, doc: 'Users file written by `ferry users`; when set, every client must log in and may do only what its rules allow (deny by default). Reloaded on change and on SIGHUP (flag --users).' },
  { path: 'security.authTimeoutMs', kind: int(10, HANDSHAKE_MS_MAX, 'ms'), default: SERVER_DEFAULTS.authTimeoutMs, doc: 'A TCP connection that has not sent its HELLO (with credentials) this long after it opened is closed (AUTH_REQUIRED, or HANDSHAKE_REQUIRED without users).' },
  { path: 'security.publishMessagesPerSecond', kind: int(0, QUOTA_MESSAGES_MAX), default: 0, doc: 'Publish quota per user (per client address without users): messages per second; past it publishes fail with RATE_LIMITED (retryable). 0: no quota.' },
  { path: 'security.publishBurstMessages', kind: int(0, QUOTA_MESSAGES_MAX), default: 0, doc: 'Messages a user may publish at once above the quota rate; 0: one second\'s worth.' },

  { path: 'udp.port', kind: { type: 'int', min: 0, max: PORT_MAX, example: 7701 }, default: undefined, doc: 'UDP ingest port (flag --udp-port; e.g. 7701): one message per datagram, stored or dropped, never confirmed. Unset: no UDP port (0: any free port).' },
  { path: 'udp.host', kind: { type: 'string', example: DEFAULT_HOST }, default: DEFAULT_HOST, doc: 'Address of the UDP port. UDP has no login: keep it on loopback unless every host that can reach it may write to udp.topics.' },
  { path: 'udp.topics', kind: { type: 'stringList', lengthMax: UDP_TOPIC_PATTERNS_MAX, pattern: TOPIC_PATTERN_FORM, form: 'topic patterns (`*` any run of characters, `?` one)', example: 'metrics,logs.*' }, default: [], doc: 'Topics datagrams may write to, as patterns (`metrics`, `logs.*`, `*`); a datagram for any other topic is dropped (outcome forbidden). Empty: none.' },
  { path: 'udp.sourceMessagesPerSecond', kind: int(1, QUOTA_MESSAGES_MAX), default: UDP_SOURCE_MESSAGES_PER_SECOND_DEFAULT, doc: 'Datagrams per second from one source address; past it (and the burst) they are dropped (outcome rate_limited).' },
  { path: 'udp.sourceBurstMessages', kind: int(0, QUOTA_MESSAGES_MAX), default: 0, doc: 'Datagrams a source may send at once above its rate; 0: one second\'s worth.' },
  { path: 'udp.datagramBytesMax', kind: int(UDP_DATAGRAM_BYTES_MIN, UDP_DATAGRAM_BYTES_MAX, 'bytes'), default: UDP_DATAGRAM_BYTES_MAX, doc: 'Longest datagram accepted (outcome oversized beyond it); the limits.* settings apply to its message too.' },
  { path: 'udp.receiveBufferBytes', kind: int(UDP_RECEIVE_BUFFER_BYTES_MIN, UDP_RECEIVE_BUFFER_BYTES_MAX, 'bytes'), default: UDP_RECEIVE_BUFFER_BYTES_DEFAULT, doc: 'Socket receive buffer asked of the kernel, which grants at most net.core.rmem_max; datagrams beyond it are dropped by the kernel, unseen by the broker.' },

  { path: 'mqtt.port', kind: { type: 'int', min: 0, max: PORT_MAX, example: 1883 }, default: undefined, doc: 'MQTT 3.1.1 and 5.0 port (flag --mqtt-port; e.g. 1883; docs/MQTT.md); with tls.cert, TLS on the same port, told apart by the first byte. Unset: no MQTT port (0: any free port).' },
  { path: 'mqtt.host', kind: { type: 'string', example: DEFAULT_HOST }, default: DEFAULT_HOST, doc: 'Address of the MQTT port. Without users (security.usersFile) it must stay on loopback.' },
  { path: 'mqtt.packetBytesMax', kind: int(MQTT_PACKET_BYTES_MAX_MIN, MQTT_PACKET_BYTES_MAX_CEILING, 'bytes'), default: MQTT_PACKET_BYTES_MAX_DEFAULT, doc: 'Largest MQTT packet read (checked on its fixed header, before the body is buffered); larger ones close the connection (5.0: reason 0x95). Announced as the maximum packet size.' },
  { path: 'mqtt.topicBytesMax', kind: int(1, MQTT_TOPIC_BYTES_MAX_CEILING, 'bytes'), default: MQTT_TOPIC_BYTES_MAX_DEFAULT, doc: 'Longest topic name or filter, in bytes (0x90 / 0x8F beyond it).' },
  { path: 'mqtt.subscriptionsMax', kind: int(1, MQTT_SUBSCRIPTIONS_MAX_CEILING), default: MQTT_SUBSCRIPTIONS_MAX_DEFAULT, doc: 'Subscriptions (topic filters) one client holds at most; one more is refused in its SUBACK (5.0: 0x97, 3.1.1: 0x80).' },
  { path: 'mqtt.inflightMax', kind: int(1, MQTT_INFLIGHT_MAX_CEILING), default: MQTT_INFLIGHT_MAX_DEFAULT, doc: 'QoS 1 and 2 messages in flight per client, each way: sent and not yet acknowledged (a 5.0 receive maximum lowers it), and published and not yet stored (announced as the receive maximum; reading pauses beyond it).' },
  { path: 'mqtt.connectTimeoutMs', kind: int(100, MQTT_CONNECT_TIMEOUT_MS_MAX, 'ms'), default: MQTT_CONNECT_TIMEOUT_MS_DEFAULT, doc: 'A connection that has not sent CONNECT (and had it accepted) this long after it opened is closed.' },
  { path: 'mqtt.sessionExpirySecondsMax', kind: int(0, MQTT_SESSION_EXPIRY_S_CEILING), default: MQTT_SESSION_EXPIRY_S_MAX_DEFAULT, doc: 'Longest a persistent session outlives its connection, in seconds (a 5.0 client may ask for less; a 3.1.1 clean session 0 gets this). 0: no persistent sessions.' },
  { path: 'mqtt.connectionsMax', kind: int(1, 1_000_000), default: MQTT_CONNECTIONS_MAX_DEFAULT, doc: 'Open MQTT connections at most; further ones are closed at accept (ferry_connections_refused_total{reason="mqtt_total"}).' },
  { path: 'mqtt.acceptsPerSecondPerIp', kind: int(0, 1_000_000), default: SERVER_DEFAULTS.acceptsPerSecondPerIp, doc: 'New MQTT connections one IP address may open per second on average; past it (and its burst) a socket is closed at accept, before any TLS or CONNECT work (ferry_connections_refused_total{reason="mqtt_accept_rate"}). 0: no limit.' },
  { path: 'mqtt.acceptBurstPerIp', kind: int(1, 1_000_000), default: SERVER_DEFAULTS.acceptBurstPerIp, doc: 'New MQTT connections one IP address may open at once above mqtt.acceptsPerSecondPerIp.' },
  { path: 'mqtt.connectionsPerIpMax', kind: int(1, 1_000_000), default: SERVER_DEFAULTS.maxConnectionsPerIp, doc: 'Open MQTT connections from one IP address at most (TLS handshakes included); further ones are closed at accept (ferry_connections_refused_total{reason="mqtt_per_ip"}).' },
  { path: 'mqtt.topicMap', kind: { type: 'stringList', lengthMax: MQTT_TOPIC_MAP_ENTRIES_MAX, pattern: MQTT_TOPIC_MAP_ENTRY_PATTERN, form: 'entries `<MQTT topic prefix>=<Ferry topic>`', example: 'home/livingroom=livingroom,factory/line1=line1' }, default: [], doc: 'MQTT topic prefixes stored in a Ferry topic of their own: a name at or below the prefix (whole levels; the longest prefix wins) is published to, subscribed from and retained in that topic. Other names map by their first level.' },

  { path: 'log.level', kind: { type: 'enum', values: LOG_LEVELS }, default: 'info', doc: 'Least severe level written.' },
  { path: 'log.format', kind: { type: 'enum', values: LOG_FORMATS }, default: 'auto', doc: '`json` lines, `pretty` lines for people, or `auto` (pretty when stderr is a terminal).' },

  { path: 'storage.tailCacheBytes', kind: int(0, TAIL_CACHE_BYTES_MAX, 'bytes'), default: DEFAULT_TAIL_CACHE_BYTES, doc: 'Memory for the hot tail of all partitions together (recent messages served without a disk read).' },
  { path: 'storage.memoryHighWatermarkBytes', kind: int(MEMORY_WATERMARK_BYTES_MIN, Number.MAX_SAFE_INTEGER, 'bytes'), default: DEFAULT_MEMORY_HIGH_WATERMARK_BYTES, defaultText: '40% of RAM', doc: 'Resident memory above which publishes are refused with BROKER_BUSY (retryable) until it falls; the default is 40% of this machine\'s RAM, as RabbitMQ\'s vm_memory_high_watermark.' },
  { path: 'storage.umask', kind: { type: 'string', example: '077' }, default: '077', doc: 'Permission bits taken from the files and directories the broker creates in its data directory, as three octal digits (quote it in YAML): 077 makes files 0600 and directories 0700 (only the broker\'s user reads messages); 027 lets its group read.' },
  { path: 'storage.diskFreeLowBytes', kind: int(0, Number.MAX_SAFE_INTEGER, 'bytes'), default: DEFAULT_DISK_FREE_LOW_BYTES, doc: 'Free space on the data disk below which publishes are refused with DISK_FULL (retryable) before the disk is really full; 0 turns the check off (RabbitMQ\'s disk_free_limit is 50 MB).' },

  { path: 'limits.recordBytesMax', kind: int(1, RECORD_BYTES_MAX, 'bytes'), default: RECORD_BYTES_MAX, doc: 'Largest message (key + headers + value) accepted; at most the storage ceiling.' },
  { path: 'limits.keyBytesMax', kind: int(1, KEY_BYTES_MAX, 'bytes'), default: KEY_BYTES_MAX, doc: 'Largest key accepted.' },
  { path: 'limits.headersCountMax', kind: int(0, HEADERS_COUNT_MAX), default: HEADERS_COUNT_MAX, doc: 'Headers per message at most.' },
  { path: 'limits.headersBytesMax', kind: int(0, HEADERS_BYTES_MAX, 'bytes'), default: HEADERS_BYTES_MAX, doc: 'Encoded header bytes (names + values) per message at most.' },
  { path: 'limits.publishMessagesMax', kind: int(1, PUBLISH_MESSAGES_MAX), default: PUBLISH_MESSAGES_MAX, doc: 'Messages in one publish request at most.' },

  ...TOPIC_FIELDS.map((field) => ({ ...field, path: `topicDefaults.${field.path}` })),

  { path: 'groupDefaults.ackTimeoutMs', kind: int(ACK_TIMEOUT_MS_MIN, ACK_TIMEOUT_MS_MAX, 'ms'), default: DEFAULT_GROUP_CONFIG.ackTimeoutMs, doc: 'A delivery not acked within this is redelivered (new groups).' },
  { path: 'groupDefaults.backoffMs', kind: { type: 'intList', min: 0, max: BACKOFF_DELAY_MS_MAX, lengthMax: BACKOFF_STEPS_MAX, unit: 'ms' }, default: DEFAULT_GROUP_CONFIG.backoffMs, doc: 'Delays before each redelivery (the last repeats); empty: exponential 1 s to 5 min with jitter.' },
  { path: 'groupDefaults.deliveriesMax', kind: int(1, DELIVERIES_MAX_LIMIT), default: DEFAULT_GROUP_CONFIG.deliveriesMax, doc: 'Deliveries of one message before it moves to the dead-letter topic `<topic>.dlq`.' },
];

/** `server.maxConnections` → `FERRY_SERVER_MAX_CONNECTIONS`. */
export function envName(path: string): string {
  return 'FERRY_' + path.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** The expected form of a field, for error messages and docs. */
export function describeKind(kind: FieldKind): string {
  switch (kind.type) {
    case 'int': {
      const range = `from ${kind.min} to ${kind.max}`;
      if (kind.unit === 'bytes') return `a size in bytes ${range} (an integer, or like "64KiB", "128MiB", "1GiB")`;
      if (kind.unit === 'ms') return `a duration in ms ${range} (an integer, or like "500ms", "30s", "5m", "2h", "7d")`;
      return `an integer ${range}`;
    }
    case 'string':
      return `a non-empty string like "${kind.example}"`;
    case 'enum':
      return `one of ${kind.values.map((value) => `"${value}"`).join(', ')}`;
    case 'bool':
      return 'true or false';
    case 'intList': {
      const unit = kind.unit === 'ms' ? 'durations' : 'integers';
      return `a list of at most ${kind.lengthMax} ${unit} from ${kind.min} to ${kind.max} (in env and flags: comma-separated, like "1s,5s,30s")`;
    }
    case 'stringList':
      return `a list of at most ${kind.lengthMax} ${kind.form} (in env and flags: comma-separated, like "${kind.example}")`;
  }
}
