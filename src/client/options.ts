/**
 * Client options: the address (host/port, a list of servers, or a ferry:// URL naming one or
 * several), credentials and TLS, timeouts and the reconnect policy, with their defaults and
 * validation.
 */
import { FerryError } from '../errors.js';
import { DEFAULT_UDP_PORT, FRAME_BYTES_MAX_DEFAULT, HEARTBEAT_MISSES_MAX_DEFAULT } from '../protocol/limits.js';
import { addressKey, DEFAULT_HOST, DEFAULT_PORT, parseServer, parseUrl, type ServerAddress } from './address.js';

export { DEFAULT_HOST, DEFAULT_PORT, parseUrl };

/** Servers one client may be given: far above any cluster, and it bounds the bootstrap's tries. */
export const SERVERS_MAX = 64;

export interface ReconnectOptions {
  /** Attempts before giving up (each failed connect counts). */
  attemptsMax?: number;
  /** First backoff delay; doubles per attempt up to delayMsMax, with jitter. */
  delayMsMin?: number;
  delayMsMax?: number;
  /** Total time spent reconnecting before giving up. */
  durationMsMax?: number;
}

/** TLS to the server (node:tls options, as PEM text or buffers). */
export interface TlsOptions {
  /** CA certificates to trust instead of the system's (a private CA, or a self-signed server). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** A client certificate and its key: mutual TLS, where the server maps the certificate's CN to a user. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Name the server's certificate must carry; default: host (when it is a name, not an address). */
  servername?: string;
}

export interface ConnectOptions {
  host?: string;
  port?: number;
  /**
   * Several brokers of a cluster, as 'host:port': the client connects to the first that answers,
   * learns from it which broker leads each topic, and routes there (cluster mode). Instead of
   * host and port.
   */
  servers?: readonly string[];
  /** 'ferry://host:port', or 'ferry://h1:7701,h2:7702' for several servers (overrides host, port and servers). */
  url?: string;
  /** User and password, checked by the server in HELLO; a failed login rejects with AUTH_FAILED. */
  user?: string;
  password?: string;
  /** A service token (`ferry users token`), instead of user and password. */
  token?: string;
  /** true (the system's CAs) or options: connect over TLS. The server's certificate is always verified. */
  tls?: boolean | TlsOptions;
  /** Name shown in the server's connection list. */
  name?: string;
  /** Per-request deadline; a request without an answer by then rejects with TIMEOUT. */
  requestTimeoutMs?: number;
  /** Deadline for the TCP connect and the HELLO exchange. */
  connectTimeoutMs?: number;
  /** Missed server heartbeat intervals before the connection is considered dead. */
  heartbeatMissesMax?: number;
  /** false disables reconnecting; an object tunes it. */
  reconnect?: boolean | ReconnectOptions;
  /** Coalesce publishes issued in one event-loop turn to one topic into one PUBLISH frame. */
  coalescePublishes?: boolean;
  /** Largest frame this client accepts (announced in HELLO). */
  frameBytesMax?: number;
  /**
   * Re-send publishes left unconfirmed by a lost connection once reconnected, instead of
   * rejecting them with CONNECTION_CLOSED. Every message then carries an id (generated as
   * `<client id>-<sequence>` when the application gives none), so the broker stores a retried
   * message once however often it is sent, provided the retry comes within the topic's dedup
   * window: a publish first sent longer than `windowMs` ago is rejected rather than retried.
   */
  retryPublishes?: boolean | RetryPublishesOptions;
  /** The brokers' UDP ingest port, for publishUdp (default 7701; a broker opens it only with --udp-port). */
  udpPort?: number;
  /**
   * OpenTelemetry spans for publishes and deliveries when the application has `@opentelemetry/api`
   * and a registered SDK (default true); false never loads the API.
   */
  tracing?: boolean;
}

export interface RetryPublishesOptions {
  /** Retry only publishes first sent less than this long ago; keep it at most the topics' dedup window. */
  windowMs?: number;
}

export interface ResolvedReconnect {
  attemptsMax: number;
  delayMsMin: number;
  delayMsMax: number;
  durationMsMax: number;
}

export interface ResolvedClientOptions {
  /** The first server (the only one, unless several were given). */
  host: string;
  port: number;
  /** Every server given, in order; more than one means cluster mode. */
  servers: ServerAddress[];
  name: string;
  credentials: { user?: string; password?: string; token?: string };
  /** null: plaintext. */
  tls: TlsOptions | null;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  heartbeatMissesMax: number;
  reconnect: ResolvedReconnect | null;
  coalescePublishes: boolean;
  frameBytesMax: number;
  /** null: unconfirmed publishes reject with CONNECTION_CLOSED when the connection is lost. */
  retryPublishes: { windowMs: number } | null;
  udpPort: number;
  tracing: boolean;
}

