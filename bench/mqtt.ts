/**
 * `npm run bench -- --mqtt`: Ferry's MQTT port (docs/MQTT.md) beside mosquitto (Debian's, with
 * persistence on) and aedes (its default in-memory persistence), each in a process of its own on
 * loopback, driven by mqtt.js clients in this process:
 *
 *   npm run bench -- --mqtt [--seconds 10] [--only ferry,mosquitto,aedes,floor] [--no-build]
 *        [--figures publish,fan-out,e2e] [--publisher mqttjs|lean] [--ferry-checkout DIR]
 *
 * 1. QoS 1 publish throughput: one publisher, 1 KiB payloads, at most 1,000 unacknowledged.
 *    Ferry's topic is `durability: always`, so each PUBACK waits for fdatasync; neither peer syncs.
 * 2. QoS 1 fan-out: one publisher as above, ten QoS 1 subscribers; deliveries per second.
 * 3. End-to-end latency at 5,000 msgs/s: an open-loop QoS 1 publisher, one QoS 1 subscriber,
 *    publish → receive p50 and p99 (the send time rides in the payload).
 *
 * `floor` (only with `--only`, publish figure only) is bench/mqtt-floor.ts: a server that answers
 * each PUBLISH with a PUBACK and does nothing else, the most the publisher can show on this machine.
 * `--publisher lean` publishes figure 1 with bench/mqtt-publisher.ts instead of mqtt.js (the same
 * contract: one connection, QoS 1, 1 KiB, at most 1,000 unacknowledged), for every broker alike.
 * `--ferry-checkout DIR` runs DIR's bin/ferry.js (built) as Ferry, to compare two builds with one client.
 *
 * Prints markdown and writes bench/results/<date>-mqtt-<commit>.json; it does not touch
 * docs/BENCHMARKS.md. Servers are stopped by their PIDs, and their temp dirs removed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import { connectAsync, type MqttClient } from 'mqtt';
import { currentCommit, launcherNodeFlags, REPO_ROOT } from './checkout.js';
import { leanPublish } from './mqtt-publisher.js';
import { ensureBuilt } from './peers/ferry.js';
import { LOOPBACK_HOST, ProcessRegistry, type ServerProcess } from './processes.js';

const USAGE = 'usage: npm run bench -- --mqtt [--seconds 10] [--only ferry,mosquitto,aedes,floor] [--no-build] [--figures publish,fan-out,e2e] [--publisher mqttjs|lean] [--ferry-checkout DIR]';
const MOSQUITTO = '/usr/sbin/mosquitto';
const PAYLOAD_BYTES = 1024;
const IN_FLIGHT_MAX = 1_000;
const FAN_OUT_SUBSCRIBERS = 10;
const E2E_RATE_PER_SECOND = 5_000;
const TOPIC = 'bench/load';
/** /proc's unit of CPU time (USER_HZ; 100 on Linux everywhere Node runs). */
const CLOCK_TICKS_PER_SECOND = 100;
const PEERS = ['ferry', 'mosquitto', 'aedes', 'floor'] as const;
/** Measured when --only does not say: the floor is asked for by name. */
const DEFAULT_PEERS: readonly Peer[] = ['ferry', 'mosquitto', 'aedes'];
type Peer = (typeof PEERS)[number];
const FIGURES = ['publish', 'fan-out', 'e2e'] as const;
type Figure = (typeof FIGURES)[number];
const PUBLISHERS = ['mqttjs', 'lean'] as const;
type Publisher = (typeof PUBLISHERS)[number];

interface RunOptions {
  seconds: number;
  figures: readonly Figure[];
  publisher: Publisher;
  /** The checkout whose bin/ferry.js runs as Ferry. */
  ferryCheckout: string;
}

interface PeerResult {
  peer: Peer;
  publishPerSecond: number;
  /** The broker process's CPU time (user + system, all its threads) per acknowledged publish in figure 1: on a shared machine, steadier than the rate. */
  publishBrokerCpuUs: number;
  fanOutDeliveriesPerSecond: number;
  e2eP50Ms: number;
  e2eP99Ms: number;
  e2eReceived: number;
  e2eSent: number;
}

