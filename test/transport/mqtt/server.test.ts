/**
 * The MQTT port with mqtt.js, in 5.0 and 3.1.1 modes, against an in-process broker: QoS 0, 1 and
 * 2 both ways, wildcards, the topic mapping (first level = Ferry topic, the full name in
 * `mqtt-topic`), refusals with their reason codes, user properties as headers both ways through
 * the native client, retained and will messages, persistent sessions and shared subscriptions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as connectTcp, type Socket } from 'node:net';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { connect } from '../../../src/client/index.js';
import type { Delivery } from '../../../src/broker/types.js';
import { eventually } from '../../helpers.js';
import { client, clientNow, collect, connected, startMqtt, subscribeCodes } from './harness.js';

const TEST_TIMEOUT_MS = 30_000;

for (const protocolVersion of [5, 4] as const) {
  test(`mqtt server - QoS 0, 1 and 2 reach + and # subscribers, mapped onto the first level's Ferry topic (v${protocolVersion})`, { timeout: TEST_TIMEOUT_MS }, async () => {
    const harness = await startMqtt({ topics: ['sensors'] });
    const subscriber = await client(harness.url, { protocolVersion });
    const publisher = await client(harness.url, { protocolVersion });
    try {
      const received = collect(subscriber);
      const granted = await subscriber.subscribeAsync({ 'sensors/+/temp': { qos: 2 }, 'sensors/kitchen/#': { qos: 1 } });
      assert.deepEqual(granted.map((one) => one.qos), [2, 1]);
      await publisher.publishAsync('sensors/kitchen/temp', '21', { qos: 0 });
      await publisher.publishAsync('sensors/hall/temp', '19', { qos: 1 });
      await publisher.publishAsync('sensors/kitchen/light', 'on', { qos: 2 });
      await publisher.publishAsync('sensors/hall/light', 'off', { qos: 1 });
      await eventually(() => assert.equal(received.length, 4));
      const seen = received.map((one) => `${one.topic}=${one.payload}@${one.packet.qos}`).sort();
      // kitchen/temp matches both filters (one copy each); hall/light matches none.
      assert.deepEqual(seen, ['sensors/hall/temp=19@1', 'sensors/kitchen/light=on@1', 'sensors/kitchen/temp=21@0', 'sensors/kitchen/temp=21@0']);
      const partition = harness.broker.describeTopic('sensors').partitions[0]!;
      assert.equal(partition.nextOffset, 4, 'every publish is stored in the Ferry topic sensors');
    } finally {
      await Promise.all([subscriber.endAsync(), publisher.endAsync()]);
      await harness.close();
    }
  });
}

test('mqtt server - a 5.0 publish to a topic that maps to no Ferry topic is refused with 0x90; 3.1.1 is disconnected', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['sensors'] });
  const v5 = await client(harness.url);
  const v4 = await client(harness.url, { protocolVersion: 4 });
  try {
    await assert.rejects(v5.publishAsync('nowhere/x', 'a', { qos: 1 }), (error: { code?: number }) => error.code === 0x90);
    await assert.rejects(v5.publishAsync('nowhere/x', 'a', { qos: 2 }), (error: { code?: number }) => error.code === 0x90);
    await v5.publishAsync('sensors/x', 'still connected', { qos: 1 });
    const closed = new Promise<void>((resolve) => v4.once('close', () => resolve()));
    v4.publish('nowhere/x', 'a', { qos: 1 });
    await closed;
    assert.deepEqual(await subscribeCodes(v5, { 'nowhere/#': { qos: 1 } }), [0x8f], 'a filter naming no topic is an invalid filter');
  } finally {
    await v5.endAsync();
    await v4.endAsync(true);
    await harness.close();
  }
});

test('mqtt server - a PUBACK comes only after the broker stored the message (always: synced); QoS 2 sent again is stored once', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt();
  await harness.broker.createTopic('orders', { durability: 'always' });
  const stored = (): number => harness.broker.describeTopic('orders').partitions[0]!.nextOffset;
  try {
    const publisher = await client(harness.url);
    await publisher.publishAsync('orders/1', 'a', { qos: 1 });
    assert.equal(stored(), 1, 'stored before the PUBACK');
    await publisher.endAsync();
    // A QoS 2 publish whose PUBREC never arrives, sent again (DUP) on a new connection after a drop: one copy.
    const first = await rawSession(harness.url, 'orders-client');
    first.send({ cmd: 'publish', topic: 'orders/2', payload: Buffer.from('b'), qos: 2, dup: false, retain: false, messageId: 777 });
    await eventually(() => assert.equal(stored(), 2));
    first.socket.destroy();
    const second = await rawSession(harness.url, 'orders-client');
    second.send({ cmd: 'publish', topic: 'orders/2', payload: Buffer.from('b'), qos: 2, dup: true, retain: false, messageId: 777 });
    await eventually(() => assert.ok(second.received.some((packet) => packet.cmd === 'pubrec' && packet.messageId === 777), 'no PUBREC yet'));
    assert.equal(stored(), 2, 'the copy sent again is found in the dedup window');
    // The same packet id used again for a new message that looks alike (DUP 0): stored.
    second.send({ cmd: 'pubrel', messageId: 777 });
    second.send({ cmd: 'publish', topic: 'orders/2', payload: Buffer.from('b'), qos: 2, dup: false, retain: false, messageId: 777 });
    await eventually(() => assert.equal(stored(), 3));
    second.socket.destroy();
  } finally {
    await harness.close();
  }
});

test('mqtt server - no CONNECT within the connect timeout, a silent client past 1.5 keepalives, a malformed packet: each closes its connection with its reason', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['t'], limits: { connectTimeoutMs: 1_000 } });
  const port = Number(new URL(harness.url).port);
  try {
    const silent = connectTcp(port, '127.0.0.1');
    silent.on('error', () => undefined);
    const openedMs = performance.now();
    await once(silent, 'close');
    assert.ok(performance.now() - openedMs < 5_000, 'closed by the connect timeout');
    const sleepy = await rawSession(harness.url, 'sleepy', 1);
    await once(sleepy.socket, 'close');
    assert.deepEqual(sleepy.received.filter((packet) => packet.cmd === 'disconnect').map((packet) => (packet as { reasonCode?: number }).reasonCode), [0x8d]);
    const garbled = await rawSession(harness.url, 'garbled');
    garbled.socket.write(Buffer.from([0x30, 0x05, 0xff, 0xff, 0x00, 0x00, 0x00]));
    await once(garbled.socket, 'close');
    assert.deepEqual(garbled.received.filter((packet) => packet.cmd === 'disconnect').map((packet) => (packet as { reasonCode?: number }).reasonCode), [0x81]);
  } finally {
    await harness.close();
  }
});

test('mqtt server - a message larger than a 5.0 client\'s maximum packet size is not sent to it, and does not hold up the next', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['big'] });
  const small = await client(harness.url, { properties: { maximumPacketSize: 200 } });
  const publisher = await client(harness.url);
  try {
    const received = collect(small);
    await small.subscribeAsync('big/#', { qos: 1 });
    await publisher.publishAsync('big/a', Buffer.alloc(500, 'x'), { qos: 1 });
    await publisher.publishAsync('big/b', 'fits', { qos: 1 });
    await eventually(() => assert.deepEqual(received.map((one) => one.payload), ['fits']));
  } finally {
    await Promise.all([small.endAsync(), publisher.endAsync()]);
    await harness.close();
  }
});

/** A 5.0 connection spoken packet by packet (mqtt-packet), for what a well-behaved client library never sends. */
async function rawSession(url: string, clientId: string, keepalive = 30): Promise<{ socket: Socket; received: Packet[]; send(packet: Packet): void }> {
  const socket = connectTcp(Number(new URL(url).port), '127.0.0.1');
  const parser = mqttPacket.parser({ protocolVersion: 5 });
  const received: Packet[] = [];
  parser.on('packet', (packet: Packet) => received.push(packet));
  socket.on('data', (chunk: Buffer) => parser.parse(chunk));
  socket.on('error', () => undefined);
  const send = (packet: Packet): void => void socket.write(mqttPacket.generate(packet, { protocolVersion: 5 }));
  await once(socket, 'connect');
  send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 5, clean: true, clientId, keepalive });
  await eventually(() => assert.ok(received.some((packet) => packet.cmd === 'connack'), 'no CONNACK yet'));
  return { socket, received, send };
}

