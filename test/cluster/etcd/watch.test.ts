import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient, type WatchUpdate } from '../../../src/cluster/etcd/index.js';
import { eventually } from '../../helpers.js';
import { RecordingLogger } from '../../storage/log-kit.js';
import { startEtcd, type EtcdCluster } from '../etcd-server.js';

let etcd: EtcdCluster;
let client: EtcdClient;

before(async () => {
  etcd = await startEtcd();
  client = new EtcdClient({ endpoints: [etcd.endpoint], timeoutMs: 2_000 });
});

after(async () => {
  await client?.close();
  await etcd?.close();
});

/** Collects what a watch delivers. */
function recorder() {
  const updates: WatchUpdate[] = [];
  const events = () => updates.flatMap((update) => (update.type === 'events' ? update.events : []));
  return { updates, events, listener: (update: WatchUpdate) => void updates.push(update) };
}

test('etcd watch - delivers puts and deletes under the prefix, in revision order', async () => {
  const seen = recorder();
  const watch = client.watchPrefix('w1/', {}, seen.listener);
  try {
    await watch.ready;
    const a = await client.put('w1/a', '1');
    await client.put('other/x', 'not watched');
    const b = await client.put('w1/b', '2');
    const txn = await client.txn({ compare: [], success: [{ put: 'w1/c', value: '3' }, { delete: 'w1/a' }] });
    await eventually(() => assert.equal(seen.events().length, 4));
    assert.deepEqual(
      seen.events().map((event) => [event.type, event.kv.key, event.kv.value, event.kv.modRevision]),
      [
        ['put', 'w1/a', '1', a.revision],
        ['put', 'w1/b', '2', b.revision],
        ['put', 'w1/c', '3', txn.revision],
        ['delete', 'w1/a', '', txn.revision],
      ],
    );
    assert.equal(watch.revision, txn.revision);
    for (const update of seen.updates) {
      assert.equal(update.type, 'events');
      if (update.type === 'events') assert.equal(update.revision, update.events[update.events.length - 1]!.kv.modRevision);
    }
  } finally {
    await watch.close();
  }
  await client.put('w1/d', 'after close');
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(seen.events().length, 4, 'nothing is delivered after close()');
  assert.equal(await watch.done, undefined);
});

test('etcd watch - fromRevision replays history; a slow listener holds back the next update', async () => {
  const first = await client.put('w2/k', 'v1');
  await client.put('w2/k', 'v2');
  await client.delete('w2/k');
  const calls: string[] = [];
  const values: string[] = [];
  const watch = client.watchPrefix('w2/', { fromRevision: first.revision }, async (update) => {
    if (update.type !== 'events') return;
    calls.push('start');
    values.push(...update.events.map((event) => `${event.type} ${event.kv.value}`));
    await new Promise((resolve) => setTimeout(resolve, 50));
    calls.push('end');
  });
  try {
    await watch.ready;
    await client.put('w2/k', 'v3');
    await eventually(() => values.length === 4 && calls.at(-1) === 'end');
    assert.deepEqual(values, ['put v1', 'put v2', 'delete ', 'put v3']);
    // Never two listener calls at once: starts and ends alternate.
    calls.forEach((call, i) => assert.equal(call, i % 2 === 0 ? 'start' : 'end', `call ${i} of ${calls.join(',')}`));
  } finally {
    await watch.close();
  }
});

test('etcd watch - resumes after etcd is killed and restarted without missing or repeating an event', async () => {
  const seen = recorder();
  const watch = client.watchPrefix('w3/', {}, seen.listener);
  const written: number[] = [];
  try {
    await watch.ready;
    for (let i = 0; i < 5; i++) written.push((await client.put(`w3/${i}`, String(i))).revision);
    await eventually(() => assert.equal(seen.events().length, 5));
    await etcd.member.kill();
    await etcd.member.restart();
    // Written while the watch is still reconnecting (its retry pause is at least 50 ms).
    for (let i = 5; i < 10; i++) written.push((await client.put(`w3/${i}`, String(i))).revision);
    await eventually(() => assert.equal(seen.events().length, 10));
    await etcd.member.restart();
    for (let i = 10; i < 15; i++) written.push((await client.put(`w3/${i}`, String(i))).revision);
    await eventually(() => assert.equal(seen.events().length, 15));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(seen.events().map((event) => event.kv.modRevision), written, 'every write once, in order');
    assert.deepEqual(seen.events().map((event) => event.kv.key), written.map((_, i) => `w3/${i}`));
  } finally {
    await watch.close();
  }
});

test('etcd watch - a start revision below the compaction is reported, then events from the compaction on', async () => {
  const first = await client.put('w4/k', 'a');
  await client.put('w4/k', 'b');
  const third = await client.put('w4/k', 'c');
  await client.compact(third.revision);
  const seen = recorder();
  const watch = client.watchPrefix('w4/', { fromRevision: first.revision }, seen.listener);
  try {
    await eventually(() => seen.updates.length >= 2);
    assert.deepEqual(seen.updates[0], { type: 'compacted', compactRevision: third.revision });
    // What the caller does: read the prefix again, then skip events at or below that read.
    const reread = await client.getPrefix('w4/');
    assert.equal(reread.kvs[0]?.value, 'c');
    const fourth = await client.put('w4/k', 'd');
    await eventually(() => assert.equal(seen.events().at(-1)?.kv.value, 'd'));
    const fresh = seen.events().filter((event) => event.kv.modRevision > reread.revision);
    assert.deepEqual(fresh.map((event) => [event.kv.value, event.kv.modRevision]), [['d', fourth.revision]]);
    assert.deepEqual(seen.events().map((event) => event.kv.value), ['c', 'd'], 'from the compact revision on, nothing older');
  } finally {
    await watch.close();
  }
});

test('etcd watch - a listener that throws ends the watch with its error', async () => {
  const watch = client.watchPrefix('w5/', {}, () => {
    throw new Error('listener bug');
  });
  await watch.ready;
  await client.put('w5/k', 'v');
  const error = await watch.done;
  assert.equal(error?.message, 'listener bug');
});

test('etcd watch - a silent stream is opened again after idleMs, losing nothing', async () => {
  const seen = recorder();
  const logger = new RecordingLogger();
  const quiet = new EtcdClient({ endpoints: [etcd.endpoint], logger });
  const watch = quiet.watchPrefix('w6/', { idleMs: 300 }, seen.listener);
  try {
    await watch.ready;
    const before = (await client.put('w6/a', '1')).revision;
    await eventually(() => assert.equal(seen.events().length, 1));
    // Quiet for a few idle periods: the stream is replaced a few times.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const later = (await client.put('w6/b', '2')).revision;
    await eventually(() => assert.equal(seen.events().length, 2));
    assert.deepEqual(seen.events().map((event) => event.kv.modRevision), [before, later]);
    const reopened = logger.events('cluster.etcd.watch_idle_reopened');
    assert.ok(reopened.length >= 2, `opened again ${reopened.length} times`);
    assert.equal(reopened.at(-1)?.['fromRevision'], before + 1, 'from the revision after the last event');
    assert.deepEqual(logger.events('cluster.etcd.watch_broken'), [], 'a quiet stream is not a failure');
  } finally {
    await quiet.close();
  }
});
