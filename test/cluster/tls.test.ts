/**
 * A cluster over TLS, as `ferry serve` runs it: etcd serves its client port over TLS and requires
 * client certificates (`--client-cert-auth`); the brokers reach it with `--etcd https://…
 * --etcd-ca --etcd-cert --etcd-key`, and each other over TLS (their own certificates, the cluster's
 * CA). Then the brokers' certificates are renewed under a new CA and the files re-read on SIGHUP,
 * with the etcd client's: a connection a broker opens afterwards to another broker trusts the new
 * CA, so a topic it follows there replicates (before the cluster's CA was re-read too, the broker
 * kept trusting the old CA until a restart, and could not follow any topic led by a restarted peer).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type FerryClient } from '../../src/client/index.js';
import { eventually, tempDir, type TempDir } from '../helpers.js';
import { warnIfStale } from '../e2e/broker-process.js';
import { makeCertificates, type TestCertificates } from '../security/certs.js';
import { TestCluster, type ClusterBroker } from './cluster-harness.js';

/** Starting etcd and two brokers, a restart and the renewals, on a loaded 2-core machine. */
const SUITE_TIMEOUT_MS = 180_000;
/** A publish that needs both replicas: well past a normal round trip, well short of a stuck follower. */
const PUBLISH_TIMEOUT_MS = 10_000;

let dir: TempDir;
let first: TestCertificates;
let second: TestCertificates;
let cluster: TestCluster;
let client: FerryClient;
/** The brokers' own files, renewed in place. */
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
    for (const sub of ['first', 'second', 'broker']) mkdirSync(join(dir.path, sub));
    first = makeCertificates(join(dir.path, 'first'));
    second = makeCertificates(join(dir.path, 'second'));
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

/** The topic's leader, once its leader serves it (a topic just created takes a moment to be taken up). */
async function leaderOf(topic: string): Promise<string> {
  return eventually(async () => (await client.describeTopic(topic)).partitions[0]!.leader || false);
}

/** Waits until `broker` logged, after `mark`, that it read both its own certificate and its etcd certificate again. */
async function reloadedBoth(broker: ClusterBroker, mark: number): Promise<void> {
  await eventually(
    () => {
      const reloaded = broker.outputSince(mark).split('\n').filter((line) => line.includes('"security.tls.reloaded"'));
      return (reloaded.some((line) => line.includes(`"cert":"${files.cert}"`)) && reloaded.some((line) => line.includes(`"etcdCert":"${files.etcdCert}"`))) || false;
    },
    { timeoutMs: 10_000 },
  );
}

test('cluster tls - brokers join through an etcd requiring client certificates and replicate to each other over TLS', { timeout: SUITE_TIMEOUT_MS }, async () => {
  assert.match(cluster.etcd.endpoint, /^https:\/\//);
  await client.createTopic('before', { replicas: 2, minInSync: 2 });
  for (let i = 0; i < 5; i++) await client.publish('before', `m${i}`);
  const info = await client.describeTopic('before');
  assert.deepEqual([...(info.partitions[0]!.inSync ?? [])].sort(), ['n1', 'n2']);
  assert.equal(info.partitions[0]!.highWatermark, 5, 'committed on both replicas');
});

test('cluster tls - renewed certificates under a new CA, re-read on SIGHUP: a broker\'s new connections to the others trust the new CA', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const [n1, n2] = [cluster.broker('n1'), cluster.broker('n2')];
  const marks = [n1.outputMark, n2.outputMark];
  replaceFile(second.server.keyPath, files.key);
  replaceFile(second.server.certPath, files.cert);
  replaceFile(second.caPath, files.ca);
  // The etcd client's certificate is renewed too (same CA as etcd trusts): taken on SIGHUP.
  const renewed = first.client('etcd-client-renewed');
  replaceFile(renewed.keyPath, files.etcdKey);
  replaceFile(renewed.certPath, files.etcdCert);
  n1.reload();
  n2.reload();
  await reloadedBoth(n1, marks[0]!);
  await reloadedBoth(n2, marks[1]!);

  // n2 restarts (its topics go to n1 first): n1's connection to it is gone, the next one is new.
  await n2.stop();
  await n2.start();
  // The new topic's preferred leader is the broker leading fewest: n2. n1 follows it, dialling n2 anew.
  await client.createTopic('after', { replicas: 2, minInSync: 2 });
  assert.equal(await leaderOf('after'), 'n2', 'the restarted broker leads the new topic, so the other must connect to it');
  for (let i = 0; i < 5; i++) await client.publish('after', `m${i}`);
  const info = await client.describeTopic('after');
  assert.deepEqual([...(info.partitions[0]!.inSync ?? [])].sort(), ['n1', 'n2'], cluster.describe());
  assert.equal(info.partitions[0]!.highWatermark, 5);
});
