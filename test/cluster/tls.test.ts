/**
 * A cluster over TLS, as `ferry serve` runs it: etcd serves its client port over TLS and requires
 * client certificates (`--client-cert-auth`); the brokers reach it with `--etcd https://…
 * --etcd-ca --etcd-cert --etcd-key`, and each other over TLS (their own certificates, the cluster's
 * CA).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type FerryClient } from '../../src/client/index.js';
import { tempDir, type TempDir } from '../helpers.js';
import { warnIfStale } from '../e2e/broker-process.js';
import { makeCertificates, type TestCertificates } from '../security/certs.js';
import { TestCluster } from './cluster-harness.js';

/** Starting etcd and two brokers on a loaded 2-core machine. */
const SUITE_TIMEOUT_MS = 180_000;
/** A publish that needs both replicas: well past a normal round trip, well short of a stuck follower. */
const PUBLISH_TIMEOUT_MS = 10_000;

let dir: TempDir;
let first: TestCertificates;
let cluster: TestCluster;
let client: FerryClient;
/** The brokers' own files. */
let files: { cert: string; key: string; ca: string; etcdCert: string; etcdKey: string };

/** Writes `from` to `to` by rename, as a certificate tool does, so a reload never reads half a file. */
function replaceFile(from: string, to: string): void {
  copyFileSync(from, `${to}.new`);
  renameSync(`${to}.new`, to);
}

before(
  async () => {
    warnIfStale();
    dir = await tempDir('ferry-cluster-tls-');
    for (const sub of ['first', 'broker']) mkdirSync(join(dir.path, sub));
    first = makeCertificates(join(dir.path, 'first'));
    const brokerDir = join(dir.path, 'broker');
    files = { cert: join(brokerDir, 'server.crt'), key: join(brokerDir, 'server.key'), ca: join(brokerDir, 'ca.crt'), etcdCert: join(brokerDir, 'etcd.crt'), etcdKey: join(brokerDir, 'etcd.key') };
    replaceFile(first.server.certPath, files.cert);
    replaceFile(first.server.keyPath, files.key);
    replaceFile(first.caPath, files.ca);
    const etcdClient = first.client('etcd-client');
    replaceFile(etcdClient.certPath, files.etcdCert);
    replaceFile(etcdClient.keyPath, files.etcdKey);
    const health = first.client('etcd-health');
    cluster = await TestCluster.start({
      brokers: 2,
      etcd: { tls: { certFile: first.server.certPath, keyFile: first.server.keyPath, caFile: first.caPath, clientCertAuth: true, healthClient: { certFile: health.certPath, keyFile: health.keyPath } } },
      settings: { 'tls.cert': files.cert, 'tls.key': files.key, 'tls.ca': files.ca, 'cluster.replicaLagMaxMs': 2_000 },
      flags: ['--etcd-ca', first.caPath, '--etcd-cert', files.etcdCert, '--etcd-key', files.etcdKey],
    });
    // TLS is optional on the brokers' port: the test's client speaks plaintext; the brokers speak TLS to each other.
    client = await connect({ servers: cluster.servers, requestTimeoutMs: PUBLISH_TIMEOUT_MS });
  },
  { timeout: SUITE_TIMEOUT_MS },
);

after(async () => {
  await client?.close().catch(() => undefined);
  await cluster?.stop();
  await dir?.remove();
});

test('cluster tls - brokers join through an etcd requiring client certificates and replicate to each other over TLS', { timeout: SUITE_TIMEOUT_MS }, async () => {
  assert.match(cluster.etcd.endpoint, /^https:\/\//);
  await client.createTopic('before', { replicas: 2, minInSync: 2 });
  for (let i = 0; i < 5; i++) await client.publish('before', `m${i}`);
  const info = await client.describeTopic('before');
  assert.deepEqual([...(info.partitions[0]!.inSync ?? [])].sort(), ['n1', 'n2']);
  assert.equal(info.partitions[0]!.highWatermark, 5, 'committed on both replicas');
});
