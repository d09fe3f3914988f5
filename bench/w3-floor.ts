/**
 * W3's floor for any Node broker on this machine: the least a broker can do for W3 and still sync
 * before it confirms, timed the way W3 is timed. Its server is ~60 lines with no protocol, no
 * validation, no metrics, no tail cache and no groups: it appends each tick's messages to a file in
 * one write, fdatasyncs, then confirms them to the producer and pushes them to the consumer; the
 * consumer's acks are appended to a second file and synced (as a group's journal is) unless
 * `--no-journal`. One sync in flight per file; messages arriving meanwhile wait for the next pass
 * (group commit). The harness is W3's: 1 KiB payloads sent open loop at 5,000 msgs/s
 * (pacer.ts), latency from the send to the consumer's receipt.
 *
 *   npm run bench:w3floor [-- --seconds N] [--rate N] [--runs N] [--no-journal] [--preallocate]
 *                           [--replicas 3 [--commit all|majority]]
 *
 * `--replicas 3`: the floor of a replicated topic. The server is then a leader with two follower
 * processes (this script again, each with its own file): it forwards each tick's messages and acks
 * to both in one write each, as it appends them itself; a follower appends what it gets, one write
 * and one fdatasync a pass, and answers how many messages it has synced. A message is confirmed and
 * delivered once the leader has synced it and every follower has (`--commit all`, what Ferry's
 * `always` topics promise: every in-sync replica holds it synced) or one follower has
 * (`--commit majority`, two of three, what a Raft log waits for). All three processes share this
 * machine's disk and cores, as a three-broker cluster on one machine does.
 *
 * If this floor misses W3's target, a broker on this machine can only miss it by more; what Ferry
 * adds over it is what `npm run bench:driver -- w3` prints beside it.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { createConnection, createServer, type Socket } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launcherNodeFlags } from './checkout.js';
import { sendPaced } from './pacer.js';
import { LOOPBACK_HOST, ProcessRegistry, type ServerProcess } from './processes.js';
import { summarizeLatencies } from './stats.js';

const PAYLOAD_BYTES = 1024;
const DEFAULT_RATE_PER_SEC = 5_000;
const DEFAULT_SECONDS = 10;
/** Each frame on both sockets: a u32 length, then the bytes. */
const LENGTH_BYTES = 4;
/** An ack names its message by sequence number (u32). */
const ACK_BYTES = 4;
/** The first byte a harness connection sends says which side it is. */
const ROLE_PRODUCER = 0x50;
const ROLE_CONSUMER = 0x43;
/** `--preallocate`: the topic file is written full of zeros first (more than a run appends), so no sync grows it. */
const PREALLOCATED_BYTES = 128 * 1024 * 1024;
const ZERO_CHUNK_BYTES = 4 * 1024 * 1024;
/** A run that has not received every message this long after its last send has failed. */
const RECEIVE_GRACE_MS = 30_000;

// ---- the server (a child process: `--serve DIR --port N`) ------------------------------------------

/** Appends what it is given, one write and one fdatasync a pass, one pass at a time. */
class GroupCommitFile {
  private waiting: Buffer[] = [];
  private waitingDone: (() => void)[] = [];
  private position = 0;
  private running = false;

  constructor(private readonly handle: FileHandle) {}

  append(bytes: Buffer, done: () => void): void {
    this.waiting.push(bytes);
    this.waitingDone.push(done);
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.run());
    }
  }

  private async run(): Promise<void> {
    while (this.waiting.length > 0) {
      const batch = Buffer.concat(this.waiting);
      const done = this.waitingDone;
      this.waiting = [];
      this.waitingDone = [];
      await this.handle.write(batch, 0, batch.length, this.position);
      this.position += batch.length;
      await this.handle.datasync();
      for (const settle of done) settle();
    }
    this.running = false;
  }
}

/** Corks the socket until the end of this tick, so that a tick's writes leave as one. */
function corkForTick(socket: Socket): void {
  if (socket.writableCorked > 0) return;
  socket.cork();
  process.nextTick(() => socket.uncork());
}

/** Splits a socket's bytes into u32-length frames, or fixed-size units when `unitBytes` is set. */
function onUnits(socket: Socket, unitBytes: number | null, onUnit: (unit: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    for (;;) {
      const size = unitBytes ?? (pending.length - at >= LENGTH_BYTES ? LENGTH_BYTES + pending.readUInt32BE(at) : Infinity);
      if (pending.length - at < size) break;
      onUnit(pending.subarray(at, at + size));
      at += size;
    }
    pending = pending.subarray(at);
  });
}

