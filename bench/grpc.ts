/**
 * gRPC and HTTP benchmark: Ferry's API on the HTTP port against its own TCP protocol.
 *
 *   node --import tsx bench/grpc.ts [--quick] [--wrk-seconds 30] [--no-wrk] [--no-workloads] [--no-build] [--write-docs]
 *
 * 1. HTTP/JSON publish under wrk (Debian's `wrk` package): 2 threads, 400 connections, each
 *    request a Connect-protocol JSON Publish of one 1 KiB message to a `durability: always` topic:
 *    requests/s and latency percentiles as wrk reports them, and the messages the topic stored.
 * 2. W1 (one producer, 200,000 x 1 KiB, at most 1,000 unconfirmed) and W2 (one group consumer
 *    draining them, one ack per message), the workloads of bench/workloads.ts, over gRPC with
 *    @grpc/grpc-js (ts-proto stubs from test/grpc/generated) and over Ferry's TCP protocol
 *    (src/client), in the same run, each against a fresh broker process. Both clients batch what
 *    one event-loop turn produces: the TCP client appends a turn's publishes to one PUBLISH frame,
 *    the gRPC adapter sends them as one Publish call (and a turn's acks as one ConsumeRequest).
 *
 * Every broker is `node bin/ferry.js serve` from dist/ (rebuilt when older than src/) with a temp
 * data dir, on loopback. Prints markdown, writes bench/results/grpc-<date>-<commit>.json, and with
 * --write-docs rewrites the "## gRPC and HTTP" section of docs/BENCHMARKS.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { credentials, Metadata, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { connect, type FerryClient } from '../src/client/index.js';
import { ConsumeRequest, MessageServiceClient, type ConsumeResponse, type PublishMessage } from '../test/grpc/generated/ferry/v1/messages.js';
import { Durability, TopicServiceClient } from '../test/grpc/generated/ferry/v1/topics.js';
import { freePort, LOOPBACK_HOST, ProcessRegistry, type ServerProcess } from './processes.js';
import { currentCommit, ensureBuilt, LAUNCHER, launcherNodeFlags, REPO_ROOT } from './checkout.js';
import {
  FULL_SCALE,
  PAYLOAD_BYTES,
  PREFETCH_MESSAGES,
  QUICK_SCALE,
  runWorkload,
  type Broker,
  type BrokerConnection,
  type BrokerSubscription,
  type MessageHandler,
  type RunState,
  type ThroughputResult,
} from './workloads.js';

const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const DOCS_FILE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const DOCS_SECTION_HEADING = '## gRPC and HTTP';
const USAGE = 'usage: node --import tsx bench/grpc.ts [--quick] [--wrk-seconds 30] [--no-wrk] [--no-workloads] [--no-build] [--write-docs]';

/** wrk's load: the issue's figures (2 threads, 400 connections, 30 s). */
const WRK_THREADS = 2;
const WRK_CONNECTIONS = 400;
const WRK_SECONDS_DEFAULT = 30;
/** A broker that is not ready (recovery done) this long after its port opened failed to start. */
const READY_TIMEOUT_MS = 15_000;
const READY_POLL_MS = 50;
/** Messages per Publish call at most; W1's window (1,000) keeps batches below it anyway. */
const GRPC_PUBLISH_BATCH_MAX = 1_000;
/**
 * The client's HTTP/2 receive window. grpc-js keeps HTTP/2's 64 KiB unless told otherwise (it
 * has no BDP-based growth like grpc-go and grpc-java), which would stall every 256 KiB delivery
 * batch for a WINDOW_UPDATE round trip; 4 MiB is the usual tuning for a local high-rate consumer.
 */
const GRPC_CLIENT_WINDOW_BYTES = 4 * 1024 * 1024;
const GRPC_CHANNEL_OPTIONS = { 'grpc-node.flow_control_window': GRPC_CLIENT_WINDOW_BYTES };
/** A unary call that has not answered in this long fails the run instead of hanging it. */
const CALL_DEADLINE_MS = 60_000;
const EXIT_INTERRUPTED = 130;
/** The issue's goal: gRPC W1 (batched) at least a quarter of the TCP protocol's W1. */
const TARGET_PUBLISH_RATIO = 0.25;

