import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { connect, isFerryError, type Message } from '../../src/client/index.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FRAME_TYPES } from '../../src/protocol/frame.js';
import { FrameWriter } from '../../src/protocol/writer.js';
import { encodeHelloOk } from '../../src/protocol/codec-session.js';
import { eventually } from '../helpers.js';
import { CuttableProxy, startBroker } from '../transport/harness.js';

const FAST_RECONNECT = { delayMsMin: 10, delayMsMax: 50, attemptsMax: 200 };

/** A server that completes HELLO (announcing `heartbeatIntervalMs`) and then never says anything. */
async function silentServer(heartbeatIntervalMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder({
      onFrames: (frames) => {
        for (const frame of frames) {
          if (frame.type !== FRAME_TYPES.HELLO) continue;
          const w = new FrameWriter();
          encodeHelloOk(w, frame.requestId, { version: 1, serverName: 'silent', frameBytesMax: 1 << 20, payloadBytesMax: (1 << 20) - 14, heartbeatIntervalMs });
          socket.write(w.take()!);
        }
      },
      onError: () => socket.destroy(),
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    port: address.port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('reconnect - a cut connection rejects unconfirmed publishes, reconnects, and the stream resumes without gaps or duplicates', async () => {
  const running = await startBroker();
  const proxy = await CuttableProxy.start(running.port);
  try {
    const client = await connect({ port: proxy.port, reconnect: FAST_RECONNECT });
    const events: string[] = [];
    client.on('reconnecting', () => events.push('reconnecting'));
    client.on('reconnected', () => events.push('reconnected'));
    await client.createTopic('t', { durability: 'always' });
    await client.publishBatch('t', Array.from({ length: 20 }, (_, i) => ({ value: String(i) })));
    const sub = await client.subscribe('t', { from: 'earliest', prefetch: 5 });
    const iterator = sub[Symbol.asyncIterator]();
    const received: number[] = [];
    for (let i = 0; i < 7; i++) received.push(((await iterator.next()).value as Message).offset);

    // Publishes in flight when the connection drops are rejected, never silently lost.
    const inFlight = Array.from({ length: 200 }, (_, i) => client.publish('t', `late${i}`).then(() => 'ok', (e: unknown) => e));
    proxy.cut();
    const outcomes = await Promise.all(inFlight);
    for (const outcome of outcomes) assert.ok(outcome === 'ok' || isFerryError(outcome, 'CONNECTION_CLOSED'), String(outcome));
    assert.ok(outcomes.some((o) => o !== 'ok'), 'some publishes were in flight at the cut');

    await eventually(() => assert.deepEqual(events.slice(-1), ['reconnected']));
    assert.equal(client.isConnected, true);
    // After the reconnect the publishes work again, and the stream continues where it stopped.
    const confirmed = outcomes.filter((o) => o === 'ok').length;
    const after = await client.publish('t', 'after');
    assert.equal(after.offset, 20 + confirmed);
    while (received.at(-1)! < after.offset) received.push(((await iterator.next()).value as Message).offset);
    assert.deepEqual(received, Array.from({ length: after.offset + 1 }, (_, i) => i));
    await sub.close();
    await client.close();
  } finally {
    await proxy.close();
    await running.close();
  }
});

test('reconnect - after a server restart the client reconnects and its group resumes from durable state', async () => {
  const first = await startBroker();
  const dir = first.dir;
  const port = first.port;
  let second: Awaited<ReturnType<typeof startBroker>> | null = null;
  try {
    const client = await connect({ port, reconnect: FAST_RECONNECT });
    await client.createTopic('jobs', { durability: 'always' });
    await client.publishBatch('jobs', Array.from({ length: 10 }, (_, i) => ({ value: `job${i}` })));
    const sub = await client.subscribe('jobs', { group: 'workers', from: 'earliest', prefetch: 4 });
    const iterator = sub[Symbol.asyncIterator]();
    const done = new Set<string>();
    for (let i = 0; i < 5; i++) {
      const msg = (await iterator.next()).value as Message;
      done.add(msg.value.toString());
      await msg.ack();
    }
    // Wait until the acks reached the broker, then restart it on the same port and directory.
    await eventually(async () => assert.equal((await client.describeTopic('jobs')).partitions[0]!.nextOffset, 10));
    const reconnected = new Promise((resolve) => client.once('reconnected', resolve));
    await first.realBroker.close();
    second = await startBroker(dir, port);
    await reconnected;
    while (done.size < 10) {
      const msg = (await iterator.next()).value as Message;
      done.add(msg.value.toString());
      await msg.ack();
    }
    assert.deepEqual([...done].sort(), Array.from({ length: 10 }, (_, i) => `job${i}`).sort());
    await sub.close();
    await client.close();
  } finally {
    await second?.realBroker.close();
    await first.realBroker.close();
    await dir.remove();
  }
});

test('reconnect - graceful shutdown with publishes in flight: every confirmed publish is readable after restart', async () => {
  const first = await startBroker();
  const dir = first.dir;
  let second: Awaited<ReturnType<typeof startBroker>> | null = null;
  try {
    const client = await connect({ port: first.port, reconnect: false });
    await client.createTopic('t', { durability: 'always' });
    const confirmed = new Map<number, string>();
    const publishes: Promise<unknown>[] = [];
    let rejected = 0;
    // Waves of 100 publishes, one per event-loop turn; the broker starts closing during wave 5.
    for (let wave = 0; wave < 20; wave++) {
      for (let i = 0; i < 100; i++) {
        const value = `v${wave}-${i}`;
        publishes.push(client.publish('t', value).then((r) => confirmed.set(r.offset, value), () => rejected++));
      }
      if (wave === 5) publishes.push(first.realBroker.close());
      await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(publishes);
    assert.ok(confirmed.size >= 100, `${confirmed.size} confirmed`);
    assert.ok(rejected > 0);
    await client.close();
    second = await startBroker(dir);
    const reader = await connect({ port: second.port });
    const sub = await reader.subscribe('t', { from: 'earliest', prefetch: 1000 });
    const found = new Map<number, string>();
    const last = Math.max(...confirmed.keys());
    for await (const msg of sub) {
      found.set(msg.offset, msg.value.toString());
      if (msg.offset >= last) break;
    }
    for (const [offset, value] of confirmed) assert.equal(found.get(offset), value, `offset ${offset}`);
    await reader.close();
  } finally {
    await second?.realBroker.close();
    await first.realBroker.close();
    await dir.remove();
  }
});

test('reconnect - a dead server is detected by heartbeats; without reconnect the client closes', async () => {
  const silent = await silentServer(50);
  try {
    const client = await connect({ port: silent.port, reconnect: false, heartbeatMissesMax: 2 });
    const closed = new Promise<unknown>((resolve) => client.once('close', resolve));
    const pending = client.listTopics();
    const error = await closed;
    assert.ok(isFerryError(error, 'CONNECTION_CLOSED'), String(error));
    await assert.rejects(pending, (e: unknown) => isFerryError(e, 'CONNECTION_CLOSED'));
  } finally {
    await silent.close();
  }
});

test('reconnect - a request without an answer times out with TIMEOUT', async () => {
  const silent = await silentServer(60_000);
  try {
    const client = await connect({ port: silent.port, reconnect: false, requestTimeoutMs: 100 });
    await assert.rejects(client.listTopics(), (e: unknown) => isFerryError(e, 'TIMEOUT'));
    await client.close();
  } finally {
    await silent.close();
  }
});

test('reconnect - gives up after the configured attempts and says so', async () => {
  const running = await startBroker();
  const proxy = await CuttableProxy.start(running.port);
  try {
    const client = await connect({ port: proxy.port, reconnect: { attemptsMax: 3, delayMsMin: 5, delayMsMax: 10 } });
    await proxy.close();
    const attempts: number[] = [];
    client.on('reconnecting', (event: { attempt: number }) => attempts.push(event.attempt));
    const error = await new Promise<unknown>((resolve) => client.once('close', resolve));
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.ok(isFerryError(error, 'CONNECTION_CLOSED'));
    await assert.rejects(client.publish('t', 'x'), (e: unknown) => isFerryError(e, 'CONNECTION_CLOSED'));
  } finally {
    await running.close();
  }
});