// ---- replication (`--replicas 3`) ---------------------------------------------------------------

/** A frame to a follower: the u32 length, a kind byte, then a message frame's or an ack's bytes. */
const KIND_MESSAGE = 0x4d;
const KIND_ACK = 0x41;
/** A follower's answer: the u32 count of messages it has synced so far. */
const SYNCED_BYTES = 4;

/** A follower: appends what the leader forwards, and answers each sync with its count of synced messages. */
async function follow(dir: string, port: number): Promise<void> {
  const file = new GroupCommitFile(await open(join(dir, 'replica'), 'w'));
  let synced = 0;
  let answerScheduled = false;
  const server = createServer({ noDelay: true }, (socket) => {
    // One answer a tick: the count as it stands once the tick's syncs have all settled.
    const answer = (): void => {
      answerScheduled = false;
      const bytes = Buffer.alloc(SYNCED_BYTES);
      bytes.writeUInt32BE(synced, 0);
      socket.write(bytes);
    };
    onUnits(socket, null, (frame) => {
      const isMessage = frame[LENGTH_BYTES] === KIND_MESSAGE;
      file.append(Buffer.from(frame), () => {
        if (!isMessage) return;
        synced++;
        if (answerScheduled) return;
        answerScheduled = true;
        process.nextTick(answer);
      });
    });
  });
  server.listen(port, LOOPBACK_HOST);
}

/** The leader's side of replication: forwards frames and says when a message is held by enough replicas. */
class Replicas {
  /** Messages each follower has synced, by follower. */
  private readonly synced: number[];
  /** Messages forwarded, in order; the head is the oldest not yet committed. */
  private readonly pending: { synced: boolean; commit: () => void }[] = [];
  private committed = 0;
  private localSynced = 0;

  constructor(
    private readonly followers: Socket[],
    /** Followers that must have synced a message before it commits (besides the leader). */
    private readonly needed: number,
  ) {
    this.synced = followers.map(() => 0);
    followers.forEach((socket, index) => {
      onUnits(socket, SYNCED_BYTES, (unit) => {
        this.synced[index] = unit.readUInt32BE(0);
        this.advance();
      });
    });
  }

  forward(kind: number, bytes: Buffer): void {
    const frame = Buffer.alloc(LENGTH_BYTES + 1 + bytes.length);
    frame.writeUInt32BE(1 + bytes.length, 0);
    frame[LENGTH_BYTES] = kind;
    bytes.copy(frame, LENGTH_BYTES + 1);
    for (const socket of this.followers) {
      corkForTick(socket);
      socket.write(frame);
    }
  }

  /** A message forwarded; `commit` runs once the leader and enough followers hold it synced. */
  add(commit: () => void): { localSyncDone: () => void } {
    const entry = { synced: false, commit };
    this.pending.push(entry);
    return {
      localSyncDone: () => {
        entry.synced = true;
        this.localSynced++;
        this.advance();
      },
    };
  }

  private advance(): void {
    const heldBy = [...this.synced].sort((a, b) => b - a)[this.needed - 1] ?? Infinity;
    while (this.pending.length > 0 && this.pending[0]!.synced && this.committed < heldBy) {
      this.pending.shift()!.commit();
      this.committed++;
    }
  }
}

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: LOOPBACK_HOST, port, noDelay: true }, () => resolve(socket));
    socket.once('error', reject);
  });
}