interface Options {
  quick: boolean;
  wrkSeconds: number;
  wrk: boolean;
  workloads: boolean;
  build: boolean;
  writeDocs: boolean;
}

export interface WrkResult {
  seconds: number;
  threads: number;
  connections: number;
  requests: number;
  requestsPerSec: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  socketErrors: string;
  storedMessages: number;
}

export interface WorkloadFigures {
  W1: ThroughputResult;
  W2: ThroughputResult;
}

interface Report {
  command: string;
  startedAt: string;
  commit: string;
  machine: { cpus: number; cpuModel: string; memoryBytes: number; kernel: string; node: string; loadAverage1mAtStart: number };
  quick: boolean;
  wrk?: WrkResult;
  tcp?: WorkloadFigures;
  grpc?: WorkloadFigures;
}

// ---- Ferry's TCP protocol (src/client) -------------------------------------------------------

export class TcpConnection implements BrokerConnection {
  constructor(private readonly client: FerryClient) {}

  async createTopic(topic: string): Promise<void> {
    await this.client.createTopic(topic, { durability: 'always' });
  }

  async publish(topic: string, payload: Uint8Array): Promise<void> {
    await this.client.publish(topic, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  }

  async subscribe(topic: string, group: string, handler: MessageHandler): Promise<BrokerSubscription> {
    const subscription = await this.client.subscribe(topic, { group, from: 'earliest', prefetch: PREFETCH_MESSAGES });
    const acks = new Set<Promise<void>>();
    let closing = false;
    const loop = (async () => {
      for await (const message of subscription) {
        handler.onMessage(message.value);
        const ack = message.ack();
        acks.add(ack);
        ack.then(() => acks.delete(ack), (error: unknown) => handler.onError(error));
      }
    })().catch((error: unknown) => {
      if (!closing) handler.onError(error);
    });
    return {
      flushAcks: async () => {
        await Promise.all([...acks]);
      },
      close: async () => {
        closing = true;
        await Promise.all([...acks]);
        await subscription.close();
        await loop;
      },
    };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

// ---- gRPC with @grpc/grpc-js -----------------------------------------------------------------

interface PendingPublish {
  message: PublishMessage;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class GrpcConnection implements BrokerConnection {
  private readonly topics: TopicServiceClient;
  private readonly messages: MessageServiceClient;
  private readonly pending = new Map<string, PendingPublish[]>();
  private flushScheduled = false;

  constructor(address: string) {
    this.topics = new TopicServiceClient(address, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    this.messages = new MessageServiceClient(address, credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
  }

  createTopic(topic: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.topics.createTopic(
        { name: topic, config: { partitions: 0, durability: Durability.DURABILITY_ALWAYS, syncIntervalMs: 0, retention: undefined, segmentBytes: 0, dedupWindowMs: undefined, replicas: 0, minInSync: 0 } },
        new Metadata(),
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (error) => (error === null ? resolve() : reject(error)),
      );
    });
  }

  /** Queued, and sent with the other publishes of this event-loop turn as one Publish call. */
  publish(topic: string, payload: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      const value = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
      const message: PublishMessage = { headers: {}, value, id: '', delayMs: 0, deliverAt: undefined };
      let queue = this.pending.get(topic);
      if (queue === undefined) this.pending.set(topic, (queue = []));
      queue.push({ message, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const [topic, queue] of this.pending) {
      this.pending.delete(topic);
      for (let start = 0; start < queue.length; start += GRPC_PUBLISH_BATCH_MAX) {
        const batch = queue.slice(start, start + GRPC_PUBLISH_BATCH_MAX);
        this.messages.publish({ topic, messages: batch.map((entry) => entry.message) }, new Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (error) => {
          for (const entry of batch) {
            if (error === null) entry.resolve();
            else entry.reject(error);
          }
        });
      }
    }
  }

  async subscribe(topic: string, group: string, handler: MessageHandler): Promise<BrokerSubscription> {
    return GrpcSubscription.open(this.messages, topic, group, handler);
  }

  async close(): Promise<void> {
    this.topics.close();
    this.messages.close();
  }
}

/** One Consume stream: a turn's acks travel in one request with one credit per ack. */
class GrpcSubscription implements BrokerSubscription {
  private acks: Array<{ partition: number; offset: number }> = [];
  private flushScheduled = false;
  private nextRequestId = 1;
  private readonly settledWaiters = new Map<number, () => void>();
  private closing = false;
  private readonly ended: Promise<void>;

  private constructor(
    private readonly call: ClientDuplexStream<ConsumeRequest, ConsumeResponse>,
    private readonly handler: MessageHandler,
  ) {
    this.ended = new Promise((resolve) => {
      call.on('status', () => resolve());
      call.on('error', (error: ServiceError) => {
        if (!this.closing) handler.onError(error);
        resolve();
      });
    });
    call.on('data', (response: ConsumeResponse) => this.onResponse(response));
  }

  static async open(client: MessageServiceClient, topic: string, group: string, handler: MessageHandler): Promise<GrpcSubscription> {
    const call = client.consume();
    const subscription = new GrpcSubscription(call, handler);
    call.write(ConsumeRequest.fromPartial({ start: { topic, group, start: { earliest: true } }, credit: PREFETCH_MESSAGES }));
    return subscription;
  }

  private onResponse(response: ConsumeResponse): void {
    for (const message of response.messages) {
      this.handler.onMessage(message.value);
      this.acks.push({ partition: message.partition, offset: message.offset });
    }
    if (response.messages.length > 0 && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.sendAcks(0));
    }
    if (response.settled !== undefined) {
      if (response.settled.failures.length > 0) this.handler.onError(new Error(`settle failed: ${response.settled.failures[0]!.message}`));
      this.settledWaiters.get(response.settled.requestId)?.();
      this.settledWaiters.delete(response.settled.requestId);
    }
  }

  private sendAcks(requestId: number): void {
    this.flushScheduled = false;
    const acks = this.acks;
    this.acks = [];
    if (acks.length === 0 && requestId === 0) return;
    this.call.write(ConsumeRequest.fromPartial({ acks, credit: acks.length, requestId }));
  }

  /** Sends what is pending with a request id and waits until the server applied every ack so far. */
  flushAcks(): Promise<void> {
    const requestId = this.nextRequestId++;
    const settled = new Promise<void>((resolve) => this.settledWaiters.set(requestId, resolve));
    this.sendAcks(requestId);
    return settled;
  }

  async close(): Promise<void> {
    await this.flushAcks();
    this.closing = true;
    this.call.end();
    await this.ended;
  }
}

// ---- Broker processes ------------------------------------------------------------------------

export interface StartedFerry {
  server: ServerProcess;
  tcpPort: number;
  httpPort: number;
}

export async function startFerry(processes: ProcessRegistry, name: string): Promise<StartedFerry> {
  const tcpPort = await freePort();
  let httpPort = 0;
  const server = await processes.start({
    name,
    command: process.execPath,
    args: (port, dataDir) => {
      httpPort = port;
      return [...launcherNodeFlags(), LAUNCHER, 'serve', '--dir', dataDir, '--host', LOOPBACK_HOST, '--port', String(tcpPort), '--http-host', LOOPBACK_HOST, '--http-port', String(port), '--log-level', 'warn'];
    },
    cwd: REPO_ROOT,
  });
  // The HTTP port opens before recovery; the API answers once /readyz does.
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const ready = await fetch(`http://${LOOPBACK_HOST}:${httpPort}/readyz`).then((response) => response.ok, () => false);
    if (ready) break;
    if (Date.now() > deadline) throw new Error(`${name}: not ready within ${READY_TIMEOUT_MS} ms; output:\n${server.output}`);
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  return { server, tcpPort, httpPort };
}

export async function connectJson(httpPort: number, method: string, body: unknown): Promise<any> {
  const response = await fetch(`http://${LOOPBACK_HOST}:${httpPort}/${method}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method}: HTTP ${response.status} ${text}`);
  return JSON.parse(text);
}

// ---- wrk -------------------------------------------------------------------------------------

async function runWrk(processes: ProcessRegistry, seconds: number): Promise<WrkResult> {
  const ferry = await startFerry(processes, 'ferry-http');
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-wrk-'));
  try {
    const topic = 'bench-http';
    await connectJson(ferry.httpPort, 'ferry.v1.TopicService/CreateTopic', { name: topic, config: { durability: 'DURABILITY_ALWAYS' } });
    const value = Buffer.alloc(PAYLOAD_BYTES, 'ferry-bench-payload;').toString('base64');
    const body = JSON.stringify({ topic, messages: [{ value }] });
    const script = join(dir, 'publish.lua');
    writeFileSync(
      script,
      [
        '-- One Connect-protocol JSON Publish of one 1 KiB message per request.',
        'wrk.method = "POST"',
        'wrk.headers["Content-Type"] = "application/json"',
        `wrk.body = '${body}'`,
        '',
      ].join('\n'),
    );
    const url = `http://${LOOPBACK_HOST}:${ferry.httpPort}/ferry.v1.MessageService/Publish`;
    process.stderr.write(`bench: wrk -t${WRK_THREADS} -c${WRK_CONNECTIONS} -d${seconds}s --latency (broker pid ${ferry.server.pid})\n`);
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn('wrk', [`-t${WRK_THREADS}`, `-c${WRK_CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', script, url], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
      child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`wrk exited with ${code}:\n${out}`))));
    });
    process.stderr.write(output);
    const described = await connectJson(ferry.httpPort, 'ferry.v1.TopicService/DescribeTopic', { name: topic });
    const storedMessages = described.topic.partitions.reduce((sum: number, partition: { nextOffset: string }) => sum + Number(partition.nextOffset), 0);
    return { ...parseWrk(output), seconds, threads: WRK_THREADS, connections: WRK_CONNECTIONS, storedMessages };
  } finally {
    await processes.stop(ferry.server);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function parseWrk(output: string): Omit<WrkResult, 'seconds' | 'threads' | 'connections' | 'storedMessages'> {
  const number = (pattern: RegExp, what: string): string => {
    const match = pattern.exec(output);
    if (match === null) throw new Error(`wrk output has no ${what}:\n${output}`);
    return match[1]!;
  };
  const toMs = (text: string): number => {
    const match = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
    if (match === null) throw new Error(`unknown wrk duration ${text}`);
    const factor = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[match[2] as 'us' | 'ms' | 's' | 'm'];
    return Number(match[1]) * factor;
  };
  return {
    requests: Number(number(/(\d+) requests in/, 'request count')),
    requestsPerSec: Number(number(/Requests\/sec:\s+([\d.]+)/, 'Requests/sec')),
    latencyP50Ms: toMs(number(/^\s+50%\s+(\S+)/m, 'p50')),
    latencyP99Ms: toMs(number(/^\s+99%\s+(\S+)/m, 'p99')),
    non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(output)?.[1] ?? 0),
    socketErrors: /Socket errors:\s+(.*)/.exec(output)?.[1]?.trim() ?? 'none',
  };
}

// ---- W1 and W2 -------------------------------------------------------------------------------

export async function runWorkloads(processes: ProcessRegistry, kind: 'tcp' | 'grpc', quick: boolean): Promise<WorkloadFigures> {
  const ferry = await startFerry(processes, `ferry-${kind}`);
  try {
    const broker: Broker = {
      connect: async () =>
        kind === 'tcp'
          ? new TcpConnection(await connect({ host: LOOPBACK_HOST, port: ferry.tcpPort, reconnect: false }))
          : new GrpcConnection(`${LOOPBACK_HOST}:${ferry.httpPort}`),
    };
    const scale = quick ? QUICK_SCALE : FULL_SCALE;
    const state: RunState = { w1TopicFilled: false };
    const w1 = (await runWorkload('W1', broker, scale, state)) as ThroughputResult;
    process.stderr.write(`bench: ${kind} W1 ${Math.round(w1.msgsPerSec).toLocaleString('en-US')} msgs/s\n`);
    const w2 = (await runWorkload('W2', broker, scale, state)) as ThroughputResult;
    process.stderr.write(`bench: ${kind} W2 ${Math.round(w2.msgsPerSec).toLocaleString('en-US')} msgs/s\n`);
    if (!ferry.server.running) throw new Error(`the broker exited during the run (${ferry.server.exitReason})`);
    return { W1: w1, W2: w2 };
  } finally {
    await processes.stop(ferry.server);
  }
}

// ---- Report ----------------------------------------------------------------------------------

const int = (value: number): string => Math.round(value).toLocaleString('en-US');

function machineLine(machine: Report['machine']): string {
  return (
    `${machine.cpus} cores (${machine.cpuModel}), ${(machine.memoryBytes / 1024 ** 3).toFixed(1)} GiB memory, Linux ${machine.kernel}, Node ${machine.node}; ` +
    `load average ${machine.loadAverage1mAtStart.toFixed(2)} at start`
  );
}

function section(report: Report, resultsFile: string): string {
  const lines = [
    DOCS_SECTION_HEADING,
    '',
    'Ferry\'s gRPC / Connect API on the HTTP port (docs/GRPC.md) beside its TCP protocol, in the same',
    'run, each against a fresh `ferry serve` process (dist/) with an empty temp data dir on loopback;',
    'topics in `durability: always` (a publish is confirmed after the fdatasync that covers it).',
    '',
    `- HTTP/JSON: \`wrk -t${WRK_THREADS} -c${WRK_CONNECTIONS} -d${report.wrk?.seconds ?? WRK_SECONDS_DEFAULT}s --latency\` with a Lua script POSTing one`,
    '  Connect-protocol JSON Publish of one 1 KiB message (base64) per request over HTTP/1.1 keep-alive.',
    '- W1/W2 as in "Broker workloads" (one producer, 200,000 x 1 KiB, at most 1,000 unconfirmed; one',
    '  group consumer draining them with an ack per message, 256 credits): over gRPC with',
    '  @grpc/grpc-js and ts-proto stubs, and over the TCP protocol with src/client. Both batch per',
    '  event-loop turn: a turn\'s publishes are one PUBLISH frame / one Publish call, a turn\'s acks',
    '  one ACK frame / one ConsumeRequest (with one credit per ack).',
    '',
    'Command: `node --import tsx bench/grpc.ts' + (report.quick ? ' --quick' : '') + (report.command.includes('--wrk-seconds') ? ` --wrk-seconds ${report.wrk?.seconds}` : '') + ' --write-docs`  ',
    `Commit: ${report.commit}, ${report.startedAt}  `,
    `Machine: ${machineLine(report.machine)} (\`nproc\` ${report.machine.cpus})  `,
    `Results: \`${resultsFile}\``,
    '',
  ];
  if (report.wrk !== undefined) {
    const wrk = report.wrk;
    lines.push(
      '| HTTP/JSON publish (wrk) | value |',
      '| --- | --- |',
      `| requests/s (= msgs/s) | ${int(wrk.requestsPerSec)} |`,
      `| latency p50 | ${wrk.latencyP50Ms.toFixed(2)} ms |`,
      `| latency p99 | ${wrk.latencyP99Ms.toFixed(2)} ms |`,
      `| requests / messages stored | ${int(wrk.requests)} / ${int(wrk.storedMessages)} |`,
      `| non-2xx responses, socket errors | ${wrk.non2xx}, ${wrk.socketErrors} |`,
      '',
    );
  }
  if (report.tcp !== undefined && report.grpc !== undefined) {
    const row = (id: 'W1' | 'W2', label: string): string =>
      `| ${label} | ${int(report.tcp![id].msgsPerSec)} | ${int(report.grpc![id].msgsPerSec)} | ${(report.grpc![id].msgsPerSec / report.tcp![id].msgsPerSec).toFixed(2)} |`;
    const publishRatio = report.grpc.W1.msgsPerSec / report.tcp.W1.msgsPerSec;
    lines.push(
      '| Workload (msgs/s) | TCP protocol | gRPC (grpc-js) | gRPC/TCP |',
      '| --- | --- | --- | --- |',
      row('W1', 'W1 publish, 1 producer'),
      row('W2', 'W2 drain, ack each'),
      '',
      `Target: gRPC publish throughput at least ${TARGET_PUBLISH_RATIO} of the TCP protocol's: ${publishRatio >= TARGET_PUBLISH_RATIO ? 'met' : '**not met**'} (${publishRatio.toFixed(2)}).`,
      '',
    );
  }
  lines.push(
    'Caveats:',
    '- Two shared cores: the broker and the client (or wrk) compete for them, and so does whatever',
    '  else runs on the machine (see the load average).',
    '- The HTTP/JSON rate is bound by the broker\'s CPU per request (Connect\'s unary path: body',
    '  parsing, JSON and protobuf reflection, abort signals; about 10x a plain `/healthz`), not by',
    '  fsync: a `never` topic takes about the same rate. wrk counts requests slower than 2 s as',
    '  timeouts and leaves them out of its percentiles, so p99 is a lower bound when it reports any.',
    '- grpc-js is run with `grpc-node.flow_control_window` = 4 MiB: it keeps HTTP/2\'s 64 KiB window',
    '  otherwise (no BDP-based growth as in grpc-go or grpc-java), which stalls every delivery batch.',
  );
  return lines.join('\n') + '\n';
}

function writeDocsSection(text: string): void {
  const current = existsSync(DOCS_FILE) ? readFileSync(DOCS_FILE, 'utf8') : '# Benchmarks\n';
  const lines = current.split('\n');
  const start = lines.findIndex((line) => line.trim() === DOCS_SECTION_HEADING);
  if (start === -1) {
    writeFileSync(DOCS_FILE, `${current.replace(/\n*$/, '')}\n\n${text}`);
    return;
  }
  const afterStart = lines.slice(start + 1).findIndex((line) => /^## /.test(line));
  const end = afterStart === -1 ? lines.length : start + 1 + afterStart;
  const after = lines.slice(end).join('\n');
  writeFileSync(DOCS_FILE, `${lines.slice(0, start).join('\n')}\n${text}${after === '' ? '' : `\n${after}`}`);
}

// ---- Main ------------------------------------------------------------------------------------

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      'wrk-seconds': { type: 'string', default: String(WRK_SECONDS_DEFAULT) },
      'no-wrk': { type: 'boolean', default: false },
      'no-workloads': { type: 'boolean', default: false },
      'no-build': { type: 'boolean', default: false },
      'write-docs': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const wrkSeconds = Number(values['wrk-seconds']);
  if (!Number.isInteger(wrkSeconds) || wrkSeconds < 1 || wrkSeconds > 600) throw new Error(`--wrk-seconds must be an integer from 1 to 600\n${USAGE}`);
  return { quick: values.quick, wrkSeconds, wrk: !values['no-wrk'], workloads: !values['no-workloads'], build: !values['no-build'], writeDocs: values['write-docs'] };
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  if (options.wrk && spawnSync('sh', ['-c', 'command -v wrk']).status !== 0) throw new Error('wrk is not installed (apt-get install -y wrk), or pass --no-wrk');
  ensureBuilt(options.build, (text) => void process.stderr.write(`bench grpc: ${text}\n`));
  const processes = new ProcessRegistry();
  const onSignal = (): void => {
    processes.killAllNow();
    process.exit(EXIT_INTERRUPTED);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const report: Report = {
    command: `node --import tsx bench/grpc.ts ${process.argv.slice(2).join(' ')}`.trim(),
    startedAt: new Date().toISOString(),
    commit: currentCommit(),
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      memoryBytes: totalmem(),
      kernel: release(),
      node: process.version,
      // The machine is shared: what else was running is part of the figures.
      loadAverage1mAtStart: loadavg()[0]!,
    },
    quick: options.quick,
  };
  try {
    if (options.wrk) report.wrk = await runWrk(processes, options.wrkSeconds);
    if (options.workloads) {
      report.tcp = await runWorkloads(processes, 'tcp', options.quick);
      report.grpc = await runWorkloads(processes, 'grpc', options.quick);
    }
  } finally {
    await processes.stopAll();
    processes.dispose();
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `grpc-${report.startedAt.replace(/[:.]/g, '-').slice(0, 19)}Z-${report.commit}.json`);
  writeFileSync(resultsPath, JSON.stringify(report, null, 2) + '\n');
  const text = section(report, relative(REPO_ROOT, resultsPath));
  process.stdout.write(text);
  if (options.writeDocs) writeDocsSection(text);
  return 0;
}

// Run as a script; bench/http.ts imports the clients and the broker starter from here.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
