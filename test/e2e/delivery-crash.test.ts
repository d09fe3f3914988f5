/**
 * Reliable delivery across real process crashes. The broker is a child process (`ferry serve`)
 * that is SIGKILLed and restarted on the same directory and port at seeded random moments, while
 * a producer publishes over TCP (retryPublishes) and two consumers in one group ack most of what
 * they get, nack some (with and without a delay) and reject a few. Afterwards the consumers ack
 * everything until the group has nothing pending, and the test checks, from the data on disk:
 *
 *   - every publish that was confirmed is in the topic (none lost), and no message is stored
 *     twice (retried publishes are recognised by their ids, across broker restarts);
 *   - every confirmed message was acked by a consumer or is in the dead-letter topic, once, with
 *     its headers; every reject() that resolved is in the dead-letter topic.
 *
 * FERRY_CRASH_SEED=<n> replays another schedule; the schedule is printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, isFerryError, type ConnectOptions, type FerryClient, type Message, type Subscription } from '../../src/client/index.js';
import { eventually, tempDir } from '../helpers.js';
import { prng } from '../protocol/frames.js';
import { BrokerProcess, warnIfStale } from './broker-process.js';

const SEED = Number(process.env['FERRY_CRASH_SEED'] ?? 20_261_126);
const KILLS = 10;
/** How long the broker runs before each SIGKILL: long enough for traffic, short enough for < 60 s in all. */
const UP_MS_MIN = 600;
const UP_MS_MAX = 1_800;
/** About 200 messages a second: thousands in all, without saturating two shared cores. */
const PUBLISH_TICK_MS = 50;
const PUBLISH_PER_TICK = 10;
/** Publishes sent just before each kill, and how long before it at most (ms): some reach the disk, some do not. */
const BURST_BEFORE_KILL = 50;
const BURST_LEAD_MS_MAX = 5;
/** Publishes waiting at once (e.g. while the broker is down) before the producer holds back. */
const PUBLISHES_IN_FLIGHT_MAX = 300;
const CONSUMERS = 2;
const TOPIC = 'jobs';
const DEAD_LETTER_TOPIC = 'jobs.dlq';
const GROUP = 'workers';
const SUBSCRIBE = { group: GROUP, ackTimeoutMs: 1_000, backoffMs: [20, 50], deliveriesMax: 4, deadLetterTopic: DEAD_LETTER_TOPIC, prefetch: 32 };
const REJECT_FRACTION = 0.04;
const NACK_FRACTION = 0.3;
const CLIENT: ConnectOptions = {
  requestTimeoutMs: 10_000,
  reconnect: { delayMsMin: 20, delayMsMax: 200, attemptsMax: 100_000, durationMsMax: 45_000 },
};
const DRAIN_TIMEOUT_MS = 20_000;
const TEST_TIMEOUT_MS = 60_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A stable fraction in [0, 1) for this message and delivery: the consumers' decisions replay with the seed. */
function decide(value: string, deliveryCount: number): number {
  let hash = 2166136261 ^ SEED;
  for (const char of `${value}:${deliveryCount}`) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619);
  // Final avalanche (murmur3's): without it, keys differing in their last character get nearby fractions.
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return (hash >>> 0) / 2 ** 32;
}

function countError(counts: Map<string, number>, error: unknown): void {
  const code = isFerryError(error) ? error.code : String(error);
  counts.set(code, (counts.get(code) ?? 0) + 1);
}

class Consumer {
  readonly acked = new Set<string>();
  /** Values whose reject() resolved: the dead letter was durable then. */
  readonly rejected = new Set<string>();
  readonly settleErrors = new Map<string, number>();
  nacks = 0;
  readonly done: Promise<void>;

  constructor(
    private readonly subscription: Subscription,
    private readonly draining: () => boolean,
  ) {
    this.done = this.run();
  }

  private async run(): Promise<void> {
    for await (const message of this.subscription) await this.handle(message);
  }