async function serve(dir: string, port: number, journal: boolean, preallocate: boolean, followerPorts: number[] = [], needed = 0): Promise<void> {
  const topicHandle = await open(join(dir, 'topic'), 'w');
  if (preallocate) {
    const zeros = Buffer.alloc(ZERO_CHUNK_BYTES);
    for (let at = 0; at < PREALLOCATED_BYTES; at += zeros.length) await topicHandle.write(zeros, 0, zeros.length, at);
    await topicHandle.datasync();
  }
  const topic = new GroupCommitFile(topicHandle);
  const acks = journal ? new GroupCommitFile(await open(join(dir, 'acks'), 'w')) : null;
  const replicas = followerPorts.length === 0 ? null : new Replicas(await Promise.all(followerPorts.map(connectTo)), needed);
  let producer: Socket | null = null;
  let consumer: Socket | null = null;
  const server = createServer({ noDelay: true }, (socket) => {
    socket.once('data', (first: Buffer) => {
      const rest = first.subarray(1);
      if (first[0] === ROLE_PRODUCER) {
        producer = socket;
        onUnits(socket, null, (frame) => {
          const copy = Buffer.from(frame);
          const confirm = (): void => {
            corkForTick(producer!);
            producer!.write(copy.subarray(LENGTH_BYTES, LENGTH_BYTES + ACK_BYTES));
            if (consumer !== null) {
              corkForTick(consumer);
              consumer.write(copy);
            }
          };
          if (replicas === null) {
            topic.append(copy, confirm);
            return;
          }
          replicas.forward(KIND_MESSAGE, copy);
          topic.append(copy, replicas.add(confirm).localSyncDone);
        });
      } else {
        consumer = socket;
        onUnits(socket, ACK_BYTES, (ack) => {
          acks?.append(Buffer.from(ack), () => {});
          if (journal) replicas?.forward(KIND_ACK, ack);
        });
      }
      if (rest.length > 0) socket.unshift(rest);
    });
  });
  server.listen(port, LOOPBACK_HOST);
}

// ---- the harness -----------------------------------------------------------------------------

interface FloorRun {
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  p99AfterFirstSecondMs: number;
  /** p99 of the messages sent in each second of the run. */
  p99BySecondMs: number[];
}

