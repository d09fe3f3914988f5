/**
 * The server's reliable-delivery frames spoken by hand: SETTLED replies to settle frames sent with
 * a request id, fire-and-forget failures, group requests on a broker that lacks them, and a
 * resuming stream's per-partition positions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME_TYPES } from '../../src/protocol/frame.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { decodeError } from '../../src/protocol/codec-session.js';
import { decodePublishOk, encodePublish } from '../../src/protocol/codec-publish.js';
import { encodeCreateTopic } from '../../src/protocol/codec-topics.js';
import { appendAck, decodeDeliver, decodeSubscribed, encodeSubscribe } from '../../src/protocol/codec-subscribe.js';
import { appendReject, appendTouch, decodeSettled } from '../../src/protocol/codec-settle.js';
import { decodeGroupInfo, encodeDescribeGroup, encodeListGroups } from '../../src/protocol/codec-groups.js';
import type { WireDelivery } from '../../src/protocol/messages.js';
import { eventually } from '../helpers.js';
import { RawPeer, startBroker, startFake } from './harness.js';

const reader = new PayloadReader();

async function setUp(peer: RawPeer, topic: string, partitions: number, values: string[]): Promise<void> {
  encodeCreateTopic(peer.writer, 2, { name: topic, config: { partitions } });
  peer.flush();
  await peer.reply(2, FRAME_TYPES.TOPIC_INFO);
  encodePublish(peer.writer, 3, { topic, messages: values.map((value, i) => ({ value: Buffer.from(value), partition: i % partitions })) });
  peer.flush();
  decodePublishOk(reader.reset((await peer.reply(3, FRAME_TYPES.PUBLISH_OK)).payload));
}

function deliveries(peer: RawPeer): WireDelivery[] {
  return peer.frames.filter((f) => f.type === FRAME_TYPES.DELIVER).flatMap((f) => decodeDeliver(reader.reset(f.payload)).deliveries);
}

test('server delivery - settle frames with a request id get one SETTLED with every outcome; without one, failures are ERROR id 0', async () => {
  const running = await startBroker();
  try {
    const peer = await RawPeer.ready(running.port);
    await setUp(peer, 'jobs', 1, ['a', 'b', 'c']);
    encodeSubscribe(peer.writer, 4, { topic: 'jobs', group: 'w', from: { kind: 'earliest' }, credit: 10, deadLetterTopic: 'jobs.dead' });
    peer.flush();
    const { subscriptionId } = decodeSubscribed(reader.reset((await peer.reply(4, FRAME_TYPES.SUBSCRIBED)).payload));
    await eventually(() => assert.equal(deliveries(peer).length, 3));

    appendAck(peer.writer, subscriptionId, 0, 0, 5);
    appendAck(peer.writer, subscriptionId, 0, 99, 5);
    appendTouch(peer.writer, subscriptionId, 0, 1, 6);
    appendReject(peer.writer, subscriptionId, 0, 2, 'poison', 7);
    peer.flush();
    const acked = decodeSettled(reader.reset((await peer.reply(5, FRAME_TYPES.SETTLED)).payload));
    assert.deepEqual(acked.map((o) => o.code), [null, 'UNKNOWN_DELIVERY']);
    assert.deepEqual(decodeSettled(reader.reset((await peer.reply(6, FRAME_TYPES.SETTLED)).payload)), [{ code: null, message: '' }]);
    assert.deepEqual(decodeSettled(reader.reset((await peer.reply(7, FRAME_TYPES.SETTLED)).payload)), [{ code: null, message: '' }]);
    // SETTLED for the reject came after the move was durable: the dead letter is there.
    encodeDescribeGroup(peer.writer, 8, { topic: 'jobs', group: 'w' });
    peer.flush();
    const info = decodeGroupInfo(reader.reset((await peer.reply(8, FRAME_TYPES.GROUP_INFO)).payload));
    assert.equal(info.deadLetteredTotal, 1);
    assert.equal(info.inFlight, 1);
    assert.equal(info.config.deadLetterTopic, 'jobs.dead');

    // Fire-and-forget: the failure names the subscription.
    appendReject(peer.writer, subscriptionId, 0, 2, 'again', 0);
    peer.flush();
    const error = await eventually(() => {
      const frame = peer.frames.find((f) => f.type === FRAME_TYPES.ERROR && f.requestId === 0);
      assert.ok(frame, 'no ERROR with request id 0 yet');
      return decodeError(reader.reset(frame.payload));
    });
    assert.equal(error.code, 'UNKNOWN_DELIVERY');
    assert.equal(error.detail?.['subscriptionId'], subscriptionId);

    // A settle frame for an unknown subscription with a request id fails that request.
    appendAck(peer.writer, 999, 0, 1, 9);
    peer.flush();
    assert.equal(decodeError(reader.reset((await peer.reply(9, FRAME_TYPES.ERROR)).payload)).code, 'UNKNOWN_SUBSCRIPTION');
    assert.equal(peer.closed, false);
    peer.destroy();
  } finally {
    await running.close();
  }
});

test('server delivery - group requests on a broker without them fail the request, not the connection', async () => {
  const running = await startFake();
  try {
    const peer = await RawPeer.ready(running.port);
    encodeListGroups(peer.writer, 2, 'jobs');
    peer.flush();
    const error = decodeError(reader.reset((await peer.reply(2, FRAME_TYPES.ERROR)).payload));
    assert.equal(error.code, 'INVALID_ARGUMENT');
    assert.match(error.message, /cannot list groups/);
    peer.writer.emptyFrame(FRAME_TYPES.PING, 3);
    peer.flush();
    await peer.reply(3, FRAME_TYPES.PONG);
    peer.destroy();
  } finally {
    await running.close();
  }
});

test('server delivery - a resuming stream starts each partition at its own position', async () => {
  const running = await startBroker();
  try {
    const peer = await RawPeer.ready(running.port);
    await setUp(peer, 'events', 2, ['p0-0', 'p1-0', 'p0-1', 'p1-1', 'p0-2', 'p1-2']);
    encodeSubscribe(peer.writer, 4, {
      topic: 'events',
      from: { kind: 'offset', offset: 0 },
      credit: 100,
      resumeOffsets: [
        [0, 2],
        [1, 1],
      ],
    });
    peer.flush();
    await peer.reply(4, FRAME_TYPES.SUBSCRIBED);
    await eventually(() => assert.equal(deliveries(peer).length, 3));
    const got = deliveries(peer).map((d) => `${d.partition}:${d.offset}`).sort();
    assert.deepEqual(got, ['0:2', '1:1', '1:2']);
    peer.destroy();
  } finally {
    await running.close();
  }
});

test('server delivery - a connection lost while it holds a message at its last delivery dead-letters it; a GOODBYE first does not', async () => {
  const running = await startBroker();
  try {
    const setUpPeer = await RawPeer.ready(running.port);
    await setUp(setUpPeer, 'jobs', 1, ['crashes-its-consumer']);
    setUpPeer.destroy();
    const holdAndGo = async (leave: (peer: RawPeer) => void): Promise<WireDelivery> => {
      const peer = await RawPeer.ready(running.port);
      encodeSubscribe(peer.writer, 4, { topic: 'jobs', group: 'w', from: { kind: 'earliest' }, credit: 1, deliveriesMax: 2 });
      peer.flush();
      await peer.reply(4, FRAME_TYPES.SUBSCRIBED);
      await eventually(() => assert.equal(deliveries(peer).length, 1, 'the message is delivered'));
      leave(peer);
      await peer.waitClosed();
      return deliveries(peer)[0]!;
    };
    const goodbye = (peer: RawPeer): void => {
      peer.writer.emptyFrame(FRAME_TYPES.GOODBYE, 0);
      peer.flush();
    };
    assert.equal((await holdAndGo((peer) => peer.destroy())).deliveryCount, 1, 'lost below the limit: comes back');
    assert.equal((await holdAndGo(goodbye)).deliveryCount, 2, 'a clean goodbye at the limit: comes back');
    assert.equal((await holdAndGo((peer) => peer.destroy())).deliveryCount, 3);
    await eventually(() => assert.equal(running.broker.describeGroup!('jobs', 'w').deadLetteredTotal, 1, 'dead-lettered'));
    assert.equal(running.broker.describeGroup!('jobs', 'w').pending, 0);
  } finally {
    await running.close();
  }
});
