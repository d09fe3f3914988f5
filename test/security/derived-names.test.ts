/**
 * Names the broker derives from what a user asks, and a restart (issue 22, item 2). A non-admin
 * made the broker create a 197-byte dead-letter topic for her; subscribing to it with a group
 * failed (its `.dlq` would pass the 200-byte name limit) but left an empty `groups/<g>` behind, and
 * the next start ended in `broker.open_failed`. Now every derived name is checked before anything
 * is created, a failed subscribe leaves nothing on disk, the broker creates a dead-letter topic on a
 * user's behalf only when that user may create it, and one bad directory on disk is moved to
 * `<dir>/quarantine/` (logged) while the broker serves the rest — on the real disk and the
 * simulated one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Broker } from '../../src/broker/broker.js';
import { NAME_BYTES_MAX } from '../../src/protocol/limits.js';
import { GROUP_SNAPSHOT_VERSION } from '../../src/broker/delivery/group-state.js';
import { connect, isFerryError, type FerryClient } from '../../src/client/index.js';
import type { FileSystem } from '../../src/platform/fs.js';
import { writeFileAtomic, mkdirDurable } from '../../src/platform/atomic-write.js';
import { RecordingLogger } from '../storage/log-kit.js';
import { SimClock } from '../sim/sim-clock.js';
import { SimFileSystem } from '../sim/sim-fs.js';
import { RecordingSink } from '../broker/sim-broker.js';
import { tempDir } from '../helpers.js';
import { startSecure, usersFile, type SecureBroker } from './harness.js';

const PASSWORD = 'names-password';
const USERS = {
  alice: { password: PASSWORD, allow: ['publish:orders.*', 'consume:orders.*'] },
  ops: { password: PASSWORD, allow: ['admin:*', 'publish:*', 'consume:*'] },
};
/** 197 bytes: a valid topic name whose default dead-letter topic (`<name>.dlq`, 201 bytes) is not. */
const LONG_TOPIC = 'orders.' + 'x'.repeat(190);

async function refusal(work: Promise<unknown>): Promise<{ code: string; message: string }> {
  const error = await work.then(
    () => null,
    (thrown: unknown) => thrown,
  );
  assert.ok(isFerryError(error), `refused, got ${String(error)}`);
  return { code: error.code, message: error.message };
}

/** Closes the broker and opens a new one on its data directory, as a restart does. */
async function restart(running: SecureBroker, logger = new RecordingLogger()): Promise<Broker> {
  await running.broker.close();
  return Broker.open({ dir: join(running.dir.path, 'data'), logger });
}

test('derived names - the reported sequence over TCP, step 1: the broker does not create a 197-byte dead-letter topic for alice', async () => {
  assert.equal(Buffer.byteLength(LONG_TOPIC), 197);
  const running = await startSecure({ users: await usersFile(USERS) });
  let alice: FerryClient | null = null;
  try {
    await running.broker.createTopic('orders.eu');
    alice = await connect({ port: running.port, user: 'alice', password: PASSWORD, reconnect: false });
    // A group whose dead-letter topic the broker would create on alice's behalf: she may publish there, not create it.
    const forbidden = await refusal(alice.subscribe('orders.eu', { group: 'g', deadLetterTopic: LONG_TOPIC, deliveriesMax: 1 }));
    assert.equal(forbidden.code, 'FORBIDDEN');
    assert.match(forbidden.message, /dead-letter topic/);
    assert.equal(running.broker.listTopics().some((info) => info.name === LONG_TOPIC), false);
    assert.equal(existsSync(join(running.dir.path, 'data', 'topics', 'orders.eu', 'groups', 'g')), false, 'no group directory left behind');
  } finally {
    await alice?.close();
    await running.close();
  }
});

