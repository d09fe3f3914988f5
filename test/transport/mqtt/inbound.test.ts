/**
 * The inbound side against a broker whose publishes the test resolves by hand: the QoS 0/1
 * publishes of one read go to the broker as one call per run of one Ferry topic, their PUBACKs
 * leave only once that call resolved and in the order the publishes came, and a call refused
 * with a code that means nothing was written is stored again message by message, so that only
 * the offending message is refused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { IPublishPacket, Packet } from 'mqtt-packet';
import type { BrokerApi, PublishMessage, PublishResult } from '../../../src/broker/types.js';
import { FerryError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { Inbound, type MqttProtocolError } from '../../../src/transport/mqtt/inbound.js';
import { REASON } from '../../../src/transport/mqtt/reason-codes.js';
import { TopicMap } from '../../../src/transport/mqtt/topic-map.js';

interface Call {
  topic: string;
  messages: readonly PublishMessage[];
  resolve: (results: PublishResult[]) => void;
  reject: (error: unknown) => void;
}

function harness(protocolVersion: number, answer?: (call: Call) => void): { inbound: Inbound; calls: Call[]; written: Packet[]; failures: MqttProtocolError[] } {
  const calls: Call[] = [];
  const written: Packet[] = [];
  const failures: MqttProtocolError[] = [];
  const broker = {
    publish: (topic: string, messages: readonly PublishMessage[]) =>
      new Promise<PublishResult[]>((resolve, reject) => {
        const call = { topic, messages, resolve, reject };
        calls.push(call);
        answer?.(call);
      }),
  } as unknown as BrokerApi;
  const inbound = new Inbound(
    { broker, clientId: 'c1', protocolVersion, topicBytesMax: 1024, topicMap: new TopicMap(), inflightMax: 1000, nowMs: () => 0, logger: silentLogger },
    { write: (packet) => written.push(packet), fail: (error) => failures.push(error), setReadPaused: () => undefined },
  );
  return { inbound, calls, written, failures };
}

function publish(topic: string, messageId: number, qos: 0 | 1 = 1, userProperties?: Record<string, string>): IPublishPacket {
  return { cmd: 'publish', topic, payload: Buffer.from(`m${messageId}`), qos, dup: false, retain: false, messageId, ...(userProperties === undefined ? {} : { properties: { userProperties } }) };
}

const stored = (messages: readonly PublishMessage[]): PublishResult[] => messages.map((_, offset) => ({ partition: 0, offset, durability: 'synced' }));
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('mqtt inbound - the publishes of one read are one broker call per run of one Ferry topic; PUBACKs after it, in order', async () => {
  const { inbound, calls, written } = harness(4);
  inbound.publish(publish('a/x', 1));
  inbound.publish(publish('a/y', 2, 0));
  inbound.publish(publish('a/z', 3));
  inbound.publish(publish('b/x', 4));
  inbound.publish(publish('a/x', 5));
  assert.equal(calls.length, 2, 'a run is sent when the Ferry topic changes');
  inbound.flushBatch();
  assert.deepEqual(calls.map((call) => [call.topic, call.messages.map((message) => message.value.toString())]), [['a', ['m1', 'm2', 'm3']], ['b', ['m4']], ['a', ['m5']]]);
  // The later runs resolve first: nothing is acknowledged before the first one is stored.
  calls[2]!.resolve(stored(calls[2]!.messages));
  calls[1]!.resolve(stored(calls[1]!.messages));
  await settle();
  assert.equal(written.length, 0, 'nothing is acknowledged before the first run is stored');
  calls[0]!.resolve(stored(calls[0]!.messages));
  await settle();
  assert.deepEqual(written.map((packet) => (packet as { messageId: number }).messageId), [1, 3, 4, 5]);
  assert.ok(written.every((packet) => packet.cmd === 'puback'));
});

test('mqtt inbound - a run refused for one message (a reserved header) is stored again message by message: only that one is refused', async () => {
  const { inbound, calls, written, failures } = harness(5, (call) => {
    const reserved = call.messages.some((message) => (message.headers ?? []).some(([name]) => name.startsWith('ferry-')));
    if (reserved) call.reject(new FerryError('INVALID_ARGUMENT', 'header ferry-x is reserved'));
    else call.resolve(stored(call.messages));
  });
  inbound.publish(publish('a/x', 1));
  inbound.publish(publish('a/x', 2, 1, { 'ferry-x': '1' }));
  inbound.publish(publish('a/x', 3));
  inbound.flushBatch();
  await settle();
  await settle();
  assert.equal(calls.length, 4, 'one call for the run, then one per message');
  assert.deepEqual(
    written.map((packet) => [(packet as { messageId: number }).messageId, (packet as { reasonCode: number }).reasonCode]),
    [
      [1, REASON.success],
      [2, REASON.implementationSpecificError],
      [3, REASON.success],
    ],
  );
  assert.deepEqual(failures, []);
});

test('mqtt inbound - a run refused as a whole (not allowed): every PUBACK carries the reason (5.0); 3.1.1 closes the connection', async () => {
  const refuse = (call: Call): void => call.reject(new FerryError('FORBIDDEN', 'no publish to a'));
  const v5 = harness(5, refuse);
  v5.inbound.publish(publish('a/x', 1));
  v5.inbound.publish(publish('a/x', 2));
  v5.inbound.flushBatch();
  await settle();
  assert.equal(v5.calls.length, 1, 'a refusal that is not about one message is not tried again');
  assert.deepEqual(
    v5.written.map((packet) => (packet as { reasonCode: number }).reasonCode),
    [REASON.notAuthorized, REASON.notAuthorized],
  );
  const v4 = harness(4, refuse);
  v4.inbound.publish(publish('a/x', 1));
  v4.inbound.flushBatch();
  await settle();
  assert.equal(v4.failures.length, 1);
  assert.equal(v4.failures[0]!.reason, REASON.notAuthorized);
});
