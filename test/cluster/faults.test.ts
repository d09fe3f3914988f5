/**
 * Replication under faults, with real processes (cluster-harness.ts): a leader cut off with records
 * nobody else holds truncates them when it returns (KIP-101); a leader frozen past its lease
 * confirms nothing after it resumes and steps down; a silent follower leaves the in-sync set, and
 * with fewer than minInSync replicas in sync nothing is confirmed; with etcd down the leaders keep
 * serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ClientConnection } from '../../src/client/connection.js';
import { connect } from '../../src/client/index.js';
import { resolveClientOptions } from '../../src/client/options.js';
import { FerryError as FerryErrorClass, isFerryError, type FerryError } from '../../src/errors.js';
import { FRAME_TYPES } from '../../src/protocol/frame.js';
import { decodePublishOk, encodePublish } from '../../src/protocol/codec-publish.js';
import { NodeFileSystem } from '../../src/platform/fs.js';
import { Log } from '../../src/storage/log.js';
import { SystemClock } from '../../src/platform/clock.js';
import { eventually } from '../helpers.js';
import { TEST_LEASE_TTL_MS, useTestCluster } from './cluster-harness.js';
import { FETCH_WAIT_MS_MAX } from '../../src/cluster/limits.js';

const SUITE_TIMEOUT_MS = 240_000;
const SETTLE_MS = 20_000;

const suite = useTestCluster({ startTimeoutMs: SUITE_TIMEOUT_MS });

async function leaderOf(topic: string): Promise<string> {
  const leader = (await suite.partition0(topic)).leader;
  assert.ok(leader !== undefined && leader !== '', `${topic} has a leader`);
  return leader;
}

async function allBack(): Promise<void> {
  for (const broker of suite.cluster.brokers) if (!broker.running) await broker.start();
}

/** A connection to one broker that never follows the leader elsewhere: what that broker itself answers. */
async function direct(port: number): Promise<ClientConnection> {
  const options = resolveClientOptions({ host: '127.0.0.1', port, reconnect: false, requestTimeoutMs: 30_000 });
  return ClientConnection.open(options, { deliver: () => {}, notice: () => {}, closed: () => {}, beforeFlush: () => {} });
}

function publishVia(connection: ClientConnection, topic: string, value: string): Promise<unknown> {
  return connection.request((w, id) => encodePublish(w, id, { topic, messages: [{ value: Buffer.from(value) }] }), FRAME_TYPES.PUBLISH_OK, decodePublishOk);
}

/** Every record of partition 0 of `topic` in a stopped broker's data directory, as offset:value. */
async function readReplica(dataDir: string, topic: string): Promise<string[]> {
  const log = await Log.open({ dir: join(dataDir, 'topics', topic, 'partitions', '0'), fs: new NodeFileSystem(), clock: new SystemClock(), durability: 'always' });
  try {
    const out: string[] = [];
    for (let offset = log.startOffset; offset < log.nextOffset; ) {
      const records = await log.read(offset, { recordsMax: 1000 });
      for (const record of records) out.push(`${record.offset}:${record.value.toString()}:e${record.leaderEpoch}`);
      offset = records[records.length - 1]!.offset + 1;
    }
    return out;
  } finally {
    await log.close();
  }
}

test('faults - a leader cut off with records nobody else holds truncates them when it returns: its log equals the new leader\'s', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('div', { replicas: 3, minInSync: 2 });
  for (let i = 0; i < 10; i++) await suite.client.publish('div', `committed-${i}`);
  const old = suite.cluster.broker(await leaderOf('div'));
  const followers = suite.cluster.brokers.filter((broker) => broker !== old);
  for (const follower of followers) follower.pause();
  // The followers' parked fetches are answered (empty) within the leader's wait, before the records
  // below exist; frozen, they ask for nothing more, so the leader writes those records alone. It is
  // killed before it would call the followers gone (a second of silence) and shrink the in-sync set.
  await new Promise((resolve) => setTimeout(resolve, FETCH_WAIT_MS_MAX + 100));
  const connection = await direct(old.port);
  const pending = [0, 1, 2].map((i) => publishVia(connection, 'div', `divergent-${i}`).then(() => 'confirmed', (error: FerryError) => error.code));
  await new Promise((resolve) => setTimeout(resolve, 100));
  await old.kill();
  assert.ok((await Promise.all(pending)).every((outcome) => outcome !== 'confirmed'), 'nothing was confirmed');
  for (const follower of followers) follower.resume();
  await eventually(async () => (await leaderOf('div')) !== old.nodeId, { timeoutMs: SETTLE_MS });
  for (let i = 0; i < 5; i++) await suite.client.publish('div', `new-leader-${i}`);
  await old.start();
  await eventually(async () => (await suite.partition0('div')).inSync?.length === 3, { timeoutMs: SETTLE_MS });
  assert.match(old.output, /cluster\.follower\.truncated/, 'the returning leader cut its tail');
  assert.equal((await suite.partition0('div')).highWatermark, 15);
  // Stopped, every replica's log is the same record for record, and none holds the divergent tail.
  for (const broker of suite.cluster.brokers) await broker.stop();
  const logs = await Promise.all(suite.cluster.brokers.map((broker) => readReplica(broker.dataDir, 'div')));
  for (const log of logs) assert.deepEqual(log, logs[0], 'replicas equal');
  assert.ok(!logs[0]!.some((entry) => entry.includes('divergent')), logs[0]!.join(' '));
  assert.equal(logs[0]!.length, 15);
  await allBack();
});

