/**
 * The four broker workloads, defined once over a small adapter interface so that Ferry, NATS
 * JetStream and Redis Streams (and, with --cluster, their replicated forms and RabbitMQ's quorum
 * queues) run exactly the same code: the same payloads, the same in-flight
 * window, the same pacing, the same clock. Every adapter confirms a publish only once the broker
 * has made it durable as configured, and acknowledges every delivered message individually.
 *
 *   W1  one producer, `messages` publishes with at most `windowMax` unconfirmed: msgs/s
 *   W2  one consumer in a group drains W1's topic, one ack per message: msgs/s
 *   W3  open-loop publishes at a fixed rate, publish -> receive latency: p50/p99/p99.9
 *   W4  `groupProducers` producers and `groupConsumers` competing consumers in one group: msgs/s
 *       from the first publish until every message has been received and acked
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { sendPaced } from './pacer.js';
import type { ProcessRegistry, ServerProcess } from './processes.js';
import { summarizeLatencies } from './stats.js';

// ---- The adapter interface -------------------------------------------------------------------

export interface MessageHandler {
  /** Called once per delivered message, before the adapter acknowledges it. Must not block. */
  onMessage(payload: Uint8Array): void;
  /** A consume loop failed; the workload fails with this error. */
  onError(error: unknown): void;
}

export interface BrokerSubscription {
  /** Resolves once the broker has received every ack this subscription has sent so far. */
  flushAcks(): Promise<void>;
  close(): Promise<void>;
}

export interface BrokerConnection {
  /** Creates a durable topic (stream) with fsync-before-confirm where the system offers it. */
  createTopic(topic: string): Promise<void>;
  /** Resolves once the broker has confirmed the message as stored. */
  publish(topic: string, payload: Uint8Array): Promise<void>;
  /** Joins (creating if needed) a consumer group that starts at the earliest message. */
  subscribe(topic: string, group: string, handler: MessageHandler): Promise<BrokerSubscription>;
  close(): Promise<void>;
}

export interface Broker {
  connect(): Promise<BrokerConnection>;
}

/** A broker started for one run: the client side plus the server processes it talks to. */
export interface StartedBroker extends Broker {
  /** The broker's server processes: one, or one per node of a cluster (peak RSS: the largest). */
  readonly servers: readonly ServerProcess[];
  /** Stops every process this start made (helpers such as etcd or epmd too), by PID. */
  stop(): Promise<void>;
}

export interface BrokerSystem {
  readonly id: string;
  readonly label: string;
  /** One word for ratio column headers ("Ferry/JetStream"). */
  readonly shortLabel: string;
  /** Server and client versions plus the durability settings, for the report. */
  describe(): Promise<string>;
  /** Once before any run (e.g. build the code); a failure skips the system with its message. */
  prepare?(): Promise<void>;
  start(processes: ProcessRegistry): Promise<StartedBroker>;
}

// ---- Sizes -----------------------------------------------------------------------------------

export const WORKLOAD_IDS = ['W1', 'W2', 'W3', 'W4'] as const;
export type WorkloadId = (typeof WORKLOAD_IDS)[number];

/** Every message is this size: a common small-event size, and the size of the reference figures. */
export const PAYLOAD_BYTES = 1024;
/** Payload layout: send time (performance.now(), float64 LE), then the sequence number (uint32 LE). */
const SENT_AT_OFFSET = 0;
const SEQUENCE_OFFSET = 8;
/**
 * Messages one subscriber may hold unacknowledged (Ferry's `prefetch`, the JetStream pull batch,
 * Redis's XREADGROUP COUNT): the same for every system so that none batches deliveries more.
 */
export const PREFETCH_MESSAGES = 256;

export interface WorkloadScale {
  /** W1 publishes and W2 drains this many. */
  messages: number;
  /** W1/W4: unconfirmed publishes allowed at once (W4 splits it between its producers). */
  windowMax: number;
  latencyRatePerSec: number;
  latencyDurationMs: number;
  groupMessages: number;
  groupProducers: number;
  groupConsumers: number;
}

export const FULL_SCALE: WorkloadScale = {
  messages: 200_000,
  windowMax: 1_000,
  latencyRatePerSec: 5_000,
  latencyDurationMs: 10_000,
  groupMessages: 100_000,
  groupProducers: 4,
  groupConsumers: 4,
};

/** `--quick`: ten times fewer messages everywhere, for a smoke run; figures are not comparable. */
export const QUICK_SCALE: WorkloadScale = {
  ...FULL_SCALE,
  messages: FULL_SCALE.messages / 10,
  latencyDurationMs: FULL_SCALE.latencyDurationMs / 10,
  groupMessages: FULL_SCALE.groupMessages / 10,
};

