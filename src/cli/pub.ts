/** `ferry pub <topic> [value]`: publish one value, a generated run of them, or stdin's lines. */
import { createInterface } from 'node:readline';
import { connect, type FerryClient, type PublishOptions } from '../client/index.js';
import { parse, parsePositiveInt, UsageError } from './args.js';
import { CONNECTION_FLAGS, connectOptions } from './connect-options.js';
import { createProgress } from './progress.js';
import { pubUdp, TCP_ONLY_FLAGS } from './pub-udp.js';
import { PublishWindow } from './publish-window.js';

export const PUB_USAGE =
  'ferry pub <topic> [value] [--key k] [--header name=value]... [--count n] [--size bytes]\n' +
  '                  [--id id] [--delay-ms n | --deliver-at <ISO time>] [--priority 0-9] [connection flags]\n' +
  '                  [--udp [--udp-port 7701]]   (UDP ingest: fire and forget, nothing confirmed)';

export const PUB_FLAGS = {
  ...CONNECTION_FLAGS,
  key: { type: 'string' },
  header: { type: 'string', multiple: true },
  count: { type: 'string' },
  size: { type: 'string' },
  id: { type: 'string' },
  'delay-ms': { type: 'string' },
  'deliver-at': { type: 'string' },
  priority: { type: 'string' },
  udp: { type: 'boolean' },
  'udp-port': { type: 'string' },
} as const;

/** Publishes kept in flight at once by `--count` and stdin runs. */
const PUBLISH_WINDOW = 1000;

export async function pub(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, PUB_FLAGS, 2);
  const [topic, value] = positionals;
  if (topic === undefined) throw new UsageError(`usage: ${PUB_USAGE}`);
  const headers = parseHeaders(values.header ?? []);
  const count = parsePositiveInt('count', values.count);
  const size = parsePositiveInt('size', values.size);
  const delayMs = parsePositiveInt('delay-ms', values['delay-ms']);
  const deliverAt = parseDeliverAt(values['deliver-at']);
  if (delayMs !== undefined && deliverAt !== undefined) throw new UsageError('give --delay-ms or --deliver-at, not both');
  const priority = parsePositiveInt('priority', values.priority);
  const options: PublishOptions = {
    ...(values.key === undefined ? {} : { key: values.key }),
    ...(priority === undefined ? {} : { priority }),
    headers,
    ...(delayMs === undefined ? {} : { delayMs }),
    ...(deliverAt === undefined ? {} : { deliverAt }),
  };
  // One message takes --id as given; in a run of several, message i (from 1) gets "<id>-<i>" so each stays unique.
  const idFor = (index: number, total: number | undefined): PublishOptions =>
    values.id === undefined ? options : { ...options, id: total === 1 ? values.id : `${values.id}-${index}` };

  const readsStdin = value === undefined && count === undefined && size === undefined;
  if (values.udp === true) {
    const refused = TCP_ONLY_FLAGS.filter((flag) => values[flag] !== undefined);
    if (refused.length > 0) throw new UsageError(`--udp carries no ${refused.map((flag) => `--${flag}`).join(', ')}: those need the broker's answer (publish over TCP)`);
    const payload = readsStdin ? null : value !== undefined ? Buffer.from(value) : generatedPayload(size ?? 16);
    const udpPort = parsePositiveInt('udp-port', values['udp-port']);
    const udpOptions = { ...(values.key === undefined ? {} : { key: values.key }), headers };
    return pubUdp(await connectOptions(values, { stdinCarriesMessages: readsStdin }), { topic, payload, count: count ?? 1, options: udpOptions, port: udpPort });
  }
  if (values['udp-port'] !== undefined) throw new UsageError('--udp-port goes with --udp');
  const client = await connect(await connectOptions(values, { stdinCarriesMessages: readsStdin }));
  try {
    if (readsStdin) return await publishLines(client, topic, idFor);
    const total = count ?? 1;
    const payload = value !== undefined ? Buffer.from(value) : generatedPayload(size ?? 16);
    if (total === 1) {
      const result = await client.publish(topic, payload, idFor(1, 1));
      const notes = [result.durability, ...(result.duplicate ? ['duplicate: already stored'] : [])];
      if (result.deliverAt !== undefined) notes.push(`delivered from ${result.deliverAt.toISOString()}`);
      process.stdout.write(`${topic} partition ${result.partition} offset ${result.offset} (${notes.join(', ')})\n`);
      return 0;
    }
    return await publishRun(client, topic, payload, total, idFor);
  } finally {
    await client.close();
  }
}

type IdFor = (index: number, total: number | undefined) => PublishOptions;

/** One message per line of stdin, PUBLISH_WINDOW in flight; the first failure stops reading. */
async function publishLines(client: FerryClient, topic: string, idFor: IdFor): Promise<number> {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let published = 0;
  const window = new PublishWindow(PUBLISH_WINDOW);
  for await (const line of lines) {
    if (window.failed) break;
    await window.add(client.publish(topic, Buffer.from(line), idFor(published + 1, undefined)));
    published += 1;
  }
  await window.drain();
  process.stderr.write(`published ${published} messages to ${topic}\n`);
  return 0;
}

/** `--count` copies of one payload, PUBLISH_WINDOW in flight, with a progress line and the rate at the end. */
async function publishRun(client: FerryClient, topic: string, payload: Buffer, total: number, idFor: IdFor): Promise<number> {
  const startedMs = performance.now();
  const progress = createProgress(`publishing to ${topic}`, total, { unit: 'messages' });
  const window = new PublishWindow(PUBLISH_WINDOW, () => progress.tick());
  for (let i = 0; i < total && !window.failed; i++) await window.add(client.publish(topic, payload, idFor(i + 1, total)));
  try {
    await window.drain();
  } finally {
    progress.done();
  }
  const seconds = (performance.now() - startedMs) / 1000;
  process.stderr.write(`published ${total} messages to ${topic} in ${seconds.toFixed(2)} s (${Math.round(total / seconds)} msgs/s)\n`);
  return 0;
}

/** `--header name=value`, repeated. */
function parseHeaders(flags: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const header of flags) {
    const equals = header.indexOf('=');
    if (equals <= 0) throw new UsageError(`--header '${header}' must look like name=value`);
    headers[header.slice(0, equals)] = header.slice(equals + 1);
  }
  return headers;
}

function parseDeliverAt(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const time = new Date(text);
  if (Number.isNaN(time.getTime())) throw new UsageError(`--deliver-at '${text}' is not an ISO time`);
  return time;
}

function generatedPayload(size: number): Buffer {
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i++) payload[i] = 97 + (i % 26);
  return payload;
}
