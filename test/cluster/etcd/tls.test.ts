/**
 * TLS to etcd, against a real etcd serving its client port over TLS with client-certificate
 * authentication (`--client-cert-auth`): calls, leases and watches over https with a client
 * certificate; a CA that did not sign etcd's certificate, and a missing client certificate, each
 * refused at once with ETCD_TLS_FAILED (a write too: nothing was sent, so nothing may have been
 * applied); new TLS options reach the next connections. Certificates are made by the test.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { EtcdClient, isEtcdError, type EtcdTlsOptions, type WatchEvent } from '../../../src/cluster/etcd/index.js';
import { eventually, tempDir, type TempDir } from '../../helpers.js';
import { makeCertificates, type TestCertificates } from '../../security/certs.js';
import { EtcdCluster } from '../etcd-server.js';

/** A call refused by TLS fails at once, far within the call's bound. */
const CALL_TIMEOUT_MS = 3_000;
const REFUSED_WITHIN_MS = 1_500;

let dir: TempDir;
let certs: TestCertificates;
let etcd: EtcdCluster;

before(async () => {
  dir = await tempDir('ferry-etcd-tls-');
  certs = makeCertificates(dir.path);
  const health = certs.client('etcd-health');
  etcd = await EtcdCluster.start({
    tls: { certFile: certs.server.certPath, keyFile: certs.server.keyPath, caFile: certs.caPath, clientCertAuth: true, healthClient: { certFile: health.certPath, keyFile: health.keyPath } },
  });
});

after(async () => {
  await etcd?.close();
  await dir?.remove();
});

function client(tls: EtcdTlsOptions): EtcdClient {
  return new EtcdClient({ endpoints: [etcd.endpoint], tls, timeoutMs: CALL_TIMEOUT_MS });
}

function trusted(): EtcdTlsOptions {
  const broker = certs.client('broker');
  return { ca: certs.ca, cert: broker.cert, key: broker.key };
}

/** Resolves with how long `call` took to reject with ETCD_TLS_FAILED, checking its message. */
async function refusedByTls(call: Promise<unknown>, message: RegExp): Promise<number> {
  const startedMs = performance.now();
  await assert.rejects(call, (error: unknown) => {
    assert.ok(isEtcdError(error, 'ETCD_TLS_FAILED'), `ETCD_TLS_FAILED, got ${String(error)}`);
    assert.equal(error.retryable, false);
    assert.equal(error.mayHaveApplied, false, 'nothing was sent');
    assert.match(error.message, message);
    return true;
  });
  return performance.now() - startedMs;
}

test('etcd tls - over https with a client certificate: keys, a transaction, a lease and a watch', async () => {
  assert.match(etcd.endpoint, /^https:\/\//);
  const etcdClient = client(trusted());
  try {
    const events: WatchEvent[] = [];
    const watch = etcdClient.watchPrefix('tls/', {}, (update) => {
      if (update.type === 'events') events.push(...update.events);
    });
    await watch.ready;
    const put = await etcdClient.put('tls/a', 'over tls');
    assert.equal((await etcdClient.get('tls/a')).kv?.value, 'over tls');
    const txn = await etcdClient.txn({ compare: [{ key: 'tls/a', modRevision: put.revision }], success: [{ put: 'tls/b', value: '2' }] });
    assert.equal(txn.succeeded, true);
    const lease = await etcdClient.grantLease(5);
    assert.ok((await etcdClient.keepAlive(lease.id)).ttlSec > 0);
    assert.equal(await etcdClient.revokeLease(lease.id), true);
    await eventually(() => events.length === 2 || false);
    assert.deepEqual(events.map((event) => [event.type, event.kv.key, event.kv.value]), [['put', 'tls/a', 'over tls'], ['put', 'tls/b', '2']]);
    assert.equal(etcdClient.etcdUp, true);
  } finally {
    await etcdClient.close();
  }
});

test('etcd tls - a CA that did not sign etcd\'s certificate is refused at once with ETCD_TLS_FAILED, reads and writes alike', async () => {
  const broker = certs.client('broker');
  const etcdClient = client({ ca: certs.rogueCa, cert: broker.cert, key: broker.key });
  try {
    const readMs = await refusedByTls(etcdClient.get('tls/a'), /not trusted.*--etcd-ca/);
    assert.ok(readMs < REFUSED_WITHIN_MS, `refused in ${Math.round(readMs)} ms, not after the call's ${CALL_TIMEOUT_MS} ms`);
    await refusedByTls(etcdClient.put('tls/a', 'never stored'), /not trusted/);
    assert.equal(etcdClient.etcdUp, false, 'an etcd this client cannot trust is not up for it');
  } finally {
    await etcdClient.close();
  }
});

test('etcd tls - without a client certificate, an etcd with --client-cert-auth refuses the handshake: ETCD_TLS_FAILED', async () => {
  const etcdClient = client({ ca: certs.ca });
  try {
    const readMs = await refusedByTls(etcdClient.get('tls/a'), /client certificate/);
    assert.ok(readMs < REFUSED_WITHIN_MS, `refused in ${Math.round(readMs)} ms`);
    await refusedByTls(etcdClient.put('tls/a', 'never stored'), /client certificate/);
  } finally {
    await etcdClient.close();
  }
  const rogue = certs.rogueClient('broker');
  const untrustedClient = client({ ca: certs.ca, cert: rogue.cert, key: rogue.key });
  try {
    await refusedByTls(untrustedClient.get('tls/a'), /client certificate/);
  } finally {
    await untrustedClient.close();
  }
});

test('etcd tls - setTls: new options reach the next connection; unusable ones are refused and the old kept', async () => {
  const etcdClient = client({ ca: certs.rogueCa });
  try {
    await refusedByTls(etcdClient.get('tls/a'), /not trusted/);
    etcdClient.setTls(trusted());
    assert.equal((await etcdClient.get('tls/a')).kv?.value, 'over tls');
    assert.equal(etcdClient.etcdUp, true);
    assert.throws(() => etcdClient.setTls({ ca: certs.ca, cert: certs.client('broker').cert }), (error: unknown) => isEtcdError(error, 'ETCD_REJECTED'));
    assert.throws(() => etcdClient.setTls({ ca: 'not a certificate' }), (error: unknown) => isEtcdError(error, 'ETCD_REJECTED'));
    assert.equal((await etcdClient.get('tls/a')).kv?.value, 'over tls', 'the working options stay');
  } finally {
    await etcdClient.close();
  }
  assert.throws(() => new EtcdClient({ endpoints: ['http://127.0.0.1:2379'], tls: { ca: certs.ca } }), (error: unknown) => isEtcdError(error, 'ETCD_REJECTED'));
});
