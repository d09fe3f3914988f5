/** `ferry topics list|create|describe|delete`. */
import { connect } from '../client/index.js';
import { parse, parsePositiveInt, UsageError } from './args.js';
import { CONNECTION_FLAGS, connectOptions } from './connect-options.js';

export const TOPICS_USAGE = `ferry topics list [--json]
ferry topics create <topic> [--partitions n] [--durability always|interval|never] [--sync-interval-ms n]
                            [--retention-ms n] [--retention-bytes n] [--retention-records n] [--segment-bytes n]
                            [--dedup-window-ms n]
ferry topics describe <topic> [--json]
ferry topics delete <topic>
(each also takes the connection flags)`;

export async function topics(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parse(
    rest,
    {
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
    },
    1,
  );
  const [topic] = positionals;
  if (action !== 'list' && topic === undefined) throw new UsageError(`usage:\n${TOPICS_USAGE}`);
  if (!['list', 'create', 'describe', 'delete'].includes(action ?? '')) throw new UsageError(`usage:\n${TOPICS_USAGE}`);
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

interface TopicView {
  name: string;
  config: { partitions: number; durability: string; syncIntervalMs?: number; retention?: object; segmentBytes?: number };
  partitions: Array<{ partition: number; startOffset: number; nextOffset: number; syncedOffset?: number; segments?: number; bytes?: number }>;
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
  }
  return lines.join('\n') + '\n';
}
