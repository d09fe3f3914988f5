/**
 * What the cluster keeps in etcd (src/cluster/cluster-store.ts), against a real etcd: a topic is
 * created once, its state changes only by compare-and-swap (two brokers racing for one epoch: one
 * wins, the other learns the winner), brokers vanish with their lease, and a watch sees every
 * change in order.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient } from '../../src/cluster/etcd/index.js';
import { ClusterStore, type ClusterEvent, type TopicPlacement } from '../../src/cluster/cluster-store.js';
import { eventually } from '../helpers.js';
import { EtcdCluster } from './etcd-server.js';

let etcd: EtcdCluster;
let client: EtcdClient;

before(async () => {
  etcd = await EtcdCluster.start();
  client = new EtcdClient({ endpoints: etcd.endpoints });
});

after(async () => {
  await client.close();
  await etcd.close();
});

function placement(name: string): TopicPlacement {
  return { name, config: { partitions: 1, durability: 'always' }, replicas: ['n1', 'n2', 'n3'], minInSync: 2, createdAtMs: 1 };
}

test('cluster store - a topic is created once: placement and first state together', async () => {
  const store = new ClusterStore(client, '/test-create/');
  assert.equal(await store.createTopic(placement('t'), { leader: 'n1', epoch: 1, inSync: ['n1', 'n2', 'n3'] }), true);
  assert.equal(await store.createTopic(placement('t'), { leader: 'n2', epoch: 1, inSync: ['n2'] }), false, 'it exists');
  const snapshot = await store.read();
  assert.deepEqual(snapshot.placements.get('t')?.replicas, ['n1', 'n2', 'n3']);
  assert.equal(snapshot.states.get('t')?.state.leader, 'n1');
  await store.deleteTopic('t');
  const after = await store.read();
  assert.equal(after.placements.size, 0);
  assert.equal(after.states.size, 0);
});

test('cluster store - two brokers racing for the next epoch: exactly one compare-and-swap wins, the other reads the winner', async () => {
  const store = new ClusterStore(client, '/test-race/');
  await store.createTopic(placement('t'), { leader: 'n1', epoch: 1, inSync: ['n1', 'n2', 'n3'] });
  const read = (await store.getState('t'))!;
  const [a, b] = await Promise.all([
    store.casState('t', read.modRevision, { leader: 'n2', epoch: 2, inSync: ['n2', 'n3'] }),
    store.casState('t', read.modRevision, { leader: 'n3', epoch: 2, inSync: ['n2', 'n3'] }),
  ]);
  assert.equal([a, b].filter((result) => result.ok).length, 1, 'one winner');
  const loser = a.ok ? b : a;
  assert.equal(loser.ok, false);
  const now = (await store.getState('t'))!;
  assert.equal(loser.ok === false ? loser.current?.state.leader : undefined, now.state.leader, 'the loser learns who won');
  assert.equal(now.state.epoch, 2);
});

test('cluster store - a broker disappears with its lease, and the watch sees every change in order', async () => {
  const store = new ClusterStore(client, '/test-watch/');
  const start = await store.read();
  const seen: ClusterEvent[] = [];
  const watch = store.watch(start.revision + 1, (events) => {
    if (events !== null) seen.push(...events);
  });
  await watch.ready;
  const lease = await client.grantLease(1);
  await store.registerBroker({ nodeId: 'n9', address: '127.0.0.1:1', startedAtMs: 1 }, lease.id);
  await store.createTopic(placement('w'), { leader: 'n9', epoch: 1, inSync: ['n9'] });
  // No keepalive: the lease, and the broker key with it, are gone within a couple of seconds.
  await eventually(() => seen.some((event) => event.kind === 'broker' && event.nodeId === 'n9' && event.record === null), { timeoutMs: 10_000 });
  const kinds = seen.map((event) => `${event.kind}:${event.kind === 'broker' ? (event.record === null ? 'gone' : 'up') : 'put'}`);
  assert.deepEqual(kinds.slice(0, 3), ['broker:up', 'placement:put', 'state:put'], kinds.join(', '));
  await watch.close();
});
