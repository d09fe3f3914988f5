/**
 * A broker with security on, in a process of its own, for the abuse tests: its memory (RSS) is
 * measured alone, and its event loop is not shared with the attackers or with the well-behaved
 * client. Settings come as JSON in argv[2]. When it listens it prints one JSON line
 * `{ "port", "pid" }`; each `stats` line on stdin is answered with one JSON line (server
 * statistics, rejections by code, RSS); it closes and exits when stdin ends.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { Broker } from '../../src/broker/broker.js';
import { SystemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { Authenticator } from '../../src/security/authenticator.js';
import { AccessGuard } from '../../src/security/guard.js';
import { Rejections } from '../../src/security/rejections.js';
import { TcpServer, type TcpServerOptions } from '../../src/transport/tcp/server.js';

export interface AbuseBrokerSettings {
  dir: string;
  usersPath: string;
  server: Omit<TcpServerOptions, 'clock' | 'logger' | 'security' | 'tls' | 'rejections'>;
  failureDelayMsMin: number;
  failureDelayMsMax: number;
}

export interface AbuseBrokerStats {
  stats: ReturnType<TcpServer['stats']>;
  rejections: ReturnType<Rejections['entries']>;
  rssBytes: number;
  /** The longest the event loop was blocked since the previous stats line. */
  eventLoopDelayMaxMs: number;
  /** CPU time this process has used (user + system) since it started: the broker's own cost, whoever else runs. */
  cpuMs: number;
  /** Times this process was descheduled while it could still run: how much the machine's other work got in its way. */
  involuntaryContextSwitches: number;
  /**
   * With FERRY_ABUSE_TURN_CPU=1 (bench/abuse-cost.ts): the most CPU time the process used between
   * two ticks of a 1 ms timer since the previous stats line — the longest stretch of work the
   * broker did without letting a timer (or a probe) in, which preemption by other processes does
   * not inflate the way it inflates the event-loop delay. 0 when off.
   */
  turnCpuMaxMs: number;
}

const settings = JSON.parse(process.argv[2]!) as AbuseBrokerSettings;
const clock = new SystemClock();
const broker = await Broker.open({ dir: settings.dir });
const authenticator = new Authenticator(settings.usersPath, clock, silentLogger, undefined, {
  required: true,
  failureDelayMsMin: settings.failureDelayMsMin,
  failureDelayMsMax: settings.failureDelayMsMax,
});
const guard = new AccessGuard(authenticator, { logger: silentLogger });
const rejections = new Rejections();
const server = new TcpServer(broker, { ...settings.server, clock, logger: silentLogger, security: { authenticator, guard }, rejections });
const { port } = await server.listen(0, '127.0.0.1');
process.stdout.write(JSON.stringify({ port, pid: process.pid }) + '\n');

/** Event-loop delay sampling resolution (ms): the histogram's samples include it. */
const LOOP_RESOLUTION_MS = 10;
const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
loop.enable();

let turnCpuMaxMs = 0;
if (process.env['FERRY_ABUSE_TURN_CPU'] === '1') {
  let last = process.cpuUsage();
  const tick = (): void => {
    const now = process.cpuUsage();
    turnCpuMaxMs = Math.max(turnCpuMaxMs, (now.user - last.user + now.system - last.system) / 1000);
    last = now;
    setTimeout(tick, 1).unref();
  };
  tick();
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() !== 'stats') return;
  const eventLoopDelayMaxMs = loop.count > 0 ? Math.max(0, loop.max / 1e6 - LOOP_RESOLUTION_MS) : 0;
  loop.reset();
  const usage = process.resourceUsage();
  const answer: AbuseBrokerStats = {
    stats: server.stats(),
    rejections: rejections.entries(),
    rssBytes: process.memoryUsage.rss(),
    eventLoopDelayMaxMs,
    cpuMs: (usage.userCPUTime + usage.systemCPUTime) / 1000,
    involuntaryContextSwitches: usage.involuntaryContextSwitches,
    turnCpuMaxMs,
  };
  turnCpuMaxMs = 0;
  process.stdout.write(JSON.stringify(answer) + '\n');
});
lines.on('close', () => {
  void (async () => {
    await server.close();
    guard.close();
    await broker.close();
    process.exit(0);
  })();
});
