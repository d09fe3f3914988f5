/**
 * The broker process of a chaos run: what `ferry serve` does (Broker.open + listen), plus the two
 * hooks a fault scenario needs and serve.ts should not carry:
 *
 * - FERRY_FAULT_SYNC_LOG=<path>: the filesystem is wrapped in a FaultFileSystem that records what
 *   is durable, so the harness can emulate a power loss after killing this process;
 * - FERRY_CHAOS_CLOCK_FILE=<path>: the wall clock runs ahead of real time by the number of ms in
 *   that file, read at start and again on SIGUSR2 (a clock step while running).
 *
 * Usage: node --import tsx test/chaos/broker-process.ts <dir> <port>
 * Prints one JSON line on stdout once listening: { port, openMs, truncatedBytes, listenT }. Logs (JSON) go
 * to stderr. SIGTERM closes the broker cleanly and exits 0.
 */
import { readFileSync } from 'node:fs';
import { Broker } from '../../src/index.js';
import { NodeFileSystem, type FileSystem } from '../../src/platform/fs.js';
import { FaultFileSystem, SYNC_LOG_ENV, SyncLog } from '../../src/platform/fault-fs.js';
import { JsonLogger } from '../../src/platform/logger.js';
import { CLOCK_FILE_ENV, JumpClock } from './jump-clock.js';
import { nowT } from './history.js';

const [dir, portText] = process.argv.slice(2);
if (dir === undefined || portText === undefined) {
  console.error('usage: broker-process.ts <dir> <port>');
  process.exit(2);
}

const clock = new JumpClock();
const clockFile = process.env[CLOCK_FILE_ENV];
const readClockOffset = (): void => {
  if (clockFile === undefined) return;
  clock.offsetMs = Number(readFileSync(clockFile, 'utf8').trim()) || 0;
};
readClockOffset();
process.on('SIGUSR2', readClockOffset);

const syncLogPath = process.env[SYNC_LOG_ENV];
const fs: FileSystem = syncLogPath ? new FaultFileSystem(new NodeFileSystem(), new SyncLog(syncLogPath)) : new NodeFileSystem();
const logger = new JsonLogger('info');

const startedMs = performance.now();
const broker = await Broker.open({ dir, fs, clock, logger });
const openMs = performance.now() - startedMs;
let truncatedBytes = 0;
for (const reports of broker.recovery.values()) for (const report of reports) truncatedBytes += report.truncatedBytes;
// Clients may connect (and be answered) as soon as the socket listens, before the line below is
// read: the harness dates the incarnation from here.
const listenT = nowT();
const listener = await broker.listen({ port: Number(portText), host: '127.0.0.1' });
process.stdout.write(JSON.stringify({ port: listener.port, openMs: Math.round(openMs), truncatedBytes, listenT }) + '\n');

process.once('SIGTERM', () => {
  broker.close().then(
    () => process.exit(0),
    (error: unknown) => {
      logger.error('chaos.broker.close_failed', { error });
      process.exit(1);
    },
  );
});
