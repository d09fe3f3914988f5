/**
 * `npm run bench -- --http`: the HTTP ways in, in one run (docs/HTTP.md, docs/GRPC.md).
 *
 *   npm run bench -- --http [--seconds 30] [--quick] [--load wrk|node] [--no-workloads] [--no-sse] [--no-build] [--write-docs]
 *
 * 1. Publish under load, one 1 KiB message per request to a `durability: always` topic, at 400
 *    and at 50 connections (wrk -t2, or bench/http-load.ts when wrk is not installed): the REST
 *    endpoint, the Connect JSON Publish, beside a bare node:http server that reads each body and
 *    answers (the ceiling of a Node HTTP server here), and GET /healthz.
 * 2. W1/W2 over gRPC (grpc-js) against the TCP protocol (bench/grpc.ts's clients).
 * 3. Server-Sent Events: messages/s to one SSE consumer as a stream, as a group with
 *    `autoAck=true`, and as a group acking each read's events with one POST, against the TCP
 *    protocol's stream consumer, all reading the same stored messages.
 *
 * Every broker is `ferry serve` from dist/ (rebuilt when older than src/) with a temp data dir on
 * loopback. Prints markdown, writes bench/results/http-<date>-<commit>.json, and with --write-docs
 * rewrites the "## HTTP publish and Server-Sent Events" section of docs/BENCHMARKS.md.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '../src/client/index.js';
import { connectJson, parseWrk, runWorkloads, startFerry, TcpConnection, type WorkloadFigures } from './grpc.js';
import type { LoadResult, LoadSpec } from './http-load.js';
import { LOOPBACK_HOST, ProcessRegistry } from './processes.js';
import { currentCommit, ensureBuilt, REPO_ROOT } from './checkout.js';
import { writeDocsSection } from './report.js';
import { FULL_SCALE, PAYLOAD_BYTES, publishWindowed, QUICK_SCALE } from './workloads.js';

const RESULTS_DIR = join(REPO_ROOT, 'bench', 'results');
const DOCS_FILE = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
const DOCS_SECTION_HEADING = '## HTTP publish and Server-Sent Events';
const USAGE = 'usage: npm run bench -- --http [--seconds 30] [--quick] [--load wrk|node] [--no-workloads] [--no-sse] [--no-build] [--write-docs]';
const SECONDS_DEFAULT = 30;
const QUICK_SECONDS = 5;
const WRK_THREADS = 2;
const CONNECTIONS_HIGH = 400;
const CONNECTIONS_LOW = 50;
/** Credit of every consumer in the SSE part (TCP stream included), and the window of its filling producer. */
const SSE_PREFETCH = 1_000;
const PUBLISH_WINDOW = 1_000;
/** The issue's targets. */
const TARGET_REST_OF_BARE = 0.6;
const TARGET_REST_P99_MS = 50;
const TARGET_GRPC_OF_TCP = 0.7;
/** A consumer that has not received everything in this long fails the run instead of hanging it. */
const CONSUME_TIMEOUT_MS = 300_000;

interface Options {
  seconds: number;
  quick: boolean;
  tool: 'wrk' | 'node';
  workloads: boolean;
  sse: boolean;
  build: boolean;
  writeDocs: boolean;
}

interface LoadRow extends LoadResult {
  label: string;
  connections: number;
  /** Messages the topic stored (publishing rows). */
  stored?: number;
}

interface SseFigures {
  messages: number;
  tcpStream: number;
  sseStream: number;
  sseAutoAck: number;
  sseBatchAcks: number;
}

interface Report {
  command: string;
  startedAt: string;
  commit: string;
  machine: { cpus: number; cpuModel: string; memoryBytes: number; kernel: string; node: string; loadAverage1mAtStart: number; loadAverage1mAtEnd?: number };
  seconds: number;
  tool: 'wrk' | 'node';
  loads: LoadRow[];
  tcp?: WorkloadFigures;
  grpc?: WorkloadFigures;
  sse?: SseFigures;
}

const PAYLOAD = Buffer.alloc(PAYLOAD_BYTES, 'ferry-bench-payload;');

// ---- Load --------------------------------------------------------------------------------------

function runLoad(spec: LoadSpec, tool: 'wrk' | 'node', dir: string): Promise<LoadResult> {
  process.stderr.write(`bench http: ${tool} ${spec.method} ${spec.url} -c${spec.connections} ${spec.seconds}s\n`);
  return tool === 'wrk' ? runWrk(spec, dir) : runNodeLoad(spec);
}

