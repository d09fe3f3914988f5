/**
 * Abuse against the limits, on live sockets: a broker with security on runs in a process of its
 * own (abuse-broker.ts), a well-behaved client in another (abuse-prober.ts) publishes one message
 * at a time throughout, and this process attacks from other loopback addresses (127.0.0.2...) at
 * the lowest CPU priority (nice 19), as an attacker that does not share the broker's CPU.
 * For each attack: the specified error or close comes within the configured time, the broker's
 * RSS stays under RSS_BYTES_MAX, and the prober's p99 round trip stays within P99_RATIO_MAX of
 * its unloaded value (the real ratios, the broker's CPU time and how often the machine's other
 * work preempted it are printed, and recorded in docs/SECURITY.md).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { constants as osConstants, getPriority, setPriority } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { connect, isFerryError, type FerryClient } from '../../src/client/index.js';
import { FRAME_TYPES } from '../../src/protocol/frame.js';
import { decodeError, encodeHello } from '../../src/protocol/codec-session.js';
import { encodeSubscribe } from '../../src/protocol/codec-subscribe.js';
import { PROTOCOL_VERSION, FRAME_BYTES_MAX_DEFAULT, FRAME_HEADER_BYTES } from '../../src/protocol/limits.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { RECORD_BYTES_MAX } from '../../src/storage/limits.js';
import { writeUsersFile } from '../../src/security/users-file.js';
import { eventually, tempDir, type TempDir } from '../helpers.js';
import { rawFrame } from '../protocol/frames.js';
import { usersFile } from '../security/harness.js';
import { RawPeer } from './harness.js';
import type { AbuseBrokerSettings, AbuseBrokerStats } from './abuse-broker.js';
import type { ProbeWindow } from './abuse-prober.js';

/** The limits under test, small enough to reach in a test and as named in docs/SECURITY.md. */
const LIMITS = {
  maxConnections: 250,
  maxConnectionsPerIp: 100,
  authTimeoutMs: 500,
  subscriptionsMax: 1024,
  writeHighWaterBytes: 256 * 1024,
  slowConsumerGraceMs: 1000,
  heartbeatIntervalMs: 1000,
  failureDelayMsMin: 20,
  failureDelayMsMax: 1000,
};
/** The broker process stays under this resident memory through every attack (tsx compiles in it too). */
const RSS_BYTES_MAX = 384 * 1024 * 1024;
/**
 * Asserted bound of p99 under attack / p99 before it; the aim is 2. Loose so that a busy 2-core
 * machine does not flake: at a load average of 2–3 the worst run came to 4–5 (with the floor
 * below), at 5–7 (other work preempting the broker hundreds of times per attack) to 6–10. The
 * broker's own cost is reported beside it as CPU time per attack (docs/SECURITY.md).
 */
const P99_RATIO_MAX = 10;
/**
 * The asserted ratio is taken against at least this p99: unloaded, a round trip on loopback takes
 * a fraction of a millisecond, and on a machine shared with other work (three processes of this
 * test on two cores, besides) one descheduling costs tens of milliseconds — the assertion then
 * reads "no attack stalls the well-behaved client beyond 10 × 10 ms". The raw ratio is reported.
 */
const P99_FLOOR_MS = 10;
const PASSWORD = 'abuse-password';

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** A child process that speaks JSON lines: one line out per line in. */
class LineChild {
  private readonly waiting: Array<(value: unknown) => void> = [];
  private readonly early: unknown[] = [];
  stderr = '';

  constructor(readonly child: ChildProcessWithoutNullStreams) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const value: unknown = JSON.parse(line);
      const waiter = this.waiting.shift();
      if (waiter === undefined) this.early.push(value);
      else waiter(value);
    });
    child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }

  static start(script: string, args: string[], nodeArgs: string[] = []): LineChild {
    return new LineChild(spawn(process.execPath, [...nodeArgs, '--import', 'tsx', join(HERE, script), ...args], { stdio: 'pipe' }));
  }

  next<T>(timeoutMs = 20_000): Promise<T> {
    if (this.early.length > 0) return Promise.resolve(this.early.shift() as T);
    return new Promise((resolve, reject) => {
      const waiter = (value: unknown): void => {
        clearTimeout(timer);
        resolve(value as T);
      };
      const timer = setTimeout(() => {
        // A late answer must not be taken for the next question's.
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(new Error(`no answer from the child within ${timeoutMs} ms: ${this.stderr}`));
      }, timeoutMs);
      this.waiting.push(waiter);
    });
  }

  ask<T>(line: string): Promise<T> {
    this.child.stdin.write(line + '\n');
    return this.next<T>();
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.child.stdin.end();
    });
  }
}