export const CLIENT_DEFAULTS = {
  /** 30 s: an `always` publish waits for an fsync; far longer means the server is stuck. */
  requestTimeoutMs: 30_000,
  /** 10 s: a TCP connect and one round trip on any sane network. */
  connectTimeoutMs: 10_000,
  reconnect: {
    /** 30 attempts at up to 5 s each: a server restart or a short network cut is ridden out. */
    attemptsMax: 30,
    delayMsMin: 50,
    delayMsMax: 5_000,
    /** 2 minutes: after that, failing loudly beats waiting silently. */
    durationMsMax: 120_000,
  },
  /**
   * 2 minutes: the broker's default dedup window (DEFAULT_DEDUP_WINDOW_MS in src/broker/dedup.ts).
   * The broker remembers an id from when it stored the message, which is never before the client
   * first sent it, so a retry within this of the first send is always recognised.
   */
  retryPublishesWindowMs: 120_000,
} as const;

function check(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new FerryError('INVALID_ARGUMENT', `${name} must be a number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** The servers named by url, else servers, else host and port. */
function resolveServers(options: ConnectOptions): ServerAddress[] {
  if (options.url !== undefined) return parseUrl(options.url);
  if (options.servers !== undefined) {
    if (options.host !== undefined || options.port !== undefined) throw new FerryError('INVALID_ARGUMENT', 'give servers, or host and port, not both');
    if (!Array.isArray(options.servers) || options.servers.length === 0) throw new FerryError('INVALID_ARGUMENT', 'servers must list at least one host:port');
    const byKey = new Map<string, ServerAddress>();
    for (const server of options.servers) {
      const address = parseServer(String(server));
      byKey.set(addressKey(address), address);
    }
    return [...byKey.values()];
  }
  return [{ host: options.host ?? DEFAULT_HOST, port: options.port ?? DEFAULT_PORT }];
}

export function resolveClientOptions(options: ConnectOptions): ResolvedClientOptions {
  const servers = resolveServers(options);
  if (servers.length > SERVERS_MAX) throw new FerryError('INVALID_ARGUMENT', `at most ${SERVERS_MAX} servers, got ${servers.length}`);
  for (const server of servers) check('port', server.port, 1, 65_535);
  const address = servers[0]!;
  const reconnectOption = options.reconnect ?? true;
  let reconnect: ResolvedReconnect | null = null;
  if (reconnectOption !== false) {
    const given = reconnectOption === true ? {} : reconnectOption;
    const defaults = CLIENT_DEFAULTS.reconnect;
    reconnect = {
      attemptsMax: check('reconnect.attemptsMax', given.attemptsMax ?? defaults.attemptsMax, 1),
      delayMsMin: check('reconnect.delayMsMin', given.delayMsMin ?? defaults.delayMsMin, 1),
      delayMsMax: check('reconnect.delayMsMax', given.delayMsMax ?? defaults.delayMsMax, 1),
      durationMsMax: check('reconnect.durationMsMax', given.durationMsMax ?? defaults.durationMsMax, 1),
    };
  }
  if ((options.user === undefined) !== (options.password === undefined)) {
    throw new FerryError('INVALID_ARGUMENT', 'user and password go together');
  }
  if (options.token !== undefined && options.user !== undefined) {
    throw new FerryError('INVALID_ARGUMENT', 'give either a token or a user and password, not both');
  }
  const credentials: ResolvedClientOptions['credentials'] = {};
  if (options.user !== undefined) credentials.user = options.user;
  if (options.password !== undefined) credentials.password = options.password;
  if (options.token !== undefined) credentials.token = options.token;
  return {
    host: address.host,
    port: address.port,
    servers,
    name: options.name ?? `ferry-client/${process.pid}`,
    credentials,
    tls: options.tls === undefined || options.tls === false ? null : options.tls === true ? {} : options.tls,
    requestTimeoutMs: check('requestTimeoutMs', options.requestTimeoutMs ?? CLIENT_DEFAULTS.requestTimeoutMs, 1),
    connectTimeoutMs: check('connectTimeoutMs', options.connectTimeoutMs ?? CLIENT_DEFAULTS.connectTimeoutMs, 1),
    heartbeatMissesMax: check('heartbeatMissesMax', options.heartbeatMissesMax ?? HEARTBEAT_MISSES_MAX_DEFAULT, 1),
    reconnect,
    coalescePublishes: options.coalescePublishes ?? true,
    frameBytesMax: check('frameBytesMax', options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT, 4096, 0xffff_ffff),
    retryPublishes: resolveRetryPublishes(options.retryPublishes),
    udpPort: check('udpPort', options.udpPort ?? DEFAULT_UDP_PORT, 1, 65_535),
    tracing: options.tracing ?? true,
  };
}

function resolveRetryPublishes(option: ConnectOptions['retryPublishes']): ResolvedClientOptions['retryPublishes'] {
  if (option === undefined || option === false) return null;
  const given = option === true ? {} : option;
  return { windowMs: check('retryPublishes.windowMs', given.windowMs ?? CLIENT_DEFAULTS.retryPublishesWindowMs, 1) };
}

/** Exponential backoff with jitter: attempt 1 waits about delayMsMin, each next one up to twice as long. */
export function backoffDelayMs(attempt: number, policy: ResolvedReconnect, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.delayMsMax, policy.delayMsMin * 2 ** Math.min(attempt - 1, 30));
  // "Equal jitter": half fixed, half random, so clients restarted together spread out but never hammer.
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