function startSpec(registry: ProcessRegistry, peer: Peer, ferryCheckout: string): Promise<ServerProcess> {
  if (peer === 'ferry') {
    const launcher = join(ferryCheckout, 'bin', 'ferry.js');
    return registry.start({
      name: 'ferry-mqtt',
      command: process.execPath,
      args: (port, dataDir) => {
        const config = join(dataDir, 'ferry.json');
        writeFileSync(config, JSON.stringify({ topics: { bench: { durability: 'always' } } }));
        return [...launcherNodeFlags(), launcher, 'serve', '--config', config, '--dir', join(dataDir, 'data'), '--port', '0', '--mqtt-port', String(port), '--log-level', 'warn', '--set', `mqtt.inflightMax=${IN_FLIGHT_MAX}`];
      },
      cwd: ferryCheckout,
    });
  }
  if (peer === 'floor') {
    return registry.start({ name: 'mqtt-floor', command: process.execPath, args: (port) => ['--import', 'tsx', join(REPO_ROOT, 'bench', 'mqtt-floor.ts'), String(port)], cwd: REPO_ROOT });
  }
  if (peer === 'mosquitto') {
    return registry.start({
      name: 'mosquitto',
      command: MOSQUITTO,
      args: (port, dataDir) => {
        const config = join(dataDir, 'mosquitto.conf');
        const lines = [`listener ${port} ${LOOPBACK_HOST}`, 'allow_anonymous true', 'persistence true', `persistence_location ${dataDir}/`, `max_inflight_messages ${IN_FLIGHT_MAX}`, 'max_queued_messages 1000000'];
        writeFileSync(config, lines.join('\n') + '\n');
        return ['-c', config];
      },
    });
  }
  return registry.start({ name: 'aedes', command: process.execPath, args: (port) => ['--import', 'tsx', join(REPO_ROOT, 'bench', 'mqtt-aedes.ts'), String(port)], cwd: REPO_ROOT });
}

function client(port: number, clientId: string): Promise<MqttClient> {
  return connectAsync(`mqtt://${LOOPBACK_HOST}:${port}`, { clientId, protocolVersion: 4, reconnectPeriod: 0, clean: true });
}