  private async handle(message: Message): Promise<void> {
    const value = message.value.toString();
    const roll = this.draining() ? 1 : decide(value, message.deliveryCount);
    try {
      if (roll < REJECT_FRACTION) {
        await message.reject('poison');
        this.rejected.add(value);
      } else if (roll < REJECT_FRACTION + NACK_FRACTION) {
        await message.nack(roll < REJECT_FRACTION + NACK_FRACTION / 2 ? { delayMs: 0 } : undefined);
        this.nacks++;
      } else {
        await message.ack();
        this.acked.add(value);
      }
    } catch (error) {
      // The connection was lost or the delivery timed out meanwhile: the message comes back.
      if (!isFerryError(error)) throw error;
      countError(this.settleErrors, error);
    }
  }
}

/** Every record of a topic, read with a stream subscription. */
async function readTopic(client: FerryClient, topic: string): Promise<Message[]> {
  const info = (await client.listTopics()).find((t) => t.name === topic);
  if (info === undefined) return [];
  const count = info.partitions.reduce((sum, p) => sum + p.nextOffset - p.startOffset, 0);
  const messages: Message[] = [];
  if (count === 0) return messages;
  const sub = await client.subscribe(topic, { from: 'earliest', prefetch: 1000 });
  for await (const message of sub) {
    messages.push(message);
    if (messages.length === count) break;
  }
  return messages;
}

function tally(messages: readonly Message[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const message of messages) counts.set(message.value.toString(), (counts.get(message.value.toString()) ?? 0) + 1);
  return counts;
}

