/**
 * The UDP ingest port (src/transport/udp/server.ts) over a real broker: both datagram forms are
 * stored whole, a turn's datagrams share one publish per topic, and every datagram that is not
 * stored is dropped and counted by reason (malformed, oversized, forbidden, unknown topic, rate
 * limited, overloaded, failed) without disturbing the others or blocking the loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { Broker } from '../../../src/index.js';
import { FerryError } from '../../../src/errors.js';
import { ADMISSION_CEILINGS } from '../../../src/broker/limits.js';
import type { BrokerApi, Delivery, PublishMessage, PublishResult } from '../../../src/broker/types.js';
import { SystemClock, type Clock } from '../../../src/platform/clock.js';
import { silentLogger, type Logger } from '../../../src/platform/logger.js';
import { encodeUdpDatagram } from '../../../src/protocol/udp-datagram.js';
import { UdpServer, UDP_RECEIVER_RESTART_MS_MAX, type UdpOutcome, type UdpServerOptions } from '../../../src/transport/udp/server.js';
import { SimClock } from '../../sim/sim-clock.js';
import { eventually, tempDir } from '../../helpers.js';

const LOOPBACK = '127.0.0.1';

function options(overrides: Partial<UdpServerOptions> = {}): UdpServerOptions {
  return {
    topics: ['metrics', 'logs.*'],
    sourceMessagesPerSecond: 1_000_000,
    sourceBurstMessages: 0,
    datagramBytesMax: 65_507,
    receiveBufferBytes: 1024 * 1024,
    limits: ADMISSION_CEILINGS,
    clock: new SystemClock(),
    logger: silentLogger,
    ...overrides,
  };
}

/** A sender socket, bound to `address` (another loopback address is another source). */
async function sender(address = LOOPBACK): Promise<Socket> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  return socket;
}

/** Sends every datagram at once (one burst) and waits until the socket has handed them all over. */
function sendAll(socket: Socket, port: number, datagrams: readonly Buffer[]): Promise<unknown> {
  return Promise.all(datagrams.map((datagram) => new Promise((resolve, reject) => socket.send(datagram, port, LOOPBACK, (error) => (error ? reject(error) : resolve(undefined))))));
}

function countsOf(server: UdpServer): Record<UdpOutcome, number> {
  return Object.fromEntries(server.datagramCounts().map(({ outcome, count }) => [outcome, count])) as Record<UdpOutcome, number>;
}

/** Every message of `topic`, read back through a stream subscription. */
async function stored(broker: Broker, topic: string, count: number): Promise<Delivery[]> {
  const received: Delivery[] = [];
  const subscription = await broker.subscribe(topic, { from: { kind: 'earliest' }, credit: 10_000 }, { deliver: (delivery) => void received.push(delivery), writable: () => true });
  try {
    await eventually(() => assert.equal(received.length, count));
    return received.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  } finally {
    await subscription.close();
  }
}

/** Counts the publish calls the UDP port makes, passing them to the broker. */
class CountingBroker implements Pick<BrokerApi, 'publish'> {
  readonly calls: number[] = [];
  constructor(private readonly inner: Pick<BrokerApi, 'publish'>) {}
  publish(topic: string, messages: readonly PublishMessage[]): Promise<PublishResult[]> {
    this.calls.push(messages.length);
    return this.inner.publish(topic, messages);
  }
}

