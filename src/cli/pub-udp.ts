/**
 * `ferry pub --udp`: the same messages as `ferry pub`, sent as UDP datagrams to the broker's ingest
 * port (docs/PROTOCOL.md, "UDP ingest"). Nothing is confirmed: the command reports what it sent,
 * and what the socket refused (nothing listening), never what was stored.
 */
import { createInterface } from 'node:readline';
import { resolveClientOptions } from '../client/options.js';
import { UdpPublisher, UDP_SEND_QUEUE_MAX, type ConnectOptions, type UdpPublishOptions } from '../client/index.js';
import { DEFAULT_UDP_PORT } from '../protocol/limits.js';
import { UsageError } from './args.js';

/** ICMP "port unreachable" answers arrive shortly after the datagrams: waited for before reporting. */
const REFUSAL_WAIT_MS = 50;

export interface UdpRun {
  topic: string;
  /** One value, `count` copies of a payload, or (neither) stdin's lines. */
  payload: Buffer | null;
  count: number;
  options: UdpPublishOptions;
  port: number | undefined;
}

/** Flags of `ferry pub` that ask for what UDP cannot carry (each needs the broker's answer or its bookkeeping). */
export const TCP_ONLY_FLAGS = ['id', 'delay-ms', 'deliver-at', 'priority'] as const;

export async function pubUdp(connection: ConnectOptions, run: UdpRun): Promise<number> {
  if (run.port !== undefined && (!Number.isInteger(run.port) || run.port < 1 || run.port > 65_535)) throw new UsageError(`--udp-port '${run.port}' is not a port number`);
  const host = resolveClientOptions(connection).host;
  const publisher = new UdpPublisher({ host, port: run.port ?? DEFAULT_UDP_PORT });
  const target = `${host.includes(':') ? `[${host}]` : host}:${publisher.port}`;
  let sent = 0;
  const send = async (value: Buffer): Promise<void> => {
    // A --count run goes as fast as the socket takes it: it waits for room instead of dropping.
    while (publisher.queued >= UDP_SEND_QUEUE_MAX / 2) await new Promise((resolve) => setTimeout(resolve, 1));
    if (publisher.publishUdp(run.topic, value, run.options)) sent += 1;
  };
  try {
    if (run.payload === null) {
      for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) await send(Buffer.from(line));
    } else {
      for (let i = 0; i < run.count; i++) await send(run.payload);
    }
    await new Promise((resolve) => setTimeout(resolve, REFUSAL_WAIT_MS));
    // Timers run before I/O in a loop turn: a process descheduled past the wait would see the timer
    // first. One more turn's I/O phase reads the socket's pending error before the verdict.
    await new Promise((resolve) => setImmediate(resolve));
  } finally {
    await publisher.close();
  }
  process.stdout.write(`${run.topic}: sent ${sent} datagram${sent === 1 ? '' : 's'} to udp://${target} (not confirmed: UDP is at most once)\n`);
  if (publisher.errors > 0 || publisher.dropped > 0) {
    process.stderr.write(`error: ${publisher.errors + publisher.dropped} datagrams were refused or dropped before reaching the broker (is it serving --udp-port ${publisher.port} on ${host}?)\n`);
    return 1;
  }
  return 0;
}