/** Publishes QoS 1 with at most IN_FLIGHT_MAX unacknowledged for `seconds`; resolves with how many were acknowledged. */
function publishClosedLoop(publisher: MqttClient, seconds: number): Promise<number> {
  const payload = Buffer.alloc(PAYLOAD_BYTES, 'x');
  const deadline = performance.now() + seconds * 1000;
  let inFlight = 0;
  let acked = 0;
  return new Promise((resolve, reject) => {
    const pump = (): void => {
      while (inFlight < IN_FLIGHT_MAX && performance.now() < deadline) {
        inFlight++;
        publisher.publish(TOPIC, payload, { qos: 1 }, (error) => {
          if (error !== undefined && error !== null) return reject(error);
          inFlight--;
          acked++;
          if (performance.now() < deadline) pump();
          else if (inFlight === 0) resolve(acked);
        });
      }
    };
    pump();
  });
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat (utime, stime), counted from the state field (3) on.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

async function publishThroughput(server: ServerProcess, seconds: number, kind: Publisher): Promise<{ perSecond: number; brokerCpuUs: number }> {
  const cpuBefore = cpuSeconds(server.pid);
  let acked: number;
  let elapsedS: number;
  if (kind === 'lean') {
    ({ acked, elapsedS } = await leanPublish(LOOPBACK_HOST, server.port, 'bench-pub', TOPIC, Buffer.alloc(PAYLOAD_BYTES, 'x'), IN_FLIGHT_MAX, seconds));
  } else {
    const publisher = await client(server.port, 'bench-pub');
    const started = performance.now();
    acked = await publishClosedLoop(publisher, seconds);
    elapsedS = (performance.now() - started) / 1000;
    await publisher.endAsync();
  }
  return { perSecond: acked / elapsedS, brokerCpuUs: ((cpuSeconds(server.pid) - cpuBefore) * 1e6) / acked };
}

async function fanOut(port: number, seconds: number): Promise<number> {
  const subscribers = await Promise.all(Array.from({ length: FAN_OUT_SUBSCRIBERS }, (_, n) => client(port, `bench-sub-${n}`)));
  let delivered = 0;
  for (const subscriber of subscribers) {
    subscriber.on('message', () => delivered++);
    await subscriber.subscribeAsync(TOPIC, { qos: 1 });
  }
  const publisher = await client(port, 'bench-fan-pub');
  const started = performance.now();
  const acked = await publishClosedLoop(publisher, seconds);
  const expected = acked * FAN_OUT_SUBSCRIBERS;
  const drainDeadline = performance.now() + 30_000;
  while (delivered < expected && performance.now() < drainDeadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const elapsedS = (performance.now() - started) / 1000;
  await Promise.all([publisher, ...subscribers].map((one) => one.endAsync()));
  return delivered / elapsedS;
}

async function endToEnd(port: number, seconds: number): Promise<{ p50: number; p99: number; received: number; sent: number }> {
  const subscriber = await client(port, 'bench-e2e-sub');
  const latencies: number[] = [];
  subscriber.on('message', (_topic, payload) => latencies.push(performance.now() - payload.readDoubleLE(0)));
  await subscriber.subscribeAsync(TOPIC, { qos: 1 });
  const publisher = await client(port, 'bench-e2e-pub');
  const total = E2E_RATE_PER_SECOND * seconds;
  const started = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.floor(((performance.now() - started) / 1000) * E2E_RATE_PER_SECOND) + 1;
    for (; sent < Math.min(due, total); sent++) {
      const payload = Buffer.alloc(PAYLOAD_BYTES);
      payload.writeDoubleLE(performance.now(), 0);
      publisher.publish(TOPIC, payload, { qos: 1 });
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const drainDeadline = performance.now() + 10_000;
  while (latencies.length < sent && performance.now() < drainDeadline) await new Promise((resolve) => setTimeout(resolve, 20));
  await Promise.all([publisher.endAsync(), subscriber.endAsync()]);
  const sorted = [...latencies].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), received: latencies.length, sent };
}

async function measure(registry: ProcessRegistry, peer: Peer, options: RunOptions): Promise<PeerResult> {
  const server = await startSpec(registry, peer, options.ferryCheckout);
  const { seconds, figures } = options;
  // The floor only acknowledges: it has no deliveries to measure.
  const has = (figure: Figure): boolean => figures.includes(figure) && (peer !== 'floor' || figure === 'publish');
  const none = { p50: Number.NaN, p99: Number.NaN, received: 0, sent: 0 };
  try {
    const publish = has('publish') ? await publishThroughput(server, seconds, options.publisher) : { perSecond: Number.NaN, brokerCpuUs: Number.NaN };
    const fanOutDeliveriesPerSecond = has('fan-out') ? await fanOut(server.port, seconds) : Number.NaN;
    const e2e = has('e2e') ? await endToEnd(server.port, seconds) : none;
    return { peer, publishPerSecond: publish.perSecond, publishBrokerCpuUs: publish.brokerCpuUs, fanOutDeliveriesPerSecond, e2eP50Ms: e2e.p50, e2eP99Ms: e2e.p99, e2eReceived: e2e.received, e2eSent: e2e.sent };
  } finally {
    await registry.stop(server);
  }
}

export async function runMqttBench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { seconds: { type: 'string' }, only: { type: 'string' }, 'no-build': { type: 'boolean' }, figures: { type: 'string' }, publisher: { type: 'string' }, 'ferry-checkout': { type: 'string' } },
    strict: true,
  });
  const seconds = Number(values.seconds ?? '10');
  const only = (values.only?.split(',') ?? [...DEFAULT_PEERS]) as Peer[];
  const figures = (values.figures?.split(',') ?? [...FIGURES]) as Figure[];
  const publisher = (values.publisher ?? 'mqttjs') as Publisher;
  const ferryCheckout = resolvePath(values['ferry-checkout'] ?? REPO_ROOT);
  if (!Number.isFinite(seconds) || seconds <= 0 || only.some((peer) => !PEERS.includes(peer))) throw new Error(USAGE);
  if (figures.some((figure) => !FIGURES.includes(figure)) || !PUBLISHERS.includes(publisher)) throw new Error(USAGE);
  if (only.includes('ferry') && !existsSync(join(ferryCheckout, 'dist', 'src', 'cli', 'main.js'))) throw new Error(`--ferry-checkout ${ferryCheckout}: no dist/src/cli/main.js (run npm run build there)`);
  if (values['ferry-checkout'] === undefined) ensureBuilt(values['no-build'] !== true);
  const peers = only.filter((peer) => peer !== 'mosquitto' || existsSync(MOSQUITTO));
  const registry = new ProcessRegistry();
  const results: PeerResult[] = [];
  try {
    for (const peer of peers) results.push(await measure(registry, peer, { seconds, figures, publisher, ferryCheckout }));
  } finally {
    await registry.stopAll();
    registry.dispose();
  }
  const commit = currentCommit();
  const mosquittoVersion = existsSync(MOSQUITTO) ? spawnSync(MOSQUITTO, ['-h'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() : 'absent';
  const machine = `${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / 1024 ** 3).toFixed(1)} GiB, Linux ${release()}, Node ${process.version}, load ${loadavg().map((n) => n.toFixed(2)).join(' ')}`;
  const lines = [
    `## MQTT (commit ${commit}; ${machine}; ${mosquittoVersion}; publisher ${publisher}${values['ferry-checkout'] === undefined ? '' : `; Ferry from ${ferryCheckout}`})`,
    '',
    `| broker | QoS 1 publish msgs/s (1 KiB, ≤${IN_FLIGHT_MAX} in flight) | broker CPU µs per publish | QoS 1 fan-out deliveries/s (1 → ${FAN_OUT_SUBSCRIBERS}) | e2e p50 / p99 ms at ${E2E_RATE_PER_SECOND}/s | received / sent |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...results.map((r) => `| ${r.peer} | ${Math.round(r.publishPerSecond)} | ${r.publishBrokerCpuUs.toFixed(1)} | ${Math.round(r.fanOutDeliveriesPerSecond)} | ${r.e2eP50Ms.toFixed(2)} / ${r.e2eP99Ms.toFixed(2)} | ${r.e2eReceived} / ${r.e2eSent} |`),
    '',
    'Ferry fsyncs before each PUBACK (`durability: always`); mosquitto (persistence on) and aedes (in memory) do not.',
  ];
  console.log(lines.join('\n'));
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  writeFileSync(join(dir, `${stamp}-mqtt-${commit}.json`), JSON.stringify({ commit, machine, seconds, publisher, ferryCheckout, results }, null, 2) + '\n');
  return 0;
}
