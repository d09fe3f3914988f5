import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME_TYPES } from '../../src/protocol/frame.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { decodeHelloOk, encodeHello } from '../../src/protocol/codec-session.js';
import { decodePublishOk, encodePublish } from '../../src/protocol/codec-publish.js';
import { decodeTopicInfo, encodeCreateTopic } from '../../src/protocol/codec-topics.js';
import { encodeSubscribe } from '../../src/protocol/codec-subscribe.js';
import { connect } from '../../src/client/index.js';
import { eventually } from '../helpers.js';
import { RawPeer, startBroker, startBrokerWith, startFake } from './harness.js';
import { HANDSHAKES_PER_TURN_MAX } from '../../src/transport/tcp/server.js';
import { SimClock } from '../sim/sim-clock.js';

const reader = new PayloadReader();

test('server - HELLO_OK announces version and limits', async () => {
  const running = await startBrokerWith({ heartbeatIntervalMs: 1234, maxFrameBytes: 65536 });
  try {
    const peer = await RawPeer.connect(running.port);
    encodeHello(peer.writer, 7, { clientName: 'test', versions: [1, 99] });
    peer.flush();
    const ok = decodeHelloOk(reader.reset((await peer.reply(7, FRAME_TYPES.HELLO_OK)).payload));
    assert.deepEqual(ok, { version: 1, serverName: 'ferry', frameBytesMax: 65536, payloadBytesMax: 65536 - 14, heartbeatIntervalMs: 1234 });
    assert.equal(running.server!.connectionStats()[0]!.clientName, 'test');
    peer.destroy();
  } finally {
    await running.close();
  }
});

test('server - nothing but HELLO is accepted before the handshake', async () => {
  const running = await startBroker();
  try {
    const peer = await RawPeer.connect(running.port);
    peer.writer.emptyFrame(FRAME_TYPES.PING, 3);
    peer.flush();
    await peer.waitClosed();
    assert.deepEqual(peer.errorCodes(), ['HANDSHAKE_REQUIRED']);
  } finally {
    await running.close();
  }
});

test('server - a HELLO without a common version is refused', async () => {
  const running = await startBroker();
  try {
    const peer = await RawPeer.connect(running.port);
    encodeHello(peer.writer, 1, { clientName: 'future', versions: [7, 8] });
    peer.flush();
    await peer.waitClosed();
    assert.deepEqual(peer.errorCodes(), ['UNSUPPORTED_VERSION']);
  } finally {
    await running.close();
  }
});

test('server - request errors are per request and the connection stays usable', async () => {
  const running = await startBroker();
  try {
    const peer = await RawPeer.ready(running.port);
    encodePublish(peer.writer, 2, { topic: 'missing', messages: [{ value: Buffer.from('x') }] });
    encodeCreateTopic(peer.writer, 3, { name: 'present', config: { partitions: 2 } });
    peer.flush();
    await peer.reply(2, FRAME_TYPES.ERROR);
    assert.deepEqual(peer.errorCodes(), ['UNKNOWN_TOPIC']);
    const info = decodeTopicInfo(reader.reset((await peer.reply(3, FRAME_TYPES.TOPIC_INFO)).payload));
    assert.equal(info.config.partitions, 2);
    peer.writer.emptyFrame(FRAME_TYPES.PING, 4);
    peer.flush();
    await peer.reply(4, FRAME_TYPES.PONG);
    assert.equal(peer.closed, false);
    peer.destroy();
  } finally {
    await running.close();
  }
});

test('server - PUBLISH frames that arrive together are handed to the broker together', async () => {
  const running = await startFake();
  try {
    await running.fake.createTopic('t');
    const peer = await RawPeer.ready(running.port);
    for (let id = 10; id < 110; id++) encodePublish(peer.writer, id, { topic: 't', messages: [{ value: Buffer.from(String(id)) }] });
    peer.flush();
    const replies = await eventually(() => {
      const oks = peer.frames.filter((f) => f.type === FRAME_TYPES.PUBLISH_OK);
      assert.equal(oks.length, 100);
      return oks;
    });
    const offsets = replies.map((f) => ({ id: f.requestId, offset: decodePublishOk(reader.reset(f.payload)).offsets[0]! }));
    for (const { id, offset } of offsets) assert.equal(offset, id - 10, 'each request gets its own result, in order');
    assert.ok(running.fake.publishCalls < 10, `${running.fake.publishCalls} broker calls for 100 frames`);
    peer.destroy();
  } finally {
    await running.close();
  }
});

