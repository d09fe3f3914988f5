import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient, isEtcdError, LeaseKeeper, type LeaseLoss } from '../../../src/cluster/etcd/index.js';
import { eventually } from '../../helpers.js';
import { startEtcd, type EtcdCluster } from '../etcd-server.js';

/** etcd checks for expired leases every 500 ms: a key outlives its lease by up to that much. */
const EXPIRY_SLACK_MS = 3_000;

let etcd: EtcdCluster;
let client: EtcdClient;

before(async () => {
  etcd = await startEtcd();
  client = new EtcdClient({ endpoints: [etcd.endpoint], timeoutMs: 1_000 });
});

after(async () => {
  await client?.close();
  await etcd?.close();
});

test('etcd lease - a key attached to a lease not kept alive disappears after the TTL', async () => {
  const lease = await client.grantLease(1);
  assert.equal(lease.ttlSec, 1);
  await client.put('lease/expiring', 'alive', { lease: lease.id });
  const got = await client.get('lease/expiring');
  assert.equal(got.kv?.lease, lease.id);
  assert.ok(((await client.leaseTimeToLive(lease.id)) ?? -1) >= 0, 'the lease has time to live');
  await eventually(async () => assert.equal((await client.get('lease/expiring')).kv, undefined), { timeoutMs: 1_000 + EXPIRY_SLACK_MS, intervalMs: 100 });
  assert.equal(await client.leaseTimeToLive(lease.id), undefined);
  await assert.rejects(client.keepAlive(lease.id), (error: unknown) => isEtcdError(error, 'ETCD_LEASE_NOT_FOUND') && !error.retryable);
  await assert.rejects(client.put('lease/late', 'x', { lease: lease.id }), (error: unknown) => isEtcdError(error, 'ETCD_LEASE_NOT_FOUND'));
});

test('etcd lease - keepAlive renews; revoke deletes the attached keys at once', async () => {
  const lease = await client.grantLease(5);
  assert.deepEqual(await client.keepAlive(lease.id), { ttlSec: 5 });
  await client.put('lease/revoked/a', '1', { lease: lease.id });
  await client.put('lease/revoked/b', '2', { lease: lease.id });
  assert.equal(await client.revokeLease(lease.id), true);
  assert.deepEqual((await client.getPrefix('lease/revoked/')).kvs, []);
  assert.equal(await client.revokeLease(lease.id), false, 'revoking a lease that is gone');
  await assert.rejects(client.grantLease(0), (error: unknown) => isEtcdError(error, 'ETCD_REJECTED'));
});

test('etcd lease - LeaseKeeper keeps a lease alive past several TTLs, and stops cleanly', async () => {
  const lease = await client.grantLease(1);
  await client.put('lease/kept', 'alive', { lease: lease.id });
  const losses: LeaseLoss[] = [];
  const keeper = new LeaseKeeper(client, lease, (loss) => losses.push(loss));
  const startedMs = performance.now();
  try {
    while (performance.now() - startedMs < 3_500) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      assert.equal((await client.get('lease/kept')).kv?.value, 'alive', `the key is there after ${Math.round(performance.now() - startedMs)} ms`);
    }
    assert.deepEqual(losses, []);
    assert.ok(keeper.aliveUntil > performance.now(), 'the keeper knows the lease alive for a while yet');
  } finally {
    await keeper.stop();
  }
  // Without the keeper the lease runs out: the keeper was what kept it.
  await eventually(async () => assert.equal((await client.get('lease/kept')).kv, undefined), { timeoutMs: 1_000 + EXPIRY_SLACK_MS, intervalMs: 100 });
  assert.deepEqual(losses, [], 'stopping is not a loss');
});

test('etcd lease - LeaseKeeper reports "expired" when the lease is revoked under it', async () => {
  const lease = await client.grantLease(3);
  const losses: LeaseLoss[] = [];
  const keeper = new LeaseKeeper(client, lease, (loss) => losses.push(loss));
  try {
    await client.revokeLease(lease.id);
    // The next keepalive (every TTL/3 = 1 s) finds the lease gone.
    await eventually(() => assert.equal(losses.length, 1), { timeoutMs: 3_000 });
    assert.equal(losses[0]!.reason, 'expired');
    assert.ok(isEtcdError(losses[0]!.error, 'ETCD_LEASE_NOT_FOUND'), `lease not found: ${String(losses[0]!.error)}`);
    assert.equal(keeper.lost?.reason, 'expired');
  } finally {
    await keeper.stop();
  }
});

test('etcd lease - LeaseKeeper reports loss within the TTL when etcd is paused (SIGSTOP) past it', async () => {
  const ttlSec = 2;
  const lease = await client.grantLease(ttlSec);
  let lostAtMs = 0;
  const losses: LeaseLoss[] = [];
  const keeper = new LeaseKeeper(client, lease, (loss) => {
    lostAtMs = performance.now();
    losses.push(loss);
  });
  // Let a renewal or two go through first.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const renewedUntilMs = keeper.aliveUntil;
  const pausedAtMs = performance.now();
  etcd.member.pause();
  try {
    await eventually(() => assert.equal(losses.length, 1), { timeoutMs: ttlSec * 1000 + 2_000 });
    assert.equal(losses[0]!.reason, 'unreachable');
    assert.ok(isEtcdError(losses[0]!.error) && losses[0]!.error.retryable, `a retryable error: ${String(losses[0]!.error)}`);
    // Reported once the last renewal's TTL ran out, and no later than one TTL after the pause.
    assert.ok(lostAtMs >= renewedUntilMs - 5, `lost at ${lostAtMs}, not before the lease could expire at ${renewedUntilMs}`);
    assert.ok(lostAtMs - pausedAtMs <= ttlSec * 1000 + 300, `lost ${Math.round(lostAtMs - pausedAtMs)} ms after the pause`);
    assert.equal(client.etcdUp, false);
    assert.equal(client.health.lastError?.retryable, true);
  } finally {
    etcd.member.resume();
    await keeper.stop();
  }
  await eventually(async () => {
    await client.get('lease/any');
    assert.equal(client.etcdUp, true);
  });
});
