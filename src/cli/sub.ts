/** `ferry sub <topic>`: print messages, one a line (or JSON), acking them when in a group. */
import { connect } from '../client/index.js';
import { parse, parsePositiveInt, UsageError } from './args.js';
import { CONNECTION_FLAGS, connectOptions } from './connect-options.js';
import { onStdoutClosed } from './stdout.js';

export const SUB_USAGE =
  'ferry sub <topic> [--group g] [--from earliest|latest|<offset>|<ISO time>] [--count n] [--json] [--nack] [connection flags]';

export const SUB_FLAGS = {
  ...CONNECTION_FLAGS,
  group: { type: 'string' },
  from: { type: 'string' },
  count: { type: 'string' },
  json: { type: 'boolean' },
  // Nack instead of ack (with the group's backoff): for trying out redelivery and dead letters.
  nack: { type: 'boolean' },
} as const;

export function parseFrom(text: string | undefined, flag = '--from'): 'earliest' | 'latest' | number | Date | undefined {
  if (text === undefined) return undefined;
  if (text === 'earliest' || text === 'latest') return text;
  if (/^\d+$/.test(text)) return Number(text);
  const time = new Date(text);
  if (Number.isNaN(time.getTime())) throw new UsageError(`${flag} '${text}' is not earliest, latest, an offset or an ISO time`);
  return time;
}

export async function sub(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, SUB_FLAGS, 1);
  const [topic] = positionals;
  if (topic === undefined) throw new UsageError(`usage: ${SUB_USAGE}`);
  if (values.nack && values.group === undefined) throw new UsageError('--nack needs --group (only group messages are settled)');
  const count = parsePositiveInt('count', values.count);
  const from = parseFrom(values.from);
  const client = await connect(await connectOptions(values));
  let subscription;
  try {
    subscription = await client.subscribe(topic, {
      ...(values.group === undefined ? {} : { group: values.group }),
      ...(from === undefined ? {} : { from }),
      prefetch: count === undefined ? 256 : Math.max(1, Math.min(count, 256)),
    });
  } catch (error) {
    // An open connection keeps the process alive: a refused subscribe (unknown topic) must end it.
    await client.close();
    throw error;
  }
  const stop = (): void => void subscription.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  // `ferry sub … | head`: the reader is gone, so stop taking (and acking) messages nobody sees.
  const stopWatchingStdout = onStdoutClosed(stop);
  let received = 0;
  try {
    if (count === 0) return 0;
    for await (const message of subscription) {
      const line = values.json
        ? JSON.stringify({
            topic,
            partition: message.partition,
            offset: message.offset,
            timestamp: message.timestamp.toISOString(),
            key: message.key === null ? null : message.key.toString('utf8'),
            headers: message.headers,
            deliveryCount: message.deliveryCount,
            ...encodeValue(message.value),
          })
        : message.value.toString('utf8');
      process.stdout.write(line + '\n');
      // A pipe's write fails at once when its reader is gone: that message was not seen, so it is not acked.
      if (!process.stdout.writable) break;
      if (values.group !== undefined) await (values.nack ? message.nack() : message.ack());
      received += 1;
      if (count !== undefined && received >= count) break;
    }
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    stopWatchingStdout();
    await subscription.close();
    await client.close();
  }
}

function encodeValue(value: Buffer): { value: string; valueEncoding?: 'base64' } {
  const text = value.toString('utf8');
  if (Buffer.from(text, 'utf8').equals(value)) return { value: text };
  return { value: value.toString('base64'), valueEncoding: 'base64' };
}