function output(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${command} failed: ${error.message}\n${stderr}`));
      else resolve(stdout + stderr);
    });
  });
}

async function runWrk(spec: LoadSpec, dir: string): Promise<LoadResult> {
  const script = join(dir, `load-${Date.now()}.lua`);
  const lines = [`wrk.method = "${spec.method}"`];
  for (const [name, value] of Object.entries(spec.headers ?? {})) lines.push(`wrk.headers["${name}"] = "${value}"`);
  // The bodies here are ASCII without "]]": a Lua long string holds them as they are.
  if (spec.body !== undefined) lines.push(`wrk.body = [[${Buffer.from(spec.body, 'base64').toString('latin1')}]]`);
  writeFileSync(script, lines.join('\n') + '\n');
  const text = await output('wrk', [`-t${WRK_THREADS}`, `-c${spec.connections}`, `-d${spec.seconds}s`, '--latency', '-s', script, spec.url]);
  process.stderr.write(text);
  const parsed = parseWrk(text);
  const socket = parsed.socketErrors;
  const count = (name: string): number => Number(new RegExp(`${name} (\\d+)`).exec(socket)?.[1] ?? 0);
  return {
    tool: 'wrk',
    requests: parsed.requests,
    requestsPerSec: parsed.requestsPerSec,
    latencyP50Ms: parsed.latencyP50Ms,
    latencyP99Ms: parsed.latencyP99Ms,
    non2xx: parsed.non2xx,
    timeouts: count('timeout'),
    errors: count('connect') + count('read') + count('write'),
  };
}

async function runNodeLoad(spec: LoadSpec): Promise<LoadResult> {
  const text = await output(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench', 'http-load.ts'), JSON.stringify(spec)]);
  return JSON.parse(text.trim().split('\n').at(-1)!) as LoadResult;
}

// ---- Publish under load ------------------------------------------------------------------------

async function bareServerLoads(processes: ProcessRegistry, options: Options, dir: string): Promise<LoadRow[]> {
  const server = await processes.start({
    name: 'bare-http',
    command: process.execPath,
    args: (port) => ['--import', 'tsx', join(REPO_ROOT, 'bench', 'http-bare-server.ts'), String(port)],
    cwd: REPO_ROOT,
  });
  try {
    const url = `http://${LOOPBACK_HOST}:${server.port}/v1/topics/bench/messages`;
    const rows: LoadRow[] = [];
    for (const connections of [CONNECTIONS_HIGH, CONNECTIONS_LOW]) {
      const result = await runLoad({ url, method: 'POST', connections, seconds: options.seconds, body: PAYLOAD.toString('base64'), headers: { 'Content-Type': 'application/octet-stream' } }, options.tool, dir);
      rows.push({ label: 'bare node:http server (reads the body, answers)', connections, ...result });
    }
    return rows;
  } finally {
    await processes.stop(server);
  }
}

async function storedMessages(httpPort: number, topic: string): Promise<number> {
  const described = await connectJson(httpPort, 'ferry.v1.TopicService/DescribeTopic', { name: topic });
  return described.topic.partitions.reduce((sum: number, partition: { nextOffset: string }) => sum + Number(partition.nextOffset), 0);
}

