/**
 * Cluster mode for `ferry serve` (docs/CLUSTERING.md): the etcd client, this broker's ClusterNode,
 * the broker opened with replicated logs and only the topics it leads, and the clustered view of
 * it the transports serve. Single-node mode never loads this.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { FerryError } from '../errors.js';
import type { Broker, RemoteTopics } from '../broker/broker.js';
import type { BrokerApi } from '../broker/types.js';
import type { ConnectOptions } from '../client/options.js';
import { connect, type FerryClient } from '../client/client.js';
import { BrokerReplicas } from '../cluster/broker-replicas.js';
import { ClusterNode } from '../cluster/cluster-node.js';
import { ClusteredBroker } from '../cluster/clustered-broker.js';
import { EtcdClient } from '../cluster/etcd/index.js';
import { ETCD_CALL_TIMEOUT_MS } from '../cluster/limits.js';
import { ClusterRemoteTopics } from '../cluster/remote-topics.js';
import type { FerryConfig } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { LogFactory } from '../storage/types.js';
import type { WireTopicInfo } from '../protocol/messages.js';
import { clientTlsReloader, type CertificateReloader } from '../security/tls-reload.js';
import { readClientTlsFiles, type ClientTlsFiles, type ClientTlsMaterial, type TlsMaterial } from '../security/tls.js';
import { UsageError } from './args.js';
import type { GroupReplay } from '../broker/delivery/group-snapshots.js';

/** The pieces of cluster mode, made before the broker opens; `join` completes them once the TCP port listens. */
export interface ClusterParts {
  node: ClusterNode;
  etcd: EtcdClient;
  /** For Broker.open: every log through the cluster, no topic opened at start, dead letters anywhere. */
  brokerOptions: { openLog: LogFactory; topicsAtOpen: 'none'; remote: RemoteTopics; replicated: true; warmGroupReplay: (topic: string, group: string) => Promise<GroupReplay | null> };
  /** The broker as the transports serve it. */
  serve(broker: Broker): BrokerApi;
  /** Joins the cluster as `address` (the advertised one, or the listener's). */
  join(broker: Broker, listening: { host: string; port: number }): Promise<void>;
  /** A topic described by its leader, wherever it is (through the cluster's own client): for GET /api/cluster. */
  describeRemote(topic: string): Promise<WireTopicInfo>;
  /**
   * The broker's certificates were renewed (security/tls-reload.ts): the CA its own connections to
   * the other brokers trust follows them, for the connections opened from now on.
   */
  serverTlsChanged(material: TlsMaterial): void;
  /** The etcd client's CA and certificate, read again on change (once watched) and on SIGHUP; null without TLS files for etcd. */
  etcdCertificates: CertificateReloader<ClientTlsMaterial> | null;
  /** Hands over led topics, leaves the cluster, closes etcd. */
  leave(): Promise<void>;
}

