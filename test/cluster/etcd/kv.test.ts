import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient, EtcdError, isEtcdError } from '../../../src/cluster/etcd/index.js';
import { RANGE_PAGE_KEYS } from '../../../src/cluster/etcd/limits.js';
import { startEtcd, type EtcdCluster } from '../etcd-server.js';

/** etcd's default --max-txn-ops: operations in one transaction at most. */
const TXN_OPS_MAX = 128;

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

test('etcd client - put, get, getPrefix and delete', async () => {
  const first = await client.put('kv/a/1', 'one');
  const second = await client.put('kv/a/2', 'two');
  await client.put('kv/b/1', 'elsewhere');
  assert.ok(second.revision > first.revision, 'revisions grow');

  const got = await client.get('kv/a/1');
  assert.equal(got.kv?.key, 'kv/a/1');
  assert.equal(got.kv?.value, 'one');
  assert.equal(got.kv?.createRevision, first.revision);
  assert.equal(got.kv?.modRevision, first.revision);
  assert.equal(got.kv?.version, 1);
  assert.equal(got.kv?.lease, undefined);
  assert.ok(got.revision >= second.revision, 'a read sees the latest revision');

  const updated = await client.put('kv/a/1', 'uno');
  const again = await client.get('kv/a/1');
  assert.deepEqual([again.kv?.value, again.kv?.version, again.kv?.modRevision, again.kv?.createRevision], ['uno', 2, updated.revision, first.revision]);

  const prefix = await client.getPrefix('kv/a/');
  assert.deepEqual(prefix.kvs.map((kv) => [kv.key, kv.value]), [['kv/a/1', 'uno'], ['kv/a/2', 'two']]);
  assert.equal(prefix.revision, updated.revision);

  assert.equal((await client.get('kv/missing')).kv, undefined);
  assert.deepEqual((await client.getPrefix('kv/none/')).kvs, []);

  const removed = await client.delete('kv/a/1');
  assert.equal(removed.deleted, 1);
  assert.equal((await client.get('kv/a/1')).kv, undefined);
  assert.equal((await client.delete('kv/a/1')).deleted, 0);
  assert.equal((await client.delete('kv/', { prefix: true })).deleted, 2);
  assert.deepEqual((await client.getPrefix('kv/')).kvs, []);
});

test('etcd client - values keep their bytes; keys and values are not base64 to the caller', async () => {
  const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff]);
  await client.put('bin/raw', bytes);
  const got = await client.get('bin/raw');
  assert.deepEqual(got.kv?.valueBytes, bytes);
  await client.put('bin/text', 'héllo ✓');
  assert.equal((await client.get('bin/text')).kv?.value, 'héllo ✓');
  await client.put('bin/empty', '');
  const empty = await client.get('bin/empty');
  assert.equal(empty.kv?.value, '');
  assert.equal(empty.kv?.version, 1);
});

test('etcd client - a prefix read larger than a page is one snapshot in key order', async () => {
  const total = RANGE_PAGE_KEYS + 50;
  const keys = Array.from({ length: total }, (_, i) => `page/${String(i).padStart(5, '0')}`);
  for (let i = 0; i < total; i += TXN_OPS_MAX) {
    await client.txn({ compare: [], success: keys.slice(i, i + TXN_OPS_MAX).map((key) => ({ put: key, value: key })) });
  }
  const read = await client.getPrefix('page/');
  assert.equal(read.kvs.length, total);
  assert.deepEqual(read.kvs.map((kv) => kv.key), keys);
  assert.ok(read.kvs.every((kv) => kv.value === kv.key && kv.modRevision <= read.revision), 'every key as written, at or below the read revision');
});

test('etcd client - txn compare-and-swap on modRevision: the stale writer loses', async () => {
  const { revision } = await client.put('cas/state', 'v1');
  const won = await client.txn({
    compare: [{ key: 'cas/state', modRevision: revision }],
    success: [{ put: 'cas/state', value: 'v2' }],
    failure: [{ get: 'cas/state' }],
  });
  assert.equal(won.succeeded, true);
  assert.equal(won.responses.length, 1);
  assert.equal(won.responses[0]!.type, 'put');
  assert.ok(won.revision > revision, 'the winning put made a new revision');

  const lost = await client.txn({
    compare: [{ key: 'cas/state', modRevision: revision }],
    success: [{ put: 'cas/state', value: 'stale' }],
    failure: [{ get: 'cas/state' }],
  });
  assert.equal(lost.succeeded, false);
  const current = lost.responses[0]!;
  assert.equal(current.type, 'get');
  assert.equal(current.type === 'get' ? current.kvs[0]?.value : undefined, 'v2');
  assert.equal(lost.revision, won.revision, 'a failed compare writes nothing');
  assert.equal((await client.get('cas/state')).kv?.value, 'v2');
});

