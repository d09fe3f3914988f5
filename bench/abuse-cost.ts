/**
 * What one abuse attack costs the broker, measured in a way a shared machine does not blur: the
 * broker of the abuse tests (test/transport/abuse-broker.ts) runs in a process of its own, this
 * process attacks it (at nice 19) `rounds` times, and the broker's CPU time per round (user +
 * system, process.resourceUsage) and its event-loop delay are reported, median and range over the
 * rounds after the first (the first warms the JIT), with the most CPU it used between two ticks of a
 * 1 ms timer (its longest stretch of work, which other processes' preemption does not inflate).
 * A profile of the broker: `--cpu-prof <dir>`.
 *
 *   node --import tsx bench/abuse-cost.ts <oversized|subscriptions|slow-consumer|brute-force|slowloris> [rounds] [--cpu-prof dir]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { constants as osConstants, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { connect, isFerryError, type FerryClient } from '../src/client/index.js';
import { encodeHello } from '../src/protocol/codec-session.js';
import { encodeSubscribe } from '../src/protocol/codec-subscribe.js';
import { FRAME_TYPES } from '../src/protocol/frame.js';
import { PROTOCOL_VERSION } from '../src/protocol/limits.js';
import { writeUsersFile } from '../src/security/users-file.js';
import { RECORD_BYTES_MAX } from '../src/storage/limits.js';
import { usersFile } from '../test/security/harness.js';
import type { AbuseBrokerSettings, AbuseBrokerStats } from '../test/transport/abuse-broker.js';
import { RawPeer } from '../test/transport/harness.js';

const PASSWORD = 'abuse-password';
const [attackName = 'oversized', roundsArg = '6'] = process.argv.slice(2).filter((arg, i, all) => !arg.startsWith('--') && all[i - 1] !== '--cpu-prof');
const profileAt = process.argv.indexOf('--cpu-prof');
const nodeArgs = profileAt > 0 ? ['--cpu-prof', '--cpu-prof-dir', process.argv[profileAt + 1]!] : [];

const dir = mkdtempSync(join(tmpdir(), 'ferry-abuse-cost-'));
const usersPath = join(dir, 'users.json');
writeUsersFile(
  usersPath,
  await usersFile({
    root: { password: PASSWORD, allow: ['admin:*', 'publish:*', 'consume:*'] },
    flood: { password: PASSWORD, allow: ['publish:flood', 'consume:flood'] },
  }),
);
const settings: AbuseBrokerSettings = {
  dir: join(dir, 'data'),
  usersPath,
  failureDelayMsMin: 20,
  failureDelayMsMax: 1000,
  server: { maxConnections: 250, maxConnectionsPerIp: 100, authTimeoutMs: 500, subscriptionsMax: 1024, writeHighWaterBytes: 256 * 1024, slowConsumerGraceMs: 1000, heartbeatIntervalMs: 1000 },
};
const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', new URL('../test/transport/abuse-broker.ts', import.meta.url).pathname, JSON.stringify(settings)], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, FERRY_ABUSE_TURN_CPU: '1' } });
const answers: Array<(line: string) => void> = [];
createInterface({ input: child.stdout }).on('line', (line) => answers.shift()?.(line));
const nextLine = (): Promise<string> => new Promise((resolve) => answers.push(resolve));
const { port } = JSON.parse(await nextLine()) as { port: number };
const stats = async (): Promise<AbuseBrokerStats> => {
  const line = nextLine();
  child.stdin.write('stats\n');
  return JSON.parse(await line) as AbuseBrokerStats;
};
const admin = await connect({ port, user: 'root', password: PASSWORD, reconnect: false });
await admin.createTopic('flood', { durability: 'never' });
await admin.close();
setPriority(0, osConstants.priority.PRIORITY_LOW);

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function loggedIn(address: string, user = 'flood', password = PASSWORD): Promise<RawPeer> {
  const peer = await RawPeer.connect(port, address);
  encodeHello(peer.writer, 1, { clientName: 'attacker', versions: [PROTOCOL_VERSION], user, password });
  peer.flush();
  return peer;
}

async function until(check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error('timed out');
    await sleep(5);
  }
}

let oversizedClient: FerryClient | undefined;

/** Made before a round is measured: a login's scrypt is not the attack's cost. */
const PREPARE: Record<string, () => Promise<void>> = {
  async oversized() {
    // A fresh logged-in client each round: the refusal closes its connection.
    await oversizedClient?.close().catch(() => undefined);
    oversizedClient = await connect({ port, user: 'flood', password: PASSWORD, reconnect: false });
  },
};