async function ferryLoads(processes: ProcessRegistry, options: Options, dir: string): Promise<LoadRow[]> {
  const ferry = await startFerry(processes, 'ferry-http');
  try {
    const base = `http://${LOOPBACK_HOST}:${ferry.httpPort}`;
    const rows: LoadRow[] = [];
    const body = PAYLOAD.toString('base64');
    for (const connections of [CONNECTIONS_HIGH, CONNECTIONS_LOW]) {
      const topic = `bench-rest-${connections}`;
      await connectJson(ferry.httpPort, 'ferry.v1.TopicService/CreateTopic', { name: topic, config: { durability: 'DURABILITY_ALWAYS' } });
      const result = await runLoad({ url: `${base}/v1/topics/${topic}/messages`, method: 'POST', connections, seconds: options.seconds, body, headers: { 'Content-Type': 'application/octet-stream' } }, options.tool, dir);
      rows.push({ label: 'Ferry REST publish', connections, ...result, stored: await storedMessages(ferry.httpPort, topic) });
    }
    rows.push({ label: 'Ferry GET /healthz', connections: CONNECTIONS_LOW, ...(await runLoad({ url: `${base}/healthz`, method: 'GET', connections: CONNECTIONS_LOW, seconds: options.seconds }, options.tool, dir)) });
    for (const connections of [CONNECTIONS_HIGH, CONNECTIONS_LOW]) {
      const topic = `bench-connect-${connections}`;
      await connectJson(ferry.httpPort, 'ferry.v1.TopicService/CreateTopic', { name: topic, config: { durability: 'DURABILITY_ALWAYS' } });
      const json = JSON.stringify({ topic, messages: [{ value: body }] });
      const url = `${base}/ferry.v1.MessageService/Publish`;
      const result = await runLoad({ url, method: 'POST', connections, seconds: options.seconds, body: Buffer.from(json).toString('base64'), headers: { 'Content-Type': 'application/json' } }, options.tool, dir);
      rows.push({ label: 'Ferry Connect JSON Publish', connections, ...result, stored: await storedMessages(ferry.httpPort, topic) });
    }
    if (!ferry.server.running) throw new Error(`the broker exited during the run (${ferry.server.exitReason})`);
    return rows;
  } finally {
    await processes.stop(ferry.server);
  }
}

// ---- Server-Sent Events ------------------------------------------------------------------------

/** Reads `count` events from an SSE endpoint; with `ackUrl`, POSTs the ids of each read as one acks request. Returns msgs/s. */
async function consumeSse(url: string, count: number, ackUrl?: string): Promise<number> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`SSE: fewer than ${count} events within ${CONSUME_TIMEOUT_MS} ms`)), CONSUME_TIMEOUT_MS);
  const startedMs = performance.now();
  try {
    const response = await fetch(url, { signal: abort.signal, headers: { accept: 'text/event-stream' } });
    if (!response.ok || response.body === null) throw new Error(`SSE ${url}: HTTP ${response.status}`);
    const decoder = new TextDecoder();
    const acks = new Set<Promise<unknown>>();
    let carry = '';
    let received = 0;
    for await (const chunk of response.body) {
      const text = carry + decoder.decode(chunk, { stream: true });
      const end = text.lastIndexOf('\n\n');
      if (end < 0) {
        carry = text;
        continue;
      }
      carry = text.slice(end + 2);
      const ids = [...text.slice(0, end).matchAll(/^id: (\S+)$/gm)].map((match) => match[1]!);
      received += ids.length;
      if (ackUrl !== undefined && ids.length > 0) {
        const ack = fetch(ackUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ids) }).then((answer) => answer.arrayBuffer());
        acks.add(ack);
        void ack.finally(() => acks.delete(ack));
      }
      if (received >= count) break;
    }
    await Promise.all([...acks]);
    if (received < count) throw new Error(`SSE ${url}: the stream ended after ${received} of ${count} events`);
    return count / ((performance.now() - startedMs) / 1000);
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

async function sseFigures(processes: ProcessRegistry, options: Options): Promise<SseFigures> {
  const ferry = await startFerry(processes, 'ferry-sse');
  const topic = 'bench-sse';
  const messages = (options.quick ? QUICK_SCALE : FULL_SCALE).messages;
  try {
    const client = await connect({ host: LOOPBACK_HOST, port: ferry.tcpPort, reconnect: false });
    try {
      const producer = new TcpConnection(client);
      await producer.createTopic(topic);
      await publishWindowed(producer, topic, 0, messages, PUBLISH_WINDOW);
      process.stderr.write(`bench http: ${messages} messages stored for the SSE part\n`);
      const startedMs = performance.now();
      const stream = await client.subscribe(topic, { from: 'earliest', prefetch: SSE_PREFETCH });
      let received = 0;
      for await (const _message of stream) if (++received === messages) break;
      const tcpStream = messages / ((performance.now() - startedMs) / 1000);
      await stream.close();
      const base = `http://${LOOPBACK_HOST}:${ferry.httpPort}/v1/topics/${topic}`;
      const sseStream = await consumeSse(`${base}/events?from=earliest&prefetch=${SSE_PREFETCH}`, messages);
      const sseAutoAck = await consumeSse(`${base}/events?group=auto&prefetch=${SSE_PREFETCH}&autoAck=true`, messages);
      const sseBatchAcks = await consumeSse(`${base}/events?group=acks&prefetch=${SSE_PREFETCH}`, messages, `${base}/groups/acks/acks`);
      const figures = { messages, tcpStream, sseStream, sseAutoAck, sseBatchAcks };
      process.stderr.write(`bench http: SSE ${JSON.stringify(figures)}\n`);
      return figures;
    } finally {
      await client.close();
    }
  } finally {
    await processes.stop(ferry.server);
  }
}