test('derived names - the reported sequence over TCP, step 2: a group on the 197-byte topic is refused, leaves nothing, and the broker restarts', async () => {
  const running = await startSecure({ users: await usersFile(USERS) });
  let alice: FerryClient | null = null;
  let reopened: Broker | null = null;
  try {
    // However the topic came to be (an admin made it here), its default `.dlq` would be 201 bytes.
    await running.broker.createTopic(LONG_TOPIC);
    alice = await connect({ port: running.port, user: 'alice', password: PASSWORD, reconnect: false });
    const invalid = await refusal(alice.subscribe(LONG_TOPIC, { group: 'g' }));
    assert.equal(invalid.code, 'INVALID_ARGUMENT');
    await alice.close();
    alice = null;
    // The restart: it used to end in broker.open_failed (topic name is longer than 200 bytes).
    const logger = new RecordingLogger();
    reopened = await restart(running, logger);
    assert.deepEqual(reopened.listTopics().map((info) => info.name), [LONG_TOPIC]);
    assert.deepEqual(logger.lines.filter((line) => line.event.endsWith('quarantined')), []);
    assert.equal(existsSync(join(running.dir.path, 'data', 'topics', LONG_TOPIC, 'groups', 'g')), false, 'no group directory left behind');
    // The refusal names the derived name that is too long, so the user knows to name a dead-letter topic.
    assert.match(invalid.message, /\.dlq/);
  } finally {
    await alice?.close();
    await reopened?.close();
    await running.close();
  }
});

test('derived names - a new group\'s dead-letter topic must exist or be one the caller may create; admins and existing targets pass', async () => {
  const running = await startSecure({ users: await usersFile(USERS) });
  const clients: FerryClient[] = [];
  try {
    await running.broker.createTopic('orders.eu');
    const alice = await connect({ port: running.port, user: 'alice', password: PASSWORD, reconnect: false });
    const ops = await connect({ port: running.port, user: 'ops', password: PASSWORD, reconnect: false });
    clients.push(alice, ops);
    // The default `orders.eu.dlq` does not exist and alice may not create it.
    const refused = await refusal(alice.subscribe('orders.eu', { group: 'billing' }));
    assert.equal(refused.code, 'FORBIDDEN');
    assert.match(refused.message, /orders\.eu\.dlq/);
    // An admin may: the group is made, its dead-letter topic created when the first message is dead-lettered.
    const opsGroup = await ops.subscribe('orders.eu', { group: 'ops-group', deliveriesMax: 1 });
    await opsGroup.close();
    // Once the target exists (an admin made it), alice's group is fine, by default or by name.
    await ops.createTopic('orders.eu.dlq');
    await (await alice.subscribe('orders.eu', { group: 'billing' })).close();
    await ops.createTopic('orders.dead');
    await (await alice.subscribe('orders.eu', { group: 'named', deadLetterTopic: 'orders.dead' })).close();
    // Joining an existing group creates nothing: no check beyond consume.
    await (await alice.subscribe('orders.eu', { group: 'ops-group' })).close();
    // A name that is invalid is INVALID_ARGUMENT, whoever asks, before any permission question.
    assert.equal((await refusal(ops.subscribe('orders.eu', { group: 'bad', deadLetterTopic: 'x'.repeat(NAME_BYTES_MAX + 1) }))).code, 'INVALID_ARGUMENT');
    assert.equal(running.broker.listTopics().some((info) => info.name.startsWith('xxx')), false);
  } finally {
    for (const client of clients) await client.close();
    await running.close();
  }
});

