/**
 * Fuzzed packets never crash the MQTT port: random bytes, and valid packets with bytes flipped,
 * sent before and after a CONNECT; each connection ends or goes on, and a well-behaved client is
 * served afterwards. Seeded (fast-check), so a failure replays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as connectTcp, type Socket } from 'node:net';
import fc from 'fast-check';
import mqttPacket from 'mqtt-packet';
import { client, startMqtt } from './harness.js';

const TEST_TIMEOUT_MS = 120_000;
const RUNS = 150;

const CONNECT_V5 = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId: 'fuzz', keepalive: 30 }, { protocolVersion: 5 });
const CONNECT_V4 = mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'fuzz4', keepalive: 30 });
const VALID = [
  mqttPacket.generate({ cmd: 'publish', topic: 'f/a', payload: Buffer.from('x'), qos: 1, messageId: 1, dup: false, retain: false, properties: { userProperties: { a: 'b' } } }, { protocolVersion: 5 }),
  mqttPacket.generate({ cmd: 'subscribe', messageId: 2, subscriptions: [{ topic: 'f/#', qos: 1 }] }, { protocolVersion: 5 }),
  mqttPacket.generate({ cmd: 'publish', topic: 'f/b', payload: Buffer.from('y'), qos: 2, messageId: 3, dup: false, retain: true }, { protocolVersion: 5 }),
  mqttPacket.generate({ cmd: 'unsubscribe', messageId: 4, unsubscriptions: ['f/#'] }, { protocolVersion: 5 }),
  mqttPacket.generate({ cmd: 'pubrel', messageId: 3 }, { protocolVersion: 5 }),
];

/** Sends `chunks` and waits until the server closes the socket or a short while passes. */
function send(port: number, chunks: Buffer[]): Promise<void> {
  return new Promise((resolve) => {
    const socket: Socket = connectTcp(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve();
    };
    const timer = setTimeout(done, 100);
    socket.on('close', done);
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
    });
  });
}

const mutated = fc
  .tuple(fc.constantFrom(...VALID), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
  .map(([packet, flips]) => {
    const copy = Buffer.from(packet);
    for (const [at, value] of flips) copy[at % copy.length] = value;
    return copy;
  });
const noise = fc.uint8Array({ minLength: 1, maxLength: 300 }).map((bytes) => Buffer.from(bytes));

test('mqtt fuzz - random and corrupted packets, before and after CONNECT, never crash the port', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['f'] });
  const port = Number(new URL(harness.url).port);
  try {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom<Buffer | null>(null, CONNECT_V5, CONNECT_V4), fc.array(fc.oneof(mutated, noise), { minLength: 1, maxLength: 4 }), async (connectPacket, packets) => {
        await send(port, connectPacket === null ? packets : [connectPacket, ...packets]);
      }),
      { numRuns: RUNS, seed: 23 },
    );
    const survivor = await client(harness.url);
    await survivor.publishAsync('f/ok', 'still serving', { qos: 1 });
    await survivor.endAsync();
    assert.ok(harness.server.connectionCount <= 1, `connections left open: ${harness.server.connectionCount}`);
  } finally {
    await harness.close();
  }
});
