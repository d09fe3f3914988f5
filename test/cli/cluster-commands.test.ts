/**
 * The cluster parts of the CLI: `topics create --replicas/--min-in-sync`, the replication state in
 * `topics describe`, `cluster status`, and the connection flags that name several servers, run as
 * child processes against today's single broker (a cluster's output is rendered from the same
 * code, checked here on the data the brokers send).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { UsageError } from '../../src/cli/args.js';
import { statusTable } from '../../src/cli/cluster.js';
import { replicationFlags, replicationLines } from '../../src/cli/topics.js';
import { ferry, withBroker } from './run-ferry.js';

async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('cli cluster - --replicas and --min-in-sync are checked before anything is sent', () => {
  assert.deepEqual(replicationFlags('3', '2'), { replicas: 3, minInSync: 2 });
  assert.deepEqual(replicationFlags('1', undefined), { replicas: 1 });
  assert.deepEqual(replicationFlags(undefined, undefined), {});
  const usage = (pattern: RegExp) => (error: unknown) => error instanceof UsageError && pattern.test(error.message);
  assert.throws(() => replicationFlags('0', undefined), usage(/--replicas must be from 1 to 255/));
  assert.throws(() => replicationFlags('256', undefined), usage(/--replicas must be from 1 to 255/));
  assert.throws(() => replicationFlags('x', undefined), usage(/not a non-negative integer/));
  assert.throws(() => replicationFlags(undefined, '2'), usage(/--min-in-sync needs --replicas/));
  assert.throws(() => replicationFlags('2', '3'), usage(/--min-in-sync 3 is more than --replicas 2/));
});

test('cli cluster - describe shows each partition\'s leader, epoch, replicas, in-sync set, high watermark and replica offsets', () => {
  const base = { partition: 0, startOffset: 0, nextOffset: 12 };
  assert.deepEqual(replicationLines(base), [], 'a single broker: nothing');
  assert.deepEqual(
    replicationLines({
      ...base,
      leader: 'n1',
      epoch: 4,
      replicas: ['n1', 'n2', 'n3'],
      inSync: ['n1', 'n2'],
      highWatermark: 10,
      replicaOffsets: [
        { nodeId: 'n2', endOffset: 12, lag: 0 },
        { nodeId: 'n3', endOffset: 7, lag: 5 },
      ],
    }),
    [
      '    leader n1, epoch 4, replicas n1,n2,n3, in sync n1,n2, high watermark 10',
      '    replica n2: end offset 12, lag 0',
      '    replica n3: end offset 7, lag 5',
    ],
  );
  assert.match(replicationLines({ ...base, leader: '', epoch: 5, replicas: ['n1'], inSync: [], highWatermark: 0, replicaOffsets: [] })[0]!, /leader \(none\), epoch 5, .*in sync \(none\)/);
});

test('cli cluster - cluster status lists every broker in aligned columns', () => {
  const table = statusTable({
    cluster: true,
    brokers: [
      { nodeId: 'n1', address: '127.0.0.1:7701', alive: true, topicsLed: 2, replicaLag: 0 },
      { nodeId: 'node-2', address: '127.0.0.1:7702', alive: false, topicsLed: 0, replicaLag: 1234 },
    ],
  });
  assert.equal(
    table,
    [
      'NODE    ADDRESS         ALIVE  TOPICS LED  REPLICA LAG',
      'n1      127.0.0.1:7701  yes    2           0',
      'node-2  127.0.0.1:7702  no     0           1234',
      '',
    ].join('\n'),
  );
});

test('cli cluster - commands against a single broker named among several servers; help lists the new commands and flags', async () => {
  const dead = await deadPort();
  await withBroker(async (port) => {
    const servers = ['--server', `127.0.0.1:${dead}`, '--server', `127.0.0.1:${port}`];
    const created = await ferry(['topics', 'create', 'orders', '--replicas', '1', '--min-in-sync', '1', ...servers]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /created orders/);
    const described = await ferry(['topics', 'describe', 'orders', '--json', '--url', `ferry://127.0.0.1:${dead},127.0.0.1:${port}`]);
    assert.equal(described.code, 0, described.stderr);
    assert.equal(JSON.parse(described.stdout).partitions[0].leader, undefined, 'a single broker has no replication state');
    const published = await ferry(['pub', 'orders', 'hello', '--server', `127.0.0.1:${dead},127.0.0.1:${port}`]);
    assert.equal(published.code, 0, published.stderr);

    const status = await ferry(['cluster', 'status', ...servers]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`^\\(single broker\\) +127\\.0\\.0\\.1:${port} +yes +1 +0$`, 'm'));
    const json = await ferry(['cluster', 'status', '--json', '--port', port]);
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), { cluster: false, brokers: [{ nodeId: '', address: `127.0.0.1:${port}`, alive: true, topicsLed: 1, replicaLag: 0 }] });

    const bad = await ferry(['topics', 'create', 'other', '--replicas', '2', '--min-in-sync', '3', '--port', port]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--min-in-sync 3 is more than --replicas 2/);
    const misplaced = await ferry(['topics', 'describe', 'orders', '--replicas', '3', '--port', port]);
    assert.equal(misplaced.code, 2);
    const both = await ferry(['topics', 'list', '--server', `127.0.0.1:${port}`, '--port', port]);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /--server, or --host and --port, not both/);
  });
  const noAction = await ferry(['cluster']);
  assert.equal(noAction.code, 2);
  assert.match(noAction.stderr, /usage: ferry cluster status/);
  const help = await ferry(['help']);
  assert.equal(help.code, 0);
  for (const text of ['ferry cluster status [--json]', '[--replicas n [--min-in-sync n]]', '--server H:P', '--url URL', 'ferry://[user[:password]@]host[:port][,host[:port]]']) {
    assert.ok(help.stdout.includes(text), `help mentions ${text}`);
  }
});
