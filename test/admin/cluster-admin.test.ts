/**
 * The HTTP port of a cluster, with real processes: one etcd and three `ferry serve` brokers on
 * loopback (test/cluster/cluster-harness.ts) that require logins and log in to each other as a user
 * made by `ferry users add replicator --replicate`. gRPC creates and describes a replicated topic
 * (replicas, in-sync set, high watermark, each replica's end offset and lag); the admin API creates
 * one too; GET /api/cluster on a broker that leads neither lists the brokers as `ferry cluster
 * status` does and each topic as its leader describes it; /metrics has the cluster's families; the
 * dashboard's cluster page shows the same in Chromium; and while etcd is frozen (SIGSTOP) every
 * broker's /readyz says 503 and why, leaders keep serving, and after SIGCONT all are ready again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { connect, type FerryClient } from '../../src/client/index.js';
import { eventually, tempDir, type TempDir } from '../helpers.js';
import { warnIfStale } from '../e2e/broker-process.js';
import { ferry } from '../cli/run-ferry.js';
import { TestCluster, type ClusterBroker } from '../cluster/cluster-harness.js';
import { ferryDetail, GrpcTestClient } from '../grpc/client.js';
import { CreateTopicRequest, DescribeTopicRequest, Durability, type Topic } from '../grpc/generated/ferry/v1/topics.js';
import { parsePrometheus, type Family } from './prometheus.js';

/** Starting etcd and three brokers, then an etcd freeze and the recovery from it, on a loaded 2-core machine. */
const SUITE_TIMEOUT_MS = 180_000;
/** Waits for the cluster to settle: replication takes milliseconds, an etcd call times out after 2 s. */
const SETTLE_MS = 20_000;
const OPS_PASSWORD = 'operator password';
const REPLICATOR_PASSWORD = 'replicator password';
const OPS_AUTH = `Basic ${Buffer.from(`ops:${OPS_PASSWORD}`).toString('base64')}`;

let dir: TempDir;
let cluster: TestCluster;
let client: FerryClient;

before(
  async () => {
    warnIfStale();
    dir = await tempDir('ferry-cluster-admin-');
    const users = join(dir.path, 'users.json');
    const grants = { ops: ['--admin', '--publish', '*'], replicator: ['--replicate'] };
    for (const [name, password] of [['ops', OPS_PASSWORD], ['replicator', REPLICATOR_PASSWORD]] as const) {
      const added = await ferry(['users', 'add', name, '--file', users, ...grants[name]], { input: `${password}\n` });
      assert.equal(added.code, 0, added.stderr);
    }
    const passwordFile = join(dir.path, 'replicator.password');
    writeFileSync(passwordFile, `${REPLICATOR_PASSWORD}\n`, { mode: 0o600 });
    cluster = await TestCluster.start({ settings: { 'security.usersFile': users, 'cluster.user': 'replicator', 'cluster.passwordFile': passwordFile } });
    client = await connect({ servers: cluster.servers, user: 'ops', password: OPS_PASSWORD, requestTimeoutMs: 15_000 });
  },
  { timeout: SUITE_TIMEOUT_MS },
);

after(async () => {
  await client?.close().catch(() => undefined);
  await cluster?.stop();
  await dir?.remove();
});

function http(broker: ClusterBroker, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`http://127.0.0.1:${broker.httpPort}${path}`, { ...init, headers: { authorization: OPS_AUTH, ...(init.headers as Record<string, string>) } });
}

async function metrics(broker: ClusterBroker): Promise<Map<string, Family>> {
  // With users configured, /metrics needs a login (the metrics grant, or admin on every topic).
  assert.equal((await fetch(`http://127.0.0.1:${broker.httpPort}/metrics`)).status, 401);
  const response = await http(broker, '/metrics');
  assert.equal(response.status, 200);
  return parsePrometheus(await response.text());
}

function grpcClient(broker: ClusterBroker): GrpcTestClient {
  return new GrpcTestClient(`127.0.0.1:${broker.httpPort}`, { authorization: OPS_AUTH });
}

