/** `ferry topics list|create|describe|verify|delete`. */
import { connect, type TopicVerification } from '../client/index.js';
import { parse, parsePositiveInt, UsageError } from './args.js';
import { CONNECTION_FLAGS, connectOptions } from './connect-options.js';

export const TOPICS_USAGE = `ferry topics list [--json]
ferry topics create <topic> [--partitions n] [--durability always|interval|never] [--sync-interval-ms n]
                            [--retention-ms n] [--retention-bytes n] [--retention-records n] [--segment-bytes n]
                            [--dedup-window-ms n] [--replicas n [--min-in-sync n]]
ferry topics describe <topic> [--json]   (in a cluster: each partition's leader, epoch, replicas, in-sync set,
                                          high watermark, and each replica's end offset and lag)
ferry topics verify <topic> [--json]     (in a cluster: compares every replica with the leader below the high
                                          watermark: OK, or the first differing range per replica; exit 1 if any differs)
ferry topics delete <topic>
(each also takes the connection flags)`;

export const TOPICS_ACTIONS = ['list', 'create', 'describe', 'verify', 'delete'] as const;

export const TOPICS_FLAGS = {
  ...CONNECTION_FLAGS,
  json: { type: 'boolean' },
  partitions: { type: 'string' },
  durability: { type: 'string' },
  'sync-interval-ms': { type: 'string' },
  'retention-ms': { type: 'string' },
  'retention-bytes': { type: 'string' },
  'retention-records': { type: 'string' },
  'segment-bytes': { type: 'string' },
  'dedup-window-ms': { type: 'string' },
  replicas: { type: 'string' },
  'min-in-sync': { type: 'string' },
} as const;