test('udp server - stores binary and plain-text datagrams whole, one publish per topic per turn', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  const counting = new CountingBroker(broker);
  const server = new UdpServer(counting, options());
  const socket = await sender();
  try {
    await broker.createTopic('metrics', { partitions: 2 });
    const { port } = await server.listen(0, LOOPBACK);
    const binary = Array.from({ length: 40 }, (_, i) => encodeUdpDatagram({ topic: 'metrics', value: `v${i}`, key: `k${i % 4}`, headers: { n: String(i) } }));
    await sendAll(socket, port, [...binary, Buffer.from('metrics cpu=0.5\n')]);
    await eventually(() => assert.equal(countsOf(server).stored, 41));
    const messages = await stored(broker, 'metrics', 41);
    const text = messages.find((message) => message.value.toString() === 'cpu=0.5');
    assert.deepEqual({ key: text?.key, headers: text?.headers }, { key: null, headers: [] });
    const v7 = messages.find((message) => message.value.toString() === 'v7')!;
    assert.deepEqual([v7.key?.toString(), v7.headers], ['k3', [['n', '7']]]);
    // Keys route to partitions: both are used, and a key stays on one.
    assert.deepEqual(new Set(messages.map((message) => message.partition)), new Set([0, 1]));
    assert.equal(counting.calls.reduce((sum, n) => sum + n, 0), 41);
    assert.ok(counting.calls.length < 41, `the 41 datagrams of one burst took ${counting.calls.length} publishes`);
  } finally {
    socket.close();
    await server.close();
    await broker.close();
  }
});

test('udp server - malformed, oversized, forbidden and unknown-topic datagrams are dropped and counted; the rest are stored', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  const server = new UdpServer(broker, options({ datagramBytesMax: 200, limits: { ...ADMISSION_CEILINGS, keyBytesMax: 8 }, topics: ['metrics', 'ghost*'] }));
  const socket = await sender();
  try {
    await broker.createTopic('metrics');
    await broker.createTopic('secret');
    const { port } = await server.listen(0, LOOPBACK);
    await sendAll(socket, port, [
      Buffer.from('metrics-without-a-value'),
      Buffer.from([0xfe, 0x77, 9, 0, 1, 0x6d]),
      encodeUdpDatagram({ topic: 'metrics', value: Buffer.alloc(300) }),
      encodeUdpDatagram({ topic: 'metrics', value: 'v', key: '123456789' }),
      Buffer.from('secret password'),
      Buffer.from('ghost boo'),
      encodeUdpDatagram({ topic: 'metrics', value: 'kept', key: '12345678' }),
    ]);
    await eventually(() => assert.equal(server.datagramCounts().reduce((sum, entry) => sum + entry.count, 0), 7));
    assert.deepEqual(countsOf(server), { stored: 1, malformed: 2, oversized: 2, forbidden: 1, rate_limited: 0, overloaded: 0, unknown_topic: 1, failed: 0 });
    assert.deepEqual((await stored(broker, 'metrics', 1)).map((message) => message.value.toString()), ['kept']);
    assert.equal(broker.describeTopic('secret').partitions[0]!.nextOffset, 0);
  } finally {
    socket.close();
    await server.close();
    await broker.close();
  }
});

test('udp server - a source past its rate is dropped as rate_limited; another source and the next second are not', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  const clock = new SimClock();
  const server = new UdpServer(broker, options({ sourceMessagesPerSecond: 5, clock: clock as Clock }));
  const [first, second] = [await sender(LOOPBACK), await sender('127.0.0.2')];
  try {
    await broker.createTopic('metrics');
    const { port } = await server.listen(0, LOOPBACK);
    const eight = Array.from({ length: 8 }, (_, i) => Buffer.from(`metrics ${i}`));
    await sendAll(first, port, eight);
    await eventually(() => assert.deepEqual([countsOf(server).stored, countsOf(server).rate_limited], [5, 3]));
    await sendAll(second, port, eight.slice(0, 2));
    await eventually(() => assert.equal(countsOf(server).stored, 7));
    clock.advance(1000);
    await sendAll(first, port, eight.slice(0, 2));
    await eventually(() => assert.equal(countsOf(server).stored, 9));
    assert.equal(countsOf(server).rate_limited, 3);
  } finally {
    first.close();
    second.close();
    await server.close();
    await broker.close();
  }
});