/** One round of each attack; resolves when the attack's outcome is seen. */
const ATTACKS: Record<string, () => Promise<void>> = {
  async oversized() {
    await oversizedClient!.publish('flood', Buffer.alloc(RECORD_BYTES_MAX + 1)).then(
      () => Promise.reject(new Error('accepted')),
      (error: unknown) => (isFerryError(error, 'RECORD_TOO_LARGE') ? undefined : Promise.reject(error)),
    );
  },
  async subscriptions() {
    const peer = await loggedIn('127.0.0.2');
    await peer.reply(1, FRAME_TYPES.HELLO_OK);
    for (let id = 2; id < 100_002; id++) encodeSubscribe(peer.writer, id, { topic: 'flood', from: { kind: 'latest' }, credit: 1 });
    peer.flush();
    await until(() => peer.frames.length === 100_001);
    peer.destroy();
  },
  async 'slow-consumer'() {
    const reader = await loggedIn('127.0.0.3');
    await reader.reply(1, FRAME_TYPES.HELLO_OK);
    encodeSubscribe(reader.writer, 2, { topic: 'flood', from: { kind: 'latest' }, credit: 1_000_000 });
    reader.flush();
    await reader.reply(2, FRAME_TYPES.SUBSCRIBED);
    reader.socket.pause();
    const slowBefore = (await stats()).stats.slowConsumersTotal;
    const deadline = performance.now() + 15_000;
    while ((await stats()).stats.slowConsumersTotal === slowBefore && performance.now() < deadline) await sleep(50);
    // A little past the disconnect, as in the test.
    await sleep(300);
    reader.destroy();
  },
  async 'brute-force'() {
    for (let attempt = 0; attempt < 6; attempt++) {
      const peer = await loggedIn(`127.0.1.${attempt + 1}`, 'root', `guess-${attempt}`);
      await until(() => peer.frames.some((f) => f.type === FRAME_TYPES.ERROR));
      peer.destroy();
    }
  },
  async slowloris() {
    const peers = await Promise.all(Array.from({ length: 240 }, (_, i) => RawPeer.connect(port, `127.0.0.${5 + (i % 3)}`)));
    await until(() => peers.every((peer) => peer.closed), 5000);
  },
};

/** The slow consumer's round runs while two producers publish flat out; the same load alone is measured beside it. */
async function withProducers<T>(run: () => Promise<T>): Promise<{ result: T; published: number }> {
  const producers: FerryClient[] = [];
  for (let i = 0; i < 2; i++) producers.push(await connect({ port, user: 'flood', password: PASSWORD, reconnect: false }));
  let producing = true;
  let published = 0;
  const value = Buffer.alloc(1024, 7);
  const loops = producers.map(async (client) => {
    const inFlight = new Set<Promise<unknown>>();
    while (producing) {
      const sent = client.publish('flood', value).then(() => published++);
      inFlight.add(sent);
      void sent.finally(() => inFlight.delete(sent));
      if (inFlight.size >= 64) await Promise.race(inFlight);
    }
    await Promise.allSettled(inFlight);
  });
  try {
    return { result: await run(), published };
  } finally {
    producing = false;
    await Promise.all(loops);
    for (const producer of producers) await producer.close();
  }
}

const attack = ATTACKS[attackName];
if (attack === undefined) throw new Error(`unknown attack ${attackName}: one of ${Object.keys(ATTACKS).join(', ')}`);
const rounds = Number(roundsArg);
const rows: Array<{ cpuMs: number; wallMs: number; loopMaxMs: number; turnCpuMaxMs: number; cpuPerKMessages?: number; aloneCpuPerKMessages?: number }> = [];
for (let round = 0; round < rounds; round++) {
  await PREPARE[attackName]?.();
  const before = await stats();
  const started = performance.now();
  if (attackName === 'slow-consumer') {
    // The producers alone for as long as the attack took last time, then with the stuck consumer.
    const alone = await withProducers(async () => {
      const at = await stats();
      await sleep(1500);
      return at;
    });
    const aloneEnd = await stats();
    const aloneCpu = aloneEnd.cpuMs - alone.result.cpuMs;
    const startedAttack = await stats();
    const attacked = await withProducers(attack);
    const end = await stats();
    const cpuMs = end.cpuMs - startedAttack.cpuMs;
    rows.push({ cpuMs, wallMs: performance.now() - started, loopMaxMs: end.eventLoopDelayMaxMs, turnCpuMaxMs: end.turnCpuMaxMs, cpuPerKMessages: (1000 * cpuMs) / attacked.published, aloneCpuPerKMessages: (1000 * aloneCpu) / alone.published });
  } else {
    await attack();
    const end = await stats();
    rows.push({ cpuMs: end.cpuMs - before.cpuMs, wallMs: performance.now() - started, loopMaxMs: end.eventLoopDelayMaxMs, turnCpuMaxMs: end.turnCpuMaxMs });
  }
  await sleep(attackName === 'brute-force' ? 1200 : 200);
}
await oversizedClient?.close().catch(() => undefined);
child.stdin.end();
await new Promise((resolve) => child.once('exit', resolve));
rmSync(dir, { recursive: true, force: true });

const warm = rows.slice(1);
const summary = (key: keyof (typeof rows)[number]): string => {
  const values = warm.map((row) => row[key]).filter((v): v is number => v !== undefined).sort((a, b) => a - b);
  if (values.length === 0) return '-';
  const median = values[Math.floor(values.length / 2)]!;
  return `${median.toFixed(1)} (${values[0]!.toFixed(1)}–${values.at(-1)!.toFixed(1)})`;
};
console.log(JSON.stringify(rows.map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Math.round(v * 10) / 10])))));
console.log(`${attackName}: broker CPU ms per round ${summary('cpuMs')}; event-loop delay max ms ${summary('loopMaxMs')}; longest CPU stretch between 1 ms ticks ${summary('turnCpuMaxMs')} ms; wall ms ${summary('wallMs')}` + (attackName === 'slow-consumer' ? `; broker CPU ms per 1,000 messages published, with the stuck consumer ${summary('cpuPerKMessages')}, producers alone ${summary('aloneCpuPerKMessages')}` : ''));