test('server - one bad message in a coalesced run fails only its own request', async () => {
  const running = await startBroker();
  try {
    await running.broker.createTopic('t');
    const peer = await RawPeer.ready(running.port);
    encodePublish(peer.writer, 2, { topic: 't', messages: [{ value: Buffer.from('ok') }] });
    encodePublish(peer.writer, 3, { topic: 't', messages: [{ key: Buffer.alloc(64 * 1024), value: Buffer.from('key too large') }] });
    encodePublish(peer.writer, 4, { topic: 't', messages: [{ value: Buffer.from('ok too') }] });
    peer.flush();
    await peer.reply(2, FRAME_TYPES.PUBLISH_OK);
    await peer.reply(3, FRAME_TYPES.ERROR);
    await peer.reply(4, FRAME_TYPES.PUBLISH_OK);
    assert.deepEqual(peer.errorCodes(), ['KEY_TOO_LARGE']);
    peer.destroy();
  } finally {
    await running.close();
  }
});

test('server - a silent peer is disconnected after the missed heartbeats; PINGs are answered', async () => {
  const running = await startBrokerWith({ heartbeatIntervalMs: 50, heartbeatMissesMax: 2 });
  try {
    const peer = await RawPeer.ready(running.port);
    // The server pings a quiet client…
    await eventually(() => peer.frames.some((f) => f.type === FRAME_TYPES.PING));
    // …and, since this one never answers, disconnects it.
    await peer.waitClosed();
    assert.deepEqual(peer.errorCodes(), ['HEARTBEAT_TIMEOUT']);
    await eventually(() => assert.equal(running.server!.connectionCount, 0, 'connections left'));
  } finally {
    await running.close();
  }
});

test('server - a client that answers heartbeats stays connected', async () => {
  const running = await startBrokerWith({ heartbeatIntervalMs: 50, heartbeatMissesMax: 2 });
  try {
    const client = await connect({ port: running.port });
    const start = performance.now();
    await eventually(() => performance.now() - start > 400 || (() => { throw new Error('waiting'); })());
    assert.equal(client.isConnected, true);
    assert.deepEqual(await client.listTopics(), []);
    await client.close();
  } finally {
    await running.close();
  }
});

test('server - after a stall of the process (many heartbeat intervals) neither server nor client disconnects the other for it', async () => {
  const running = await startBrokerWith({ heartbeatIntervalMs: 50, heartbeatMissesMax: 2 });
  try {
    const client = await connect({ port: running.port });
    await client.listTopics();
    // The whole process stands still, as under SIGSTOP: the client's frames cannot arrive meanwhile,
    // and after it the server's sweep runs before its sockets are read.
    const stalledUntil = performance.now() + 600;
    while (performance.now() < stalledUntil) { /* stalled */ }
    assert.deepEqual(await client.listTopics(), []);
    const start = performance.now();
    await eventually(() => performance.now() - start > 300 || (() => { throw new Error('waiting'); })());
    assert.equal(client.isConnected, true, 'still connected after the stall');
    assert.equal(running.server!.connectionCount, 1);
    await client.close();
  } finally {
    await running.close();
  }
});

test('server - a consumer that stops reading is paused, then disconnected as SLOW_CONSUMER', async () => {
  const running = await startBrokerWith({ writeHighWaterBytes: 64 * 1024, slowConsumerGraceMs: 300, heartbeatIntervalMs: 60_000 });
  try {
    await running.broker.createTopic('t', { durability: 'never' });
    const value = Buffer.alloc(16 * 1024, 7);
    await running.broker.publish('t', Array.from({ length: 1000 }, () => ({ value })));
    const peer = await RawPeer.ready(running.port);
    encodeSubscribe(peer.writer, 2, { topic: 't', from: { kind: 'earliest' }, credit: 100_000 });
    peer.flush();
    await peer.reply(2, FRAME_TYPES.SUBSCRIBED);
    peer.socket.pause(); // stop reading: the kernel buffers fill, then the server's
    await eventually(() => assert.equal(running.server!.connectionCount, 0, 'connections left'), { timeoutMs: 10_000 });
    assert.equal(running.server!.stats().slowConsumersTotal, 1);
    peer.destroy();
    // The broker is fine: another client still works.
    const client = await connect({ port: running.port });
    assert.equal((await client.describeTopic('t')).partitions[0]!.nextOffset, 1000);
    await client.close();
  } finally {
    await running.close();
  }
});

