import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient, EtcdError, isEtcdError, type WatchEvent } from '../../../src/cluster/etcd/index.js';
import { eventually } from '../../helpers.js';
import { RecordingLogger } from '../../storage/log-kit.js';
import { EtcdCluster, startEtcd, type EtcdMember } from '../etcd-server.js';

let cluster: EtcdCluster;

before(async () => {
  cluster = await EtcdCluster.start({ members: 3 });
});

after(async () => {
  await cluster?.close();
});

/** Endpoints with `first` first: the member the client uses until it fails. */
function endpointsStartingWith(first: EtcdMember): string[] {
  return [first.endpoint, ...cluster.endpoints.filter((endpoint) => endpoint !== first.endpoint)];
}

/** Retries a write while it fails with a retryable error (an election in progress), within a bound. */
async function writeThrough<T>(write: () => Promise<T>): Promise<T> {
  return eventually(async () => {
    try {
      return await write();
    } catch (error) {
      assert.ok(isEtcdError(error) && error.retryable, `only retryable errors while a member is down: ${String(error)}`);
      throw error;
    }
  });
}

async function leaderMember(): Promise<EtcdMember> {
  return eventually(async () => (await cluster.leader()) ?? false);
}

test('etcd failover - with three members, calls go on when the leader the client uses is killed', async () => {
  const leader = await leaderMember();
  const client = new EtcdClient({ endpoints: endpointsStartingWith(leader), timeoutMs: 3_000 });
  try {
    const before = await client.put('fo/a', '1');
    assert.equal(client.health.endpoint, leader.endpoint);
    await leader.kill();
    // A read goes to the next member at once (connection refused) and waits out the election there.
    const read = await client.get('fo/a');
    assert.equal(read.kv?.modRevision, before.revision);
    assert.notEqual(client.health.endpoint, leader.endpoint);
    const after = await writeThrough(() => client.put('fo/a', '2'));
    assert.ok(after.revision > before.revision, 'the write after the kill made a new revision');
    assert.equal((await client.get('fo/a')).kv?.value, '2');
    assert.equal(client.etcdUp, true);
  } finally {
    await client.close();
    await leader.restart();
  }
});

test('etcd failover - a frozen (SIGSTOPped) member: reads move to another member within the call timeout', async () => {
  const frozen = cluster.members[1]!;
  const client = new EtcdClient({ endpoints: endpointsStartingWith(frozen), timeoutMs: 3_000 });
  try {
    await client.put('fo/frozen', 'x');
    frozen.pause();
    const startedMs = performance.now();
    const read = await client.get('fo/frozen');
    const elapsedMs = performance.now() - startedMs;
    assert.equal(read.kv?.value, 'x');
    assert.ok(elapsedMs < 3_000, `answered in ${Math.round(elapsedMs)} ms`);
    assert.notEqual(client.health.endpoint, frozen.endpoint, 'later calls start at a member that answers');
    await writeThrough(() => client.put('fo/frozen', 'y'));
  } finally {
    frozen.resume();
    await client.close();
  }
});

test('etcd failover - a watch moves to another member when its member is killed, missing nothing', async () => {
  const watched = cluster.members[2]!;
  const logger = new RecordingLogger();
  const client = new EtcdClient({ endpoints: endpointsStartingWith(watched), timeoutMs: 3_000, logger });
  const writer = new EtcdClient({ endpoints: cluster.endpoints.filter((endpoint) => endpoint !== watched.endpoint), timeoutMs: 3_000 });
  const events: WatchEvent[] = [];
  const watch = client.watchPrefix('fo/w/', {}, (update) => {
    if (update.type === 'events') events.push(...update.events);
  });
  const written: number[] = [];
  try {
    await watch.ready;
    for (let i = 0; i < 5; i++) written.push((await writeThrough(() => writer.put(`fo/w/${i}`, String(i)))).revision);
    await eventually(() => events.length === 5);
    await watched.kill();
    for (let i = 5; i < 10; i++) written.push((await writeThrough(() => writer.put(`fo/w/${i}`, String(i)))).revision);
    await eventually(() => events.length === 10);
    assert.deepEqual(events.map((event) => event.kv.modRevision), written);
    assert.equal(logger.events('cluster.etcd.watch_broken')[0]?.['endpoint'], watched.endpoint, 'the stream was on the killed member');
    assert.notEqual(logger.events('cluster.etcd.watch_resumed').at(-1)?.['endpoint'], watched.endpoint, 'and resumed on another');
  } finally {
    await watch.close();
    await client.close();
    await writer.close();
    await watched.restart();
  }
});

test('etcd client - no reachable endpoint is a typed, retryable ETCD_UNREACHABLE within the timeout', async () => {
  // Ports of a member that is stopped: nothing listens there now.
  const gone = await startEtcd();
  const endpoint = gone.endpoint;
  await gone.close();
  const client = new EtcdClient({ endpoints: [endpoint, 'http://127.0.0.1:1'], timeoutMs: 500 });
  try {
    for (const call of [() => client.get('k'), () => client.put('k', 'v'), () => client.txn({ compare: [], success: [{ put: 'k', value: 'v' }] })]) {
      const startedMs = performance.now();
      const error = await call().then(
        () => assert.fail('a call without etcd succeeded'),
        (error: unknown) => error,
      );
      const elapsedMs = performance.now() - startedMs;
      assert.ok(error instanceof EtcdError, `an EtcdError: ${String(error)}`);
      assert.equal(error.code, 'ETCD_UNREACHABLE');
      assert.equal(error.retryable, true);
      assert.equal(error.mayHaveApplied, false, 'nothing was sent');
      assert.match(error.message, new RegExp(`tried ${endpoint.replace(/\./g, '\\.')}, http://127\\.0\\.0\\.1:1`));
      assert.match(String((error.cause as Error | undefined)?.message), /ECONNREFUSED/);
      assert.ok(elapsedMs >= 450 && elapsedMs < 1_500, `gave up after ${Math.round(elapsedMs)} ms`);
    }
    assert.equal(client.etcdUp, false);
    assert.equal(client.health.lastError?.code, 'ETCD_UNREACHABLE');
  } finally {
    await client.close();
  }
});

test('etcd client - a frozen lone endpoint is ETCD_TIMEOUT, and a write says it may have been applied', async () => {
  const etcd = await startEtcd();
  const client = new EtcdClient({ endpoints: [etcd.endpoint], timeoutMs: 600 });
  try {
    await client.put('frozen/k', 'v');
    etcd.member.pause();
    await assert.rejects(client.get('frozen/k'), (error: unknown) => isEtcdError(error, 'ETCD_TIMEOUT') && error.retryable && !error.mayHaveApplied);
    await assert.rejects(client.put('frozen/k', 'w'), (error: unknown) => isEtcdError(error, 'ETCD_TIMEOUT') && error.retryable && error.mayHaveApplied);
    assert.equal(client.etcdUp, false);
    etcd.member.resume();
    // The write that timed out was queued in the paused process: it may indeed have been applied.
    await eventually(async () => (await client.get('frozen/k')).kv !== undefined);
    assert.equal(client.etcdUp, true);
  } finally {
    etcd.member.resume();
    await client.close();
    await etcd.close();
  }
});
