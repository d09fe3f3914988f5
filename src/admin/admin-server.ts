/**
 * AdminServer: the admin HTTP port — JSON API, /metrics, /healthz, /readyz and the dashboard.
 * It starts before the broker opens, so liveness answers during recovery while readiness (and
 * every API call) waits for `attach()`, which hands it the recovered broker.
 *
 * Another protocol (gRPC over HTTP/2, a later issue) mounts on `router` or replaces the server
 * creation in http.ts, the one place it happens.
 */
import type { SecureServerOptions } from 'node:http2';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { FerryError } from '../errors.js';
import type { BrokerApi } from '../broker/types.js';
import { ADMISSION_CEILINGS } from '../broker/limits.js';
import { registerApi, type AdminInfo, type Readiness } from './api.js';
import { clusterNotReadyReason, clusterView, singleBrokerView, type ClusterSource, type ClusterView, type DescribeRemote } from './cluster-view.js';
import type { ConnectionSource, MqttSource, UdpSource } from './hooks.js';
import { HttpRouter, listenHttp, type HttpListener } from './http.js';
import type { CountingLogger } from './log-tap.js';
import { BrokerMetrics } from './metrics.js';
import { ASSET_PREFIX, dashboardHandler } from './static.js';
import type { GrpcHandler, GrpcHandlerOptions } from '../transport/grpc/handler.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HttpHandler, UpgradeHandler } from '../transport/http/listener.js';
import { MQTT_WEBSOCKET_PATH } from '../transport/mqtt/limits.js';
import { PublishBatcher } from '../transport/rest/publish-batcher.js';
import { createRestHandler, REST_PATH_PREFIX, type RestHandler } from '../transport/rest/handler.js';
import { ObservedBroker } from './observed-broker.js';
import { ferryVersion } from './version.js';
import type { HttpSecurity } from '../security/http-auth.js';
import type { Rejections } from '../security/rejections.js';
import type { TlsMaterial } from '../security/tls.js';

export interface AdminServerOptions {
  host: string;
  port: number;
  clock: Clock;
  logger: Logger;
  /** Counts warnings and errors for ferry_log_events_total (the process logger, wrapped). */
  log?: CountingLogger;
  /** Data directory, shown in /api/info. */
  dir?: string;
  /** Where the dashboard files are (tests); default: src/admin/dashboard beside this module. */
  dashboardDir?: string;
  /** Serve HTTPS (HTTP/2 or HTTP/1.1 by ALPN) with these certificates. */
  tls?: SecureServerOptions;
  /** Authentication and authorization of every request (src/security/http-auth.ts); absent: open. */
  security?: HttpSecurity;
  /** Refusals counted for ferry_rejections_total. */
  rejections?: Rejections;
  /** Cluster mode: this broker as a member (readiness, /api/cluster, the cluster metrics). */
  cluster?: ClusterSource;
}

export interface AdminAttachment {
  /** The broker as served (ObservedBroker in `ferry serve`): what the API drives. */
  broker: BrokerApi;
  /** The broker without observation, for browsing; defaults to `broker`. */
  rawBroker?: BrokerApi;
  connections?: ConnectionSource;
  tcp?: { host: string; port: number };
  /** Cluster mode: a topic described by its leader on another broker (for /api/cluster). */
  describeRemote?: DescribeRemote;
}

export class AdminServer {
  readonly router: HttpRouter;
  readonly metrics: BrokerMetrics;
  private attachment: AdminAttachment | null = null;
  /** The attached broker with the publishes of one turn joined per topic: what every HTTP way in publishes through. */
  private batcher: PublishBatcher | null = null;
  /** The REST endpoints and Server-Sent Events under /v1/ (docs/HTTP.md). */
  private readonly rest: RestHandler;
  private udp: UdpSource | null = null;
  private mqtt: MqttSource | null = null;
  /** Takes WebSocket upgrades at /mqtt (the MQTT port's, when one is open). */
  private mqttWebSocket: UpgradeHandler | null = null;
  private draining = false;
  private listener: HttpListener | null = null;
  private readonly startedAtMs: number;
  /**
   * gRPC, gRPC-Web and Connect (ferry.v1 services) on this port, over the same broker as the API.
   * Loaded on the first call: the Connect and Protobuf runtime is a fifth of an idle broker's
   * memory, and most deployments speak the binary protocol only.
   */
  private grpc: Promise<GrpcHandler> | null = null;
  private readonly grpcOptions: GrpcHandlerOptions;