test('mqtt server - user properties become headers for a native consumer, and a native publish reaches MQTT with its headers', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['events'] });
  const mqttClient = await client(harness.url);
  const native = await connect({ host: '127.0.0.1', port: harness.ferryPort, reconnect: false });
  try {
    const subscription = await native.subscribe('events', { from: 'earliest' });
    await mqttClient.publishAsync('events/door/open', 'front', { qos: 1, properties: { userProperties: { site: 'north', who: ['a', 'b'] }, contentType: 'text/plain' } });
    const iterator = subscription[Symbol.asyncIterator]();
    const first = (await iterator.next()).value!;
    assert.equal(first.value.toString(), 'front');
    assert.equal(first.headers['mqtt-topic'], 'events/door/open');
    assert.equal(first.headers['site'], 'north');
    assert.equal(first.headers['mqtt-content-type'], 'text/plain');
    await subscription.close();

    const received = collect(mqttClient);
    await mqttClient.subscribeAsync('events/#', { qos: 1 });
    await native.publish('events', 'from native', { headers: { 'mqtt-topic': 'events/native/one', trace: 'xyz' } });
    await native.publish('events', 'plain');
    await eventually(() => assert.equal(received.length, 2));
    assert.equal(received[0]!.topic, 'events/native/one');
    assert.deepEqual({ ...received[0]!.packet.properties?.userProperties }, { trace: 'xyz' });
    assert.equal(received[1]!.topic, 'events', 'without mqtt-topic, the Ferry topic is the topic name');
    assert.equal(received[1]!.packet.qos, 1, 'a native publish counts as QoS 1');
  } finally {
    await native.close();
    await mqttClient.endAsync();
    await harness.close();
  }
});