async function leaderOf(topic: string): Promise<ClusterBroker> {
  const leader = (await client.describeTopic(topic)).partitions[0]!.leader;
  assert.ok(leader !== undefined && leader !== '', `${topic} has a leader`);
  return cluster.broker(leader);
}

test('cluster admin - gRPC CreateTopic takes replicas and min_in_sync; DescribeTopic on the leader shows leader, epoch, in-sync set, high watermark and each replica', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const first = grpcClient(cluster.brokers[0]!);
  try {
    const created = await first.call(first.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'grpc-orders', config: { partitions: 2, replicas: 3, minInSync: 2, durability: Durability.DURABILITY_ALWAYS } }));
    assert.deepEqual([...created.topic!.partitions[0]!.replicas].sort(), ['n1', 'n2', 'n3']);
    assert.equal(created.topic!.config!.replicas, 3);
    assert.equal(created.topic!.config!.minInSync, 2);
    const refused = await first.call(first.topics.createTopic, CreateTopicRequest.fromPartial({ name: 'too-many', config: { replicas: 4 } })).catch((error: ServiceError) => error);
    assert.equal((refused as ServiceError).code, GrpcStatus.UNAVAILABLE);
    assert.equal(ferryDetail(refused)?.code, 'NOT_ENOUGH_REPLICAS');
  } finally {
    first.close();
  }
  for (let i = 0; i < 10; i++) await client.publish('grpc-orders', `m${i}`, { partition: i % 2 });
  const leader = await leaderOf('grpc-orders');
  const grpc = grpcClient(leader);
  try {
    let topic: Topic | undefined;
    await eventually(
      async () => {
        topic = (await grpc.call(grpc.topics.describeTopic, DescribeTopicRequest.fromPartial({ name: 'grpc-orders' }))).topic;
        for (const partition of topic!.partitions) {
          assert.equal(partition.nextOffset, 5);
          assert.equal(partition.highWatermark, partition.nextOffset, 'everything published is committed');
          assert.deepEqual([...partition.inSync].sort(), ['n1', 'n2', 'n3']);
          assert.deepEqual(partition.replicaOffsets.map((replica) => [replica.nodeId, replica.endOffset, replica.lag]).sort(), [['n1', 5, 0], ['n2', 5, 0], ['n3', 5, 0]]);
        }
      },
      { timeoutMs: SETTLE_MS },
    );
    // The same shape as the protocol's describe (client.describeTopic).
    const wire = await client.describeTopic('grpc-orders');
    for (const [index, partition] of topic!.partitions.entries()) {
      const expected = wire.partitions[index]!;
      assert.equal(partition.leader, leader.nodeId);
      assert.equal(partition.leader, expected.leader);
      assert.ok(partition.epoch! >= 1);
      assert.equal(partition.epoch, expected.epoch);
      assert.deepEqual([...partition.replicas].sort(), [...expected.replicas!].sort());
      assert.equal(partition.highWatermark, expected.highWatermark);
    }
  } finally {
    grpc.close();
  }
});

test('cluster admin - POST /api/topics takes replicas and minInSync', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const post = (body: unknown): Promise<Response> => http(cluster.brokers[1]!, '/api/topics', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const created = await post({ name: 'http-orders', replicas: 2, minInSync: 2 });
  const body = (await created.json()) as { partitions: { replicas: string[] }[]; config: { replicas: number; minInSync: number } };
  assert.equal(created.status, 201, JSON.stringify(body));
  assert.equal(body.partitions[0]!.replicas.length, 2);
  assert.equal(body.config.minInSync, 2);
  const bad = await post({ name: 'bad-replicas', replicas: 2, minInSync: 3 });
  assert.equal(bad.status, 400, await bad.text());
});