/**
 * A workload that has not finished by this deadline fails instead of hanging: at least a minute,
 * and more for big counts, allowing a slow broker 500 msgs/s (far below anything worth comparing).
 */
const DEADLINE_MS_MIN = 60_000;
const DEADLINE_RATE_MSGS_PER_SEC_MIN = 500;

function deadlineMsFor(messages: number): number {
  return Math.max(DEADLINE_MS_MIN, (messages / DEADLINE_RATE_MSGS_PER_SEC_MIN) * 1000);
}

// ---- Results ---------------------------------------------------------------------------------

export interface ThroughputResult {
  kind: 'throughput';
  messages: number;
  elapsedMs: number;
  msgsPerSec: number;
  /** Payload megabytes (10^6 bytes) per second. */
  mbPerSec: number;
  /** Deliveries of a message already received (redeliveries); not counted in msgs/s. */
  duplicates: number;
}

export interface LatencyResult {
  kind: 'latency';
  messages: number;
  ratePerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /**
   * p99 of the messages sent after the first second: a diagnostic of warm-up (code the JIT has not
   * compiled yet, on either side), not the headline figure, which covers the whole run.
   */
  p99AfterFirstSecondMs: number;
  /** How far the open-loop sender fell behind its schedule at worst (event-loop stalls). */
  sendLagMaxMs: number;
  duplicates: number;
}

export type WorkloadResult = ThroughputResult | LatencyResult;

// ---- Payloads and receipts -------------------------------------------------------------------

const FILLER = Buffer.alloc(PAYLOAD_BYTES, 'ferry-bench-payload;');

export function makePayload(sequence: number, sentAtMs: number): Buffer {
  const payload = Buffer.allocUnsafe(PAYLOAD_BYTES);
  FILLER.copy(payload);
  payload.writeDoubleLE(sentAtMs, SENT_AT_OFFSET);
  payload.writeUInt32LE(sequence, SEQUENCE_OFFSET);
  return payload;
}

function readPayload(payload: Uint8Array): { sequence: number; sentAtMs: number } {
  assert.equal(payload.byteLength, PAYLOAD_BYTES, 'payload size changed in transit');
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return { sequence: view.getUint32(SEQUENCE_OFFSET, true), sentAtMs: view.getFloat64(SENT_AT_OFFSET, true) };
}

/** Counts distinct sequence numbers received and resolves `done` once all `expected` have come. */
class Receipts {
  private readonly seen: Uint8Array;
  received = 0;
  duplicates = 0;
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private rejectDone!: (error: unknown) => void;

  constructor(readonly expected: number) {
    this.seen = new Uint8Array(expected);
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    this.done.catch(() => {}); // observed by the workload; avoid an unhandled rejection meanwhile
  }

  /** Records one delivery; true the first time this sequence number arrives. */
  record(sequence: number): boolean {
    assert.ok(sequence < this.expected, `sequence ${sequence} outside this workload`);
    if (this.seen[sequence] === 1) {
      this.duplicates++;
      return false;
    }
    this.seen[sequence] = 1;
    this.received++;
    if (this.received === this.expected) this.resolveDone();
    return true;
  }

  fail(error: unknown): void {
    this.rejectDone(error);
  }

  handler(onFirst?: (sequence: number, sentAtMs: number) => void): MessageHandler {
    return {
      onMessage: (payload) => {
        const { sequence, sentAtMs } = readPayload(payload);
        if (this.record(sequence) && onFirst !== undefined) onFirst(sequence, sentAtMs);
      },
      onError: (error) => this.fail(error),
    };
  }
}

