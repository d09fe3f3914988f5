/**
 * One etcd for a benchmarked Ferry cluster: Debian's etcd-server (`bash scripts/install-peers.sh`),
 * a single member on free loopback client and peer ports with its data in a temp dir, started and
 * stopped by PID through the ProcessRegistry. Ready once /health says so.
 */
import { freePort, LOOPBACK_HOST, type ProcessRegistry, type ServerProcess } from '../processes.js';
import { waitFor } from '../cluster.js';

const ETCD_COMMAND = 'etcd';
const MEMBER_NAME = 'bench';
/** A fresh single-member etcd elects itself within a second or two. */
const HEALTHY_TIMEOUT_MS = 20_000;

export interface StartedEtcd {
  readonly server: ServerProcess;
  /** The client URL to give brokers (`--etcd`). */
  readonly url: string;
}

export async function startEtcd(processes: ProcessRegistry): Promise<StartedEtcd> {
  const peerPort = await freePort();
  const peerUrl = `http://${LOOPBACK_HOST}:${peerPort}`;
  const server = await processes.start({
    name: 'etcd',
    command: ETCD_COMMAND,
    args: (clientPort, dataDir) => {
      const clientUrl = `http://${LOOPBACK_HOST}:${clientPort}`;
      return [
        '--name', MEMBER_NAME,
        '--data-dir', dataDir,
        '--listen-client-urls', clientUrl,
        '--advertise-client-urls', clientUrl,
        '--listen-peer-urls', peerUrl,
        '--initial-advertise-peer-urls', peerUrl,
        '--initial-cluster', `${MEMBER_NAME}=${peerUrl}`,
        '--initial-cluster-state', 'new',
        '--log-level', 'warn',
      ];
    },
  });
  const url = `http://${LOOPBACK_HOST}:${server.port}`;
  try {
    await waitFor(`etcd (pid ${server.pid}) healthy`, HEALTHY_TIMEOUT_MS, async () => {
      const response = await fetch(`${url}/health`);
      const body = (await response.json()) as { health?: unknown };
      return response.ok && body.health === 'true';
    });
  } catch (error) {
    await processes.stop(server);
    throw error;
  }
  return { server, url };
}