export async function topics(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parse(rest, TOPICS_FLAGS, 1);
  const [topic] = positionals;
  if (action !== 'list' && topic === undefined) throw new UsageError(`usage:\n${TOPICS_USAGE}`);
  if (!(TOPICS_ACTIONS as readonly string[]).includes(action ?? '')) throw new UsageError(`usage:\n${TOPICS_USAGE}`);
  const replication = replicationFlags(values.replicas, values['min-in-sync']);
  if (action !== 'create' && Object.keys(replication).length > 0) throw new UsageError('--replicas and --min-in-sync go with topics create');
  const client = await connect(await connectOptions(values));
  try {
    switch (action) {
      case 'list': {
        const list = await client.listTopics();
        if (values.json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
        else for (const info of list) process.stdout.write(summary(info) + '\n');
        return 0;
      }
      case 'create': {
        const durability = values.durability;
        if (durability !== undefined && durability !== 'always' && durability !== 'interval' && durability !== 'never') {
          throw new UsageError('--durability must be always, interval or never');
        }
        const retention = {
          ...optional('ageMs', parsePositiveInt('retention-ms', values['retention-ms'])),
          ...optional('bytesMax', parsePositiveInt('retention-bytes', values['retention-bytes'])),
          ...optional('recordsMax', parsePositiveInt('retention-records', values['retention-records'])),
        };
        const info = await client.createTopic(topic!, {
          ...optional('partitions', parsePositiveInt('partitions', values.partitions)),
          ...optional('durability', durability),
          ...optional('syncIntervalMs', parsePositiveInt('sync-interval-ms', values['sync-interval-ms'])),
          ...optional('segmentBytes', parsePositiveInt('segment-bytes', values['segment-bytes'])),
          ...optional('dedupWindowMs', parsePositiveInt('dedup-window-ms', values['dedup-window-ms'])),
          ...replication,
          ...(Object.keys(retention).length === 0 ? {} : { retention }),
        });
        process.stdout.write(`created ${summary(info)}\n`);
        return 0;
      }
      case 'describe': {
        const info = await client.describeTopic(topic!);
        if (values.json) process.stdout.write(JSON.stringify(info, null, 2) + '\n');
        else process.stdout.write(describe(info));
        return 0;
      }
      case 'verify': {
        const result = await client.verifyTopic(topic!);
        process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : verification(result));
        return result.ok ? 0 : 1;
      }
      default: {
        await client.deleteTopic(topic!);
        process.stdout.write(`deleted ${topic}\n`);
        return 0;
      }
    }
  } finally {
    await client.close();
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** Replicas (and minInSync) at most: the wire carries a u8. */
const REPLICAS_MAX = 255;

/** --replicas and --min-in-sync, checked: each 1..255, min-in-sync no more than replicas. */
export function replicationFlags(replicasText: string | undefined, minInSyncText: string | undefined): { replicas?: number; minInSync?: number } {
  const count = (flag: string, text: string | undefined): number | undefined => {
    const value = parsePositiveInt(flag, text);
    if (value !== undefined && (value < 1 || value > REPLICAS_MAX)) throw new UsageError(`--${flag} must be from 1 to ${REPLICAS_MAX}, got ${value}`);
    return value;
  };
  const replicas = count('replicas', replicasText);
  const minInSync = count('min-in-sync', minInSyncText);
  if (minInSync !== undefined && replicas === undefined) throw new UsageError('--min-in-sync needs --replicas');
  if (minInSync !== undefined && minInSync > replicas!) throw new UsageError(`--min-in-sync ${minInSync} is more than --replicas ${replicas}`);
  return { ...optional('replicas', replicas), ...optional('minInSync', minInSync) };
}

interface PartitionView {
  partition: number;
  startOffset: number;
  nextOffset: number;
  syncedOffset?: number;
  segments?: number;
  bytes?: number;
  leader?: string;
  epoch?: number;
  replicas?: string[];
  inSync?: string[];
  highWatermark?: number;
  replicaOffsets?: Array<{ nodeId: string; endOffset: number; lag: number }>;
}

interface TopicView {
  name: string;
  config: { partitions: number; durability: string; syncIntervalMs?: number; retention?: object; segmentBytes?: number };
  partitions: PartitionView[];
  groups?: string[];
}

function summary(info: TopicView): string {
  const messages = info.partitions.reduce((sum, p) => sum + (p.nextOffset - p.startOffset), 0);
  return `${info.name}  partitions=${info.config.partitions} durability=${info.config.durability} messages=${messages}`;
}

function describe(info: TopicView): string {
  const lines = [summary(info)];
  lines.push(`  config: ${JSON.stringify(info.config)}`);
  if (info.groups !== undefined) lines.push(`  groups: ${info.groups.length === 0 ? '(none)' : info.groups.join(', ')}`);
  for (const p of info.partitions) {
    lines.push(
      `  partition ${p.partition}: offsets ${p.startOffset}..${p.nextOffset}` +
        (p.segments === undefined ? '' : `, ${p.segments} segments, ${p.bytes} bytes`),
    );
    lines.push(...replicationLines(p));
  }
  return lines.join('\n') + '\n';
}

/** One line per replica: OK, or each log's first differing range. */
function verification(result: TopicVerification): string {
  const lines = [`${result.topic}: leader ${result.leader}, epoch ${result.epoch}: ${result.ok ? 'OK' : 'replicas differ'}`];
  for (const replica of result.replicas) {
    if (replica.status === 'unreachable') lines.push(`  ${replica.nodeId}: not compared (${replica.error ?? 'unreachable'})`);
    else if (replica.status === 'ok') lines.push(`  ${replica.nodeId}: OK`);
    for (const log of replica.logs) {
      if (log.status === 'missing') lines.push(`  ${replica.nodeId}: lacks ${log.logId} (the leader holds ${log.fromOffset}..${log.toOffset - 1})`);
      if (log.firstDifference === undefined) continue;
      const { fromOffset, toOffset } = log.firstDifference;
      lines.push(`  ${replica.nodeId}: ${log.logId} ${log.status === 'damaged' ? 'damaged' : 'differs'} at offsets ${fromOffset}..${toOffset - 1} (compared ${log.fromOffset}..${log.toOffset - 1}); repairing`);
    }
  }
  return lines.join('\n') + '\n';
}

/** A partition's replication state (cluster mode; nothing for a single broker). */
export function replicationLines(p: PartitionView): string[] {
  if (p.leader === undefined) return [];
  const ids = (list: string[] | undefined): string => (list === undefined || list.length === 0 ? '(none)' : list.join(','));
  const lines = [
    `    leader ${p.leader === '' ? '(none)' : p.leader}, epoch ${p.epoch ?? 0}, replicas ${ids(p.replicas)}, in sync ${ids(p.inSync)}, high watermark ${p.highWatermark ?? 0}`,
  ];
  for (const replica of p.replicaOffsets ?? []) lines.push(`    replica ${replica.nodeId}: end offset ${replica.endOffset}, lag ${replica.lag}`);
  return lines;
}