test('server - connections above maxConnections are refused with TOO_MANY_CONNECTIONS', async () => {
  const running = await startBrokerWith({ maxConnections: 1 });
  try {
    const first = await RawPeer.ready(running.port);
    const second = await RawPeer.connect(running.port);
    await second.waitClosed();
    assert.deepEqual(second.errorCodes(), ['TOO_MANY_CONNECTIONS']);
    assert.equal(running.server!.stats().connectionsRejected, 1);
    first.destroy();
  } finally {
    await running.close();
  }
});

test('server - a connection whose requests are refused in bulk is throttled, answered in full, and does not hold up others', async () => {
  const running = await startBrokerWith({ subscriptionsMax: 2 });
  try {
    await running.broker.createTopic('t');
    const flood = await RawPeer.ready(running.port);
    const SUBSCRIBES = 2_000;
    for (let id = 2; id < SUBSCRIBES + 2; id++) encodeSubscribe(flood.writer, id, { topic: 't', from: { kind: 'latest' }, credit: 1 });
    flood.flush();
    // A well-behaved client meanwhile: its request is answered while the flood is still being refused.
    const other = await RawPeer.ready(running.port);
    encodeCreateTopic(other.writer, 2, { name: 'u', config: {} });
    other.flush();
    await other.reply(2, FRAME_TYPES.TOPIC_INFO);
    await eventually(() => assert.equal(flood.frames.length, SUBSCRIBES + 1, 'answers to the flood'), { timeoutMs: 20_000 });
    const codes = flood.errorCodes();
    assert.equal(codes.length, SUBSCRIBES - 2);
    assert.ok(codes.every((code) => code === 'TOO_MANY_SUBSCRIPTIONS'));
    assert.equal(flood.closed, false, 'refusals are per request: the connection stays');
    const stats = running.server!.connectionStats().find((c) => c.subscriptions.length === 2)!;
    assert.ok(stats.throttledTurns > 0, 'the flood waited out throttled turns');
    assert.equal(running.server!.connectionStats().find((c) => c.id !== stats.id)!.throttledTurns, 0);
    flood.destroy();
    other.destroy();
  } finally {
    await running.close();
  }
});

test('server - at most HANDSHAKES_PER_TURN_MAX HELLOs are admitted per event-loop turn, then the budget is fresh', async () => {
  const running = await startFake();
  try {
    const admitted = Array.from({ length: HANDSHAKES_PER_TURN_MAX + 3 }, () => running.server.admitHandshake());
    assert.deepEqual(admitted, [...Array<boolean>(HANDSHAKES_PER_TURN_MAX).fill(true), false, false, false]);
    assert.equal(running.server.stats().handshakesDeferred, 3);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(running.server.admitHandshake(), true, 'a new turn, a new budget');
  } finally {
    await running.close();
  }
});

test('server - a storm of HELLOs sent together is answered in full, spread over turns', async () => {
  const running = await startFake();
  const PEERS = 120;
  const peers = await Promise.all(Array.from({ length: PEERS }, () => RawPeer.connect(running.port)));
  try {
    await eventually(() => assert.equal(running.server.stats().connections, PEERS, 'every socket accepted'));
    // Every HELLO leaves in this one synchronous loop: they reach the server within a few turns.
    for (const peer of peers) {
      encodeHello(peer.writer, 1, { clientName: 'storm', versions: [PROTOCOL_VERSION] });
      peer.flush();
    }
    for (const peer of peers) await peer.reply(1, FRAME_TYPES.HELLO_OK);
    console.log(`handshake storm: ${PEERS} HELLOs, ${running.server.stats().handshakesDeferred} deferrals (once per HELLO and turn)`);
  } finally {
    for (const peer of peers) peer.destroy();
    await running.close();
  }
});

