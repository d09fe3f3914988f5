/**
 * Broker headers written by clients (issue 22, item 4). `ferry-dlq-topic` published into alice's
 * dead-letter topic made an admin's redrive write into `billing`; `ferry-id` made a later publish a
 * "duplicate"; `ferry-deliver-at` dropped a delayed message; `ferry-delay-partition` jammed a
 * topic's delays. The `ferry-` namespace is the broker's: every way in refuses a client's
 * `ferry-*` header other than `ferry-priority` with INVALID_ARGUMENT, the broker-to-broker publish
 * (`asBroker`) needs the replicate grant, and a redrive writes only where a dead letter came from.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { connect, isFerryError, type FerryClient } from '../../src/client/index.js';
import { decodeUdpDatagram } from '../../src/protocol/udp-datagram.js';
import { reservedHeaderRefusal } from '../../src/protocol/reserved-headers.js';
import { MessageServiceClient, PublishRequest } from '../grpc/generated/ferry/v1/messages.js';
import { flush, openSimBroker, RecordingSink } from '../broker/sim-broker.js';
import { basic, startSecure, usersFile } from './harness.js';

const PASSWORD = 'headers-password';
const USERS = {
  alice: { password: PASSWORD, allow: ['publish:orders.*', 'consume:orders.*'] },
  peer: { password: PASSWORD, allow: ['replicate:*'] },
  ops: { password: PASSWORD, allow: ['admin:*', 'publish:*', 'consume:*'] },
};
/** The headers of the report, and a letter-case variant. */
const FORGED = ['ferry-dlq-topic', 'ferry-id', 'ferry-deliver-at', 'ferry-delay-partition', 'ferry-group-snapshot', 'Ferry-Id'];

async function codeOf(work: Promise<unknown>): Promise<string> {
  const error = await work.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  assert.ok(isFerryError(error), `refused, got ${String(error)}`);
  return error.code;
}

test('reserved headers - the rule: ferry-priority is a client input, every other ferry-* name (any case) is the broker\'s', () => {
  assert.equal(reservedHeaderRefusal([['ferry-priority', '3'], ['trace', 'x']]), null);
  for (const name of FORGED) assert.equal(reservedHeaderRefusal([[name, '1']])?.code, 'INVALID_ARGUMENT', name);
  assert.equal(reservedHeaderRefusal([['ferry-id', 'x']])?.detail?.['reason'], 'reserved_header');
});

