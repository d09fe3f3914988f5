/**
 * What a replicated system offers the benchmarks beyond a single broker: its nodes by id, the leader
 * of a topic as the system itself reports it, one node's process (to signal exactly that PID), a
 * restart on the node's old ports and data dir, and a client tied to one chosen node. `npm run bench
 * -- --cluster` runs the workloads through the BrokerSystem part; `npm run bench:failover` drives
 * the rest. One adapter per system (bench/peers/nats-cluster.ts, rabbitmq.ts, ferry-cluster.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProcessRegistry, ServerProcess } from './processes.js';
import type { BrokerConnection, BrokerSystem, StartedBroker } from './workloads.js';

/** Every cluster here has three nodes: a majority of two survives one failure. */
export const CLUSTER_NODES = 3;
/** A cluster whose nodes have not formed one (elected a leader, joined) within this long failed to start. */
export const CLUSTER_FORM_TIMEOUT_MS = 60_000;
const POLL_MS = 100;

export interface StartedCluster extends StartedBroker {
  /** Node ids in start order ('n1'…, or the system's own node names). */
  readonly nodeIds: readonly string[];
  /** The node's current process (a restart makes a new one). */
  server(nodeId: string): ServerProcess;
  /** The node leading the topic's stream / queue / partition now, from the system's own API. */
  leaderOf(topic: string): Promise<string>;
  /** Starts a node whose process has exited again, on its old ports and data dir; resolves once it serves. */
  restart(nodeId: string): Promise<void>;
  /** Whether every replica of the topic is back in the set and current (the system's own view). */
  replicasCurrent(topic: string): Promise<boolean>;
  /**
   * A client connected to `nodeId` alone, with its library's default timeouts and retries, so that
   * killing another node never touches the client's own connection.
   */
  connectTo(nodeId: string): Promise<BrokerConnection>;
}

export interface ClusterSystem extends BrokerSystem {
  start(processes: ProcessRegistry): Promise<StartedCluster>;
}

/** Polls `check` until it returns true or throws past `timeoutMs`; the last error explains a timeout. */
export async function waitFor(what: string, timeoutMs: number, check: () => Promise<boolean>, pollMs = POLL_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    await sleep(pollMs);
  }
  const cause = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new Error(`${what}: not within ${timeoutMs} ms${cause}`);
}

/** Stops the processes and removes the dir of a cluster start, even if part of it failed. */
export async function stopCluster(processes: ProcessRegistry, servers: Iterable<ServerProcess>, rootDir: string): Promise<void> {
  await Promise.all([...servers].map((server) => processes.stop(server)));
  processes.removeTempDir(rootDir);
}
