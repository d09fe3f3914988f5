/**
 * PacketWriter: the packets of a tick encoded into one buffer, byte for byte what mqtt-packet's
 * generate() makes; a packet the encoder refuses, or one over the client's maximum size, is taken
 * back whole and the others still go out.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mqttPacket, { type Packet } from 'mqtt-packet';
import { PacketWriter } from '../../../src/transport/mqtt/packet-writer.js';

test('packet writer - joined packets equal generate(), refused and too-large ones are taken back whole', () => {
  const writer = new PacketWriter();
  const puback: Packet = { cmd: 'puback', messageId: 7, reasonCode: 0 };
  const publish: Packet = { cmd: 'publish', topic: 'sensors/kü', payload: Buffer.from('21.5'), qos: 1, messageId: 8, dup: false, retain: false, properties: { userProperties: { a: 'b' } } };
  assert.equal(writer.add(puback, 5, Infinity).kind, 'queued');
  assert.equal(writer.add({ cmd: 'publish', topic: 42 as unknown as string, payload: Buffer.alloc(1), qos: 0, dup: false, retain: false }, 5, Infinity).kind, 'refused');
  assert.equal(writer.add({ ...publish, payload: Buffer.alloc(100) }, 5, 50).kind, 'tooLarge');
  assert.equal(writer.add(publish, 5, Infinity).kind, 'queued');
  const expected = Buffer.concat([mqttPacket.generate(puback, { protocolVersion: 5 }), mqttPacket.generate(publish, { protocolVersion: 5 })]);
  assert.equal(writer.queuedBytes, expected.length);
  assert.deepEqual(writer.take(), expected);
  assert.equal(writer.queuedBytes, 0);
  assert.equal(writer.take(), null);
});