function connectAs(port: number, role: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: LOOPBACK_HOST, port, noDelay: true }, () => {
      socket.write(Buffer.of(role));
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** How the floor's server keeps its topic: alone, or on three replicas committing on all or on a majority. */
interface Replication {
  replicas: number;
  commit: 'all' | 'majority';
}

/** Starts the floor's server (and its followers) as the benchmark starts brokers: free ports, temp dirs, stopped by their PIDs. */
async function startServer(processes: ProcessRegistry, journal: boolean, preallocate: boolean, replication: Replication): Promise<ServerProcess[]> {
  const script = (mode: string, port: number, dataDir: string): string[] => [...launcherNodeFlags(), '--import', 'tsx', new URL(import.meta.url).pathname, mode, dataDir, '--port', String(port)];
  const followers: ServerProcess[] = [];
  for (let index = 1; index < replication.replicas; index++) {
    followers.push(await processes.start({ name: `w3floor-follower-${index}`, command: process.execPath, args: (port, dataDir) => script('--follow', port, dataDir) }));
  }
  const needed = replication.commit === 'all' ? followers.length : Math.floor(replication.replicas / 2);
  const leader = await processes.start({
    name: 'w3floor',
    command: process.execPath,
    args: (port, dataDir) => [
      ...script('--serve', port, dataDir),
      ...(journal ? [] : ['--no-journal']),
      ...(preallocate ? ['--preallocate'] : []),
      ...(followers.length === 0 ? [] : ['--followers', followers.map((follower) => follower.port).join(','), '--needed', String(needed)]),
    ],
  });
  return [leader, ...followers];
}

async function runOnce(processes: ProcessRegistry, ratePerSec: number, seconds: number, journal: boolean, preallocate: boolean, replication: Replication): Promise<FloorRun> {
  const count = ratePerSec * seconds;
  const servers = await startServer(processes, journal, preallocate, replication);
  const server = servers[0]!;
  const producer = await connectAs(server.port, ROLE_PRODUCER);
  const consumer = await connectAs(server.port, ROLE_CONSUMER);
  try {
    const latenciesMs = new Float64Array(count);
    let received = 0;
    let allReceived!: () => void;
    const done = new Promise<void>((resolve) => (allReceived = resolve));
    // The consumer acks each tick's messages in one write, as the client does.
    let acks: Buffer[] = [];
    const flushAcks = (): void => {
      consumer.write(Buffer.concat(acks));
      acks = [];
    };
    const seen = new Uint8Array(count);
    onUnits(consumer, null, (frame) => {
      const sequence = frame.readUInt32BE(LENGTH_BYTES);
      if (frame.length !== LENGTH_BYTES + PAYLOAD_BYTES || sequence >= count || seen[sequence] === 1) {
        throw new Error(`delivery ${received + 1}: ${frame.length} bytes, sequence ${sequence} (misframed or duplicated)`);
      }
      seen[sequence] = 1;
      latenciesMs[sequence] = performance.now() - frame.readDoubleBE(LENGTH_BYTES + ACK_BYTES);
      if (acks.length === 0) setImmediate(flushAcks);
      acks.push(Buffer.from(frame.subarray(LENGTH_BYTES, LENGTH_BYTES + ACK_BYTES)));
      if (++received === count) allReceived();
    });
    producer.resume(); // confirms: counted by nobody, read so the socket never backs up
    // The sender corks each tick's sends into one write, as the client does.
    await sendPaced(count, ratePerSec, (sequence) => {
      corkForTick(producer);
      const frame = Buffer.alloc(LENGTH_BYTES + PAYLOAD_BYTES, 7);
      frame.writeUInt32BE(PAYLOAD_BYTES, 0);
      frame.writeUInt32BE(sequence, LENGTH_BYTES);
      frame.writeDoubleBE(performance.now(), LENGTH_BYTES + ACK_BYTES);
      producer.write(frame);
    });
    const timeout = setTimeout(() => allReceived(), RECEIVE_GRACE_MS);
    await done;
    clearTimeout(timeout);
    if (received < count) throw new Error(`received ${received} of ${count} within ${RECEIVE_GRACE_MS} ms of the last send`);
    const whole = summarizeLatencies(latenciesMs);
    const p99Of = (from: number, to: number): number => summarizeLatencies(latenciesMs.subarray(from, to)).p99Ms;
    const p99BySecondMs = Array.from({ length: seconds }, (_, second) => p99Of(second * ratePerSec, (second + 1) * ratePerSec));
    return { ...whole, p99AfterFirstSecondMs: p99Of(ratePerSec, count), p99BySecondMs };
  } finally {
    producer.destroy();
    consumer.destroy();
    await Promise.all(servers.map((started) => processes.stop(started)));
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      serve: { type: 'string' },
      port: { type: 'string' },
      seconds: { type: 'string' },
      rate: { type: 'string' },
      runs: { type: 'string' },
      'no-journal': { type: 'boolean' },
      preallocate: { type: 'boolean' },
      replicas: { type: 'string' },
      commit: { type: 'string' },
      follow: { type: 'string' },
      followers: { type: 'string' },
      needed: { type: 'string' },
    },
  });
  const journal = values['no-journal'] !== true;
  const preallocate = values.preallocate === true;
  if (values.follow !== undefined) return follow(values.follow, Number(values.port));
  if (values.serve !== undefined) {
    const followerPorts = values.followers === undefined ? [] : values.followers.split(',').map(Number);
    return serve(values.serve, Number(values.port), journal, preallocate, followerPorts, Number(values.needed ?? 0));
  }
  const replicas = Number(values.replicas ?? 1);
  if (replicas !== 1 && replicas !== 3) throw new Error('--replicas: 1 or 3');
  const commit = values.commit ?? 'all';
  if (commit !== 'all' && commit !== 'majority') throw new Error('--commit: all or majority');
  const replication: Replication = { replicas, commit };
  const seconds = Number(values.seconds ?? DEFAULT_SECONDS);
  const ratePerSec = Number(values.rate ?? DEFAULT_RATE_PER_SEC);
  const runs = Number(values.runs ?? 1);
  for (const [name, value] of Object.entries({ seconds, rate: ratePerSec, runs })) {
    if (!Number.isSafeInteger(value) || value < 1) throw new Error(`--${name}: a positive integer`);
  }
  const replicated = replicas === 1 ? 'one replica' : `${replicas} replicas, committed on ${commit === 'all' ? 'all' : 'a majority'}`;
  console.log(`W3 floor: ${ratePerSec} msgs/s for ${seconds} s, ${replicated}, acks journaled: ${journal}, topic file preallocated: ${preallocate}; nproc ${cpus().length}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB`);
  const processes = new ProcessRegistry();
  try {
    for (let run = 1; run <= runs; run++) {
      const r = await runOnce(processes, ratePerSec, seconds, journal, preallocate, replication);
      const ms = (value: number): string => value.toFixed(2);
      console.log(`run ${run}: p50 ${ms(r.p50Ms)} ms, p99 ${ms(r.p99Ms)} ms, p99.9 ${ms(r.p999Ms)} ms, max ${ms(r.maxMs)} ms; p99 after the first second ${ms(r.p99AfterFirstSecondMs)} ms; p99 by second ${r.p99BySecondMs.map(ms).join(' ')}`);
    }
  } finally {
    await processes.stopAll();
    processes.dispose();
  }
}

await main();
