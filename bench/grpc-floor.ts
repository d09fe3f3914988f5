/**
 * The floor of the gRPC workloads on this machine: W1 and W2 over gRPC (bench/grpc.ts's grpc-js
 * client, unchanged) against a server that stores nothing — a node:http2 server in its own
 * process that answers each Publish at once (Ferry's own hand-written codec) and streams canned
 * deliveries as fast as the Consume credit allows. No gRPC server can answer these calls with
 * less work, so the client's cost sets the ceiling: "gRPC/TCP" here is the best ratio any broker
 * could reach with this client, and Ferry's gRPC figures are compared with it.
 *
 *   node --import tsx bench/grpc-floor.ts [--runs 3] [--quick] [--no-build]
 *
 * Each run measures, in turn and each against a fresh process: Ferry over its TCP protocol,
 * Ferry over gRPC, the null server over gRPC. Prints the medians and writes
 * bench/results/grpc-floor-<date>-<commit>.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type ServerHttp2Stream } from 'node:http2';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { ConsumeRequestSchema, ConsumeResponseSchema } from '../src/generated/ferry/v1/messages_pb.js';
import { decodePublishBinary, encodePublishResponseBinary, varintBytes, writeVarint } from '../src/transport/grpc/publish-codec.js';
import { currentCommit, REPO_ROOT } from './checkout.js';
import { GrpcConnection, runWorkloads } from './grpc.js';
import { ensureBuilt } from './peers/ferry.js';
import { LOOPBACK_HOST, ProcessRegistry } from './processes.js';
import { median } from './stats.js';
import { FULL_SCALE, QUICK_SCALE, runWorkload, type Broker, type RunState, type ThroughputResult } from './workloads.js';

const ENVELOPE_BYTES = 5;
/** Deliveries per Consume response at most: Ferry's batch bound (256 KiB) holds about this many 1 KiB messages. */
const DELIVERIES_PER_RESPONSE_MAX = 240;

// ---- the null server (child process) ----------------------------------------------------------

function envelope(message: Uint8Array): Buffer {
  const framed = Buffer.alloc(ENVELOPE_BYTES + message.length);
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, ENVELOPE_BYTES);
  return framed;
}

function readBody(stream: ServerHttp2Stream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function answerUnary(stream: ServerHttp2Stream, message: Buffer): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(message);
}

/** The values published so far, in offset order, and their topic. */
const published: Buffer[] = [];
let publishedTopic = Buffer.alloc(0);

/** Bytes of one delivery's Message: topic, partition 0, the offset, publish_time {seconds 1}, the value, delivery_count 1. */
function messageBytes(offset: number, value: Buffer): number {
  const topic = 1 + varintBytes(publishedTopic.length) + publishedTopic.length;
  return topic + 2 + 1 + varintBytes(offset) + 4 + 1 + varintBytes(value.length) + value.length + 2;
}

/** A response of the deliveries in [from, to), each a `messages` field (2), written into one buffer. */
function deliveries(from: number, to: number): Buffer {
  let bytes = 0;
  for (let offset = from; offset < to; offset++) {
    const size = messageBytes(offset, published[offset]!);
    bytes += 1 + varintBytes(size) + size;
  }
  const framed = Buffer.allocUnsafe(ENVELOPE_BYTES + bytes);
  framed[0] = 0;
  framed.writeUInt32BE(bytes, 1);
  let at = ENVELOPE_BYTES;
  for (let offset = from; offset < to; offset++) {
    const value = published[offset]!;
    framed[at++] = 0x12;
    at = writeVarint(framed, at, messageBytes(offset, value));
    framed[at++] = 0x0a;
    at = writeVarint(framed, at, publishedTopic.length);
    at += publishedTopic.copy(framed, at);
    framed[at++] = 0x10;
    framed[at++] = 0;
    framed[at++] = 0x18;
    at = writeVarint(framed, at, offset);
    framed[at++] = 0x22; // publish_time, 2 bytes: seconds = 1
    framed[at++] = 2;
    framed[at++] = 0x08;
    framed[at++] = 1;
    framed[at++] = 0x3a;
    at = writeVarint(framed, at, value.length);
    at += value.copy(framed, at);
    framed[at++] = 0x40;
    framed[at++] = 1;
  }
  return framed;
}

function serveConsume(stream: ServerHttp2Stream): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc+proto' });
  let credit = 0;
  let sent = 0;
  let pending: Buffer = Buffer.alloc(0);
  let draining = false;
  const pump = (): void => {
    while (!draining && credit > 0 && sent < published.length) {
      const count = Math.min(credit, DELIVERIES_PER_RESPONSE_MAX, published.length - sent);
      credit -= count;
      const response = deliveries(sent, sent + count);
      sent += count;
      if (!stream.write(response)) {
        draining = true;
        stream.once('drain', () => {
          draining = false;
          pump();
        });
      }
    }
  };
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    while (pending.length >= ENVELOPE_BYTES && pending.length >= ENVELOPE_BYTES + pending.readUInt32BE(1)) {
      const length = pending.readUInt32BE(1);
      const request = fromBinary(ConsumeRequestSchema, pending.subarray(ENVELOPE_BYTES, ENVELOPE_BYTES + length));
      pending = pending.subarray(ENVELOPE_BYTES + length);
      if (request.start !== undefined) stream.write(envelope(toBinary(ConsumeResponseSchema, create(ConsumeResponseSchema, { subscribed: { consumerId: 'c1', topic: request.start.topic, group: request.start.group } }))));
      credit += request.credit;
      if (request.requestId !== 0) stream.write(envelope(toBinary(ConsumeResponseSchema, create(ConsumeResponseSchema, { settled: { requestId: request.requestId, failures: [] } }))));
    }
    pump();
  });
  stream.on('end', () => {
    if (!stream.closed) stream.close();
  });
  stream.on('error', () => undefined);
}