// ---- Report ------------------------------------------------------------------------------------

const int = (value: number): string => Math.round(value).toLocaleString('en-US');

function loadTable(report: Report): string[] {
  const lines = [
    `| ${report.tool === 'wrk' ? `wrk -t${WRK_THREADS}` : 'bench/http-load.ts'}, ${report.seconds} s, 1 KiB | connections | requests/s | p50 | p99 | non-2xx | timeouts | errors | stored |`,
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of report.loads) {
    lines.push(
      `| ${row.label} | ${row.connections} | ${int(row.requestsPerSec)} | ${row.latencyP50Ms.toFixed(1)} ms | ${row.latencyP99Ms.toFixed(1)} ms | ${row.non2xx} | ${row.timeouts} | ${row.errors} | ${row.stored === undefined ? '' : int(row.stored)} |`,
    );
  }
  const find = (label: string, connections: number): LoadRow | undefined => report.loads.find((row) => row.label.startsWith(label) && row.connections === connections);
  const bare = find('bare', CONNECTIONS_HIGH);
  const rest = find('Ferry REST', CONNECTIONS_HIGH);
  const restLow = find('Ferry REST', CONNECTIONS_LOW);
  if (bare !== undefined && rest !== undefined && restLow !== undefined) {
    const ratio = rest.requestsPerSec / bare.requestsPerSec;
    const clean = [rest, restLow].every((row) => row.non2xx === 0 && row.timeouts === 0 && row.errors === 0);
    lines.push(
      '',
      `Targets: REST at -c${CONNECTIONS_HIGH} at least ${TARGET_REST_OF_BARE} of the bare server's requests/s: ${ratio >= TARGET_REST_OF_BARE ? 'met' : '**not met**'} (${ratio.toFixed(2)}); ` +
        `p99 at -c${CONNECTIONS_LOW} at most ${TARGET_REST_P99_MS} ms: ${restLow.latencyP99Ms <= TARGET_REST_P99_MS ? 'met' : '**not met**'} (${restLow.latencyP99Ms.toFixed(1)} ms); ` +
        `no timeouts, errors or non-2xx: ${clean ? 'met' : '**not met**'}.`,
    );
  }
  return lines;
}

function workloadTable(tcp: WorkloadFigures, grpc: WorkloadFigures): string[] {
  const row = (id: 'W1' | 'W2', label: string): string => {
    const ratio = grpc[id].msgsPerSec / tcp[id].msgsPerSec;
    return `| ${label} | ${int(tcp[id].msgsPerSec)} | ${int(grpc[id].msgsPerSec)} | ${ratio.toFixed(2)} (${ratio >= TARGET_GRPC_OF_TCP ? 'target met' : '**target not met**'}) |`;
  };
  return ['| Workload (msgs/s) | TCP protocol | gRPC (grpc-js) | gRPC/TCP (target ' + TARGET_GRPC_OF_TCP + ') |', '| --- | ---: | ---: | ---: |', row('W1', 'W1 publish, 1 producer'), row('W2', 'W2 drain, ack each')];
}

function sseTable(sse: SseFigures): string[] {
  const row = (label: string, value: number): string => `| ${label} | ${int(value)} | ${(value / sse.tcpStream).toFixed(2)} |`;
  return [
    `| One consumer, ${int(sse.messages)} x 1 KiB stored, credit ${SSE_PREFETCH} | msgs/s | of TCP stream |`,
    '| --- | ---: | ---: |',
    row('TCP protocol, stream consumer (src/client)', sse.tcpStream),
    row('SSE stream (no group)', sse.sseStream),
    row('SSE group, `autoAck=true`', sse.sseAutoAck),
    row('SSE group, one acks POST per read', sse.sseBatchAcks),
  ];
}