test('mqtt server - retained messages reach new subscribers; an empty retained payload clears them; they survive a restart', { timeout: TEST_TIMEOUT_MS }, async () => {
  let harness = await startMqtt({ topics: ['home'] });
  const dir = harness.dir;
  try {
    const publisher = await client(harness.url, { protocolVersion: 4 });
    await publisher.publishAsync('home/lamp', 'on', { qos: 1, retain: true });
    await publisher.publishAsync('home/door', 'shut', { qos: 1, retain: true });
    await publisher.publishAsync('home/door', '', { qos: 1, retain: true });
    await publisher.endAsync();
    const late = await client(harness.url);
    const received = collect(late);
    await late.subscribeAsync('home/#', { qos: 1 });
    await eventually(() => assert.equal(received.length, 1));
    assert.deepEqual([received[0]!.topic, received[0]!.payload, received[0]!.packet.retain], ['home/lamp', 'on', true]);
    await late.endAsync();
    await harness.server.close();
    await harness.broker.close();
    harness = await startMqtt({ dir });
    const afterRestart = await client(harness.url);
    const again = collect(afterRestart);
    await afterRestart.subscribeAsync('home/+', { qos: 0 });
    await eventually(() => assert.deepEqual(again.map((one) => one.payload), ['on']));
    await afterRestart.endAsync();
  } finally {
    await harness.close();
    await dir.remove();
  }
});

test('mqtt server - a will is published when a client vanishes, not when it disconnects', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['status'] });
  const watcher = await client(harness.url);
  try {
    const received = collect(watcher);
    await watcher.subscribeAsync('status/#', { qos: 1 });
    const polite = await client(harness.url, { will: { topic: 'status/polite', payload: Buffer.from('gone'), qos: 1, retain: false } });
    await polite.endAsync();
    const vanishing = await client(harness.url, { protocolVersion: 4, will: { topic: 'status/vanished', payload: Buffer.from('gone'), qos: 1, retain: false } });
    vanishing.stream.destroy();
    await eventually(() => assert.deepEqual(received.map((one) => one.topic), ['status/vanished']));
    vanishing.end(true);
  } finally {
    await watcher.endAsync();
    await harness.close();
  }
});

for (const protocolVersion of [5, 4] as const) {
  test(`mqtt server - a persistent session keeps QoS 1 messages published while its client was away (v${protocolVersion})`, { timeout: TEST_TIMEOUT_MS }, async () => {
    const harness = await startMqtt({ topics: ['jobs'] });
    const session = protocolVersion === 5 ? { clean: false, properties: { sessionExpiryInterval: 300 } } : { clean: false };
    try {
      const first = await client(harness.url, { protocolVersion, clientId: 'worker-1', ...session });
      await first.subscribeAsync('jobs/#', { qos: 1 });
      await first.endAsync();
      const publisher = await client(harness.url);
      for (const n of [1, 2, 3]) await publisher.publishAsync(`jobs/${n}`, `job ${n}`, { qos: 1 });
      await publisher.endAsync();
      const second = clientNow(harness.url, { protocolVersion, clientId: 'worker-1', ...session });
      const received = collect(second);
      const connack = await connected(second);
      assert.equal(connack.sessionPresent, true);
      await eventually(() => assert.deepEqual(received.map((one) => one.payload), ['job 1', 'job 2', 'job 3']));
      await second.endAsync();
    } finally {
      await harness.close();
    }
  });
}

test('mqtt server - a clean start discards the stored session', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['jobs'] });
  try {
    const first = await client(harness.url, { clientId: 'w', clean: false, properties: { sessionExpiryInterval: 300 } });
    await first.subscribeAsync('jobs/#', { qos: 1 });
    await first.endAsync();
    const publisher = await client(harness.url);
    await publisher.publishAsync('jobs/1', 'old', { qos: 1 });
    await publisher.endAsync();
    const fresh = await client(harness.url, { clientId: 'w', clean: true });
    const received = collect(fresh);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(received, [], 'a clean session has no subscriptions');
    await fresh.endAsync();
    const resumed = await client(harness.url, { clientId: 'w', clean: false, properties: { sessionExpiryInterval: 300 } });
    const later = collect(resumed);
    await resumed.subscribeAsync('jobs/#', { qos: 1 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(later, [], 'what was queued for the discarded session is gone');
    await resumed.endAsync();
  } finally {
    await harness.close();
  }
});

