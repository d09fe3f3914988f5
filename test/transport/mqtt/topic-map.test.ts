/**
 * The operator's MQTT topic prefixes (mqtt.topicMap): which Ferry topic a name is stored in and
 * which topics a filter reads (unit), and with mqtt.js: publishes, subscriptions and retained
 * messages under a prefix go to its Ferry topic, other names keep the first-level mapping.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../../src/config/load.js';
import { TopicMap } from '../../../src/transport/mqtt/topic-map.js';
import { eventually } from '../../helpers.js';
import { client, collect, startMqtt } from './harness.js';

const TEST_TIMEOUT_MS = 30_000;

test('mqtt topic map - the longest whole-level prefix names the Ferry topic; other names map by their first level', () => {
  const map = TopicMap.parse(['home/livingroom=livingroom', 'home/livingroom/tv=tv', 'factory=plant']);
  assert.equal(map.ferryTopicOf('home/livingroom/lamp'), 'livingroom');
  assert.equal(map.ferryTopicOf('home/livingroom'), 'livingroom');
  assert.equal(map.ferryTopicOf('home/livingroom/tv/volume'), 'tv');
  assert.equal(map.ferryTopicOf('home/livingroomX/lamp'), 'home', 'a prefix matches whole levels only');
  assert.equal(map.ferryTopicOf('factory/line1'), 'plant');
  assert.equal(map.ferryTopicOf('sensors/x'), 'sensors');
  assert.equal(map.mqttNameOf('livingroom'), 'home/livingroom');
  assert.equal(map.mqttNameOf('sensors'), 'sensors');
  const existing = (): string[] => ['home', 'livingroom', 'tv', 'plant', 'sensors'];
  assert.deepEqual(map.topicsOfFilter('home/livingroom/#', existing), ['livingroom']);
  assert.deepEqual(map.topicsOfFilter('home/livingroom/tv/+', existing), ['tv']);
  assert.deepEqual(map.topicsOfFilter('home/+/lamp', existing).sort(), ['home', 'livingroom']);
  assert.deepEqual(map.topicsOfFilter('home/#', () => ['livingroom', 'tv']).sort(), ['livingroom', 'tv'], 'the first level only where it exists');
  assert.deepEqual(map.topicsOfFilter('sensors/#', existing), ['sensors']);
  assert.deepEqual(map.topicsOfFilter('#', existing).sort(), ['home', 'livingroom', 'plant', 'sensors', 'tv']);
  assert.throws(() => TopicMap.parse(['home/+=x']));
  assert.throws(() => TopicMap.parse(['home=..']));
});

test('mqtt topic map - mqtt.topicMap: a list in the file, comma-separated in env; an entry that is no <prefix>=<Ferry topic> is refused', () => {
  const config = loadConfig({ env: { FERRY_MQTT_TOPIC_MAP: 'home/livingroom=livingroom,factory=plant' }, flags: {} });
  assert.deepEqual(config.mqtt.topicMap, ['home/livingroom=livingroom', 'factory=plant']);
  assert.equal(TopicMap.parse(config.mqtt.topicMap).ferryTopicOf('factory/line1'), 'plant');
  assert.deepEqual(loadConfig({ env: {}, flags: {} }).mqtt.topicMap, []);
  for (const bad of ['home/+=x', 'home=..', 'home', '=x', 'home=bad name']) assert.throws(() => loadConfig({ env: { FERRY_MQTT_TOPIC_MAP: bad }, flags: {} }), bad);
});

test('mqtt topic map - publishes, subscriptions and retained messages under a prefix use its Ferry topic (mqtt.js)', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['livingroom', 'sensors'], topicMap: TopicMap.parse(['home/livingroom=livingroom']) });
  const publisher = await client(harness.url);
  const subscriber = await client(harness.url);
  try {
    const received = collect(subscriber);
    await subscriber.subscribeAsync('home/livingroom/#', { qos: 1 });
    await publisher.publishAsync('home/livingroom/lamp', 'on', { qos: 1, retain: true });
    await publisher.publishAsync('sensors/t', '21', { qos: 1 });
    await eventually(() => assert.deepEqual(received.map((one) => `${one.topic}=${one.payload}`), ['home/livingroom/lamp=on']));
    assert.equal(harness.broker.describeTopic('livingroom').partitions[0]!.nextOffset, 1, 'stored in the mapped topic');
    assert.equal(harness.broker.describeTopic('sensors').partitions[0]!.nextOffset, 1, 'the first level still maps');
    // A native publish to the mapped topic reaches MQTT under the prefix.
    await harness.broker.publish('livingroom', [{ value: Buffer.from('native') }]);
    await eventually(() => assert.equal(received.at(-1)?.payload, 'native'));
    assert.equal(received.at(-1)!.topic, 'home/livingroom');
    // The retained message, for a subscriber that comes later.
    const later = await client(harness.url);
    const retained = collect(later);
    await later.subscribeAsync('home/livingroom/lamp', { qos: 1 });
    await eventually(() => assert.deepEqual(retained.map((one) => `${one.topic}=${one.payload}:${one.packet.retain}`), ['home/livingroom/lamp=on:true']));
    await later.endAsync();
    // Without a `home` topic, a name outside the prefix is still refused.
    await assert.rejects(publisher.publishAsync('home/kitchen/lamp', 'on', { qos: 1 }), (error: { code?: number }) => error.code === 0x90);
    await sleep(100);
  } finally {
    await Promise.all([publisher.endAsync(), subscriber.endAsync()]);
    await harness.close();
  }
});