/** A valid group state copied from a real group, to plant under a bad name. */
async function plantBadEntries(fs: FileSystem, dataDir: string): Promise<void> {
  const topics = join(dataDir, 'topics');
  // A topic directory whose name no topic may have, with an otherwise valid topic.json.
  const badName = join(topics, 'bad name!');
  await mkdirDurable(fs, badName);
  await writeFileAtomic(fs, join(badName, 'topic.json'), Buffer.from(JSON.stringify({ version: 1, name: 'bad name!', config: { partitions: 1, durability: 'always', syncIntervalMs: 100, retention: {}, segmentBytes: 1 << 20 }, createdAtMs: 0 })));
  // A topic.json that is not JSON.
  const corrupt = join(topics, 'corrupt');
  await mkdirDurable(fs, corrupt);
  await writeFileAtomic(fs, join(corrupt, 'topic.json'), Buffer.from('{"version": 1, "name": "corr'));
  // A too-long name, as the old bug could leave: a topic directory whose name passes the limit.
  const tooLong = join(topics, 'y'.repeat(NAME_BYTES_MAX + 1));
  await mkdirDurable(fs, tooLong);
  await writeFileAtomic(fs, join(tooLong, 'topic.json'), Buffer.from(JSON.stringify({ version: 1, name: 'y'.repeat(NAME_BYTES_MAX + 1), config: { partitions: 1, durability: 'always', syncIntervalMs: 100, retention: {}, segmentBytes: 1 << 20 }, createdAtMs: 0 })));
  // Groups of the good topic: a bad name (with a valid state), a corrupt state, and the empty directory the old bug left.
  const groups = join(topics, 'good', 'groups');
  // A valid snapshot in the form older versions kept beside the journal (state.json).
  const state = Buffer.from(JSON.stringify({ version: GROUP_SNAPSHOT_VERSION, group: 'bad group!', createdAtMs: 0, config: { ackTimeoutMs: 30_000, backoffMs: [], deliveriesMax: 16, deadLetterTopic: 'good.dlq' }, journalOffset: 0, redeliveredTotal: 0, deadLetteredTotal: 0, partitions: [{ floor: 0, settled: [], dispatchedEnd: 0, retries: [], intents: [] }] }));
  await mkdirDurable(fs, join(groups, 'bad group!'));
  await writeFileAtomic(fs, join(groups, 'bad group!', 'state.json'), state);
  await mkdirDurable(fs, join(groups, 'corrupt-state'));
  await writeFileAtomic(fs, join(groups, 'corrupt-state', 'state.json'), Buffer.from('garbage'));
  await mkdirDurable(fs, join(groups, 'left-empty'));
}