test('reserved headers - TCP, the admin API, gRPC and UDP refuse forged broker headers; nothing is stored', async () => {
  const running = await startSecure({ users: await usersFile(USERS), http: true });
  let alice: FerryClient | null = null;
  const grpc = new MessageServiceClient(`127.0.0.1:${running.httpPort}`, credentials.createInsecure());
  try {
    await running.broker.createTopic('orders.eu');
    alice = await connect({ port: running.port, user: 'alice', password: PASSWORD, reconnect: false });
    for (const name of FORGED) {
      assert.equal(await codeOf(alice.publish('orders.eu', 'forged', { headers: { [name]: '7' } })), 'INVALID_ARGUMENT', `TCP ${name}`);
      const response = await fetch(`http://127.0.0.1:${running.httpPort}/api/topics/orders.eu/messages`, {
        method: 'POST',
        headers: { authorization: basic('alice', PASSWORD), 'content-type': 'application/json' },
        body: JSON.stringify({ value: 'forged', headers: { [name]: '7' } }),
      });
      assert.equal(response.status, 400, `admin API ${name}`);
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT');
      const metadata = new Metadata();
      metadata.set('authorization', basic('alice', PASSWORD));
      const grpcError = await new Promise<ServiceError | null>((resolve) =>
        grpc.publish(PublishRequest.fromPartial({ topic: 'orders.eu', messages: [{ value: Buffer.from('forged'), headers: { [name]: '7' } }] }), metadata, { deadline: Date.now() + 10_000 }, (error) => resolve(error)),
      );
      assert.equal(grpcError?.code, 3, `gRPC ${name}: INVALID_ARGUMENT`);
    }
    const udp = Buffer.concat([Buffer.from([0xfe, 0x77, 1, 0x02, 9]), Buffer.from('orders.eu'), Buffer.from([1, 8]), Buffer.from('ferry-id'), Buffer.from([0, 1]), Buffer.from('x'), Buffer.from('v')]);
    assert.throws(() => decodeUdpDatagram(udp), /names starting with ferry- are the broker's/, 'UDP');
    // The documented input still works, and nothing forged was stored.
    await alice.publish('orders.eu', 'urgent', { headers: { 'ferry-priority': '5' } });
    await alice.publish('orders.eu', 'plain', { priority: 2 });
    const stored = running.broker.describeTopic('orders.eu').partitions.reduce((sum, partition) => sum + partition.nextOffset, 0);
    assert.equal(stored, 2);
  } finally {
    grpc.close();
    await alice?.close();
    await running.close();
  }
});

test('reserved headers - the broker-to-broker publish keeps ferry-* headers, and only for a user with the replicate grant', async () => {
  const running = await startSecure({ users: await usersFile(USERS) });
  const clients: FerryClient[] = [];
  try {
    await running.broker.createTopic('orders.eu.dlq');
    const alice = await connect({ port: running.port, user: 'alice', password: PASSWORD, reconnect: false });
    const peer = await connect({ port: running.port, user: 'peer', password: PASSWORD, reconnect: false });
    clients.push(alice, peer);
    const letter = { value: 'dead', headers: { 'ferry-dlq-topic': 'orders.eu', 'ferry-dlq-group': 'g' } };
    assert.equal(await codeOf(alice.publishBatch('orders.eu.dlq', [letter], { asBroker: true })), 'FORBIDDEN', 'alice may publish there, but not as a broker');
    const [result] = await peer.publishBatch('orders.eu.dlq', [letter], { asBroker: true });
    assert.equal(result!.offset, 0);
    assert.equal(await codeOf(peer.publishBatch('orders.eu.dlq', [letter])), 'FORBIDDEN', 'replicate is no publish grant');
    const ops = await connect({ port: running.port, user: 'ops', password: PASSWORD, reconnect: false });
    clients.push(ops);
    assert.equal(await codeOf(ops.publishBatch('orders.eu.dlq', [letter])), 'INVALID_ARGUMENT', 'an ordinary publish with them is refused even for an admin');
    const sink = new RecordingSink();
    const subscription = await running.broker.subscribe('orders.eu.dlq', { from: { kind: 'earliest' }, credit: 10 }, sink);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(
      sink.received.map((delivery) => delivery.headers.filter(([name]) => name.startsWith('ferry-dlq-'))),
      [[['ferry-dlq-topic', 'orders.eu'], ['ferry-dlq-group', 'g']]],
    );
    await subscription.close();
  } finally {
    for (const client of clients) await client.close();
    await running.close();
  }
});

test('reserved headers - the embedded broker refuses them too, in both publish forms', async () => {
  const { broker } = await openSimBroker();
  await broker.createTopic('jobs');
  assert.equal(await codeOf(broker.publish('jobs', 'v', { headers: { 'ferry-deliver-at': '1' }, delayMs: 1000 })), 'INVALID_ARGUMENT');
  assert.equal(await codeOf(broker.publish('jobs', [{ value: Buffer.from('v'), headers: [['ferry-delay-partition', '7']] }])), 'INVALID_ARGUMENT');
  await broker.publish('jobs', 'v', { priority: 9 });
  assert.equal(broker.describeTopic('jobs').partitions[0]!.nextOffset, 1);
  await broker.close();
});

test('redrive - a dead letter naming a source whose group does not dead-letter here is left where it is', async () => {
  const { broker } = await openSimBroker();
  await broker.createTopic('jobs');
  await broker.createTopic('billing');
  await broker.publish('jobs', [{ value: Buffer.from('real') }]);
  const sink = new RecordingSink();
  const subscription = await broker.subscribe('jobs', { group: 'w', from: { kind: 'earliest' }, credit: 10 }, sink);
  await flush();
  await subscription.reject!(0, 0, 'bad');
  await flush();
  // What a forged (or pre-upgrade) dead letter in jobs.dlq looks like: it claims to come from billing.
  await broker.publishAsBroker('jobs.dlq', [
    { value: Buffer.from('forged'), key: null, headers: [['ferry-dlq-topic', 'billing'], ['ferry-dlq-group', 'w'], ['ferry-dlq-offset', '0'], ['ferry-dlq-partition', '0']] },
  ]);
  assert.deepEqual(await broker.redrive('jobs.dlq'), { moved: 1 }, 'only the real dead letter moves');
  assert.equal(broker.describeTopic('billing').partitions[0]!.nextOffset, 0, 'nothing written into billing');
  assert.equal(broker.describeTopic('jobs').partitions[0]!.nextOffset, 2, 'the real one went back to jobs');
  await subscription.close();
  await broker.close();
});
