/**
 * Messages cross between MQTT and gRPC both ways with their headers: an MQTT 5.0 publish is read
 * by a gRPC Consume stream with its user properties and `mqtt-topic` as headers, and a gRPC
 * publish reaches an MQTT subscriber under its `mqtt-topic`, its headers as user properties.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SystemClock } from '../../../src/platform/clock.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { MqttServer } from '../../../src/transport/mqtt/server.js';
import { eventually } from '../../helpers.js';
import { startGrpc } from '../../grpc/harness.js';
import { ConsumeRequest, PublishRequest } from '../../grpc/generated/ferry/v1/messages.js';
import { client, collect, MQTT_LIMITS_DEFAULT } from './harness.js';

test('mqtt grpc - an MQTT publish is read over gRPC with its headers, and a gRPC publish reaches MQTT with them', { timeout: 30_000 }, async () => {
  const fixture = await startGrpc();
  await fixture.broker.createTopic('rooms');
  const server = new MqttServer(fixture.broker, {
    limits: MQTT_LIMITS_DEFAULT,
    connectionsMax: 100,
    security: null,
    tls: null,
    dataDir: null,
    fs: null,
    clock: new SystemClock(),
    logger: silentLogger,
  });
  const address = await server.listen(0, '127.0.0.1');
  const mqttClient = await client(`mqtt://127.0.0.1:${address.port}`);
  try {
    const stream = fixture.client.consume(ConsumeRequest.fromPartial({ start: { topic: 'rooms', group: 'readers' }, credit: 10 }));
    assert.ok((await stream.next())?.subscribed !== undefined, 'subscribed');
    await mqttClient.publishAsync('rooms/kitchen/temp', '21', { qos: 1, properties: { userProperties: { unit: 'C' } } });
    const [fromMqtt] = await stream.messages(1);
    assert.equal(Buffer.from(fromMqtt!.value).toString(), '21');
    assert.equal(fromMqtt!.headers['mqtt-topic'], 'rooms/kitchen/temp');
    assert.equal(fromMqtt!.headers['unit'], 'C');
    stream.call.cancel();

    const received = collect(mqttClient);
    await mqttClient.subscribeAsync('rooms/+/light', { qos: 1 });
    await fixture.client.call(fixture.client.messages.publish, PublishRequest.fromPartial({ topic: 'rooms', messages: [{ value: Buffer.from('on'), headers: { 'mqtt-topic': 'rooms/hall/light', by: 'grpc' } }] }));
    await eventually(() => assert.equal(received.length, 1));
    assert.equal(received[0]!.topic, 'rooms/hall/light');
    assert.deepEqual({ ...received[0]!.packet.properties?.userProperties }, { by: 'grpc' });
  } finally {
    await mqttClient.endAsync();
    await server.close();
    await fixture.close();
  }
});