export function clusterParts(config: FerryConfig, parts: { clock: Clock; logger: Logger; tls: TlsMaterial | null }): ClusterParts {
  const { clock, logger } = parts;
  if (config.nodeId === undefined) throw new UsageError('cluster mode needs a node id: --node-id n1 (or FERRY_NODE_ID) with --etcd');
  const endpoints = config.etcd!.split(',').map((url) => url.trim()).filter((url) => url.length > 0);
  const etcdCertificates = etcdTls(config, logger);
  const etcd = new EtcdClient({ endpoints, timeoutMs: ETCD_CALL_TIMEOUT_MS, logger, clock, ...(etcdCertificates === null ? {} : { tls: etcdCertificates.current }) });
  // A renewed CA or client certificate goes to etcd's next connections; one the client refuses is logged and the old kept.
  etcdCertificates?.onChange((material) => etcd.setTls(material));
  let peer = peerCredentials(config, parts.tls);
  const node = new ClusterNode({
    nodeId: config.nodeId,
    etcd,
    prefix: config.cluster.etcdPrefix.endsWith('/') ? config.cluster.etcdPrefix : `${config.cluster.etcdPrefix}/`,
    clock,
    logger,
    peer,
    replicaLagMaxMs: config.cluster.replicaLagMaxMs,
    replicaVerifyIntervalMs: config.cluster.replicaVerifyIntervalMs,
    replicaCatchUpBytesPerSec: config.cluster.replicaCatchUpBytesPerSec,
    leaseTtlMs: config.cluster.leaseTtlMs,
  });
  let client: Promise<FerryClient> | null = null;
  // Opened on first use; a connect that failed is tried again at the next use rather than kept.
  const clusterClient = (): Promise<FerryClient> => {
    if (client === null) {
      const opening = connect({ ...peer, servers: node.liveBrokers().map((broker) => broker.address), name: `ferry-broker ${config.nodeId}` });
      client = opening;
      opening.catch(() => {
        if (client === opening) client = null;
      });
    }
    return client;
  };
  const remote = new ClusterRemoteTopics(node, clusterClient);
  return {
    node,
    etcd,
    brokerOptions: { openLog: (options, role) => node.openLog(options, role), topicsAtOpen: 'none', remote, replicated: true, warmGroupReplay: (topic, group) => node.warmGroupReplay(topic, group) },
    serve: (broker) => new ClusteredBroker(broker, node, clock),
    describeRemote: async (topic) => (await clusterClient()).describeTopic(topic),
    serverTlsChanged: (material) => {
      const tls = peerTls(material);
      peer = { ...peer, tls };
      node.setPeerTls(tls);
      // The cluster's own client is made anew at its next use; the old one closes once its requests are answered.
      const previous = client;
      client = null;
      void previous?.then((old) => old.close(), () => undefined).catch(() => undefined);
    },
    etcdCertificates,
    join: async (broker, listening) => {
      await node.start(advertisedAddress(config, listening), new BrokerReplicas(broker, clock));
    },
    leave: async () => {
      await node.shutdown();
      if (client !== null) await (await client.catch(() => null))?.close();
      await etcd.close();
    },
  };
}

/** `--advertise`, or the TCP listener's address when it names one host (not a wildcard). */
function advertisedAddress(config: FerryConfig, listening: { host: string; port: number }): string {
  if (config.advertise !== undefined) return config.advertise;
  if (listening.host === '0.0.0.0' || listening.host === '::') {
    throw new FerryError('INVALID_ARGUMENT', `the broker listens on ${listening.host}, which other brokers cannot dial: give --advertise HOST:PORT`);
  }
  return isIP(listening.host) === 6 ? `[${listening.host}]:${listening.port}` : `${listening.host}:${listening.port}`;
}

/** The TLS files for etcd (`etcdCa`, `etcdCert`, `etcdKey`), read now; null when none is set. */
function etcdTls(config: FerryConfig, logger: Logger): CertificateReloader<ClientTlsMaterial> | null {
  const files: ClientTlsFiles = { ca: config.etcdCa, cert: config.etcdCert, key: config.etcdKey };
  if (files.ca === undefined && files.cert === undefined) return null;
  try {
    return clientTlsReloader(files, { etcdCa: files.ca ?? null, etcdCert: files.cert ?? null, etcdKey: files.key ?? null }, logger, readClientTlsFiles(files));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** What the broker's own connections to the others trust: the client CA, else its own certificate (one CA signs them all). */
function peerTls(tls: TlsMaterial): { ca: Buffer } {
  return { ca: tls.ca ?? tls.cert };
}

/** How this broker logs in to the others: the cluster's credentials, over TLS when its own port has TLS. */
function peerCredentials(config: FerryConfig, tls: TlsMaterial | null): Omit<ConnectOptions, 'host' | 'port' | 'url'> {
  const read = (path: string): string => {
    try {
      return readFileSync(path, 'utf8').trim();
    } catch (error) {
      throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
    }
  };
  const { user, passwordFile, tokenFile } = config.cluster;
  return {
    ...(user !== undefined && passwordFile !== undefined ? { user, password: read(passwordFile) } : {}),
    ...(tokenFile !== undefined ? { token: read(tokenFile) } : {}),
    ...(tls === null ? {} : { tls: peerTls(tls) }),
  };
}
