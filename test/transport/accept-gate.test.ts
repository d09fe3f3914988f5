/**
 * The per-address accept rate (issue 22, item 12): a connection storm from one address is closed at
 * accept, before any TLS handshake or HELLO work, and counted in
 * ferry_connections_refused_total{reason="accept_rate"}; other addresses are not held back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { AcceptGate, ACCEPT_ADDRESSES_TRACKED_MAX } from '../../src/transport/tcp/accept-gate.js';
import { SimClock } from '../sim/sim-clock.js';
import { startBrokerWith } from './harness.js';

test('accept gate - a burst, then the rate; each address has its own bucket; 0 turns it off', () => {
  const gate = new AcceptGate(10, 3);
  const taken = (address: string, atMs: number, times: number) => Array.from({ length: times }, () => gate.take(address, atMs)).filter(Boolean).length;
  assert.equal(taken('10.0.0.1', 0, 5), 3, 'the burst');
  assert.equal(taken('10.0.0.2', 0, 5), 3, 'another address is not held back');
  assert.equal(taken('10.0.0.1', 100, 5), 1, '10/s: one more after 100 ms');
  assert.equal(taken('10.0.0.1', 10_000, 5), 3, 'refilled up to the burst, no more');
  const off = new AcceptGate(0, 1);
  assert.equal(Array.from({ length: 1000 }, () => off.take('10.0.0.1', 0)).every(Boolean), true);
});

test('accept gate - its memory is bounded: a spray of source addresses does not grow it past the cap', () => {
  const gate = new AcceptGate(10, 2);
  for (let i = 0; i < ACCEPT_ADDRESSES_TRACKED_MAX + 50; i++) gate.take(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`, 0);
  assert.ok((gate as unknown as { buckets: Map<string, unknown> }).buckets.size <= ACCEPT_ADDRESSES_TRACKED_MAX);
});

function openSocket(port: number): Promise<{ socket: Socket; closed: Promise<boolean> }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ port, host: '127.0.0.1' }, () => {
      const closed = new Promise<boolean>((done) => socket.once('close', () => done(true)));
      resolve({ socket, closed });
    });
    socket.on('error', () => undefined);
    socket.once('error', reject);
  });
}

test('accept gate - past the rate, the TCP server closes sockets at accept and counts them by reason', async () => {
  // The simulated clock never moves: the bucket does not refill during the test.
  const running = await startBrokerWith({ clock: new SimClock(), acceptsPerSecondPerIp: 1, acceptBurstPerIp: 3 });
  const sockets: Socket[] = [];
  try {
    const opened = [];
    for (let i = 0; i < 5; i++) opened.push(await openSocket(running.port));
    sockets.push(...opened.map((o) => o.socket));
    // The two past the burst are closed by the server without a byte; the first three stay open.
    await Promise.all(opened.slice(3).map((o) => o.closed));
    const stats = running.server!.stats();
    assert.equal(stats.refusedByReason.accept_rate, 2);
    assert.equal(stats.connectionsRejected, 2);
    assert.equal(opened.slice(0, 3).every((o) => !o.socket.destroyed), true);
  } finally {
    for (const socket of sockets) socket.destroy();
    await running.close();
  }
});