async function withDeadline<T>(promise: Promise<T>, deadlineMs: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${deadlineMs} ms: ${what()}`)), deadlineMs);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

// ---- Publishing ------------------------------------------------------------------------------

/**
 * Publishes sequence numbers [first, first + count) keeping at most `windowMax` unconfirmed, and
 * resolves when the last one is confirmed. The payload's send time is the moment of the call.
 */
export function publishWindowed(
  connection: BrokerConnection,
  topic: string,
  first: number,
  count: number,
  windowMax: number,
): Promise<void> {
  assert.ok(windowMax >= 1, 'window must allow one publish');
  return new Promise((resolve, reject) => {
    let next = 0;
    let confirmed = 0;
    let failed = false;
    const onConfirm = (): void => {
      confirmed++;
      if (confirmed === count) resolve();
      else pump();
    };
    const onFail = (error: unknown): void => {
      if (!failed) reject(error);
      failed = true;
    };
    const pump = (): void => {
      while (!failed && next < count && next - confirmed < windowMax) {
        const sequence = first + next++;
        connection.publish(topic, makePayload(sequence, performance.now())).then(onConfirm, onFail);
      }
    };
    if (count === 0) resolve();
    else pump();
  });
}

interface PacedSend {
  sendLagMaxMs: number;
  /** Resolves once every paced publish is confirmed. */
  confirmed: Promise<void>;
}

/** W3's open-loop publisher (pacer.ts); resolves once all are sent, with their confirmations to await. */
async function publishPaced(connection: BrokerConnection, topic: string, count: number, ratePerSec: number): Promise<PacedSend> {
  let resolveConfirmed!: () => void;
  let rejectConfirmed!: (error: unknown) => void;
  const confirmed = new Promise<void>((resolve, reject) => {
    resolveConfirmed = resolve;
    rejectConfirmed = reject;
  });
  confirmed.catch(() => {}); // the caller awaits it after the sending phase
  let confirmedCount = 0;
  const onConfirm = (): void => {
    confirmedCount++;
    if (confirmedCount === count) resolveConfirmed();
  };
  const { sendLagMaxMs } = await sendPaced(count, ratePerSec, (sequence) => {
    connection.publish(topic, makePayload(sequence, performance.now())).then(onConfirm, rejectConfirmed);
  });
  return { sendLagMaxMs, confirmed };
}

// ---- The workloads ---------------------------------------------------------------------------

const TOPIC_W1 = 'bench-w1';
const TOPIC_W3 = 'bench-w3';
const TOPIC_W4 = 'bench-w4';

/** What one run's workloads share: W2 drains the topic W1 filled. */
export interface RunState {
  w1TopicFilled: boolean;
}

function throughput(messages: number, elapsedMs: number, duplicates: number): ThroughputResult {
  const msgsPerSec = (messages / elapsedMs) * 1000;
  return { kind: 'throughput', messages, elapsedMs, msgsPerSec, mbPerSec: (msgsPerSec * PAYLOAD_BYTES) / 1e6, duplicates };
}

interface Closable {
  close(): Promise<void>;
}

/** What a workload opened: subscriptions are closed before the connections they live on. */
class Resources {
  readonly subscriptions: Closable[] = [];
  readonly connections: Closable[] = [];

  async connect(broker: Broker): Promise<BrokerConnection> {
    const connection = await broker.connect();
    this.connections.push(connection);
    return connection;
  }

  async subscribe(connection: BrokerConnection, topic: string, group: string, handler: MessageHandler): Promise<BrokerSubscription> {
    const subscription = await connection.subscribe(topic, group, handler);
    this.subscriptions.push(subscription);
    return subscription;
  }

  /** Closes everything; the first failure is returned, not thrown, so the caller can choose. */
  async close(): Promise<unknown> {
    let failure: unknown;
    for (const group of [this.subscriptions, this.connections]) {
      for (const result of await Promise.allSettled(group.map((item) => item.close()))) {
        if (result.status === 'rejected' && failure === undefined) failure = result.reason ?? new Error('close failed');
      }
    }
    return failure;
  }
}

/** Runs `body`, then closes what it opened; a close failure fails the workload only if body succeeded. */
async function withResources<T>(body: (resources: Resources) => Promise<T>): Promise<T> {
  const resources = new Resources();
  let result: T;
  try {
    result = await body(resources);
  } catch (error) {
    await resources.close();
    throw error;
  }
  const failure = await resources.close();
  if (failure !== undefined) throw failure;
  return result;
}

function w1Publish(broker: Broker, scale: WorkloadScale, state: RunState): Promise<ThroughputResult> {
  return withResources(async (resources) => {
    const connection = await resources.connect(broker);
    await connection.createTopic(TOPIC_W1);
    const start = performance.now();
    await withDeadline(
      publishWindowed(connection, TOPIC_W1, 0, scale.messages, scale.windowMax),
      deadlineMsFor(scale.messages),
      () => 'W1 publishing',
    );
    const elapsedMs = performance.now() - start;
    state.w1TopicFilled = true;
    return throughput(scale.messages, elapsedMs, 0);
  });
}

async function w2Drain(broker: Broker, scale: WorkloadScale, state: RunState): Promise<ThroughputResult> {
  if (!state.w1TopicFilled) {
    // Run on its own, W2 still needs W1's topic: fill it, untimed.
    await withResources(async (resources) => {
      const filler = await resources.connect(broker);
      await filler.createTopic(TOPIC_W1);
      await withDeadline(
        publishWindowed(filler, TOPIC_W1, 0, scale.messages, scale.windowMax),
        deadlineMsFor(scale.messages),
        () => 'W2 filling its topic',
      );
    });
    state.w1TopicFilled = true;
  }
  return withResources(async (resources) => {
    const connection = await resources.connect(broker);
    const receipts = new Receipts(scale.messages);
    const start = performance.now();
    const subscription = await resources.subscribe(connection, TOPIC_W1, 'bench-w2', receipts.handler());
    await withDeadline(receipts.done, deadlineMsFor(scale.messages), () => `W2 received ${receipts.received} of ${scale.messages}`);
    await subscription.flushAcks();
    return throughput(scale.messages, performance.now() - start, receipts.duplicates);
  });
}

function w3Latency(broker: Broker, scale: WorkloadScale): Promise<LatencyResult> {
  const messages = Math.round((scale.latencyRatePerSec * scale.latencyDurationMs) / 1000);
  // One extra message (the last sequence number) primes the path: the timed phase starts only
  // once a message has gone all the way through, so subscription setup is not measured.
  const primer = messages;
  const latenciesMs = new Float64Array(messages);
  const receipts = new Receipts(messages + 1);
  let primed!: () => void;
  const primerReceived = new Promise<void>((resolve) => (primed = resolve));
  const handler = receipts.handler((sequence, sentAtMs) => {
    if (sequence === primer) primed();
    else latenciesMs[sequence] = performance.now() - sentAtMs;
  });
  return withResources(async (resources) => {
    const producer = await resources.connect(broker);
    const consumer = await resources.connect(broker);
    await producer.createTopic(TOPIC_W3);
    const subscription = await resources.subscribe(consumer, TOPIC_W3, 'bench-w3', handler);
    await producer.publish(TOPIC_W3, makePayload(primer, performance.now()));
    await withDeadline(Promise.race([primerReceived, receipts.done]), DEADLINE_MS_MIN, () => 'W3 waiting for the primer');
    const paced = await publishPaced(producer, TOPIC_W3, messages, scale.latencyRatePerSec);
    const deadlineMs = deadlineMsFor(messages);
    await withDeadline(receipts.done, deadlineMs, () => `W3 received ${receipts.received - 1} of ${messages}`);
    await withDeadline(paced.confirmed, deadlineMs, () => 'W3 waiting for publish confirmations');
    await subscription.flushAcks();
    const summary = summarizeLatencies(latenciesMs);
    const afterFirstSecond = summarizeLatencies(latenciesMs.subarray(Math.min(messages - 1, scale.latencyRatePerSec)));
    return {
      kind: 'latency',
      messages,
      ratePerSec: scale.latencyRatePerSec,
      p50Ms: summary.p50Ms,
      p99Ms: summary.p99Ms,
      p999Ms: summary.p999Ms,
      maxMs: summary.maxMs,
      p99AfterFirstSecondMs: afterFirstSecond.p99Ms,
      sendLagMaxMs: paced.sendLagMaxMs,
      duplicates: receipts.duplicates,
    };
  });
}

function w4Group(broker: Broker, scale: WorkloadScale): Promise<ThroughputResult> {
  assert.equal(scale.groupMessages % scale.groupProducers, 0, 'W4 messages must split evenly between producers');
  const perProducer = scale.groupMessages / scale.groupProducers;
  const windowPerProducer = Math.max(1, Math.floor(scale.windowMax / scale.groupProducers));
  const receipts = new Receipts(scale.groupMessages);
  return withResources(async (resources) => {
    const admin = await resources.connect(broker);
    await admin.createTopic(TOPIC_W4);
    const subscriptions: BrokerSubscription[] = [];
    for (let i = 0; i < scale.groupConsumers; i++) {
      const consumer = await resources.connect(broker);
      subscriptions.push(await resources.subscribe(consumer, TOPIC_W4, 'bench-w4', receipts.handler()));
    }
    const producers: BrokerConnection[] = [];
    for (let i = 0; i < scale.groupProducers; i++) producers.push(await resources.connect(broker));

    const start = performance.now();
    const published = Promise.all(
      producers.map((producer, i) => publishWindowed(producer, TOPIC_W4, i * perProducer, perProducer, windowPerProducer)),
    );
    await withDeadline(
      Promise.all([published, receipts.done]),
      deadlineMsFor(scale.groupMessages),
      () => `W4 received ${receipts.received} of ${scale.groupMessages}`,
    );
    await Promise.all(subscriptions.map((subscription) => subscription.flushAcks()));
    return throughput(scale.groupMessages, performance.now() - start, receipts.duplicates);
  });
}

export async function runWorkload(id: WorkloadId, broker: Broker, scale: WorkloadScale, state: RunState): Promise<WorkloadResult> {
  switch (id) {
    case 'W1':
      return w1Publish(broker, scale, state);
    case 'W2':
      return w2Drain(broker, scale, state);
    case 'W3':
      return w3Latency(broker, scale);
    case 'W4':
      return w4Group(broker, scale);
  }
}
