/**
 * `ferry cluster`: `status` lists the brokers of a cluster (alive, topics led, replicas' lag);
 * `reassign` moves one replica of a topic to another broker and `drain` moves every replica off a
 * broker (docs/CLUSTERING.md, "Moving replicas"). Both wait until the moves complete unless told not to.
 */
import { connect, type ClusterChangeResult, type ClusterStatus, type FerryClient, type ReplicaMove } from '../client/index.js';
import { parse, parsePositiveInt, UsageError } from './args.js';
import { CONNECTION_FLAGS, connectOptions } from './connect-options.js';

export const CLUSTER_USAGE = `ferry cluster status [--json]   (per broker: node id, address, alive, topics led, replica lag)
ferry cluster reassign <topic> --replace NODE --with NODE [--no-wait] [--timeout-ms N] [--json]
    (moves the topic's replica on NODE to another broker: it catches up, joins the in-sync set, then the old one leaves)
ferry cluster drain <node> [--no-wait] [--timeout-ms N] [--json]
    (moves every replica, and so every leadership, off a broker before it is retired)`;

/** How long `reassign` and `drain` wait for their moves unless --timeout-ms says otherwise. */
const MOVE_WAIT_MS_DEFAULT = 10 * 60_000;
/** How often a waiting command looks at the topics it moves. */
const MOVE_POLL_MS = 250;

export const CLUSTER_FLAGS = {
  ...CONNECTION_FLAGS,
  json: { type: 'boolean' },
  replace: { type: 'string' },
  with: { type: 'string' },
  'no-wait': { type: 'boolean' },
  'timeout-ms': { type: 'string' },
} as const;

export const CLUSTER_ACTIONS = ['status', 'reassign', 'drain'] as const;


export async function cluster(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parse(rest, CLUSTER_FLAGS, 1);
  if (action !== 'status' && action !== 'reassign' && action !== 'drain') throw new UsageError(`usage: ${CLUSTER_USAGE}`);
  if (action !== 'status' && positionals.length !== 1) throw new UsageError(`usage: ${CLUSTER_USAGE}`);
  if (action === 'reassign' && (values.replace === undefined || values.with === undefined)) throw new UsageError('ferry cluster reassign needs --replace NODE and --with NODE');
  const waitMs = parsePositiveInt('timeout-ms', values['timeout-ms']) ?? MOVE_WAIT_MS_DEFAULT;
  const client = await connect(await connectOptions(values));
  try {
    if (action === 'status') {
      const status = await client.clusterStatus();
      process.stdout.write(values.json ? JSON.stringify(status, null, 2) + '\n' : statusTable(status));
      return 0;
    }
    const result = action === 'reassign' ? await client.reassignReplica(positionals[0]!, { replace: values.replace!, with: values.with! }) : await client.drainBroker(positionals[0]!);
    const done = values['no-wait'] === true ? null : await waitForMoves(client, result.moves, waitMs);
    if (values.json) process.stdout.write(JSON.stringify({ ...result, completed: done }, null, 2) + '\n');
    else process.stdout.write(changeReport(result, done));
    if (done === false) return 1;
    return result.refused.length > 0 ? 1 : 0;
  } finally {
    await client.close();
  }
}

/** Whether every move completed within `waitMs` (the old replica gone, the new one in sync). */
async function waitForMoves(client: FerryClient, moves: readonly ReplicaMove[], waitMs: number): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  const pending = new Set(moves);
  while (pending.size > 0) {
    for (const move of [...pending]) {
      const partition = (await client.describeTopic(move.topic)).partitions[0];
      const replicas = partition?.replicas ?? [];
      if (!replicas.includes(move.from) && replicas.includes(move.to) && (partition?.inSync ?? []).includes(move.to)) pending.delete(move);
    }
    if (pending.size === 0) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, MOVE_POLL_MS));
  }
  return true;
}

function changeReport(result: ClusterChangeResult, done: boolean | null): string {
  const lines = result.moves.map((move) => `${move.topic}: ${move.from} -> ${move.to}`);
  for (const refusal of result.refused) lines.push(`${refusal.topic}: not moved: ${refusal.reason}`);
  if (result.moves.length === 0 && result.refused.length === 0) lines.push('nothing to move');
  if (done === true) lines.push(`${result.moves.length} move(s) completed`);
  else if (done === false) lines.push('timed out waiting for the moves; they go on (ferry topics describe shows them)');
  else lines.push(`${result.moves.length} move(s) started`);
  return lines.join('\n') + '\n';
}

/** One line per broker under a header, columns aligned. */
export function statusTable(status: ClusterStatus): string {
  const rows = [['NODE', 'ADDRESS', 'ALIVE', 'TOPICS LED', 'REPLICA LAG']];
  for (const broker of status.brokers) {
    rows.push([broker.nodeId === '' ? '(single broker)' : broker.nodeId, broker.address, broker.alive ? 'yes' : 'no', String(broker.topicsLed), String(broker.replicaLag)]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ').trimEnd()).join('\n') + '\n';
}