test('faults - a leader frozen past its lease: another leads, and the old one, resumed, confirms nothing and steps down', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('frozen', { replicas: 3, minInSync: 2 });
  await suite.client.publish('frozen', 'before');
  const old = suite.cluster.broker(await leaderOf('frozen'));
  const connection = await direct(old.port);
  old.pause();
  // Sent to the frozen leader: it reads it only after it resumes.
  const stale = publishVia(connection, 'frozen', 'to-the-old-leader').then(() => 'confirmed', (error: FerryError) => error.code);
  const startedMs = performance.now();
  await eventually(async () => (await leaderOf('frozen')) !== old.nodeId, { timeoutMs: SETTLE_MS });
  const takeoverMs = performance.now() - startedMs;
  assert.ok(takeoverMs < TEST_LEASE_TTL_MS * 4, `another leader within a few leases (${Math.round(takeoverMs)} ms)`);
  await suite.client.publish('frozen', 'through-the-new-leader');
  old.resume();
  assert.equal(await stale, 'NOT_LEADER', 'the resumed old leader confirms nothing');
  connection.destroy(new FerryErrorClass('CONNECTION_CLOSED', 'done'));
  await eventually(async () => (await suite.partition0('frozen')).inSync?.includes(old.nodeId) === true, { timeoutMs: SETTLE_MS });
  const values: string[] = [];
  const stream = await suite.client.subscribe('frozen', { from: 'earliest' });
  for await (const message of stream) {
    values.push(message.value.toString());
    if (values.length === 2) break;
  }
  await stream.close();
  assert.deepEqual(values, ['before', 'through-the-new-leader']);
});

test('faults - a silent follower leaves the in-sync set and comes back; with fewer than minInSync in sync nothing is confirmed', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('slow', { replicas: 3, minInSync: 2 });
  await suite.client.publish('slow', 'first');
  const leader = await leaderOf('slow');
  const [one, two] = suite.cluster.brokers.filter((broker) => broker.nodeId !== leader);
  one!.pause();
  await eventually(async () => !(await suite.partition0('slow')).inSync!.includes(one!.nodeId), { timeoutMs: SETTLE_MS });
  await suite.client.publish('slow', 'with-two');
  two!.pause();
  await eventually(async () => (await suite.partition0('slow')).inSync!.length === 1, { timeoutMs: SETTLE_MS });
  const short = await connect({ servers: suite.cluster.servers, requestTimeoutMs: 1_500 });
  try {
    await assert.rejects(short.publish('slow', 'refused'), (error) => isFerryError(error, 'NOT_ENOUGH_REPLICAS'));
  } finally {
    await short.close();
  }
  const before = await suite.partition0('slow');
  one!.resume();
  two!.resume();
  await eventually(async () => (await suite.partition0('slow')).inSync!.length === 3, { timeoutMs: SETTLE_MS });
  await suite.client.publish('slow', 'after');
  const values: string[] = [];
  const stream = await suite.client.subscribe('slow', { from: 'earliest' });
  for await (const message of stream) {
    values.push(message.value.toString());
    if (message.value.toString() === 'after') break;
  }
  await stream.close();
  assert.ok(!values.includes('refused'), `a refused publish is never seen (${values.join(', ')}; hw before ${before.highWatermark})`);
  assert.deepEqual(values.filter((value) => value !== 'refused'), ['first', 'with-two', 'after']);
});

test('faults - with etcd stopped the leaders keep serving; restarted, the cluster carries on', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await suite.client.createTopic('no-etcd', { replicas: 3, minInSync: 2 });
  await suite.client.publish('no-etcd', 'a');
  await suite.cluster.etcd.member.stop();
  for (let i = 0; i < 20; i++) await suite.client.publish('no-etcd', `during-${i}`);
  const stream = await suite.client.subscribe('no-etcd', { from: 'earliest' });
  let seen = 0;
  for await (const message of stream) {
    void message;
    if (++seen === 21) break;
  }
  await stream.close();
  await suite.cluster.etcd.member.restart();
  // Leadership still moves: kill the leader once etcd is back.
  const old = suite.cluster.broker(await leaderOf('no-etcd'));
  await old.kill();
  await eventually(async () => (await leaderOf('no-etcd')) !== old.nodeId, { timeoutMs: SETTLE_MS });
  await suite.client.publish('no-etcd', 'after');
  await old.start();
});

test('faults - a leader dies while etcd is down: no election can happen then, and one does as soon as etcd is back', { timeout: SUITE_TIMEOUT_MS }, async () => {
  await allBack();
  await suite.client.createTopic('etcd-gap', { replicas: 3, minInSync: 2 });
  await suite.client.publish('etcd-gap', 'a');
  const old = suite.cluster.broker(await leaderOf('etcd-gap'));
  await suite.cluster.etcd.member.stop();
  await old.kill();
  // The followers try to elect and fail (no CAS without etcd); nothing in etcd will change to wake them.
  await new Promise((resolve) => setTimeout(resolve, 2 * TEST_LEASE_TTL_MS));
  await suite.cluster.etcd.member.restart();
  await eventually(async () => (await leaderOf('etcd-gap').catch(() => old.nodeId)) !== old.nodeId, { timeoutMs: SETTLE_MS });
  await suite.client.publish('etcd-gap', 'after');
  await old.start();
});