/**
 * Puts this process — the attacker — at the lowest CPU priority (nice 19), once the broker and the
 * prober have started at normal priority (children inherit it, and an unprivileged process cannot
 * raise it again). A real attacker does not run on the broker's CPU; here the three processes
 * share the machine's cores, and without this the attacker's own work (encoding 100,000 SUBSCRIBEs,
 * opening 300 sockets, writing 8 MiB) competes with the broker and the prober and is counted as
 * the broker's cost. Linux keeps a nice value per thread, so every thread is lowered (threads
 * started later inherit it). Returns the main thread's new nice value.
 */
function attackAtLowestPriority(): number {
  let threads: number[] = [0];
  try {
    threads = readdirSync('/proc/self/task').map(Number);
  } catch {
    // Not Linux: the nice value is per process.
  }
  for (const thread of threads) {
    try {
      setPriority(thread, osConstants.priority.PRIORITY_LOW);
    } catch {
      // A thread that ended meanwhile.
    }
  }
  return getPriority(0);
}

/**
 * Set FERRY_ABUSE_CONTROL=1 for the control run: the prober measures a second broker that nobody
 * attacks, so its p99 ratios show what the attacks cost the machine (shared cores), apart from
 * what they cost the attacked broker. The assertions stay the same. Both kinds of run start both
 * brokers and give both the same legitimate load (the slow consumer's producers), so that the
 * machine carries the same work in both and only the prober's broker differs: the attacked one,
 * or one just as busy that nobody attacks.
 */
const CONTROL_RUN = process.env['FERRY_ABUSE_CONTROL'] === '1';
/** Connections the attacked broker holds between attacks: the prober's, unless it measures the control broker. */
const IDLE_CONNECTIONS = CONTROL_RUN ? 0 : 1;

/** Set FERRY_ABUSE_CPU_PROF=<dir> to write a CPU profile of the broker process there (node --cpu-prof). */
const BROKER_NODE_ARGS = process.env['FERRY_ABUSE_CPU_PROF'] ? ['--cpu-prof', '--cpu-prof-dir', process.env['FERRY_ABUSE_CPU_PROF']] : [];

let dir: TempDir;
let broker: LineChild;
let prober: LineChild;
/** The broker nobody attacks: the prober's in the control run, idle but for the same legitimate load otherwise. */
let controlBroker: LineChild;
let controlPort = 0;
let port = 0;
let baselineP99Ms = 0;
interface Figures {
  attack: string;
  outcome: string;
  baseMs: number;
  p50Ms: number;
  p99Ms: number;
  rawRatio: number;
  /** Round trips in the window: with a few hundred, its p99 is one of its few longest. */
  probes: number;
  rssMiB: number;
  loopMs: number;
  /** The broker's CPU time over the attack, and how often it was descheduled while runnable (the machine's other work). */
  cpuMs: number;
  preempted: number;
}
const figures: Figures[] = [];

async function stats(): Promise<AbuseBrokerStats> {
  return broker.ask<AbuseBrokerStats>('stats');
}

function rejected(snapshot: AbuseBrokerStats, code: string): number {
  return snapshot.rejections.filter((entry) => entry.code === code).reduce((sum, entry) => sum + entry.count, 0);
}

interface AttackOptions {
  /** Starts load that is not the attack (producers), measured in the baseline as well; returns its stopper. */
  load?: () => Promise<() => Promise<void>>;
}

/** How long the prober is measured unloaded right before each attack. */
const BASELINE_WINDOW_MS = 600;

/**
 * Runs an attack while sampling the broker's RSS, then reads the prober's window over it. The
 * ratio is taken against the larger of the first baseline and one measured just before this
 * attack, so that load from elsewhere on the machine moves both sides alike.
 */