test('e2e - SIGKILLed broker: every confirmed publish is delivered and acked or dead-lettered, none lost or stored twice', { timeout: TEST_TIMEOUT_MS }, async () => {
  warnIfStale();
  await using dir = await tempDir('ferry-crash-');
  const random = prng(SEED);
  const schedule = Array.from({ length: KILLS }, () => UP_MS_MIN + Math.floor(random() * (UP_MS_MAX - UP_MS_MIN)));
  const burstLeadMs = schedule.map(() => Math.floor(random() * (BURST_LEAD_MS_MAX + 1)));
  process.stdout.write(
    `# crash schedule (FERRY_CRASH_SEED=${SEED}): SIGKILL after ${schedule.map((ms, i) => `${ms}+${burstLeadMs[i]}`).join(', ')} ms up\n`,
  );

  let broker = await BrokerProcess.start(dir.path, 0);
  const port = broker.port;
  const clients: FerryClient[] = [];
  let producer: NodeJS.Timeout | undefined;
  try {
    const admin = await connect({ ...CLIENT, port });
    clients.push(admin);
    await admin.createTopic(TOPIC, { partitions: 2 });

    let draining = false;
    const consumers: Consumer[] = [];
    for (let i = 0; i < CONSUMERS; i++) {
      const client = await connect({ ...CLIENT, port, name: `consumer-${i}` });
      clients.push(client);
      consumers.push(new Consumer(await client.subscribe(TOPIC, SUBSCRIBE), () => draining));
    }

    const publisher = await connect({ ...CLIENT, port, name: 'producer', retryPublishes: true });
    clients.push(publisher);
    const confirmed = new Set<string>();
    const publishErrors = new Map<string, number>();
    const inFlight = new Set<Promise<void>>();
    let published = 0;
    const publish = (count: number): void => {
      for (let i = 0; i < count; i++) {
        const value = `m-${++published}`;
        const sent: Promise<void> = publisher.publish(TOPIC, value).then(
          () => void confirmed.add(value),
          (error: unknown) => countError(publishErrors, error),
        );
        inFlight.add(sent);
        void sent.finally(() => inFlight.delete(sent));
      }
    };
    producer = setInterval(() => {
      if (inFlight.size < PUBLISHES_IN_FLIGHT_MAX) publish(PUBLISH_PER_TICK);
    }, PUBLISH_TICK_MS);

    const startedMs = performance.now();
    for (const [kill, upMs] of schedule.entries()) {
      await sleep(upMs);
      // A burst right before the kill, so that every crash leaves publishes sent and unconfirmed
      // (some stored, some not): the ones retryPublishes must not store twice.
      publish(BURST_BEFORE_KILL);
      await sleep(burstLeadMs[kill]!);
      await broker.kill();
      broker = await BrokerProcess.start(dir.path, port);
    }
    const crashPhaseMs = performance.now() - startedMs;
    await sleep(UP_MS_MIN);
    clearInterval(producer);
    producer = undefined;
    await Promise.all([...inFlight]);

    // Drain: everything still pending is acked.
    draining = true;
    await eventually(
      async () => {
        const info = await admin.describeGroup(TOPIC, GROUP);
        assert.deepEqual([info.pending, info.inFlight, info.pendingRedelivery], [0, 0, 0], JSON.stringify(info));
      },
      { timeoutMs: DRAIN_TIMEOUT_MS, intervalMs: 100 },
    );

    const stored = tally(await readTopic(admin, TOPIC));
    const letters = await readTopic(admin, DEAD_LETTER_TOPIC);
    const deadLettered = tally(letters);
    const acked = new Set(consumers.flatMap((c) => [...c.acked]));
    const rejected = new Set(consumers.flatMap((c) => [...c.rejected]));
    const info = await admin.describeGroup(TOPIC, GROUP);
    const settleErrors = new Map<string, number>();
    for (const consumer of consumers) for (const [code, n] of consumer.settleErrors) settleErrors.set(code, (settleErrors.get(code) ?? 0) + n);
    process.stdout.write(
      `# ${KILLS} kills in ${Math.round(crashPhaseMs)} ms; published ${published}, confirmed ${confirmed.size}, ` +
        `retried ${publisher.publishesRetried}, publish errors ${JSON.stringify(Object.fromEntries(publishErrors))}; ` +
        `stored ${stored.size}; acked ${acked.size}, nacks ${consumers.reduce((n, c) => n + c.nacks, 0)}, rejected ${rejected.size}, ` +
        `dead letters ${letters.length}, redelivered ${info.redeliveredTotal}, settle errors ${JSON.stringify(Object.fromEntries(settleErrors))}\n`,
    );

    const reasons = new Map<string, number>();
    for (const letter of letters) countError(reasons, `${letter.headers['ferry-dlq-reason']}`);
    process.stdout.write(`# dead-letter reasons ${JSON.stringify(Object.fromEntries(reasons))}\n`);
    assert.ok(confirmed.size > 1000, `only ${confirmed.size} publishes confirmed`);
    const lost = [...confirmed].filter((value) => !stored.has(value));
    assert.deepEqual(lost.slice(0, 10), [], `${lost.length} confirmed messages are not in the topic`);
    const twice = [...stored].filter(([, n]) => n > 1).map(([value]) => value);
    assert.deepEqual(twice.slice(0, 10), [], `${twice.length} messages stored more than once`);

    const unsettled = [...confirmed].filter((value) => !acked.has(value) && !deadLettered.has(value));
    assert.deepEqual(unsettled.slice(0, 10), [], `${unsettled.length} confirmed messages neither acked nor dead-lettered`);
    const lettersTwice = [...deadLettered].filter(([, n]) => n > 1).map(([value]) => value);
    assert.deepEqual(lettersTwice.slice(0, 10), [], `${lettersTwice.length} messages dead-lettered more than once`);
    const rejectedMissing = [...rejected].filter((value) => !deadLettered.has(value));
    assert.deepEqual(rejectedMissing.slice(0, 10), [], `${rejectedMissing.length} resolved rejects are not in the dead-letter topic`);
    assert.ok(letters.length > 0 && rejected.size > 0, 'the run dead-lettered messages');
    for (const letter of letters) {
      const headers = letter.headers;
      assert.equal(headers['ferry-dlq-topic'], TOPIC);
      assert.equal(headers['ferry-dlq-group'], GROUP);
      assert.ok(/^\d+$/.test(headers['ferry-dlq-offset'] ?? '') && /^[01]$/.test(headers['ferry-dlq-partition'] ?? ''), JSON.stringify(headers));
      assert.match(headers['ferry-dlq-reason'] ?? '', /poison|nack|timeout/);
      assert.ok(Number(headers['ferry-dlq-deliveries']) >= 1);
    }
    assert.equal(info.deadLetteredTotal, letters.length, 'the group counted every dead letter');
  } catch (error) {
    process.stdout.write(`# broker output (tail):\n${broker.outputTail.replace(/^/gm, '# ')}\n`);
    throw error;
  } finally {
    if (producer !== undefined) clearInterval(producer);
    await Promise.allSettled(clients.map((client) => client.close()));
    await broker.kill();
  }
});