/** The good topic and its group still serve; the bad entries are in quarantine/ and were logged; a second open is clean. */
async function assertRecovered(open: (logger: RecordingLogger) => Promise<Broker>, listQuarantine: () => Promise<string[]>, groupDirs: () => Promise<string[]>): Promise<void> {
  const logger = new RecordingLogger();
  const broker = await open(logger);
  try {
    assert.deepEqual(broker.listTopics().map((info) => info.name), ['good']);
    assert.deepEqual(broker.describeTopic('good').groups, ['workers']);
    const sink = new RecordingSink();
    const subscription = await broker.subscribe('good', { group: 'workers', credit: 10 }, sink);
    await broker.publish('good', [{ value: Buffer.from('after') }]);
    for (let i = 0; i < 50 && sink.received.length < 2; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(sink.received.map((delivery) => delivery.value.toString()), ['before', 'after']);
    await subscription.close();
    const topicEvents = logger.events('broker.topic.quarantined');
    const groupEvents = logger.events('broker.group.quarantined');
    assert.equal(topicEvents.length, 3, JSON.stringify(topicEvents));
    assert.equal(groupEvents.length, 2, JSON.stringify(groupEvents));
    assert.equal(logger.events('broker.group.incomplete_removed').length, 1);
    const quarantined = await listQuarantine();
    assert.equal(quarantined.length, 5, quarantined.join(', '));
    for (const name of ['bad name!', 'corrupt', 'bad group!', 'corrupt-state']) assert.ok(quarantined.some((entry) => entry.includes(name)), `${name} in ${quarantined.join(', ')}`);
    assert.deepEqual(await groupDirs(), ['workers']);
  } finally {
    await broker.close();
  }
  const again = new RecordingLogger();
  const second = await open(again);
  await second.close();
  assert.deepEqual(again.lines.filter((line) => line.event.includes('quarantined') || line.event.includes('incomplete')), []);
}

test('derived names - recovery on the real disk quarantines a bad topic name, a corrupt topic.json and bad group directories, and serves the rest', async () => {
  const dir = await tempDir('ferry-quarantine-');
  try {
    const first = await Broker.open({ dir: dir.path });
    await first.createTopic('good');
    const subscription = await first.subscribe('good', { group: 'workers', credit: 0 }, new RecordingSink());
    await first.publish('good', [{ value: Buffer.from('before') }]);
    await subscription.close();
    await first.close();
    const { NodeFileSystem } = await import('../../src/platform/fs.js');
    await plantBadEntries(new NodeFileSystem(), dir.path);
    await assertRecovered(
      (logger) => Broker.open({ dir: dir.path, logger }),
      async () => (existsSync(join(dir.path, 'quarantine')) ? readdirSync(join(dir.path, 'quarantine')) : []),
      async () => readdirSync(join(dir.path, 'topics', 'good', 'groups')),
    );
  } finally {
    await dir.remove();
  }
});

test('derived names - recovery on the simulated disk quarantines the same bad entries, durably', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const DIR = '/data';
  const first = await Broker.open({ dir: DIR, fs, clock });
  await first.createTopic('good');
  const subscription = await first.subscribe('good', { group: 'workers', credit: 0 }, new RecordingSink());
  await first.publish('good', [{ value: Buffer.from('before') }]);
  await subscription.close();
  await first.close();
  await plantBadEntries(fs, DIR);
  let opened = 0;
  await assertRecovered(
    async (logger) => {
      // The second open comes after a power loss: the moves into quarantine/ must have been durable.
      if (opened++ === 1) fs.crash({ random: () => 0 });
      return Broker.open({ dir: DIR, fs, clock, logger });
    },
    async () => ((await fs.stat(`${DIR}/quarantine`)) === null ? [] : fs.readdir(`${DIR}/quarantine`)),
    async () => (await fs.readdir(`${DIR}/topics/good/groups`)).sort(),
  );
  assert.equal((await fs.readdir(`${DIR}/quarantine`)).length, 5, 'still in quarantine after the power loss');
});

test('derived names - a subscribe that fails while creating its group leaves no group directory (real disk)', async () => {
  const dir = await tempDir('ferry-group-fail-');
  try {
    const broker = await Broker.open({ dir: dir.path });
    await broker.createTopic(LONG_TOPIC);
    const error = await refusal(broker.subscribe(LONG_TOPIC, { group: 'g' }, new RecordingSink()));
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.equal(existsSync(join(dir.path, 'topics', LONG_TOPIC, 'groups', 'g')), false);
    await broker.close();
    const reopened = await Broker.open({ dir: dir.path });
    assert.deepEqual(reopened.listTopics().map((info) => info.name), [LONG_TOPIC]);
    await reopened.close();
  } finally {
    await dir.remove();
  }
});

test('derived names - an error of the machine (EIO) still fails the open and quarantines nothing', async () => {
  const fs = new SimFileSystem();
  const clock = new SimClock();
  const first = await Broker.open({ dir: '/data', fs, clock });
  await first.createTopic('good');
  await first.close();
  fs.failNext('readFile', 'EIO', 'topic.json');
  const error = await Broker.open({ dir: '/data', fs, clock }).then(
    (broker) => broker.close().then(() => null),
    (thrown: unknown) => thrown as NodeJS.ErrnoException,
  );
  assert.equal(error?.code, 'EIO');
  assert.equal(await fs.stat('/data/quarantine'), null);
  const reopened = await Broker.open({ dir: '/data', fs, clock });
  assert.deepEqual(reopened.listTopics().map((info) => info.name), ['good']);
  await reopened.close();
});
