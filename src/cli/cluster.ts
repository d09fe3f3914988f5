/** `ferry cluster status`: the brokers of a cluster, whether each is alive, the topics it leads and its replicas' lag. */
import { connect, type ClusterStatus } from '../client/index.js';
import { parse, UsageError } from './args.js';
import { CONNECTION_FLAGS, connectOptions } from './connect-options.js';

export const CLUSTER_USAGE = `ferry cluster status [--json]   (per broker: node id, address, alive, topics led, replica lag)`;

export async function cluster(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values } = parse(rest, { ...CONNECTION_FLAGS, json: { type: 'boolean' } }, 0);
  if (action !== 'status') throw new UsageError(`usage: ${CLUSTER_USAGE}`);
  const client = await connect(await connectOptions(values));
  try {
    const status = await client.clusterStatus();
    process.stdout.write(values.json ? JSON.stringify(status, null, 2) + '\n' : statusTable(status));
    return 0;
  } finally {
    await client.close();
  }
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