test('etcd client - two concurrent CAS writers from the same revision: exactly one wins', async () => {
  const other = new EtcdClient({ endpoints: [etcd.endpoint], timeoutMs: 2_000 });
  try {
    for (let round = 0; round < 10; round++) {
      const key = `race/${round}`;
      const { revision } = await client.put(key, JSON.stringify({ epoch: 0 }));
      const attempt = (who: EtcdClient, name: string) =>
        who.txn({ compare: [{ key, modRevision: revision }], success: [{ put: key, value: JSON.stringify({ epoch: 1, leader: name }) }] });
      const [a, b] = await Promise.all([attempt(client, 'a'), attempt(other, 'b')]);
      assert.equal(Number(a.succeeded) + Number(b.succeeded), 1, `round ${round}: exactly one writer wins`);
      const stored = JSON.parse((await client.get(key)).kv!.value) as { leader: string };
      assert.equal(stored.leader, a.succeeded ? 'a' : 'b', 'the stored value is the winner’s');
    }
  } finally {
    await other.close();
  }
});

test('etcd client - create if absent (createRevision == 0) succeeds once', async () => {
  const create = () => client.txn({ compare: [{ key: 'once/x', createRevision: 0 }], success: [{ put: 'once/x', value: 'first' }], failure: [{ get: 'once/x' }] });
  const results = await Promise.all([create(), create(), create()]);
  assert.equal(results.filter((result) => result.succeeded).length, 1);
  assert.equal((await client.get('once/x')).kv?.value, 'first');
  await client.delete('once/x');
  assert.equal((await create()).succeeded, true, 'absent again after a delete');
});

test('etcd client - txn compares on version, value and with other operators, and deletes', async () => {
  await client.put('cmp/k', 'a');
  await client.put('cmp/k', 'b');
  const check = async (compare: Parameters<EtcdClient['txn']>[0]['compare'][number]) => (await client.txn({ compare: [compare] })).succeeded;
  assert.equal(await check({ key: 'cmp/k', version: 2 }), true);
  assert.equal(await check({ key: 'cmp/k', version: 1 }), false);
  assert.equal(await check({ key: 'cmp/k', version: 1, op: '>' }), true);
  assert.equal(await check({ key: 'cmp/k', value: 'b' }), true);
  assert.equal(await check({ key: 'cmp/k', value: 'a', op: '!=' }), true);
  assert.equal(await check({ key: 'cmp/k', createRevision: 0, op: '>' }), true);
  const txn = await client.txn({ compare: [{ key: 'cmp/k', value: 'b' }], success: [{ delete: 'cmp/', prefix: true }, { get: 'cmp/', prefix: true }] });
  assert.deepEqual(txn.responses.map((response) => response.type), ['delete', 'get']);
  assert.equal(txn.responses[0]!.type === 'delete' ? txn.responses[0]!.deleted : -1, 1);
  assert.equal(txn.responses[1]!.type === 'get' ? txn.responses[1]!.kvs.length : -1, 0);
});

test('etcd client - bad requests are typed rejections, not retryable', async () => {
  await assert.rejects(
    client.txn({ compare: [{ key: 'bad/k' } as never] }),
    (error: unknown) => isEtcdError(error, 'ETCD_REJECTED') && !error.retryable && /name one of/.test(error.message),
  );
  await assert.rejects(
    client.txn({ compare: [{ key: 'bad/k', modRevision: -1 }] }),
    (error: unknown) => isEtcdError(error, 'ETCD_REJECTED') && /modRevision/.test(error.message),
  );
  // etcd itself refuses more operations than --max-txn-ops.
  const tooMany = Array.from({ length: TXN_OPS_MAX + 1 }, (_, i) => ({ put: `bad/${i}`, value: 'x' }));
  await assert.rejects(client.txn({ compare: [], success: tooMany }), (error: unknown) => {
    assert.ok(error instanceof EtcdError, 'an EtcdError');
    assert.equal(error.code, 'ETCD_REJECTED');
    assert.equal(error.retryable, false);
    assert.equal(error.grpcCode, 3);
    assert.match(error.message, /too many operations/);
    return true;
  });
  assert.equal(client.etcdUp, true, 'a rejection comes from a reachable etcd');
  assert.throws(() => new EtcdClient({ endpoints: ['ftp://127.0.0.1:1'] }), (error: unknown) => isEtcdError(error, 'ETCD_REJECTED'));
  assert.throws(() => new EtcdClient({ endpoints: [] }), (error: unknown) => isEtcdError(error, 'ETCD_REJECTED'));
});

test('etcd client - reads at a compacted revision are ETCD_COMPACTED', async () => {
  const { revision } = await client.put('compact/k', '1');
  await client.put('compact/k', '2');
  const latest = await client.put('compact/k', '3');
  assert.equal((await client.get('compact/k', { revision })).kv?.value, '1', 'an old revision reads as it was');
  await client.compact(latest.revision);
  assert.equal((await client.get('compact/k', { revision: latest.revision })).kv?.value, '3');
  await assert.rejects(
    client.get('compact/k', { revision }),
    (error: unknown) => isEtcdError(error, 'ETCD_COMPACTED') && !error.retryable,
  );
});
