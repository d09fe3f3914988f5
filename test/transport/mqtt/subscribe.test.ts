/**
 * MQTT 5.0 subscription options with mqtt.js: no-local (a client's own publishes are not sent back
 * to it), retain-as-published (the retain flag passed on), retain handling 0/1/2, and subscription
 * identifiers (announced in CONNACK, sent back on every PUBLISH a subscription matches).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { eventually } from '../../helpers.js';
import { client, clientNow, collect, connected, startMqtt } from './harness.js';

const TEST_TIMEOUT_MS = 30_000;
/** Long enough for a delivery that should not come to have come on loopback. */
const QUIET_MS = 300;

test('mqtt subscribe - no-local: a client does not receive what it published itself; others do', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['sensors'] });
  const self = await client(harness.url, { clientId: 'self' });
  const other = await client(harness.url, { clientId: 'other' });
  try {
    const mine = collect(self);
    const theirs = collect(other);
    await self.subscribeAsync('sensors/#', { qos: 1, nl: true });
    await other.subscribeAsync('sensors/#', { qos: 1 });
    await self.publishAsync('sensors/a', 'from self', { qos: 1 });
    await other.publishAsync('sensors/b', 'from other', { qos: 1 });
    await eventually(() => assert.equal(theirs.length, 2));
    await eventually(() => assert.equal(mine.length, 1));
    await sleep(QUIET_MS);
    assert.deepEqual(mine.map((one) => one.payload), ['from other']);
  } finally {
    await Promise.all([self.endAsync(), other.endAsync()]);
    await harness.close();
  }
});

test('mqtt subscribe - retain-as-published keeps the retain flag of a live message; without it the flag is cleared', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['sensors'] });
  const asPublished = await client(harness.url);
  const plain = await client(harness.url);
  const publisher = await client(harness.url);
  try {
    const kept = collect(asPublished);
    const cleared = collect(plain);
    await asPublished.subscribeAsync('sensors/+', { qos: 1, rap: true });
    await plain.subscribeAsync('sensors/+', { qos: 1 });
    await publisher.publishAsync('sensors/r', 'retained', { qos: 1, retain: true });
    await publisher.publishAsync('sensors/n', 'not retained', { qos: 1 });
    await eventually(() => assert.equal(kept.length + cleared.length, 4));
    assert.deepEqual(kept.map((one) => `${one.payload}:${one.packet.retain}`).sort(), ['not retained:false', 'retained:true']);
    assert.deepEqual(cleared.map((one) => `${one.payload}:${one.packet.retain}`).sort(), ['not retained:false', 'retained:false']);
  } finally {
    await Promise.all([asPublished.endAsync(), plain.endAsync(), publisher.endAsync()]);
    await harness.close();
  }
});

test('mqtt subscribe - retain handling: 0 sends retained messages on every subscribe, 1 only on a new one, 2 never', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['sensors'] });
  const publisher = await client(harness.url);
  const subscriber = await client(harness.url);
  try {
    await publisher.publishAsync('sensors/r', 'kept', { qos: 1, retain: true });
    const received = collect(subscriber);
    await subscriber.subscribeAsync('sensors/#', { qos: 1, rh: 2 });
    await subscriber.subscribeAsync('sensors/+', { qos: 1, rh: 1 });
    await eventually(() => assert.equal(received.length, 1));
    await subscriber.subscribeAsync('sensors/+', { qos: 1, rh: 1 }); // not new: nothing
    await subscriber.subscribeAsync('sensors/r', { qos: 1, rh: 0 });
    await subscriber.subscribeAsync('sensors/r', { qos: 1, rh: 0 }); // again: sent again
    await eventually(() => assert.equal(received.length, 3));
    await sleep(QUIET_MS);
    assert.equal(received.length, 3);
    assert.ok(received.every((one) => one.packet.retain && one.payload === 'kept'));
  } finally {
    await Promise.all([publisher.endAsync(), subscriber.endAsync()]);
    await harness.close();
  }
});

test('mqtt subscribe - subscription identifiers are announced and sent back on the PUBLISHes each subscription matches', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['sensors'] });
  const subscriber = clientNow(harness.url);
  const connack = await connected(subscriber);
  const publisher = await client(harness.url);
  try {
    assert.equal(connack.properties?.subscriptionIdentifiersAvailable, true);
    await publisher.publishAsync('sensors/kitchen', 'retained', { qos: 1, retain: true });
    const received = collect(subscriber);
    await subscriber.subscribeAsync('sensors/kitchen', { qos: 1, properties: { subscriptionIdentifier: 7 } });
    await subscriber.subscribeAsync('sensors/+', { qos: 1, rh: 2, properties: { subscriptionIdentifier: 300 } });
    await subscriber.subscribeAsync('sensors/#', { qos: 1, rh: 2 });
    await eventually(() => assert.equal(received.length, 1));
    assert.equal(received[0]!.packet.properties?.subscriptionIdentifier, 7, 'a retained message sent on subscribe carries it');
    await publisher.publishAsync('sensors/kitchen', 'live', { qos: 1 });
    await eventually(() => assert.equal(received.length, 4));
    const ids = received.slice(1).map((one) => one.packet.properties?.subscriptionIdentifier ?? 'none');
    assert.deepEqual(ids.map(String).sort(), ['300', '7', 'none']);
  } finally {
    await Promise.all([subscriber.endAsync(), publisher.endAsync()]);
    await harness.close();
  }
});

test('mqtt subscribe - a persistent session keeps its subscription options: no-local and the identifier still apply after a reconnect', { timeout: TEST_TIMEOUT_MS }, async () => {
  const harness = await startMqtt({ topics: ['jobs'] });
  const session = { clientId: 'keeper', clean: false, properties: { sessionExpiryInterval: 300 } };
  try {
    const first = await client(harness.url, session);
    await first.subscribeAsync('jobs/#', { qos: 1, nl: true, properties: { subscriptionIdentifier: 42 } });
    await first.endAsync();
    const publisher = await client(harness.url);
    await publisher.publishAsync('jobs/1', 'while away', { qos: 1 });
    await publisher.endAsync();
    const second = clientNow(harness.url, session);
    const received = collect(second);
    assert.equal((await connected(second)).sessionPresent, true);
    await eventually(() => assert.equal(received.length, 1));
    assert.equal(received[0]!.packet.properties?.subscriptionIdentifier, 42);
    await second.publishAsync('jobs/2', 'own', { qos: 1 });
    await sleep(QUIET_MS);
    assert.deepEqual(received.map((one) => one.payload), ['while away'], 'no-local still holds');
    await second.endAsync();
  } finally {
    await harness.close();
  }
});
