/**
 * Outbound topic aliases with mqtt.js 5.0: a client that announces a topic alias maximum gets
 * PUBLISHes whose topic is named once with an alias and then sent as the alias alone (at most as
 * many aliases as it takes); a client that announces none gets full topic names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { eventually } from '../../helpers.js';
import { client, collect, startMqtt } from './harness.js';

const TEST_TIMEOUT_MS = 30_000;

/** The topic and alias of each PUBLISH as it came off the wire (mqtt.js fills an aliased topic in afterwards). */
function wireTopics(mqttClient: MqttClient): string[] {
  const seen: string[] = [];
  mqttClient.on('packetreceive', (packet: Packet) => {
    if (packet.cmd !== 'publish') return;
    const publish = packet as IPublishPacket;
    seen.push(`${publish.topic}|${publish.properties?.topicAlias ?? '-'}`);
  });
  return seen;
}

test('mqtt topic aliases - the server assigns aliases up to the client\'s maximum and then sends full names', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['sensors'] });
  const aliased = await client(harness.url, { properties: { topicAliasMaximum: 2 } });
  const plain = await client(harness.url);
  const publisher = await client(harness.url);
  try {
    const wire = wireTopics(aliased);
    const plainWire = wireTopics(plain);
    const received = collect(aliased);
    await aliased.subscribeAsync('sensors/#', { qos: 1 });
    await plain.subscribeAsync('sensors/#', { qos: 1 });
    for (const topic of ['sensors/a', 'sensors/a', 'sensors/b', 'sensors/c', 'sensors/b', 'sensors/c', 'sensors/a']) await publisher.publishAsync(topic, topic, { qos: 1 });
    await eventually(() => assert.equal(received.length, 7));
    assert.deepEqual(wire, ['sensors/a|1', '|1', 'sensors/b|2', 'sensors/c|-', '|2', 'sensors/c|-', '|1']);
    assert.deepEqual(received.map((one) => one.topic), ['sensors/a', 'sensors/a', 'sensors/b', 'sensors/c', 'sensors/b', 'sensors/c', 'sensors/a'], 'the client resolves every alias');
    assert.ok(received.every((one) => one.payload === one.topic));
    await eventually(() => assert.equal(plainWire.length, 7));
    assert.ok(plainWire.every((one) => one.endsWith('|-') && one.startsWith('sensors/')), 'no aliases for a client that takes none');
  } finally {
    await Promise.all([aliased.endAsync(), plain.endAsync(), publisher.endAsync()]);
    await harness.close();
  }
});
