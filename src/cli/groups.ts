/** `ferry groups list|describe|reset`: queue groups of a topic, their state, and moving their position. */
import { connect, type GroupInfo } from '../client/index.js';
import { parse, UsageError } from './args.js';
import { CONNECTION_FLAGS, connectOptions } from './connect-options.js';
import { parseFrom } from './sub.js';

export const GROUPS_USAGE = `ferry groups list <topic> [--json]
ferry groups describe <topic> <group> [--json]
ferry groups reset <topic> <group> --to earliest|latest|<offset>|<ISO time>
(each also takes the connection flags)`;

export const GROUPS_ACTIONS = ['list', 'describe', 'reset'] as const;

export const GROUPS_FLAGS = { ...CONNECTION_FLAGS, json: { type: 'boolean' }, to: { type: 'string' } } as const;

export async function groups(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (!(GROUPS_ACTIONS as readonly string[]).includes(action ?? '')) throw new UsageError(`usage:\n${GROUPS_USAGE}`);
  const { values, positionals } = parse(rest, GROUPS_FLAGS, 2);
  const [topic, group] = positionals;
  if (topic === undefined || (action !== 'list' && group === undefined)) throw new UsageError(`usage:\n${GROUPS_USAGE}`);
  if (action === 'list' && group !== undefined) throw new UsageError(`unexpected argument '${group}'`);
  if (action === 'reset' && values.to === undefined) throw new UsageError('groups reset needs --to earliest|latest|<offset>|<ISO time>');
  if (action !== 'reset' && values.to !== undefined) throw new UsageError('--to is for groups reset');
  const to = action === 'reset' ? parseFrom(values.to, '--to') : undefined;
  const client = await connect(await connectOptions(values));
  try {
    switch (action) {
      case 'list': {
        const list = await client.listGroups(topic);
        if (values.json) process.stdout.write(JSON.stringify(list, null, 2) + '\n');
        else if (list.length === 0) process.stdout.write(`${topic} has no groups\n`);
        else for (const info of list) process.stdout.write(summary(info) + '\n');
        return 0;
      }
      case 'describe': {
        const info = await client.describeGroup(topic, group!);
        process.stdout.write(values.json ? JSON.stringify(info, null, 2) + '\n' : describe(info));
        return 0;
      }
      default: {
        const info = await client.resetGroup(topic, group!, to!);
        process.stdout.write(`reset ${topic}/${group} to ${values.to}: ${summary(info)}\n`);
        return 0;
      }
    }
  } finally {
    await client.close();
  }
}

function summary(info: GroupInfo): string {
  return (
    `${info.name}  pending=${info.pending} in-flight=${info.inFlight} subscribers=${info.subscribers} ` +
    `redelivered=${info.redeliveredTotal} dead-lettered=${info.deadLetteredTotal}`
  );
}

function describe(info: GroupInfo): string {
  const { config } = info;
  const lines = [
    `group ${info.name} on ${info.topic}`,
    `  pending:            ${info.pending} (waiting for redelivery: ${info.pendingRedelivery})`,
    `  in flight:          ${info.inFlight}`,
    `  oldest unacked age: ${info.oldestUnackedAgeMs} ms`,
    `  redelivered:        ${info.redeliveredTotal}`,
    `  dead-lettered:      ${info.deadLetteredTotal} (to ${config.deadLetterTopic})`,
    `  subscribers:        ${info.subscribers}`,
    `  config:             ackTimeoutMs=${config.ackTimeoutMs} deliveriesMax=${config.deliveriesMax} ` +
      `backoffMs=${config.backoffMs.length === 0 ? 'default' : config.backoffMs.join(',')}`,
  ];
  for (const p of info.partitions) lines.push(`  partition ${p.partition}: acked floor ${p.ackFloor}, lag ${p.lag}`);
  return lines.join('\n') + '\n';
}