test('udp server - behind a stalled store datagrams past the in-flight bound are overloaded, the loop keeps turning, and a failed store counts as failed', async () => {
  let release: () => void = () => {};
  const stalled = new Promise<void>((resolve) => (release = resolve));
  let failing = false;
  const warnings: string[] = [];
  const logger: Logger = { ...silentLogger, warn: (event) => void warnings.push(event) };
  const store: Pick<BrokerApi, 'publish'> = {
    async publish(_topic, messages) {
      if (failing) throw new FerryError('BROKER_BUSY', 'memory above the watermark');
      await stalled;
      return messages.map((_, offset) => ({ partition: 0, offset, durability: 'written' as const }));
    },
  };
  const server = new UdpServer(store, options({ inFlightBytesMax: 1000, logger }));
  const socket = await sender();
  try {
    const { port } = await server.listen(0, LOOPBACK);
    await sendAll(socket, port, Array.from({ length: 10 }, () => encodeUdpDatagram({ topic: 'metrics', value: Buffer.alloc(300) })));
    await eventually(() => assert.deepEqual([countsOf(server).overloaded], [7]));
    // The loop is free while three datagrams wait for the store.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(countsOf(server).stored, 0);
    release();
    await eventually(() => assert.equal(countsOf(server).stored, 3));
    failing = true;
    await sendAll(socket, port, [Buffer.from('metrics a'), Buffer.from('metrics b')]);
    await eventually(() => assert.equal(countsOf(server).failed, 2));
    assert.deepEqual(warnings, ['udp.store_failed']);
  } finally {
    socket.close();
    await server.close();
  }
});

/** A logger that records the names of the warnings and errors it is given. */
function recording(events: string[]): Logger {
  return { ...silentLogger, error: (event) => void events.push(event), warn: (event) => void events.push(event) };
}

/** Ends the server's receiver thread as a bug or its heap's limit would: unasked, mid-run. */
async function killReceiverThread(server: UdpServer): Promise<void> {
  const receiver = (server as unknown as { receiver: { worker: { terminate(): Promise<number> } } | null }).receiver;
  assert.ok(receiver !== null, 'the server has a receiver thread');
  await receiver.worker.terminate();
}

test('udp server - a receiver thread that ends unasked is replaced on the same port, logged and counted', async () => {
  await using dir = await tempDir();
  const broker = await Broker.open({ dir: dir.path });
  const events: string[] = [];
  const server = new UdpServer(broker, options({ logger: recording(events) }));
  const socket = await sender();
  try {
    await broker.createTopic('metrics');
    const { port } = await server.listen(0, LOOPBACK);
    await sendAll(socket, port, [Buffer.from('metrics before')]);
    await eventually(() => assert.equal(countsOf(server).stored, 1));
    await killReceiverThread(server);
    await eventually(() => assert.equal(server.receiverRestarts, 1));
    assert.deepEqual(events, ['udp.receiver_ended', 'udp.receiver_restarted']);
    await sendAll(socket, port, [Buffer.from('metrics after')]);
    await eventually(() => assert.equal(countsOf(server).stored, 2));
    const values = (await stored(broker, 'metrics', 2)).map((message) => message.value.toString());
    assert.deepEqual(values, ['before', 'after']);
  } finally {
    socket.close();
    await server.close();
    await broker.close();
  }
});

test('udp server - close() while a replacement waits starts none, and leaves the port free', async () => {
  const clock = new SimClock();
  const events: string[] = [];
  const server = new UdpServer({ publish: () => Promise.resolve([]) }, options({ clock, logger: recording(events) }));
  const { port } = await server.listen(0, LOOPBACK);
  await killReceiverThread(server);
  // The replacement waits for the simulated clock, which does not move until close() has cancelled it.
  await eventually(() => assert.deepEqual(events, ['udp.receiver_ended']));
  await server.close();
  clock.advance(UDP_RECEIVER_RESTART_MS_MAX);
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(server.receiverRestarts, 0);
  await new Promise<void>((resolve, reject) => {
    const probe = createSocket('udp4');
    probe.once('error', reject);
    probe.bind(port, LOOPBACK, () => probe.close(() => resolve()));
  });
});