test('cluster admin - GET /api/cluster lists the brokers as `ferry cluster status` does and each topic as its leader describes it', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const led = new Set([(await leaderOf('grpc-orders')).nodeId, (await leaderOf('http-orders')).nodeId]);
  // A broker leading neither topic must ask their leaders for the replicas' offsets.
  const asked = cluster.brokers.find((broker) => !led.has(broker.nodeId))!;
  assert.equal((await fetch(`http://127.0.0.1:${asked.httpPort}/api/cluster`)).status, 401, 'a login is needed');
  const view = await eventually(
    async () => {
      const response = await http(asked, '/api/cluster');
      assert.equal(response.status, 200);
      const body = (await response.json()) as any;
      assert.ok(body.topics.every((topic: any) => topic.lag === 0), JSON.stringify(body.topics));
      return body;
    },
    { timeoutMs: SETTLE_MS },
  );
  assert.equal(view.cluster, true);
  assert.equal(view.nodeId, asked.nodeId);
  assert.equal(view.etcdUp, true);
  const status = await client.clusterStatus();
  const brokers = (list: any[]): unknown[] => list.map((broker) => [broker.nodeId, broker.address, broker.alive, broker.topicsLed, broker.replicaLag]).sort();
  assert.deepEqual(brokers(view.brokers), brokers(status.brokers));
  const topicsLed = (nodeId: string): number => view.topics.filter((topic: any) => topic.leader === nodeId).length;
  assert.deepEqual(brokers(view.brokers), cluster.brokers.map((broker) => [broker.nodeId, broker.address, true, topicsLed(broker.nodeId), 0]).sort());
  const orders = view.topics.find((topic: any) => topic.name === 'grpc-orders');
  assert.equal(orders.leader, (await leaderOf('grpc-orders')).nodeId);
  assert.ok(orders.epoch >= 1);
  assert.deepEqual([...orders.inSync].sort(), ['n1', 'n2', 'n3']);
  assert.equal(orders.partitions.length, 2);
  for (const partition of orders.partitions) assert.equal(partition.replicaOffsets.length, 3, 'described by the leader');
  assert.deepEqual(view.topics.map((topic: any) => topic.name).sort(), ['grpc-orders', 'http-orders']);
});

test('cluster admin - /metrics has the cluster families: etcd up, leader changes, in-sync shrinks, replica lag per topic, partition and replica', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const leader = await leaderOf('grpc-orders');
  const families = await metrics(leader);
  for (const family of families.values()) {
    assert.ok(family.help.length > 0, `${family.name} has HELP`);
    if (family.type === 'counter') assert.match(family.name, /_total$/, `counter ${family.name} ends in _total`);
  }
  assert.equal(families.get('ferry_cluster_etcd_up')?.type, 'gauge');
  assert.deepEqual(families.get('ferry_cluster_etcd_up')!.samples.map((sample) => sample.value), [1]);
  assert.equal(families.get('ferry_leader_changes_total')?.type, 'counter');
  assert.equal(families.get('ferry_in_sync_shrinks_total')?.type, 'counter');
  const lag = families.get('ferry_replica_lag_records');
  assert.equal(lag?.type, 'gauge');
  const samples = lag!.samples.filter((sample) => sample.labels['topic'] === 'grpc-orders').map((sample) => `${sample.labels['partition']}/${sample.labels['replica']}=${sample.value}`);
  assert.deepEqual(samples.sort(), ['0/n1=0', '0/n2=0', '0/n3=0', '1/n1=0', '1/n2=0', '1/n3=0']);
  // Another broker does not lead it, so it does not report its lag.
  const other = cluster.brokers.find((broker) => broker !== leader)!;
  assert.ok(!(await metrics(other)).get('ferry_replica_lag_records')!.samples.some((sample) => sample.labels['topic'] === 'grpc-orders'));
});

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const chromiumMissing = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (install it with: apt-get install -y chromium)`;

test('cluster admin - the dashboard\'s cluster page shows the brokers and each topic\'s leader, epoch, in-sync set and lag', { skip: chromiumMissing, timeout: SUITE_TIMEOUT_MS }, async () => {
  const { chromium } = await import('playwright-core');
  const leader = await leaderOf('grpc-orders');
  const epoch = (await client.describeTopic('grpc-orders')).partitions[0]!.epoch!;
  const shown = cluster.brokers.find((broker) => broker !== leader)!;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, httpCredentials: { username: 'ops', password: OPS_PASSWORD } });
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`http://127.0.0.1:${shown.httpPort}/#/cluster`);
    const cell = (selector: string): Promise<string> => page.locator(selector).first().innerText({ timeout: SETTLE_MS }).then((text) => text.trim());
    const expectText = (selector: string, expected: string): Promise<unknown> =>
      eventually(async () => assert.equal(await cell(selector), expected, selector), { timeoutMs: SETTLE_MS, intervalMs: 100 });
    for (const broker of cluster.brokers) {
      await expectText(`[data-testid=broker-row][data-key="${broker.nodeId}"] [data-col=alive]`, 'alive');
      await expectText(`[data-testid=broker-row][data-key="${broker.nodeId}"] [data-col=address]`, broker.address);
    }
    await expectText(`[data-testid=broker-row][data-key="${leader.nodeId}"] [data-col=led]`, String((await client.clusterStatus()).brokers.find((b) => b.nodeId === leader.nodeId)!.topicsLed));
    const row = '[data-testid=cluster-topic-row][data-key="grpc-orders"]';
    await expectText(`${row} [data-col=leader]`, leader.nodeId);
    await expectText(`${row} [data-col=epoch]`, String(epoch));
    await expectText(`${row} [data-col=in-sync]`, 'n1 n2 n3');
    await expectText(`${row} [data-col=lag]`, '0');
    await expectText('[data-testid=cluster-node-value]', shown.nodeId);
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
  }
});

