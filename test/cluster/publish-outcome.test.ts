/**
 * What a publisher is told when the leader that appended its publish loses the leadership before
 * committing it, with real brokers and etcd (cluster-harness.ts): the leader fails the waiting
 * publish with NOT_LEADER marked `appended`, and the client, finding no leader before its time is
 * up, gives up with TIMEOUT, outcome unknown — not with a NOT_LEADER refusal (docs/RELIABILITY.md,
 * "Found by the cluster suite", 2). Published again with the same id once a leader is back, the
 * message is stored once.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type FerryClient } from '../../src/client/index.js';
import { ClusterStore } from '../../src/cluster/cluster-store.js';
import { EtcdClient } from '../../src/cluster/etcd/index.js';
import { isFerryError } from '../../src/errors.js';
import { eventually } from '../helpers.js';
import { warnIfStale } from '../e2e/broker-process.js';
import { TestCluster } from './cluster-harness.js';

const SUITE_TIMEOUT_MS = 240_000;
const SETTLE_MS = 20_000;
/** The etcd prefix brokers use unless configured otherwise (docs/CLUSTERING.md). */
const PREFIX = '/ferry/';
/** The short publisher's whole time for one publish. */
const SHORT_TIMEOUT_MS = 3_000;
/** Time for the leader to append and ship the publish before its leadership is taken. */
const APPEND_MS = 150;

let cluster: TestCluster;
let client: FerryClient;
let etcd: EtcdClient;

before(
  async () => {
    warnIfStale();
    cluster = await TestCluster.start();
    client = await connect({ servers: cluster.servers, requestTimeoutMs: 15_000 });
    etcd = new EtcdClient({ endpoints: cluster.etcd.endpoints });
  },
  { timeout: SUITE_TIMEOUT_MS },
);

after(async () => {
  await client?.close().catch(() => undefined);
  await etcd?.close();
  for (const broker of cluster?.brokers ?? []) broker.resume();
  await cluster?.stop();
});

async function leaderOf(topic: string): Promise<string> {
  const leader = (await client.describeTopic(topic)).partitions[0]!.leader;
  assert.ok(leader !== undefined && leader !== '', `${topic} has a leader`);
  return leader;
}

test('publish outcome - a leader loses its leadership with the publish appended and uncommitted: the client gives up with TIMEOUT (outcome unknown), and a retry with the same id is stored once', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await client.createTopic('outcome', { replicas: 3, minInSync: 2 });
  await client.publish('outcome', 'before');
  const old = cluster.broker(await leaderOf('outcome'));
  const followers = cluster.brokers.filter((broker) => broker !== old);
  const short = await connect({ servers: [old.address], requestTimeoutMs: SHORT_TIMEOUT_MS });
  try {
    await short.publish('outcome', 'warm');
    // Frozen followers confirm nothing: the leader appends the publish and waits for them (less
    // than the second after which it would call them gone and shrink the in-sync set).
    for (const follower of followers) follower.pause();
    const startedMs = performance.now();
    const outcome = short.publish('outcome', 'maybe', { id: 'outcome-maybe' }).then(
      () => 'confirmed',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, APPEND_MS));
    // Its leadership ends as a broker giving it up ends it: the next epoch, no leader, the
    // followers in sync (frozen, they elect nobody until they resume).
    const store = new ClusterStore(etcd, PREFIX);
    const read = await store.getState('outcome');
    assert.equal(read?.state.leader, old.nodeId);
    const swapped = await store.casState('outcome', read!.modRevision, { leader: null, epoch: read!.state.epoch + 1, inSync: followers.map((broker) => broker.nodeId) });
    assert.equal(swapped.ok, true);

    const error = await outcome;
    const tookMs = performance.now() - startedMs;
    assert.ok(isFerryError(error, 'TIMEOUT'), `outcome unknown, not a refusal: ${String(error)}\n${cluster.describe()}`);
    assert.equal(error.detail?.['outcome'], 'unknown');
    assert.ok(tookMs < SHORT_TIMEOUT_MS + 1_000, `within its timeout (${Math.round(tookMs)} ms)`);
    assert.match(old.output, /cluster\.leader\.stopped/);
  } finally {
    for (const follower of followers) follower.resume();
    await short.close();
  }

  await eventually(async () => {
    const leader = await leaderOf('outcome').catch(() => '');
    return followers.some((broker) => broker.nodeId === leader);
  }, { timeoutMs: SETTLE_MS });
  // The application publishes it again with the same id: stored once, whether or not the first copy survived.
  await client.publish('outcome', 'maybe', { id: 'outcome-maybe' });
  await client.publish('outcome', 'after');
  const values: string[] = [];
  const stream = await client.subscribe('outcome', { from: 'earliest' });
  for await (const message of stream) {
    values.push(message.value.toString());
    if (message.value.toString() === 'after') break;
  }
  await stream.close();
  assert.deepEqual(values, ['before', 'warm', 'maybe', 'after']);
});