test('server - login timeouts that fall due together close at most HANDSHAKES_PER_TURN_MAX sockets a turn, all of them in the end', async () => {
  const clock = new SimClock();
  const running = await startFake({ clock, authTimeoutMs: 500 });
  const PEERS = 3 * HANDSHAKES_PER_TURN_MAX;
  const peers = await Promise.all(Array.from({ length: PEERS }, () => RawPeer.connect(running.port)));
  try {
    await eventually(() => assert.equal(running.server.stats().connections, PEERS, 'every socket accepted'));
    const deferredBefore = running.server.stats().handshakesDeferred;
    // Every login timer falls due in this one call, as a slowloris's do within a few milliseconds.
    clock.advance(500);
    assert.equal(running.server.stats().handshakesDeferred - deferredBefore, PEERS - HANDSHAKES_PER_TURN_MAX, 'the closes past the budget wait for the next turn');
    for (const peer of peers) await peer.waitClosed();
    assert.ok(peers.every((peer) => peer.errorCodes().join() === 'HANDSHAKE_REQUIRED'), 'each closed with HANDSHAKE_REQUIRED (no users: no credentials needed)');
  } finally {
    for (const peer of peers) peer.destroy();
    await running.close();
  }
});

test('server - graceful close answers in-flight publishes, then says GOODBYE', async () => {
  const running = await startFake();
  running.fake.publishDelayMs = 100;
  await running.fake.createTopic('t');
  const peer = await RawPeer.ready(running.port);
  for (let id = 2; id < 12; id++) encodePublish(peer.writer, id, { topic: 't', messages: [{ value: Buffer.from('v') }] });
  peer.flush();
  await eventually(() => assert.ok(running.server.connectionStats()[0]!.inFlightRequests > 0, `in flight: ${JSON.stringify(running.server.connectionStats().map((c) => [c.state, c.inFlightRequests, c.framesIn]))}`));
  await running.close();
  await peer.waitClosed();
  const types = peer.frames.map((f) => f.type);
  assert.equal(types.filter((t) => t === FRAME_TYPES.PUBLISH_OK).length, 10);
  assert.equal(types.at(-1), FRAME_TYPES.GOODBYE);
});

test('server - per-connection statistics', async () => {
  const running = await startBrokerWith({});
  try {
    await running.broker.createTopic('t');
    const client = await connect({ port: running.port, name: 'stats-client' });
    const sub = await client.subscribe('t', { group: 'g' });
    await client.publish('t', 'hello');
    const [stats] = running.server!.connectionStats();
    assert.equal(stats!.clientName, 'stats-client');
    assert.equal(stats!.remoteAddress, '127.0.0.1');
    assert.ok(stats!.bytesIn > 0 && stats!.bytesOut > 0);
    assert.deepEqual(stats!.subscriptions.map((s) => [s.topic, s.group]), [['t', 'g']]);
    await sub.close();
    await client.close();
  } finally {
    await running.close();
  }
});

test('server - a read of thousands of tiny frames is decoded a turn\'s worth at a time, every frame answered in order', async () => {
  const running = await startFake();
  try {
    const peer = await RawPeer.ready(running.port);
    const PINGS = 3000;
    for (let id = 2; id < PINGS + 2; id++) peer.writer.emptyFrame(FRAME_TYPES.PING, id);
    peer.flush();
    await eventually(() => assert.equal(peer.frames.filter((f) => f.type === FRAME_TYPES.PONG).length, PINGS), { timeoutMs: 10_000 });
    assert.deepEqual(
      peer.frames.filter((f) => f.type === FRAME_TYPES.PONG).map((f) => f.requestId),
      Array.from({ length: PINGS }, (_, i) => i + 2),
    );
    // Frames decoded so far never ran ahead of the turns: the connection is still usable.
    peer.writer.emptyFrame(FRAME_TYPES.PING, PINGS + 2);
    peer.flush();
    await peer.reply(PINGS + 2, FRAME_TYPES.PONG);
    peer.destroy();
  } finally {
    await running.close();
  }
});
