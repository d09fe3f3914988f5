/**
 * Live-socket abuse: garbage, oversized lengths, half-sent frames, connection storms. The server
 * must stay up with bounded memory, and a well-behaved client on another connection keeps working.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { FRAME_TYPES } from '../../src/protocol/frame.js';
import { connect, type FerryClient } from '../../src/client/index.js';
import { eventually } from '../helpers.js';
import { rawFrame } from '../protocol/frames.js';
import { RawPeer, startBrokerWith } from './harness.js';

async function healthy(client: FerryClient, value: string): Promise<void> {
  const result = await client.publish('health', value);
  assert.equal(result.topic, 'health');
}

test('abuse - garbage, oversized lengths and half-sent frames close only the offender', async () => {
  const running = await startBrokerWith({ heartbeatIntervalMs: 100, heartbeatMissesMax: 2, maxFrameBytes: 1024 * 1024 });
  try {
    await running.broker.createTopic('health');
    const good = await connect({ port: running.port });
    await healthy(good, 'before');

    const garbage = await RawPeer.connect(running.port);
    garbage.send(Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n'));
    await garbage.waitClosed();
    assert.deepEqual(garbage.errorCodes(), ['BAD_MAGIC']);
    await healthy(good, 'after garbage');

    const oversized = await RawPeer.ready(running.port);
    const header = rawFrame(FRAME_TYPES.PUBLISH, 9, Buffer.alloc(0));
    header.writeUInt32BE(0xffff_fff0, 10);
    oversized.send(header);
    await oversized.waitClosed();
    assert.deepEqual(oversized.errorCodes(), ['FRAME_TOO_LARGE']);
    await healthy(good, 'after oversized');

    const halfSent = await RawPeer.ready(running.port);
    halfSent.send(rawFrame(FRAME_TYPES.PUBLISH, 9, Buffer.alloc(1000)).subarray(0, 600));
    await halfSent.waitClosed();
    assert.deepEqual(halfSent.errorCodes(), ['HEARTBEAT_TIMEOUT']);
    await healthy(good, 'after half-sent');

    const unknownType = await RawPeer.ready(running.port);
    unknownType.send(rawFrame(0x7f, 1, Buffer.alloc(3)));
    await unknownType.waitClosed();
    assert.deepEqual(unknownType.errorCodes(), ['UNKNOWN_FRAME_TYPE']);

    const malformed = await RawPeer.ready(running.port);
    malformed.send(rawFrame(FRAME_TYPES.PUBLISH, 5, Buffer.from([0, 3, 0x41])));
    await malformed.waitClosed();
    assert.deepEqual(malformed.errorCodes(), ['MALFORMED_FRAME']);

    const replyType = await RawPeer.ready(running.port);
    replyType.send(rawFrame(FRAME_TYPES.DELIVER, 5, Buffer.alloc(0)));
    await replyType.waitClosed();
    assert.deepEqual(replyType.errorCodes(), ['MALFORMED_FRAME']);

    await healthy(good, 'at the end');
    assert.equal(good.isConnected, true);
    await good.close();
  } finally {
    await running.close();
  }
});

test('abuse - 1,000 connections opened and dropped; the server stays up and memory stays bounded', async () => {
  // Every connection must reach the server here: the per-address accept rate (tested in
  // accept-gate and abuse-limits) would refuse most of a 1,000-connection burst from one address.
  const running = await startBrokerWith({ heartbeatIntervalMs: 200, heartbeatMissesMax: 2, acceptsPerSecondPerIp: 0 });
  try {
    await running.broker.createTopic('health');
    const good = await connect({ port: running.port });
    const heapBefore = process.memoryUsage().heapUsed;
    const CONNECTIONS = 1000;
    const WAVE = 100;
    let published = 0;
    for (let wave = 0; wave < CONNECTIONS / WAVE; wave++) {
      await Promise.all(
        Array.from(
          { length: WAVE },
          (_, i) =>
            new Promise<void>((resolve) => {
              const socket = netConnect({ port: running.port, host: '127.0.0.1' });
              socket.on('error', () => resolve());
              socket.on('close', () => resolve());
              socket.on('connect', () => {
                // Some send half a frame, some garbage, some nothing, then all vanish.
                if (i % 3 === 0) socket.write(rawFrame(FRAME_TYPES.HELLO, 1, Buffer.alloc(50)).subarray(0, 20));
                else if (i % 3 === 1) socket.write(Buffer.alloc(64, 0xff));
                socket.destroy();
              });
            }),
        ),
      );
      await healthy(good, `wave ${wave}`);
      published++;
    }
    await eventually(() => assert.equal(running.server!.connectionCount, 1));
    assert.equal(published, CONNECTIONS / WAVE);
    assert.ok(running.server!.stats().connectionsTotal >= CONNECTIONS);
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    assert.ok(heapGrowth < 64 * 1024 * 1024, `heap grew by ${heapGrowth} bytes`);
    await good.close();
  } finally {
    await running.close();
  }
});
