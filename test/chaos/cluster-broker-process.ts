/**
 * One broker of a cluster chaos run: what `ferry serve --node-id … --etcd … --advertise …` does
 * (src/cli/serve.ts with src/cli/serve-cluster.ts: the broker opened with replicated logs, its TCP
 * port, then joining the cluster), plus the hooks of the single-node fixture (broker-process.ts)
 * that serve.ts should not carry: FERRY_FAULT_SYNC_LOG (record what is durable, for power losses)
 * and FERRY_CHAOS_CLOCK_FILE (a wall clock the harness steps; re-read on SIGUSR2).
 *
 * Usage: node --import tsx test/chaos/cluster-broker-process.ts '<json>' where the JSON is
 * { nodeId, dir, port, advertise, etcd, leaseTtlMs }. Prints one JSON line on stdout once it
 * listens and has joined: { nodeId, port, openMs, truncatedBytes, listenT }. Logs (JSON) go to
 * stderr. SIGTERM leaves the cluster (handing its topics over) and exits 0.
 */
import { readFileSync } from 'node:fs';
import { Broker } from '../../src/broker/broker.js';
import { clusterParts } from '../../src/cli/serve-cluster.js';
import { loadConfig } from '../../src/config/load.js';
import { brokerOptions, serverOptions } from '../../src/config/apply.js';
import { NodeFileSystem, type FileSystem } from '../../src/platform/fs.js';
import { FaultFileSystem, SYNC_LOG_ENV, SyncLog } from '../../src/platform/fault-fs.js';
import { JsonLogger } from '../../src/platform/logger.js';
import { TcpServer } from '../../src/transport/tcp/server.js';
import { CLOCK_FILE_ENV, JumpClock } from './jump-clock.js';
import { nowT } from './history.js';

export interface ClusterBrokerArgs {
  nodeId: string;
  dir: string;
  port: number;
  /** The address the others dial: the broker's proxy (fault-proxy.ts). */
  advertise: string;
  /** Comma-separated etcd endpoints: this broker's proxies to the members. */
  etcd: string;
  leaseTtlMs: number;
}

const args = JSON.parse(process.argv[2] ?? 'null') as ClusterBrokerArgs | null;
if (args === null) {
  console.error('usage: cluster-broker-process.ts <json>');
  process.exit(2);
}

const clock = new JumpClock();
const clockFile = process.env[CLOCK_FILE_ENV];
const readClockOffset = (): void => {
  if (clockFile === undefined) return;
  clock.offsetMs = Number(readFileSync(clockFile, 'utf8').trim()) || 0;
};
readClockOffset();
process.on('SIGUSR2', readClockOffset);

const syncLogPath = process.env[SYNC_LOG_ENV];
const fs: FileSystem = syncLogPath ? new FaultFileSystem(new NodeFileSystem(), new SyncLog(syncLogPath)) : new NodeFileSystem();
const logger = new JsonLogger('info');
const config = loadConfig({
  flags: {
    dir: args.dir,
    nodeId: args.nodeId,
    etcd: args.etcd,
    advertise: args.advertise,
    'cluster.leaseTtlMs': String(args.leaseTtlMs),
    'server.host': '127.0.0.1',
    'server.port': String(args.port),
    'http.enabled': 'false',
  },
});

const startedMs = performance.now();
const cluster = clusterParts(config, { clock, logger, tls: null });
const broker = await Broker.open({ ...brokerOptions(config), dir: args.dir, fs, clock, logger, ...cluster.brokerOptions });
const openMs = performance.now() - startedMs;
let truncatedBytes = 0;
for (const reports of broker.recovery.values()) for (const report of reports) truncatedBytes += report.truncatedBytes;
const tcp = new TcpServer(cluster.serve(broker), { ...serverOptions(config), clock, logger, cluster: cluster.node });
// Other brokers dial this one as soon as it is registered: its port listens first (as serve.ts).
const listenT = nowT();
const listening = await tcp.listen(args.port, '127.0.0.1');
await cluster.join(broker, listening);
logger.info('broker.listening', { host: listening.host, port: listening.port, nodeId: args.nodeId });
process.stdout.write(JSON.stringify({ nodeId: args.nodeId, port: listening.port, openMs: Math.round(openMs), truncatedBytes, listenT }) + '\n');

process.once('SIGTERM', () => {
  void (async () => {
    try {
      await cluster.leave();
      await tcp.close();
      await broker.close();
      process.exit(0);
    } catch (error) {
      logger.error('chaos.broker.close_failed', { error });
      process.exit(1);
    }
  })();
});