async function underAttack<T>(name: string, attack: () => Promise<T>, outcome: (result: T) => string, options: AttackOptions = {}): Promise<T> {
  // Legitimate load that runs through the baseline too: the ratio then isolates the attack.
  const stopLoad = options.load === undefined ? null : await options.load();
  await prober.ask<ProbeWindow>('window');
  await new Promise((resolve) => setTimeout(resolve, BASELINE_WINDOW_MS));
  const fresh = await prober.ask<ProbeWindow>('window');
  const unloadedP99Ms = Math.max(baselineP99Ms, fresh.p99Ms);
  let rssMaxBytes = 0;
  let loopMaxMs = 0;
  let sampling = true;
  const sample = (snapshot: AbuseBrokerStats): void => {
    rssMaxBytes = Math.max(rssMaxBytes, snapshot.rssBytes);
    loopMaxMs = Math.max(loopMaxMs, snapshot.eventLoopDelayMaxMs);
  };
  const start = await stats();
  sample(start);
  loopMaxMs = 0;
  const sampler = (async () => {
    while (sampling) {
      sample(await stats());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  let result: T;
  try {
    result = await attack();
  } finally {
    sampling = false;
    await sampler;
    await stopLoad?.();
  }
  const window = await prober.ask<ProbeWindow>('window');
  const end = await stats();
  sample(end);
  const ratio = window.p99Ms / Math.max(unloadedP99Ms, P99_FLOOR_MS);
  const rawRatio = window.p99Ms / unloadedP99Ms;
  figures.push({
    attack: name,
    outcome: outcome(result),
    baseMs: round(unloadedP99Ms),
    p50Ms: round(window.p50Ms),
    p99Ms: round(window.p99Ms),
    rawRatio: round(rawRatio),
    probes: window.count,
    rssMiB: Math.round(rssMaxBytes / 2 ** 20),
    loopMs: Math.round(loopMaxMs),
    cpuMs: Math.round(end.cpuMs - start.cpuMs),
    preempted: end.involuntaryContextSwitches - start.involuntaryContextSwitches,
  });
  assert.ok(rssMaxBytes < RSS_BYTES_MAX, `${name}: broker RSS reached ${Math.round(rssMaxBytes / 2 ** 20)} MiB`);
  assert.ok(window.count > 0, `${name}: the prober completed no request during the attack`);
  assert.equal(window.errors, 0, `${name}: the prober's requests failed`);
  assert.ok(ratio < P99_RATIO_MAX, `${name}: prober p99 ${round(window.p99Ms)} ms vs ${round(unloadedP99Ms)} ms before the attack (floor ${P99_FLOOR_MS} ms)`);
  return result;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** A raw peer from `localAddress` that has logged in as `user`. */
async function loggedIn(localAddress: string, user = 'flood', password = PASSWORD): Promise<RawPeer> {
  const peer = await RawPeer.connect(port, localAddress);
  encodeHello(peer.writer, 1, { clientName: 'attacker', versions: [PROTOCOL_VERSION], user, password });
  peer.flush();
  return peer;
}

/** The first answer to HELLO: 'ok', or the error code. */
async function helloOutcome(peer: RawPeer, timeoutMs = 5000): Promise<string> {
  const frame = await eventually(
    () => {
      const found = peer.frames.find((f) => f.type === FRAME_TYPES.HELLO_OK || f.type === FRAME_TYPES.ERROR);
      if (found === undefined) throw new Error(`no answer yet (closed: ${peer.closed})`);
      return found;
    },
    { timeoutMs },
  );
  return frame.type === FRAME_TYPES.HELLO_OK ? 'ok' : peer.errorCodes()[0]!;
}

before(async () => {
  dir = await tempDir('ferry-abuse-');
  const usersPath = join(dir.path, 'users.json');
  writeUsersFile(
    usersPath,
    await usersFile({
      root: { password: PASSWORD, allow: ['admin:*', 'publish:*', 'consume:*'] },
      prober: { password: PASSWORD, allow: ['publish:probe'] },
      flood: { password: PASSWORD, allow: ['publish:flood', 'consume:flood'] },
    }),
  );
  const settings: AbuseBrokerSettings = {
    dir: join(dir.path, 'data'),
    usersPath,
    failureDelayMsMin: LIMITS.failureDelayMsMin,
    failureDelayMsMax: LIMITS.failureDelayMsMax,
    server: {
      maxConnections: LIMITS.maxConnections,
      maxConnectionsPerIp: LIMITS.maxConnectionsPerIp,
      authTimeoutMs: LIMITS.authTimeoutMs,
      subscriptionsMax: LIMITS.subscriptionsMax,
      writeHighWaterBytes: LIMITS.writeHighWaterBytes,
      slowConsumerGraceMs: LIMITS.slowConsumerGraceMs,
      heartbeatIntervalMs: LIMITS.heartbeatIntervalMs,
    },
  };
  broker = LineChild.start('abuse-broker.ts', [JSON.stringify(settings)], BROKER_NODE_ARGS);
  port = (await broker.next<{ port: number }>()).port;
  const admin = await connect({ port, user: 'root', password: PASSWORD, reconnect: false });
  await admin.createTopic('probe', { durability: 'never' });
  await admin.createTopic('flood', { durability: 'never' });
  await admin.close();
  controlBroker = LineChild.start('abuse-broker.ts', [JSON.stringify({ ...settings, dir: join(dir.path, 'control-data') })]);
  controlPort = (await controlBroker.next<{ port: number }>()).port;
  const controlAdmin = await connect({ port: controlPort, user: 'root', password: PASSWORD, reconnect: false });
  await controlAdmin.createTopic('probe', { durability: 'never' });
  await controlAdmin.createTopic('flood', { durability: 'never' });
  await controlAdmin.close();
  prober = LineChild.start('abuse-prober.ts', [String(CONTROL_RUN ? controlPort : port), 'prober', PASSWORD, 'probe']);
  await prober.next<{ ready: boolean }>();
  assert.equal(attackAtLowestPriority(), osConstants.priority.PRIORITY_LOW, 'the attacker runs at nice 19');
  // Warm up (JIT, first allocations), then measure the unloaded p99.
  await new Promise((resolve) => setTimeout(resolve, 500));
  await prober.ask<ProbeWindow>('window');
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const baseline = await prober.ask<ProbeWindow>('window');
  baselineP99Ms = baseline.p99Ms;
  const unloaded = await stats();
  figures.push({
    attack: 'none (baseline)',
    outcome: `${baseline.count} probes`,
    baseMs: round(baseline.p99Ms),
    p50Ms: round(baseline.p50Ms),
    p99Ms: round(baseline.p99Ms),
    rawRatio: 1,
    probes: baseline.count,
    rssMiB: Math.round(unloaded.rssBytes / 2 ** 20),
    loopMs: 0,
    cpuMs: 0,
    preempted: 0,
  });
});

after(async () => {
  await prober?.stop();
  await broker?.stop();
  await controlBroker?.stop();
  await dir?.remove();
  if (CONTROL_RUN) console.log('control run: the prober measured a second broker that was not attacked');
  console.log(
    [
      '| attack | outcome | prober p99 before, ms | prober p50 ms | prober p99 ms | p99 / before | probes | broker RSS MiB (max) | broker event-loop stall ms (max) | broker CPU ms | broker preempted |',
      '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...figures.map((f) => `| ${f.attack} | ${f.outcome} | ${f.baseMs} | ${f.p50Ms} | ${f.p99Ms} | ${f.rawRatio} | ${f.probes} | ${f.rssMiB} | ${f.loopMs} | ${f.cpuMs} | ${f.preempted} |`),
    ].join('\n'),
  );
});

test('abuse limits - a frame of maxFrameBytes + 1 closes the connection; a record of the maximum + 1 is refused and its connection closed unread', async () => {
  // The logins are the attacker's way in, not the attack (brute force and the storm measure them):
  // made before the window, as for the subscription flood.
  const peer = await loggedIn('127.0.0.2');
  assert.equal(await helloOutcome(peer), 'ok');
  const client = await connect({ port, user: 'flood', password: PASSWORD, reconnect: false });
  const other = await connect({ port, user: 'flood', password: PASSWORD, reconnect: false });
  try {
    await underAttack(
      'payload max+1',
      async () => {
        const started = performance.now();
        // Only the header is sent: the declared length alone is refused, before any payload is buffered.
        const header = rawFrame(FRAME_TYPES.PUBLISH, 9, Buffer.alloc(0));
        header.writeUInt32BE(FRAME_BYTES_MAX_DEFAULT - FRAME_HEADER_BYTES + 1, 10);
        peer.send(header);
        await peer.waitClosed();
        const frameMs = performance.now() - started;
        assert.deepEqual(peer.errorCodes(), ['FRAME_TOO_LARGE']);
        // Refused at the message's length; the 8 MiB behind it are not read: the connection is closed.
        await assert.rejects(client.publish('flood', Buffer.alloc(RECORD_BYTES_MAX + 1)), (error: unknown) => isFerryError(error, 'RECORD_TOO_LARGE'));
        // The user's other connection publishes on.
        assert.equal((await other.publish('flood', 'still fine')).topic, 'flood');
        return frameMs;
      },
      (frameMs) => `FRAME_TOO_LARGE, closed in ${Math.round(frameMs)} ms; RECORD_TOO_LARGE, that connection closed unread`,
    );
  } finally {
    peer.destroy();
    await client.close().catch(() => undefined);
    await other.close();
  }
  // The closed-unread connection is destroyed after its linger (1 s): the storm below counts the slots left.
  await eventually(async () => assert.ok((await stats()).stats.connections <= IDLE_CONNECTIONS, 'the attacker connections are gone'), { timeoutMs: 5000 });
});

test('abuse limits - connections past the per-IP and the total maximum are refused with TOO_MANY_CONNECTIONS', async () => {
  const open: RawPeer[] = [];
  try {
    const before = (await stats()).stats.connections;
    const outcome = await underAttack(
      'connections past the max',
      async () => {
        const results: Record<string, string[]> = {};
        for (const address of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) {
          const peers = await Promise.all(Array.from({ length: LIMITS.maxConnectionsPerIp + 1 }, () => loggedIn(address)));
          open.push(...peers);
          results[address] = await Promise.all(peers.map((peer) => helloOutcome(peer)));
        }
        return results;
      },
      (results) => {
        const ok = Object.values(results).flat().filter((r) => r === 'ok').length;
        return `${ok} accepted, ${Object.values(results).flat().length - ok} refused (TOO_MANY_CONNECTIONS)`;
      },
    );
    const count = (address: string, what: string) => outcome[address]!.filter((r) => r === what).length;
    for (const address of ['127.0.0.2', '127.0.0.3']) {
      assert.equal(count(address, 'ok'), LIMITS.maxConnectionsPerIp, address);
      assert.equal(count(address, 'TOO_MANY_CONNECTIONS'), 1, address);
    }
    const room = LIMITS.maxConnections - before - 2 * LIMITS.maxConnectionsPerIp;
    assert.equal(count('127.0.0.4', 'ok'), room);
    assert.equal(count('127.0.0.4', 'TOO_MANY_CONNECTIONS'), LIMITS.maxConnectionsPerIp + 1 - room);
    assert.equal((await stats()).stats.connections, LIMITS.maxConnections);
  } finally {
    for (const peer of open) peer.destroy();
  }
  // Every polled assert has a message: without one, node:assert parses the source to make one (slow under tsx).
  await eventually(async () => assert.ok((await stats()).stats.connections <= IDLE_CONNECTIONS, 'the flood connections are gone'));
});

test('abuse limits - slowloris: silent sockets, half a HELLO and a HELLO sent a byte at a time are closed at authTimeoutMs', async () => {
  const { earliestMs, latestMs } = await underAttack(
    'slowloris (240 sockets)',
    async () => {
      const hello = rawFrame(FRAME_TYPES.HELLO, 1, Buffer.alloc(40));
      const timers: NodeJS.Timeout[] = [];
      const peers = await Promise.all(
        Array.from({ length: 240 }, async (_, i) => {
          // The server's timer starts at its accept: after the connect began here, so "closed -
          // requested" bounds it from below however late this low-priority process runs; "closed -
          // connected" bounds it from above, give or take the accept's delay.
          const requestedMs = performance.now();
          const peer = await RawPeer.connect(port, `127.0.0.${5 + (i % 3)}`);
          const connectedMs = performance.now();
          if (i % 3 === 1) peer.send(hello.subarray(0, 20));
          if (i % 3 === 2) {
            let sent = 0;
            const dribble = setInterval(() => {
              if (peer.closed || sent >= hello.length) return clearInterval(dribble);
              peer.send(hello.subarray(sent, sent + 1));
              sent++;
            }, 50);
            timers.push(dribble);
          }
          return { peer, requestedMs, connectedMs };
        }),
      );
      const closed = await Promise.all(
        peers.map(async ({ peer, requestedMs, connectedMs }) => {
          await peer.waitClosed(5000);
          assert.deepEqual(peer.errorCodes(), ['AUTH_REQUIRED']);
          const nowMs = performance.now();
          return { sinceRequestedMs: nowMs - requestedMs, sinceConnectedMs: nowMs - connectedMs };
        }),
      );
      for (const timer of timers) clearInterval(timer);
      return { earliestMs: Math.min(...closed.map((c) => c.sinceRequestedMs)), latestMs: Math.max(...closed.map((c) => c.sinceConnectedMs)) };
    },
    (r) => `all 240 closed with AUTH_REQUIRED, the last ${Math.round(r.latestMs)} ms after opening`,
  );
  assert.ok(earliestMs >= LIMITS.authTimeoutMs - 20, `one was closed ${earliestMs} ms after it was opened`);
  assert.ok(latestMs < LIMITS.authTimeoutMs + 1500, `one was closed ${latestMs} ms after it was opened`);
});

test('abuse limits - 100,000 subscriptions on one connection: the first subscriptionsMax succeed, the rest are refused at once', async () => {
  const SUBSCRIPTIONS = 100_000;
  const peer = await loggedIn('127.0.0.2');
  try {
    assert.equal(await helloOutcome(peer), 'ok');
    const { elapsedMs, subscribed, refused } = await underAttack(
      '100,000 subscriptions, one connection',
      async () => {
        const started = performance.now();
        for (let id = 2; id < SUBSCRIPTIONS + 2; id++) encodeSubscribe(peer.writer, id, { topic: 'flood', from: { kind: 'latest' }, credit: 1 });
        peer.flush();
        await eventually(() => assert.equal(peer.frames.length, SUBSCRIPTIONS + 1), { timeoutMs: 30_000, intervalMs: 50 });
        const elapsedMs = performance.now() - started;
        const reader = new PayloadReader();
        let refused = 0;
        for (const frame of peer.frames) if (frame.type === FRAME_TYPES.ERROR && decodeError(reader.reset(frame.payload)).code === 'TOO_MANY_SUBSCRIPTIONS') refused++;
        return { elapsedMs, subscribed: peer.frames.filter((f) => f.type === FRAME_TYPES.SUBSCRIBED).length, refused };
      },
      (r) => `${r.subscribed} subscribed, ${r.refused} TOO_MANY_SUBSCRIPTIONS in ${Math.round(r.elapsedMs)} ms`,
    );
    assert.equal(subscribed, LIMITS.subscriptionsMax);
    assert.equal(refused, SUBSCRIPTIONS - LIMITS.subscriptionsMax);
    assert.ok(elapsedMs < 15_000, `took ${elapsedMs} ms`);
    assert.equal(peer.closed, false, 'refusals are per request: the connection stays');
  } finally {
    peer.destroy();
  }
});

test('abuse limits - a consumer that never reads while producers run flat out is paused, then disconnected as SLOW_CONSUMER', async () => {
  const slowBefore = (await stats()).stats.slowConsumersTotal;
  const producers: FerryClient[] = [];
  const reader = await loggedIn('127.0.0.3');
  let producing = false;
  let published = 0;
  const running: Array<Promise<void>> = [];
  const value = Buffer.alloc(1024, 7);
  /** One producer "flat out": 64 publishes always in flight; `counted`: to the attacked broker. */
  const produce = async (client: FerryClient, counted: boolean): Promise<void> => {
    const IN_FLIGHT = 64;
    const inFlight = new Set<Promise<unknown>>();
    while (producing) {
      const sent = client.publish('flood', value).then(() => (counted ? published++ : undefined));
      inFlight.add(sent);
      void sent.finally(() => inFlight.delete(sent));
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
    }
    await Promise.allSettled(inFlight);
  };
  const stopProducing = async (): Promise<void> => {
    producing = false;
    await Promise.allSettled(running);
  };
  try {
    assert.equal(await helloOutcome(reader), 'ok');
    // Two producers for the attacked broker, two as well for the one nobody attacks (the control
    // run's prober's): the same legitimate load on both, whichever the prober measures.
    for (const to of [port, port, controlPort, controlPort]) producers.push(await connect({ port: to, user: 'flood', password: PASSWORD, reconnect: false }));
    const result = await underAttack(
      'consumer never reads, 2 producers flat out',
      async () => {
        const publishedBefore = published;
        encodeSubscribe(reader.writer, 2, { topic: 'flood', from: { kind: 'latest' }, credit: 1_000_000 });
        reader.flush();
        await reader.reply(2, FRAME_TYPES.SUBSCRIBED);
        reader.socket.pause();
        const started = performance.now();
        let disconnectedMs = -1;
        await eventually(
          async () => {
            assert.ok((await stats()).stats.slowConsumersTotal > slowBefore, 'not disconnected yet');
            disconnectedMs = performance.now() - started;
          },
          { timeoutMs: 15_000, intervalMs: 50 },
        );
        // Keep producing a little past the disconnect: the broker must stay well after it, too.
        await new Promise((resolve) => setTimeout(resolve, 300));
        return { disconnectedMs, published: published - publishedBefore };
      },
      (r) => `SLOW_CONSUMER after ${Math.round(r.disconnectedMs)} ms; ${r.published} messages published meanwhile`,
      {
        // The producers run through the baseline too: the ratio is what the stuck consumer adds.
        load: async () => {
          producing = true;
          running.push(...producers.map((producer, i) => produce(producer, i < 2)));
          return stopProducing;
        },
      },
    );
    assert.ok(result.disconnectedMs < LIMITS.slowConsumerGraceMs + 2000, `disconnected after ${result.disconnectedMs} ms`);
    assert.ok(result.published > 1000, 'the producers kept going');
    reader.socket.resume();
    await reader.waitClosed();
  } finally {
    await stopProducing();
    reader.destroy();
    for (const producer of producers) await producer.close();
  }
});

test('abuse limits - password brute force is slowed: each failure waits twice as long as the last', async () => {
  const ATTEMPTS = 6;
  const { durations, elapsedMs } = await underAttack(
    `password brute force (${ATTEMPTS} guesses)`,
    async () => {
      const durations: number[] = [];
      const started = performance.now();
      for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
        const at = performance.now();
        const peer = await loggedIn('127.0.0.8', 'root', `guess-${attempt}`);
        assert.equal(await helloOutcome(peer, 10_000), 'AUTH_FAILED');
        await peer.waitClosed();
        durations.push(performance.now() - at);
      }
      return { durations, elapsedMs: performance.now() - started };
    },
    (r) => `AUTH_FAILED ×${ATTEMPTS} in ${Math.round(r.elapsedMs)} ms (${r.durations.map((d) => Math.round(d)).join(', ')} ms each)`,
  );
  // 20 + 40 + 80 + 160 + 320 + 640 ms of enforced delay (an unslowed guess takes ~2 ms).
  const delaySumMs = Array.from({ length: ATTEMPTS }, (_, k) => Math.min(LIMITS.failureDelayMsMax, LIMITS.failureDelayMsMin * 2 ** k)).reduce((a, b) => a + b, 0);
  assert.ok(elapsedMs >= delaySumMs - 20, `${ATTEMPTS} guesses took ${elapsedMs} ms`);
  assert.ok(durations.at(-1)! > 4 * durations[0]!, `delays grow: ${durations.join(', ')}`);
  // The right password still works, at once, from an address that did not fail.
  const client = await connect({ port, user: 'flood', password: PASSWORD, reconnect: false });
  await client.close();
  assert.ok(rejected(await stats(), 'AUTH_FAILED') >= ATTEMPTS);
});
