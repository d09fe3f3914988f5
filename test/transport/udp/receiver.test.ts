/**
 * The receiver thread (src/transport/udp/receiver.ts, receiver-worker.ts): it reads the socket
 * while this thread is blocked, packs at most the handoff budget and drops (and counts) the rest as
 * overloaded; it drops over-long datagrams itself; its raised priority is its own thread's; and
 * close() ends the thread and frees the port, leaving no handle behind. A failed bind rejects with the socket's error and leaves no thread.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { getPriority } from 'node:os';
import { Worker } from 'node:worker_threads';
import { silentLogger } from '../../../src/platform/logger.js';
import { UDP_ENTRY_HEADER_BYTES } from '../../../src/transport/udp/handoff.js';
import { DatagramCounts } from '../../../src/transport/udp/outcomes.js';
import { UdpReceiver, UDP_RECEIVER_NICE, type UdpReceiverOptions } from '../../../src/transport/udp/receiver.js';
import { eventually } from '../../helpers.js';

const LOOPBACK = '127.0.0.1';
/** How long this thread blocks at most waiting for the receiver: far longer than a loaded machine needs. */
const BLOCKED_MS_MAX = 20_000;

function options(received: Array<[string, string]>, overrides: Partial<UdpReceiverOptions> = {}): UdpReceiverOptions {
  return {
    host: LOOPBACK,
    port: 0,
    receiveBufferBytes: 1024 * 1024,
    datagramBytesMax: 65_507,
    counts: new DatagramCounts(),
    logger: silentLogger,
    onDatagram: (datagram, source) => void received.push([datagram.toString(), source]),
    ...overrides,
  };
}

/**
 * A sender on a thread of its own that waits for `go` (shared memory) before sending `datagrams` to
 * `port`, so it can send while this thread is blocked.
 */
function blockedSender(port: number, datagrams: string[], go: Int32Array): Worker {
  const code = `
    const { workerData } = require('node:worker_threads');
    const dgram = require('node:dgram');
    Atomics.wait(workerData.go, 0, 0);
    const socket = dgram.createSocket('udp4');
    let left = workerData.datagrams.length;
    for (const text of workerData.datagrams)
      socket.send(Buffer.from(text), workerData.port, '127.0.0.1', () => { if (--left === 0) socket.close(); });
  `;
  return new Worker(code, { eval: true, workerData: { port, datagrams, go } });
}

/** Blocks this thread (no event loop turns: nothing the receiver posts is taken) until `done()` or BLOCKED_MS_MAX. */
function blockUntil(done: () => boolean): void {
  const deadline = performance.now() + BLOCKED_MS_MAX;
  while (!done() && performance.now() < deadline) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
}

test('udp receiver - reads while this thread is blocked, packs at most the handoff budget and counts the rest as overloaded', async () => {
  const received: Array<[string, string]> = [];
  const counts = new DatagramCounts();
  const datagram = (i: number): string => `metrics ${String(i).padStart(292, '0')}`;
  const entryBytes = UDP_ENTRY_HEADER_BYTES + datagram(0).length;
  // Room for three datagrams and not four.
  const { receiver, address } = await UdpReceiver.open(options(received, { counts, handoffBytesMax: 3 * entryBytes + 10 }));
  try {
    const go = new Int32Array(new SharedArrayBuffer(4));
    const sender = blockedSender(address.port, Array.from({ length: 10 }, (_, i) => datagram(i)), go);
    const senderExited = once(sender, 'exit');
    await once(sender, 'online');
    Atomics.store(go, 0, 1);
    Atomics.notify(go, 0);
    blockUntil(() => counts.get('overloaded') === 7);
    assert.equal(counts.get('overloaded'), 7, 'the receiver dropped what did not fit while this thread took nothing');
    assert.equal(receiver.handoffBytes, 3 * entryBytes);
    assert.equal(received.length, 0);
    await eventually(() => assert.equal(received.length, 3));
    assert.deepEqual(received.map(([text, source]) => [text, source]), [0, 1, 2].map((i) => [datagram(i), LOOPBACK]));
    assert.equal(receiver.handoffBytes, 0, 'taken batches are released from the budget');
    await senderExited;
  } finally {
    await receiver.close();
  }
});

test('udp receiver - drops datagrams over datagramBytesMax itself, counted as oversized', async () => {
  const received: Array<[string, string]> = [];
  const counts = new DatagramCounts();
  const { receiver, address } = await UdpReceiver.open(options(received, { counts, datagramBytesMax: 100 }));
  const socket = createSocket('udp4');
  try {
    for (const text of [`metrics ${'x'.repeat(200)}`, 'metrics small'])
      await new Promise((resolve) => socket.send(Buffer.from(text), address.port, LOOPBACK, resolve));
    await eventually(() => assert.deepEqual(received, [['metrics small', LOOPBACK]]));
    assert.equal(counts.get('oversized'), 1);
  } finally {
    socket.close();
    await receiver.close();
  }
});

test('udp receiver - close() ends the thread, frees the port and leaves no handle; a failed bind rejects and leaves no thread', async () => {
  const before = process.getActiveResourcesInfo().sort();
  const received: Array<[string, string]> = [];
  const niceBefore = getPriority(0);
  const { receiver, address } = await UdpReceiver.open(options(received));
  assert.ok(address.receiveBufferBytes > 0);
  // The receiver's priority is its own thread's: this thread's is unchanged.
  assert.ok([UDP_RECEIVER_NICE, niceBefore].includes(address.receiverNice), `receiver nice ${address.receiverNice}`);
  assert.equal(getPriority(0), niceBefore);
  // The same port again: the bind fails in the receiver thread and open() rejects with its code.
  await assert.rejects(UdpReceiver.open(options([], { port: address.port })), (error: NodeJS.ErrnoException) => error.code === 'EADDRINUSE');
  const socket = createSocket('udp4');
  await new Promise((resolve) => socket.send(Buffer.from('metrics last'), address.port, LOOPBACK, resolve));
  socket.close();
  await eventually(() => assert.equal(received.length, 1));
  await receiver.close();
  // The port is free again, and nothing of the receiver is left to keep the process alive.
  const again = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    again.once('error', reject);
    again.bind(address.port, LOOPBACK, resolve);
  });
  await new Promise<void>((resolve) => again.close(resolve));
  await eventually(() => assert.deepEqual(process.getActiveResourcesInfo().sort(), before));
});
