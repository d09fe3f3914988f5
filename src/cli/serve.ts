/**
 * `ferry serve`: the composition root of the broker process. It is the one place that builds the
 * real clock, filesystem and logger and wires them into the broker and its TCP listener.
 */
import { resolve } from 'node:path';
import { SystemClock } from '../platform/clock.js';
import { NodeFileSystem } from '../platform/fs.js';
import { JsonLogger } from '../platform/logger.js';
import { Broker } from '../broker/broker.js';
import { DEFAULT_HOST, DEFAULT_PORT, parse, parsePort, UsageError } from './args.js';

export const SERVE_USAGE = `ferry serve [--dir ./data] [--port ${DEFAULT_PORT}] [--host ${DEFAULT_HOST}] [--log-level info]`;

export async function serve(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      dir: { type: 'string', default: './data' },
      port: { type: 'string', default: String(DEFAULT_PORT) },
      host: { type: 'string', default: DEFAULT_HOST },
      'log-level': { type: 'string', default: 'info' },
    },
    0,
  );
  const level = values['log-level'];
  if (level !== 'debug' && level !== 'info' && level !== 'warn' && level !== 'error') {
    throw new UsageError(`--log-level must be debug, info, warn or error`);
  }
  const logger = new JsonLogger(level);
  const dir = resolve(values.dir!);
  const startedMs = performance.now();
  const broker = await Broker.open({ dir, fs: new NodeFileSystem(), clock: new SystemClock(), logger });
  const topics = broker.listTopics();
  let truncatedBytes = 0;
  for (const reports of broker.recovery.values()) for (const report of reports) truncatedBytes += report.truncatedBytes;
  logger.info('broker.recovered', {
    dir,
    topics: topics.length,
    partitions: topics.reduce((sum, topic) => sum + topic.partitions.length, 0),
    messages: topics.reduce((sum, topic) => sum + topic.partitions.reduce((n, p) => n + (p.nextOffset - p.startOffset), 0), 0),
    truncatedBytes,
    recoveryMs: Math.round(performance.now() - startedMs),
  });
  const listener = await broker.listen({ port: parsePort(values.port!), host: values.host! });
  logger.info('broker.listening', { host: listener.host, port: listener.port });

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn('broker.shutdown.forced', { signal });
        process.exit(1);
      }
      stopping = true;
      logger.info('broker.shutdown.started', { signal });
      broker.close().then(
        () => {
          logger.info('broker.shutdown.finished', {});
          resolveExit(0);
        },
        (error: unknown) => {
          logger.error('broker.shutdown.failed', { error });
          resolveExit(1);
        },
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
