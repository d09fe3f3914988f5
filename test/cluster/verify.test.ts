/**
 * Replica digests with real processes (cluster-harness.ts, three brokers): a byte flipped in a
 * follower's sealed segment while that broker is down is found by `ferry topics verify`, which
 * names its range, and by the leader's background checks (ferry_replica_mismatches_total); the
 * follower leaves the in-sync set, cuts its log back there and fetches it again, and then `ferry
 * topics verify` reports OK. n1 checks in the background every 300 ms; n2 and n3 only on request,
 * so what `ferry topics verify` finds on a topic n2 leads is its own finding. A replica whose
 * recovery found damage never runs for leader, and reports the damage to the leader it follows,
 * whose check (asked by that report alone) repairs it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type TopicVerification } from '../../src/client/index.js';
import { LAUNCHER } from '../../bench/checkout.js';
import { eventually } from '../helpers.js';
import { useTestCluster } from './cluster-harness.js';

const SUITE_TIMEOUT_MS = 240_000;
const SETTLE_MS = 40_000;
/** Small segments, so a few hundred messages fill several sealed ones. */
const SEGMENT_BYTES = 8 * 1024;
const MESSAGES = 400;
/** Where in a sealed segment the byte is flipped: past the first batch's header, inside its records. */
const FLIP_POSITION = 60;
/** A byte of a batch header's base offset (docs/STORAGE.md): its header CRC then fails. */
const HEADER_BASE_OFFSET_BYTE = 20;

const suite = useTestCluster({ brokers: 3, settings: { 'cluster.replicaVerifyIntervalMs': 0 }, brokerSettings: { n1: { 'cluster.replicaVerifyIntervalMs': 300 } }, startTimeoutMs: SUITE_TIMEOUT_MS });

async function fillTopic(topic: string): Promise<void> {
  await suite.client.createTopic(topic, { replicas: 3, minInSync: 2, durability: 'always', partitions: 1, segmentBytes: SEGMENT_BYTES });
  for (let i = 0; i < MESSAGES; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, j) => suite.client.publish(topic, `${topic}-${i + j}-`.padEnd(120, 'x'), { id: `${topic}-${i + j}` })));
  }
  await eventually(async () => {
    const p = await suite.partition0(topic);
    return (p.inSync ?? []).length === 3 && (p.replicaOffsets ?? []).every((replica) => replica.endOffset >= p.highWatermark!);
  }, { timeoutMs: SETTLE_MS });
}

/** Flips a byte of the second segment of partition 0 of `topic` on a stopped broker; returns that segment's offsets. */
function flipByte(dataDir: string, topic: string): { fromOffset: number; toOffset: number } {
  const dir = join(dataDir, 'topics', topic, 'partitions', '0');
  const segments = readdirSync(dir).filter((name) => name.endsWith('.log')).sort();
  assert.ok(segments.length >= 3, `several segments: ${segments.join(' ')}`);
  const path = join(dir, segments[1]!);
  const bytes = readFileSync(path);
  bytes[FLIP_POSITION]! ^= 0x20;
  writeFileSync(path, bytes);
  return { fromOffset: Number(segments[1]!.slice(0, 20)), toOffset: Number(segments[2]!.slice(0, 20)) };
}

function verifyCli(topic: string, json: boolean): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [LAUNCHER, 'topics', 'verify', topic, ...(json ? ['--json'] : [])], { env: { ...process.env, FERRY_URL: `ferry://${suite.cluster.servers.join(',')}` } }, (error, stdout) => {
      resolve({ code: error === null ? 0 : ((error as { code?: number }).code ?? -1), stdout });
    });
  });
}

function explain(step: string): (error: unknown) => never {
  return (error) => {
    throw new Error(`${step}: ${String(error)}\n${suite.cluster.describe().slice(-12000)}`);
  };
}

async function metric(httpPort: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const line = text.split('\n').find((entry) => entry.startsWith(`${name} `));
  return line === undefined ? 0 : Number(line.split(' ')[1]);
}