async function serveNull(): Promise<void> {
  const server = createServer();
  server.on('stream', (stream, headers) => {
    const path = headers[':path'];
    if (path === '/ferry.v1.MessageService/Consume') return serveConsume(stream);
    readBody(stream).then((body) => {
      if (path === '/ferry.v1.MessageService/Publish') {
        const decoded = decodePublishBinary(body.subarray(ENVELOPE_BYTES));
        const messages = decoded?.messages ?? [];
        publishedTopic = Buffer.from(decoded?.topic ?? '');
        const results = messages.map((message) => {
          const offset = published.length;
          published.push(Buffer.from(message.value.buffer, message.value.byteOffset, message.value.byteLength));
          return { partition: 0, offset, durability: 'synced' as const };
        });
        const answer = encodePublishResponseBinary(results, true, ENVELOPE_BYTES)!;
        answer.writeUInt32BE(answer.length - ENVELOPE_BYTES, 1);
        answerUnary(stream, answer);
        return;
      }
      // CreateTopic and anything else: an empty (default) response.
      answerUnary(stream, Buffer.alloc(ENVELOPE_BYTES));
    }, () => undefined);
  });
  server.listen(0, LOOPBACK_HOST, () => {
    const address = server.address();
    process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 });
  });
  process.on('disconnect', () => process.exit(0));
}

// ---- the comparison ---------------------------------------------------------------------------

async function startNull(): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [message] = (await once(child, 'message')) as [{ port: number }];
  return { child, port: message.port };
}

async function nullWorkloads(quick: boolean): Promise<{ W1: ThroughputResult; W2: ThroughputResult }> {
  const { child, port } = await startNull();
  try {
    const broker: Broker = { connect: async () => new GrpcConnection(`${LOOPBACK_HOST}:${port}`) };
    const scale = quick ? QUICK_SCALE : FULL_SCALE;
    const state: RunState = { w1TopicFilled: false };
    const w1 = (await runWorkload('W1', broker, scale, state)) as ThroughputResult;
    process.stderr.write(`bench: null gRPC W1 ${Math.round(w1.msgsPerSec).toLocaleString('en-US')} msgs/s\n`);
    const w2 = (await runWorkload('W2', broker, scale, state)) as ThroughputResult;
    process.stderr.write(`bench: null gRPC W2 ${Math.round(w2.msgsPerSec).toLocaleString('en-US')} msgs/s\n`);
    return { W1: w1, W2: w2 };
  } finally {
    child.disconnect();
    if (child.exitCode === null) await once(child, 'exit');
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, quick: { type: 'boolean', default: false }, 'no-build': { type: 'boolean', default: false } } });
  const runs = Number(values.runs);
  ensureBuilt(!values['no-build']);
  const loadStart = loadavg()[0]!;
  const processes = new ProcessRegistry();
  const figures = { tcp: { W1: [] as number[], W2: [] as number[] }, grpc: { W1: [] as number[], W2: [] as number[] }, null: { W1: [] as number[], W2: [] as number[] } };
  try {
    for (let run = 1; run <= runs; run++) {
      for (const kind of ['tcp', 'grpc'] as const) {
        const result = await runWorkloads(processes, kind, values.quick);
        figures[kind].W1.push(result.W1.msgsPerSec);
        figures[kind].W2.push(result.W2.msgsPerSec);
      }
      const floor = await nullWorkloads(values.quick);
      figures.null.W1.push(floor.W1.msgsPerSec);
      figures.null.W2.push(floor.W2.msgsPerSec);
    }
  } finally {
    await processes.stopAll();
  }
  const m = (values: number[]): number => Math.round(median(values));
  const rows = (['W1', 'W2'] as const).map((w) => ({
    workload: w,
    tcp: m(figures.tcp[w]),
    grpc: m(figures.grpc[w]),
    null: m(figures.null[w]),
  }));
  const commit = currentCommit();
  const at = new Date().toISOString();
  const report = { at, commit, command: `node --import tsx bench/grpc-floor.ts ${process.argv.slice(2).join(' ')}`.trim(), cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, loadAverage1m: { start: loadStart, end: loadavg()[0] }, runs, figures, medians: rows };
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `grpc-floor-${at.replace(/[:.]/g, '-').slice(0, 19)}Z-${commit}.json`);
  writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  console.log('| Workload (msgs/s, medians) | Ferry TCP | Ferry gRPC | gRPC/TCP | null server gRPC (floor) | floor/TCP | Ferry gRPC / floor |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const row of rows) {
    console.log(`| ${row.workload} | ${row.tcp.toLocaleString('en-US')} | ${row.grpc.toLocaleString('en-US')} | ${(row.grpc / row.tcp).toFixed(2)} | ${row.null.toLocaleString('en-US')} | ${(row.null / row.tcp).toFixed(2)} | ${(row.grpc / row.null).toFixed(2)} |`);
  }
  console.log(`results: ${file}`);
  return 0;
}

if (process.argv.includes('--serve')) {
  void serveNull();
} else {
  main().then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
