/**
 * Per-client limits: the per-user publish quota (RATE_LIMITED, retryable, with the wait in its
 * detail), the credit cap of a subscription (a client granting credit without acking cannot grow
 * its unsettled deliveries past subscriptionUnackedMax), and how refused connections are told and
 * logged (each told why; one log line a second at most, however many).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, isFerryError } from '../../src/client/index.js';
import { FRAME_TYPES } from '../../src/protocol/frame.js';
import { encodeHello } from '../../src/protocol/codec-session.js';
import { appendAck, appendCredit, decodeDeliver, encodeSubscribe } from '../../src/protocol/codec-subscribe.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { silentLogger, type Logger } from '../../src/platform/logger.js';
import { eventually } from '../helpers.js';
import { SimClock } from '../sim/sim-clock.js';
import { RawPeer } from '../transport/harness.js';
import { startSecure, usersFile } from './harness.js';

test('limits - the publish quota refuses past its burst with RATE_LIMITED, then lets the user go on at its rate', async () => {
  const running = await startSecure({
    users: await usersFile({ fast: { password: 'fast-password', allow: ['publish:t'] }, other: { password: 'other-password', allow: ['publish:t'] } }),
    quota: { messagesPerSecond: 50, burstMessages: 10 },
  });
  try {
    await running.broker.createTopic('t', { durability: 'never' });
    const fast = await connect({ port: running.port, user: 'fast', password: 'fast-password', reconnect: false });
    const other = await connect({ port: running.port, user: 'other', password: 'other-password', reconnect: false });
    // A batch larger than the burst still goes through once; the debt (10 messages, 200 ms at 50/s) is then waited off.
    await fast.publishBatch('t', Array.from({ length: 20 }, () => ({ value: 'x' })));
    const refused = await fast.publish('t', 'over').then(
      () => null,
      (error: unknown) => error,
    );
    assert.ok(isFerryError(refused, 'RATE_LIMITED'), `refused with ${String(refused)}`);
    assert.equal(refused.retryable, true);
    const retryAfterMs = refused.detail?.['retryAfterMs'];
    assert.ok(typeof retryAfterMs === 'number' && retryAfterMs > 100 && retryAfterMs <= 250, `retryAfterMs ${String(retryAfterMs)}`);
    // Quotas are per user: another user is not held back by this one.
    assert.equal((await other.publish('t', 'mine')).topic, 't');
    await eventually(() => fast.publish('t', 'again'), { timeoutMs: 2000, intervalMs: 20 });
    assert.ok(running.rejections.of('RATE_LIMITED', 'tcp') >= 1, 'counted');
    assert.equal(fast.isConnected, true);
    await fast.close();
    await other.close();
  } finally {
    await running.close();
  }
});

test('limits - credit granted without acks stops at subscriptionUnackedMax; acks make room again', async () => {
  const CAP = 5;
  const running = await startSecure({ users: await usersFile({ greedy: { password: 'greedy-password', allow: ['consume:jobs'] } }), tcp: { subscriptionUnackedMax: CAP } });
  try {
    await running.broker.createTopic('jobs');
    // A new group's dead-letter topic must exist, or greedy would need admin on it.
    await running.broker.createTopic('jobs.dlq');
    await running.broker.publish('jobs', Array.from({ length: 50 }, (_, i) => ({ value: Buffer.from(`job ${i}`) })));
    const peer = await RawPeer.connect(running.port);
    encodeHello(peer.writer, 1, { clientName: 'greedy', versions: [PROTOCOL_VERSION], user: 'greedy', password: 'greedy-password' });
    encodeSubscribe(peer.writer, 2, { topic: 'jobs', group: 'workers', from: { kind: 'earliest' }, credit: 1000 });
    peer.flush();
    const subscriptionId = (await peer.reply(2, FRAME_TYPES.SUBSCRIBED)).payload.readUInt32BE(0);
    const reader = new PayloadReader();
    const delivered = () => peer.frames.filter((f) => f.type === FRAME_TYPES.DELIVER).flatMap((f) => decodeDeliver(reader.reset(f.payload)).deliveries);
    await eventually(() => assert.equal(delivered().length, CAP));
    appendCredit(peer.writer, subscriptionId, 1000);
    peer.flush();
    // Grants alone do not help: a ping round trip later, still the cap.
    peer.writer.emptyFrame(FRAME_TYPES.PING, 3);
    peer.flush();
    await peer.reply(3, FRAME_TYPES.PONG);
    assert.equal(delivered().length, CAP);
    for (const delivery of delivered().slice(0, 2)) appendAck(peer.writer, subscriptionId, delivery.partition, delivery.offset);
    appendCredit(peer.writer, subscriptionId, 1000);
    peer.flush();
    await eventually(() => assert.equal(delivered().length, CAP + 2));
    peer.destroy();
  } finally {
    await running.close();
  }
});

test('limits - every refused connection is told TOO_MANY_CONNECTIONS; the log says so once a second, with the count', async () => {
  const logged: Array<Record<string, unknown>> = [];
  const logger: Logger = {
    ...silentLogger,
    warn: (event, fields) => {
      if (event === 'transport.connection.rejected') logged.push({ ...fields });
    },
  };
  // The server's clock stands still unless advanced: the log's interval is exact.
  const clock = new SimClock();
  const running = await startSecure({ users: await usersFile({}), logger, tcp: { maxConnectionsPerIp: 1, clock } });
  const refused = async (): Promise<void> => {
    const peer = await RawPeer.connect(running.port);
    await peer.waitClosed();
    assert.deepEqual(peer.errorCodes(), ['TOO_MANY_CONNECTIONS']);
  };
  const holder = await RawPeer.connect(running.port);
  try {
    for (let i = 0; i < 5; i++) await refused();
    assert.equal(logged.length, 1, 'one line for the first refusal');
    assert.equal(logged[0]!['rejected'], 1);
    clock.advance(1000);
    await refused();
    assert.equal(logged.length, 2);
    assert.equal(logged[1]!['rejected'], 5, 'the four not logged, and this one');
    assert.equal(running.rejections.of('TOO_MANY_CONNECTIONS', 'tcp'), 6, 'every refusal is counted');
  } finally {
    holder.destroy();
    await running.close();
  }
});