test('verify - a byte flipped in a follower\'s sealed segment is found and named, repaired by a re-fetch, then verify says OK', { timeout: SUITE_TIMEOUT_MS }, async () => {
  // The first topic is led by n1 (the broker checking in the background), the second by n2.
  await fillTopic('checked');
  await eventually(async () => (await suite.client.metadata()).topics.some((entry) => entry.topic === 'checked' && entry.leader === 'n1'), { timeoutMs: SETTLE_MS });
  await fillTopic('verified');
  const verified = await suite.partition0('verified');
  assert.equal(verified.leader, 'n2', JSON.stringify(verified));
  assert.equal((await suite.partition0('checked')).leader, 'n1');
  const clean = await suite.client.verifyTopic('verified');
  assert.equal(clean.ok, true, JSON.stringify(clean));
  assert.deepEqual(clean.replicas.map((replica) => replica.nodeId).sort(), ['n1', 'n3']);

  // n3 follows both: flip a byte in a sealed segment of each while it is down.
  const n3 = suite.cluster.broker('n3');
  await n3.stop();
  const damagedVerified = flipByte(n3.dataDir, 'verified');
  flipByte(n3.dataDir, 'checked');
  await n3.start();
  await eventually(async () => (await suite.partition0('verified')).inSync?.includes('n3') === true, { timeoutMs: SETTLE_MS });

  // ferry topics verify (n2 leads `verified` and checks only on request) names the damaged range.
  const found = await verifyCli('verified', true);
  assert.equal(found.code, 1, found.stdout);
  const report = JSON.parse(found.stdout) as TopicVerification;
  assert.equal(report.ok, false);
  const replica = report.replicas.find((entry) => entry.nodeId === 'n3')!;
  assert.equal(replica.status, 'mismatch', found.stdout);
  const log = replica.logs.find((entry) => entry.logId === 'p0')!;
  assert.ok(log.status === 'damaged' || log.status === 'mismatch', found.stdout);
  const range = log.firstDifference!;
  assert.ok(range.fromOffset >= damagedVerified.fromOffset && range.toOffset <= damagedVerified.toOffset + 1, `${JSON.stringify(range)} lies in the damaged segment ${JSON.stringify(damagedVerified)}`);
  assert.equal(report.replicas.find((entry) => entry.nodeId === 'n1')!.status, 'ok');
  assert.ok((await metric(suite.cluster.broker('n2').httpPort, 'ferry_replica_mismatches_total')) >= 1);

  // The leader n1 found the other damage on its own, in the background.
  await eventually(async () => (await metric(suite.cluster.broker('n1').httpPort, 'ferry_replica_mismatches_total')) >= 1, { timeoutMs: SETTLE_MS });

  // After the re-fetch both topics verify OK, with n3 in sync again, and every message reads back.
  for (const topic of ['verified', 'checked']) {
    await eventually(async () => (await suite.client.verifyTopic(topic)).ok && (await suite.partition0(topic)).inSync?.length === 3, { timeoutMs: SETTLE_MS }).catch((error: unknown) => {
      throw new Error(`${topic}: ${String(error)}\n${suite.cluster.describe().slice(-6000)}`);
    });
  }
  const ok = await verifyCli('verified', false);
  assert.equal(ok.code, 0, ok.stdout);
  assert.match(ok.stdout, /verified: leader n2, epoch \d+: OK\n {2}n1: OK\n {2}n3: OK\n/);
});

test('verify - a replica that found damage at recovery never runs for leader, and reports it to the next leader, which repairs it', { timeout: SUITE_TIMEOUT_MS }, async () => {
  const n1 = suite.cluster.broker('n1');
  const n2 = suite.cluster.broker('n2');
  const n3 = suite.cluster.broker('n3');
  assert.equal((await suite.partition0('verified')).leader, 'n2');
  // n1 out of the in-sync set, then the leader n2 and the follower n3 killed together: etcd keeps
  // both in sync, and no leader is left for n3 to report to.
  await n1.stop();
  await eventually(async () => (await suite.partition0('verified')).inSync?.includes('n1') === false, { timeoutMs: SETTLE_MS }).catch(explain('n1 out of sync'));
  await Promise.all([n2.kill(), n3.kill()]);
  // The first batch header of a sealed segment of n3 flipped (its base offset), its index gone, so
  // recovery walks over it.
  const dir = join(n3.dataDir, 'topics', 'verified', 'partitions', '0');
  const segment = readdirSync(dir).filter((name) => name.endsWith('.log')).sort()[1]!;
  const path = join(dir, segment);
  const bytes = readFileSync(path);
  bytes[HEADER_BASE_OFFSET_BYTE]! ^= 0x01;
  writeFileSync(path, bytes);
  for (const suffix of ['.index', '.timeindex']) rmSync(path.replace(/\.log$/, suffix), { force: true });
  const mark = n3.outputMark;
  await n3.start();
  await eventually(() => n3.outputSince(mark).includes('"cluster.replica.damaged"'), { timeoutMs: SETTLE_MS }).catch(explain('n3 knows of the damage'));
  // n3 is in sync and the leader is gone, but it may not take over.
  await eventually(() => n3.outputSince(mark).includes('"cluster.election.declined"'), { timeoutMs: SETTLE_MS }).catch(explain('n3 declines'));
  const meanwhile = await connect({ servers: [n3.address], requestTimeoutMs: 5_000 });
  try {
    const state = (await meanwhile.describeTopic('verified').catch(() => null))?.partitions[0];
    assert.notEqual(state?.leader, 'n3', 'the damaged replica did not take the leadership');
  } finally {
    await meanwhile.close();
  }
  // n2 back: it leads again, and n3 reports its damage to it. n2 checks only on request, and this
  // test asks nothing before n3 is repaired: the check is the report's.
  await n2.start();
  await eventually(() => n3.outputSince(mark).includes('"cluster.replica.damage_reported"'), { timeoutMs: SETTLE_MS }).catch(explain('n3 reports its damage'));
  await eventually(async () => (await metric(n2.httpPort, 'ferry_replica_mismatches_total')) >= 1, { timeoutMs: SETTLE_MS }).catch(explain('n2 found the damage'));
  await n1.start();
  await eventually(async () => (await suite.partition0('verified')).inSync?.length === 3, { timeoutMs: SETTLE_MS * 2 }).catch(explain('all in sync'));
  const verification = await suite.client.verifyTopic('verified');
  assert.equal(verification.ok, true, JSON.stringify(verification));
  assert.notEqual((await suite.partition0('verified')).leader, 'n3');
});
