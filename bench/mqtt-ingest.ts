/**
 * The CPU cost of Ferry's MQTT ingest path alone, in one process and without sockets: a broker
 * (a temp dir, topic `bench` with `durability: always`) and its MQTT server, one connection
 * attached to an in-memory stream fed 3.1.1 QoS 1 PUBLISHes of 1 KiB in reads of 64 KiB, at most
 * 1,000 unacknowledged (the bench's contract), the PUBACKs counted as the server writes them.
 * Prints the process's CPU time (user + system, all threads) per acknowledged publish and the rate.
 * The figure a shared machine disturbs least: compare two builds by alternating runs.
 *
 *   node --import tsx bench/mqtt-ingest.ts [--checkout DIR] [--messages 200000] [--durability always|never]
 *
 * DIR is a built checkout (its dist/); this one by default. `never` leaves out the fsyncs, whose
 * share per message depends on how many one sync covers (on timing), to see the path's own cost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import mqttPacket from 'mqtt-packet';
import { REPO_ROOT } from './checkout.js';

const PAYLOAD_BYTES = 1024;
const IN_FLIGHT_MAX = 1_000;
const READ_BYTES = 64 * 1024;
const PACKET_ID_MAX = 0xffff;
/** A 3.1.1 PUBACK and CONNACK are 4 bytes each. */
const ACK_BYTES = 4;
const WARMUP_FRACTION = 0.2;

const { values } = parseArgs({ options: { checkout: { type: 'string' }, messages: { type: 'string' }, durability: { type: 'string' } }, strict: true });
const checkout = resolvePath(values.checkout ?? REPO_ROOT);
const total = Number(values.messages ?? '200000');
const load = (path: string): Promise<Record<string, unknown>> => import(pathToFileURL(join(checkout, 'dist', 'src', path)).href) as Promise<Record<string, unknown>>;
// Two builds' modules, loaded by path: typed loosely, as either build's shapes may differ.
const { Broker } = (await load('index.js')) as any;
const { MqttServer } = (await load('transport/mqtt/server.js')) as any;
const { NodeFileSystem } = (await load('platform/fs.js')) as any;
const { SystemClock } = (await load('platform/clock.js')) as any;
const { silentLogger } = (await load('platform/logger.js')) as any;
const limits = (await load('transport/mqtt/limits.js')) as any;

const dir = mkdtempSync(join(tmpdir(), 'ferry-mqtt-ingest-'));
const clock = new SystemClock();
const fs = new NodeFileSystem();
const broker = await Broker.open({ dir, clock, fs, logger: silentLogger });
const durability = values.durability ?? 'always';
await broker.createTopic('bench', { durability });
const server = new MqttServer(broker, {
  limits: {
    packetBytesMax: limits.MQTT_PACKET_BYTES_MAX_DEFAULT,
    topicBytesMax: limits.MQTT_TOPIC_BYTES_MAX_DEFAULT,
    subscriptionsMax: limits.MQTT_SUBSCRIPTIONS_MAX_DEFAULT,
    inflightMax: IN_FLIGHT_MAX,
    connectTimeoutMs: limits.MQTT_CONNECT_TIMEOUT_MS_DEFAULT,
    sessionExpirySecondsMax: limits.MQTT_SESSION_EXPIRY_S_MAX_DEFAULT,
  },
  connectionsMax: 10,
  security: null,
  tls: null,
  dataDir: dir,
  fs,
  clock,
  logger: silentLogger,
});

const template = mqttPacket.generate({ cmd: 'publish', topic: 'bench/load', payload: Buffer.alloc(PAYLOAD_BYTES, 'x'), qos: 1, messageId: 1, dup: false, retain: false });
const idAt = template.length - PAYLOAD_BYTES - 2;
const perRead = Math.max(1, Math.floor(READ_BYTES / template.length));

let ackBytes = 0;
let sent = 0;
let nextId = 1;
let measureFrom: { cpu: NodeJS.CpuUsage; wallMs: number; acked: number } | null = null;
let done: (() => void) | null = null;
const finished = new Promise<void>((resolve) => (done = resolve));

const stream = new Duplex({
  read() {},
  write(chunk: Buffer, _encoding, callback) {
    ackBytes += chunk.length;
    callback();
    setImmediate(feed);
  },
});
const acked = (): number => Math.max(0, ackBytes / ACK_BYTES - 1);

function feed(): void {
  const ackedNow = acked();
  if (measureFrom === null && ackedNow >= total * WARMUP_FRACTION) measureFrom = { cpu: process.cpuUsage(), wallMs: performance.now(), acked: ackedNow };
  if (ackedNow >= total) return done?.();
  while (sent - ackedNow < IN_FLIGHT_MAX && sent < total) {
    const count = Math.min(perRead, IN_FLIGHT_MAX - (sent - ackedNow), total - sent);
    const read = Buffer.allocUnsafe(count * template.length);
    for (let n = 0; n < count; n++) {
      template.copy(read, n * template.length);
      read.writeUInt16BE(nextId, n * template.length + idAt);
      nextId = nextId === PACKET_ID_MAX ? 1 : nextId + 1;
    }
    sent += count;
    stream.push(read);
  }
}

server.attach(stream, 'in-memory');
stream.push(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'ingest', clean: true, keepalive: 0 }));
await finished;
const from = measureFrom!;
const cpu = process.cpuUsage(from.cpu);
const count = acked() - from.acked;
const wallS = (performance.now() - from.wallMs) / 1000;
console.log(JSON.stringify({ checkout, durability, messages: count, cpuUsPerMessage: +((cpu.user + cpu.system) / count).toFixed(2), msgsPerSecond: Math.round(count / wallS) }));
stream.destroy();
await server.close();
await broker.close();
rmSync(dir, { recursive: true, force: true });
