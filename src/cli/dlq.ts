/** `ferry dlq redrive`: move dead letters back to the topics they came from. */
import { connect } from '../client/index.js';
import { parse, parsePositiveInt, UsageError } from './args.js';
import { CONNECTION_FLAGS, connectOptions } from './connect-options.js';

export const DLQ_USAGE =
  'ferry dlq redrive <dlq-topic> [--limit n] [--from-offset n] [--to-offset n] [--header name=value] [connection flags]';

export const DLQ_ACTIONS = ['redrive'] as const;

export const DLQ_FLAGS = {
  ...CONNECTION_FLAGS,
  limit: { type: 'string' },
  'from-offset': { type: 'string' },
  'to-offset': { type: 'string' },
  header: { type: 'string' },
} as const;

export async function dlq(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  if (action !== 'redrive') throw new UsageError(`usage: ${DLQ_USAGE}`);
  const { values, positionals } = parse(rest, DLQ_FLAGS, 1);
  const [topic] = positionals;
  if (topic === undefined) throw new UsageError(`usage: ${DLQ_USAGE}`);
  const limit = parsePositiveInt('limit', values.limit);
  const fromOffset = parsePositiveInt('from-offset', values['from-offset']);
  const toOffset = parsePositiveInt('to-offset', values['to-offset']);
  let header: [string, string] | undefined;
  if (values.header !== undefined) {
    const equals = values.header.indexOf('=');
    if (equals <= 0) throw new UsageError(`--header '${values.header}' must look like name=value`);
    header = [values.header.slice(0, equals), values.header.slice(equals + 1)];
  }
  const client = await connect(await connectOptions(values));
  try {
    const { moved } = await client.redrive(topic, {
      ...(limit === undefined ? {} : { limit }),
      ...(fromOffset === undefined ? {} : { fromOffset }),
      ...(toOffset === undefined ? {} : { toOffset }),
      ...(header === undefined ? {} : { header }),
    });
    process.stdout.write(`moved ${moved} message${moved === 1 ? '' : 's'} from ${topic}\n`);
    return 0;
  } finally {
    await client.close();
  }
}
