/**
 * Authentication over the TCP protocol: HELLO with a password or a token, refusals with the code
 * that says why, the authentication timeout, and grants that change under open connections.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, isFerryError, type FerryClient } from '../../src/client/index.js';
import { FRAME_TYPES } from '../../src/protocol/frame.js';
import { encodeHello } from '../../src/protocol/codec-session.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { eventually } from '../helpers.js';
import { CuttableProxy, RawPeer } from '../transport/harness.js';
import { startSecure, usersFile } from './harness.js';

const TOKEN = 'fry_test-token-for-the-service-user-0123456789abc';

async function rejects(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => isFerryError(error) && error.code === code);
}

test('tcp auth - password and token log in; a wrong password, a missing login and an unknown user say why', async () => {
  const users = await usersFile({
    alice: { password: 'alice-password', allow: ['publish:orders'] },
    svc: { token: TOKEN, allow: ['consume:orders'] },
  });
  const running = await startSecure({ users });
  try {
    await running.broker.createTopic('orders');
    const alice = await connect({ port: running.port, user: 'alice', password: 'alice-password', reconnect: false });
    assert.equal((await alice.publish('orders', 'x')).offset, 0);
    const svc = await connect({ port: running.port, token: TOKEN, reconnect: false });
    await svc.subscribe('orders', { from: 'earliest' });
    assert.deepEqual(
      running.server.connectionStats().map((c) => c.user).sort(),
      ['alice', 'svc'],
    );
    await rejects(connect({ port: running.port, user: 'alice', password: 'wrong-password', reconnect: false }), 'AUTH_FAILED');
    await rejects(connect({ port: running.port, user: 'mallory', password: 'whatever-pw', reconnect: false }), 'AUTH_FAILED');
    await rejects(connect({ port: running.port, token: 'fry_not-a-token', reconnect: false }), 'AUTH_FAILED');
    await rejects(connect({ port: running.port, reconnect: false }), 'AUTH_REQUIRED');
    assert.ok(running.rejections.of('AUTH_FAILED', 'tcp') >= 3);
    assert.equal(running.rejections.of('AUTH_REQUIRED', 'tcp'), 1);
    await alice.close();
    await svc.close();
  } finally {
    await running.close();
  }
});

test('tcp auth - a connection that sends no HELLO within authTimeoutMs is closed with AUTH_REQUIRED', async () => {
  const running = await startSecure({ users: await usersFile({ a: { password: 'a-password' } }), tcp: { authTimeoutMs: 150 } });
  try {
    const started = performance.now();
    const silent = await RawPeer.connect(running.port);
    await silent.waitClosed(2000);
    const elapsedMs = performance.now() - started;
    assert.deepEqual(silent.errorCodes(), ['AUTH_REQUIRED']);
    assert.ok(elapsedMs >= 140 && elapsedMs < 1500, `closed after ${Math.round(elapsedMs)} ms`);
  } finally {
    await running.close();
  }
});

test('tcp auth - frames pipelined behind the HELLO wait for the login and then run as that user', async () => {
  const running = await startSecure({ users: await usersFile({ alice: { password: 'alice-password', allow: ['admin:*'] } }) });
  try {
    const peer = await RawPeer.connect(running.port);
    encodeHello(peer.writer, 1, { clientName: 'pipelined', versions: [PROTOCOL_VERSION], user: 'alice', password: 'alice-password' });
    peer.writer.emptyFrame(FRAME_TYPES.LIST_TOPICS, 2);
    peer.flush();
    await peer.reply(1, FRAME_TYPES.HELLO_OK);
    await peer.reply(2, FRAME_TYPES.TOPIC_LIST);
    peer.destroy();
  } finally {
    await running.close();
  }
});

test('tcp auth - a thousand frames pipelined behind the HELLO are answered once each, in order, over several turns', async () => {
  const running = await startSecure({ users: await usersFile({ alice: { password: 'alice-password', allow: ['admin:*'] } }) });
  const PINGS = 1000;
  try {
    const peer = await RawPeer.connect(running.port);
    encodeHello(peer.writer, 1, { clientName: 'pipelined', versions: [PROTOCOL_VERSION], user: 'alice', password: 'alice-password' });
    // Far more than one turn's budget (128 frames): they are held, then handled a turn at a time.
    for (let id = 2; id < PINGS + 2; id++) peer.writer.emptyFrame(FRAME_TYPES.PING, id);
    peer.flush();
    await eventually(() => assert.equal(peer.frames.length, PINGS + 1, 'every frame answered'));
    assert.equal(peer.frames[0]!.type, FRAME_TYPES.HELLO_OK);
    const pongs = peer.frames.slice(1);
    assert.ok(pongs.every((frame) => frame.type === FRAME_TYPES.PONG), 'all PONGs');
    assert.deepEqual(
      pongs.map((frame) => frame.requestId),
      Array.from({ length: PINGS }, (_, i) => i + 2),
    );
    peer.destroy();
  } finally {
    await running.close();
  }
});

test('tcp auth - a changed users file applies to open connections within a second, subscriptions included', async () => {
  const grant = await usersFile({ bob: { password: 'bob-password', allow: ['publish:jobs', 'consume:jobs'] } });
  const running = await startSecure({ users: grant });
  running.authenticator.watch();
  let client: FerryClient | null = null;
  try {
    await running.broker.createTopic('jobs');
    // A new group's dead-letter topic must exist, or bob would need admin on it.
    await running.broker.createTopic('jobs.dlq');
    client = await connect({ port: running.port, user: 'bob', password: 'bob-password', reconnect: false });
    const subscription = await client.subscribe('jobs', { group: 'workers' });
    await client.publish('jobs', 'first');
    const first = await subscription.next();
    assert.equal(first.done, false);
    await first.value!.ack();

    const revoked = await usersFile({ bob: { password: 'bob-password', allow: ['publish:jobs'] } });
    const changedMs = performance.now();
    // Written, not reloaded by hand: the broker's own watch must notice.
    const { writeUsersFile } = await import('../../src/security/users-file.js');
    writeUsersFile(running.usersPath, revoked);
    const ended = await subscription.next().then(
      () => null,
      (error: unknown) => error,
    );
    const endedAfterMs = performance.now() - changedMs;
    assert.ok(isFerryError(ended) && ended.code === 'FORBIDDEN', `subscription ended with ${String(ended)}`);
    assert.ok(endedAfterMs < 1000, `revoked after ${Math.round(endedAfterMs)} ms`);
    assert.equal(running.guard.subscriptionCount, 0);
    await rejects(client.subscribe('jobs', { group: 'workers' }), 'FORBIDDEN');
    assert.equal((await client.publish('jobs', 'still allowed')).offset, 1);

    writeUsersFile(running.usersPath, await usersFile({ bob: { password: 'bob-password' } }));
    await eventually(() => rejects(client!.publish('jobs', 'x'), 'FORBIDDEN'), { timeoutMs: 1000 });
    assert.equal(client.isConnected, true, 'a refused request does not close the connection');
  } finally {
    await client?.close();
    await running.close();
  }
});

test('tcp auth - a client whose password changed gives up reconnecting at once with AUTH_FAILED', async () => {
  const running = await startSecure({ users: await usersFile({ carol: { password: 'carol-password', allow: ['publish:t'] } }) });
  const proxy = await CuttableProxy.start(running.port);
  try {
    const client = await connect({ port: proxy.port, user: 'carol', password: 'carol-password', reconnect: { delayMsMin: 10, delayMsMax: 20 } });
    const closed = new Promise<unknown>((resolve) => client.once('close', resolve));
    client.on('error', () => undefined);
    running.replaceUsers(await usersFile({ carol: { password: 'a-new-password', allow: ['publish:t'] } }));
    proxy.cut();
    const reason = await closed;
    assert.ok(isFerryError(reason, 'AUTH_FAILED'), `closed with ${String(reason)}`);
    await client.close();
  } finally {
    await proxy.close();
    await running.close();
  }
});
