/**
 * The broker's own group names (issue 22, item 5). Alice subscribed to her dead-letter topic with
 * the internal group `ferry-redrive` and acked both dead letters: the dashboard showed 0 waiting and
 * the admin's redrive moved 0. Group names starting with `ferry-` are now refused to subscribers
 * (INVALID_ARGUMENT, `detail.reason: "reserved_group"`), over TCP and embedded alike.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, isFerryError, type FerryClient } from '../../src/client/index.js';
import { REDRIVE_GROUP } from '../../src/broker/redrive.js';
import { isReservedGroup } from '../../src/broker/names.js';
import { flush, openSimBroker, RecordingSink } from '../broker/sim-broker.js';
import { startSecure, usersFile } from './harness.js';

const PASSWORD = 'groups-password';
const USERS = { alice: { password: PASSWORD, allow: ['publish:orders.*', 'consume:orders.*'] } };

async function refusal(work: Promise<unknown>): Promise<{ code: string; reason: unknown }> {
  const error = await work.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  assert.ok(isFerryError(error), `refused, got ${String(error)}`);
  return { code: error.code, reason: error.detail?.['reason'] };
}

test('reserved groups - redrive\'s group is one of the reserved names', () => {
  assert.equal(isReservedGroup(REDRIVE_GROUP), true);
  assert.equal(isReservedGroup('FERRY-anything'), true);
  assert.equal(isReservedGroup('ferryman'), false);
});

test('reserved groups - alice cannot join the redrive group of her dead-letter topic, and the admin\'s redrive moves every dead letter', async () => {
  const running = await startSecure({ users: await usersFile(USERS) });
  let alice: FerryClient | null = null;
  try {
    const broker = running.broker;
    await broker.createTopic('orders.eu');
    await broker.createTopic('orders.eu.dlq');
    await broker.publish('orders.eu', [{ value: Buffer.from('a') }, { value: Buffer.from('b') }]);
    const sink = new RecordingSink();
    const worker = await broker.subscribe('orders.eu', { group: 'w', from: { kind: 'earliest' }, credit: 10 }, sink);
    for (let i = 0; i < 100 && sink.received.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 5));
    for (const delivery of sink.received) await worker.reject!(delivery.partition, delivery.offset, 'bad');
    // The first redrive makes the internal group; the attack came after it existed too.
    assert.deepEqual(await broker.redrive('orders.eu.dlq', { limit: 0 }), { moved: 0 });
    alice = await connect({ port: running.port, user: 'alice', password: PASSWORD, reconnect: false });
    for (const group of [REDRIVE_GROUP, 'ferry-mine', 'Ferry-Redrive']) {
      assert.deepEqual(await refusal(alice.subscribe('orders.eu.dlq', { group })), { code: 'INVALID_ARGUMENT', reason: 'reserved_group' }, group);
    }
    assert.deepEqual(await broker.redrive('orders.eu.dlq'), { moved: 2 }, 'both dead letters still waited for the redrive');
    await worker.close();
  } finally {
    await alice?.close();
    await running.close();
  }
});

test('reserved groups - the embedded broker refuses them too', async () => {
  const { broker } = await openSimBroker();
  await broker.createTopic('jobs');
  assert.equal((await refusal(broker.subscribe('jobs', { group: 'ferry-x', credit: 1 }, new RecordingSink()))).code, 'INVALID_ARGUMENT');
  assert.equal((await refusal(broker.subscribe('jobs', { group: 'ferry-x' }))).code, 'INVALID_ARGUMENT');
  await flush();
  assert.deepEqual(broker.describeTopic('jobs').groups, [], 'nothing created');
  await broker.close();
});