test('cluster admin - while etcd is frozen every broker is unready (503, with the reason) and leaders keep serving; after it resumes all are ready again', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const readyz = async (broker: ClusterBroker): Promise<{ status: number; body: { status: string; reason?: string } }> => {
    const response = await fetch(`http://127.0.0.1:${broker.httpPort}/readyz`);
    return { status: response.status, body: (await response.json()) as { status: string; reason?: string } };
  };
  for (const broker of cluster.brokers) assert.equal((await readyz(broker)).status, 200);
  cluster.etcd.member.pause();
  try {
    for (const broker of cluster.brokers) {
      await eventually(
        async () => {
          const answer = await readyz(broker);
          assert.equal(answer.status, 503);
          assert.equal(answer.body.status, 'etcd unreachable');
          assert.match(answer.body.reason ?? '', /etcd/);
        },
        { timeoutMs: SETTLE_MS },
      );
      const families = await metrics(broker);
      assert.deepEqual(families.get('ferry_cluster_etcd_up')!.samples.map((sample) => sample.value), [0]);
      assert.equal(families.get('ferry_ready')!.samples[0]!.value, 0);
      const down = families.get('ferry_log_events_total')!.samples.find((sample) => sample.labels['event'] === 'cluster.etcd.down');
      assert.ok(down !== undefined && down.value >= 1, `${broker.nodeId} logged cluster.etcd.down`);
    }
    // Only readiness says so: the leader still takes and confirms publishes.
    const confirmed = await client.publish('grpc-orders', 'while etcd is frozen', { partition: 0 });
    assert.equal(confirmed.partition, 0);
  } finally {
    cluster.etcd.member.resume();
  }
  for (const broker of cluster.brokers) {
    await eventually(async () => assert.equal((await readyz(broker)).status, 200), { timeoutMs: SETTLE_MS });
    assert.deepEqual((await metrics(broker)).get('ferry_cluster_etcd_up')!.samples.map((sample) => sample.value), [1]);
    assert.match(broker.output, /"cluster\.etcd\.up"/, `${broker.nodeId} logged cluster.etcd.up`);
  }
  await client.publish('grpc-orders', 'after etcd came back', { partition: 1 });
});