function section(report: Report, resultsFile: string): string {
  const m = report.machine;
  const lines = [
    DOCS_SECTION_HEADING,
    '',
    'The HTTP ways in (docs/HTTP.md, docs/GRPC.md) in one run, each against a fresh `ferry serve`',
    '(dist/) with an empty temp data dir on loopback; topics in `durability: always`. Publish rows: one',
    '1 KiB message per request over HTTP/1.1 keep-alive; the bare server is node:http reading each body',
    'and answering a small JSON body, the ceiling of a Node HTTP server on this machine.',
    '',
    `Command: \`${report.command}\`  `,
    `Commit: ${report.commit}, ${report.startedAt}  `,
    `Machine: ${m.cpus} cores (${m.cpuModel}), ${(m.memoryBytes / 1024 ** 3).toFixed(1)} GiB, Linux ${m.kernel}, Node ${m.node}; ` +
      `1-minute load average ${m.loadAverage1mAtStart.toFixed(2)} at start${m.loadAverage1mAtEnd === undefined ? '' : `, ${m.loadAverage1mAtEnd.toFixed(2)} at end`}  `,
    `Results: \`${resultsFile}\``,
    '',
    ...loadTable(report),
    '',
  ];
  if (report.tcp !== undefined && report.grpc !== undefined) lines.push(...workloadTable(report.tcp, report.grpc), '');
  if (report.sse !== undefined) lines.push(...sseTable(report.sse), '');
  lines.push(
    'Caveats: two shared cores, so the broker and the load generator compete for them (and so does',
    'whatever else runs: see the load average); figures measured with a load average far above 0 are',
    'not final. wrk leaves requests slower than 2 s out of its percentiles (they are the timeouts).',
  );
  return lines.join('\n') + '\n';
}

// ---- Main --------------------------------------------------------------------------------------

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string' },
      quick: { type: 'boolean', default: false },
      load: { type: 'string' },
      'no-workloads': { type: 'boolean', default: false },
      'no-sse': { type: 'boolean', default: false },
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
  const seconds = Number(values.seconds ?? (values.quick ? QUICK_SECONDS : SECONDS_DEFAULT));
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 600) throw new Error(`--seconds must be an integer from 1 to 600\n${USAGE}`);
  const hasWrk = spawnSync('sh', ['-c', 'command -v wrk']).status === 0;
  const tool = values.load ?? (hasWrk ? 'wrk' : 'node');
  if (tool !== 'wrk' && tool !== 'node') throw new Error(`--load must be wrk or node\n${USAGE}`);
  if (tool === 'wrk' && !hasWrk) throw new Error('wrk is not installed (apt-get install -y wrk); --load node uses bench/http-load.ts instead');
  return { seconds, quick: values.quick, tool, workloads: !values['no-workloads'], sse: !values['no-sse'], build: !values['no-build'], writeDocs: values['write-docs'] };
}

export async function runHttpBench(argv: string[]): Promise<number> {
  const options = parseOptions(argv);
  ensureBuilt(options.build, (text) => void process.stderr.write(`bench http: ${text}\n`));
  const processes = new ProcessRegistry();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-http-'));
  const report: Report = {
    command: `npm run bench -- --http ${argv.join(' ')}`.trim(),
    startedAt: new Date().toISOString(),
    commit: currentCommit(),
    machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model.trim() ?? 'unknown', memoryBytes: totalmem(), kernel: release(), node: process.version, loadAverage1mAtStart: loadavg()[0]! },
    seconds: options.seconds,
    tool: options.tool,
    loads: [],
  };
  try {
    report.loads.push(...(await bareServerLoads(processes, options, dir)), ...(await ferryLoads(processes, options, dir)));
    if (options.workloads) {
      report.tcp = await runWorkloads(processes, 'tcp', options.quick);
      report.grpc = await runWorkloads(processes, 'grpc', options.quick);
    }
    if (options.sse) report.sse = await sseFigures(processes, options);
  } finally {
    await processes.stopAll();
    processes.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
  report.machine.loadAverage1mAtEnd = loadavg()[0]!;
  mkdirSync(RESULTS_DIR, { recursive: true });
  const resultsPath = join(RESULTS_DIR, `http-${report.startedAt.replace(/[:.]/g, '-').slice(0, 19)}Z-${report.commit}.json`);
  writeFileSync(resultsPath, JSON.stringify(report, null, 2) + '\n');
  const text = section(report, relative(REPO_ROOT, resultsPath));
  process.stdout.write(text);
  if (options.writeDocs) writeDocsSection(DOCS_FILE, text, DOCS_SECTION_HEADING);
  return 0;
}