  private constructor(private readonly options: AdminServerOptions) {
    this.startedAtMs = options.clock.nowMs();
    this.router = new HttpRouter(options.logger);
    this.metrics = new BrokerMetrics({
      broker: () => this.attachment?.broker ?? null,
      connections: () => this.attachment?.connections ?? null,
      udp: () => this.udp,
      mqtt: () => this.mqtt,
      ...(options.log === undefined ? {} : { log: options.log }),
      ready: () => this.ready,
      version: ferryVersion(),
      rejections: () => options.rejections?.entries() ?? [],
      ...(options.cluster === undefined ? {} : { cluster: options.cluster }),
    });
    registerApi(this.router, {
      broker: (req) => this.broker(req),
      rawBroker: (req) => (this.attachment?.rawBroker === undefined ? this.broker(req) : this.secured(this.attachment.rawBroker, req)),
      readiness: () => this.readiness(),
      info: () => this.info(),
      cluster: (req) => this.clusterView(req),
      changeCluster: (req, request) => {
        const cluster = this.options.cluster;
        if (cluster === undefined) return Promise.reject(new FerryError('INVALID_ARGUMENT', 'this broker is not in a cluster: replicas live on one broker'));
        this.broker(req);
        return cluster.change(request);
      },
      clock: options.clock,
      traffic: this.metrics.traffic,
      connections: () => this.attachment?.connections ?? null,
      seesBrokerWide: (req) => options.security?.seesBrokerWide(req) ?? true,
    });
    this.grpcOptions = {
      broker: (req) => this.broker(req),
      clock: options.clock,
      logger: options.logger,
      fallback: this.router.handle,
      ...(options.security === undefined ? {} : { authenticate: (req: IncomingMessage) => void options.security!.requireAuthenticated(req) }),
    };
    this.rest = createRestHandler({
      broker: (req) => this.broker(req),
      limits: () => (this.attachment?.broker instanceof ObservedBroker ? this.attachment.broker.limits : ADMISSION_CEILINGS),
      logger: options.logger,
    });
    this.router.mount('/metrics', async (_req, res) => {
      const text = await this.metrics.render();
      res.writeHead(200, { 'content-type': this.metrics.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(text);
    });
    const dashboard = dashboardHandler(options.dashboardDir);
    this.router.mount(ASSET_PREFIX, dashboard);
    this.router.mount('/', dashboard);
  }

  static async start(options: AdminServerOptions): Promise<AdminServer> {
    const server = new AdminServer(options);
    // Every handler takes its caller from the request (HttpSecurity.brokerForRequest).
    const handle = options.security === undefined ? server.handle : options.security.wrap(server.handle);
    server.listener = await listenHttp(handle, {
      host: options.host,
      port: options.port,
      logger: options.logger,
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.rejections === undefined ? {} : { onRefused: () => options.rejections!.count('TOO_MANY_CONNECTIONS', 'http') }),
      onUpgrade: (req, socket, head) => server.upgrade(req, socket, head),
    });
    options.logger.info('admin.listening', { host: server.listener.host, port: server.listener.port, url: server.url });
    return server;
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  /** New HTTPS connections use this certificate from now on (a reload); open ones keep theirs. */
  setTlsMaterial(material: TlsMaterial): void {
    this.listener?.setSecureContext(material);
  }

  /** Where the port answers: `https://` when it speaks TLS. */
  get url(): string {
    return `${this.options.tls === undefined ? 'http' : 'https'}://${hostForUrl(this.host)}:${this.port}/`;
  }

  get host(): string {
    return this.listener?.host ?? this.options.host;
  }

  /** Ready: recovery finished and requests are served (until shutdown starts); in a cluster, joined and reaching etcd. */
  get ready(): boolean {
    return this.readiness().ready;
  }

  /** Whether /readyz answers 200, and why not. */
  readiness(): Readiness {
    if (this.draining) return { ready: false, status: 'shutting down', reason: 'shutdown started' };
    const cluster = this.options.cluster;
    if (this.attachment === null) {
      return { ready: false, status: 'recovering', reason: cluster === undefined ? 'the broker is recovering its logs' : 'the broker is opening its data directory and joining the cluster' };
    }
    const reason = cluster === undefined ? null : clusterNotReadyReason(cluster);
    if (reason !== null) return { ready: false, status: cluster!.ready ? 'etcd unreachable' : 'not joined', reason };
    return { ready: true, status: 'ready' };
  }

  /** GET /api/cluster: the cluster from this broker, or this broker alone. */
  private async clusterView(req: IncomingMessage): Promise<ClusterView> {
    const broker = this.broker(req);
    const cluster = this.options.cluster;
    if (cluster === undefined) {
      const tcp = this.attachment?.tcp;
      return singleBrokerView(tcp === undefined ? '' : `${hostForUrl(tcp.host)}:${tcp.port}`, broker.listTopics().length);
    }
    return clusterView(cluster, (topic) => broker.describeTopic(topic), this.attachment?.describeRemote ?? null);
  }

  /** The recovered broker: the API serves from now on and /readyz turns 200. */
  attach(attachment: AdminAttachment): void {
    this.attachment = attachment;
    const { broker } = attachment;
    this.batcher = new PublishBatcher(broker, broker instanceof ObservedBroker ? broker.limits : ADMISSION_CEILINGS);
  }

  /** The UDP ingest port, once open (null: none configured): its datagram counts go to /metrics. */
  attachUdp(udp: UdpSource | null): void {
    this.udp = udp;
  }

  /** The MQTT port, once open (null: none configured): its refused sockets go to /metrics. */
  attachMqtt(mqtt: MqttSource | null): void {
    this.mqtt = mqtt;
  }

  /** MQTT over WebSocket at /mqtt (docs/MQTT.md); null: none. */
  attachMqttWebSocket(handler: UpgradeHandler | null): void {
    this.mqttWebSocket = handler;
  }

  /** An Upgrade request: /mqtt to the MQTT port while it is open; anything else is closed. */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?')[0];
    if (path === MQTT_WEBSOCKET_PATH && this.mqttWebSocket !== null && !this.draining) {
      this.mqttWebSocket(req, socket, head);
      return;
    }
    socket.destroy();
  }

  /** Shutdown started: /readyz turns 503 so a load balancer stops sending work. */
  drain(): void {
    this.draining = true;
  }

  info(): AdminInfo {
    return {
      name: 'ferry',
      version: ferryVersion(),
      node: process.version,
      pid: process.pid,
      startedAtMs: this.startedAtMs,
      dir: this.options.dir ?? null,
      tcp: this.attachment?.tcp ?? null,
      http: this.listener === null ? null : { host: this.listener.host, port: this.listener.port },
    };
  }

  /** Requests for the ferry.v1 services go to gRPC/Connect (loaded on first use); everything else to the router. */
  private readonly handle: HttpHandler = (req, res) => {
    if (req.url !== undefined && req.url.startsWith(REST_PATH_PREFIX)) return this.rest.handle(req, res);
    if (!isGrpcPath(req.url)) return this.router.handle(req, res);
    return this.grpcHandler().then(
      (grpc) => grpc.handle(req, res),
      (error: unknown) => {
        this.options.logger.error('admin.grpc_load_failed', { error });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('the gRPC gateway failed to load\n');
      },
    );
  };

  private grpcHandler(): Promise<GrpcHandler> {
    this.grpc ??= import('../transport/grpc/handler.js').then((module) => module.createGrpcHandler(this.grpcOptions));
    return this.grpc;
  }

  async close(): Promise<void> {
    this.draining = true;
    await this.rest.close();
    if (this.grpc !== null) await (await this.grpc.catch(() => null))?.close();
    await this.listener?.close();
    this.metrics.close();
  }

  /** The broker as the request's caller may use it, over the publish batcher; BROKER_BUSY while it recovers. */
  private broker(req: IncomingMessage): BrokerApi {
    if (this.attachment === null || this.batcher === null) throw new FerryError('BROKER_BUSY', 'the broker is still recovering; try again shortly');
    return this.secured(this.batcher, req);
  }

  /** `broker` as the request's caller may use it (everything, without security); the security wrapper left the caller on the request. */
  private secured(broker: BrokerApi, req: IncomingMessage): BrokerApi {
    return this.options.security?.brokerForRequest(broker, req) ?? broker;
  }
}

/** gRPC, gRPC-Web and Connect address a method as /<package>.<Service>/<Method>. */
const GRPC_PATH_PREFIX = '/ferry.v1.';

function isGrpcPath(url: string | undefined): boolean {
  return url !== undefined && url.startsWith(GRPC_PATH_PREFIX);
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}