test('mqtt server - $share/group/filter spreads messages over its members', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['tasks'] });
  const members = await Promise.all([client(harness.url), client(harness.url, { protocolVersion: 4 })]);
  const publisher = await client(harness.url);
  try {
    const received = members.map((member) => collect(member));
    for (const member of members) await member.subscribeAsync('$share/workers/tasks/#', { qos: 1 });
    // Published together, as a producer does: the group has several ready at once to share out.
    await Promise.all(Array.from({ length: 40 }, (_, n) => publisher.publishAsync(`tasks/${n}`, String(n), { qos: 1 })));
    await eventually(() => assert.equal(received[0]!.length + received[1]!.length, 40));
    assert.ok(received[0]!.length > 0 && received[1]!.length > 0, `both members got some: ${received[0]!.length} and ${received[1]!.length}`);
    const all = [...received[0]!, ...received[1]!].map((one) => Number(one.payload)).sort((a, b) => a - b);
    assert.deepEqual(all, Array.from({ length: 40 }, (_, n) => n), 'each message once');
  } finally {
    await Promise.all([...members, publisher].map((one) => one.endAsync()));
    await harness.close();
  }
});

test('mqtt server - the limits: packet size (0x95), topic length, subscriptions per client (0x97)', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['t'], limits: { packetBytesMax: 2048, topicBytesMax: 32, subscriptionsMax: 2 } });
  const v5 = await client(harness.url);
  try {
    const granted = await subscribeCodes(v5, { 't/1': { qos: 1 }, 't/2': { qos: 1 }, 't/3': { qos: 1 }, [`t/${'x'.repeat(40)}`]: { qos: 1 } });
    assert.deepEqual(granted, [1, 1, 0x97, 0x8f]);
    const disconnect = new Promise<any>((resolve) => v5.once('disconnect', resolve));
    v5.publish('t/1', Buffer.alloc(4096), { qos: 1 });
    assert.equal((await disconnect).reasonCode, 0x95);
  } finally {
    await v5.endAsync(true);
    await harness.close();
  }
});

test('mqtt server - a second connection with the same client id takes the session over', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['t'] });
  try {
    const first = await client(harness.url, { clientId: 'same' });
    const kicked = new Promise<any>((resolve) => first.once('disconnect', resolve));
    const second = await client(harness.url, { clientId: 'same' });
    assert.equal((await kicked).reasonCode, 0x8e);
    await second.publishAsync('t/x', 'y', { qos: 1 });
    await second.endAsync();
    first.end(true);
  } finally {
    await harness.close();
  }
});

test('mqtt server - a message that expired waits no longer: not delivered to a session that comes back late', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['alerts'] });
  try {
    const first = await client(harness.url, { clientId: 'late', clean: false, properties: { sessionExpiryInterval: 60 } });
    await first.subscribeAsync('alerts/#', { qos: 1 });
    await first.endAsync();
    const publisher = await client(harness.url);
    await publisher.publishAsync('alerts/a', 'short', { qos: 1, properties: { messageExpiryInterval: 1 } });
    await publisher.publishAsync('alerts/b', 'long', { qos: 1, properties: { messageExpiryInterval: 600 } });
    await publisher.endAsync();
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const back = clientNow(harness.url, { clientId: 'late', clean: false, properties: { sessionExpiryInterval: 60 } });
    const received = collect(back);
    await connected(back);
    await eventually(() => assert.deepEqual(received.map((one) => one.payload), ['long']));
    const expiry = received[0]!.packet.properties?.messageExpiryInterval ?? 0;
    assert.ok(expiry > 0 && expiry <= 600, `the remaining lifetime is passed on: ${expiry}`);
    await back.endAsync();
  } finally {
    await harness.close();
  }
});

test('mqtt server - a 5.0 topic alias names the topic of later publishes', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['a'] });
  const mqttClient = await client(harness.url);
  try {
    await mqttClient.publishAsync('a/b/c', '1', { qos: 1, properties: { topicAlias: 3 } });
    await mqttClient.publishAsync('', '2', { qos: 1, properties: { topicAlias: 3 } });
    const seen: Delivery[] = [];
    const subscription = await harness.broker.subscribe('a', { from: { kind: 'earliest' }, credit: 10 }, { deliver: (delivery) => seen.push(delivery), writable: () => true });
    await eventually(() => assert.equal(seen.length, 2));
    assert.deepEqual(seen.map((one) => one.headers.find(([name]) => name === 'mqtt-topic')?.[1]), ['a/b/c', 'a/b/c']);
    await subscription.close();
  } finally {
    await mqttClient.endAsync();
    await harness.close();
  }
});
