/**
 * Consume's two paths serve the same stream: gRPC over HTTP/2 goes through fast-consume.ts (the
 * deliveries framed by hand), the Connect protocol through connect (the same session, protobuf-es
 * encoding); a client reads the same deliveries either way. The fast path's own reader refuses
 * what connect's would: a compressed envelope nobody agreed on, bytes that are not a request.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect as http2Connect } from 'node:http2';
import { create, toBinary } from '@bufbuild/protobuf';
import { createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { ConsumeRequestSchema, MessageService, type Message } from '../../src/generated/ferry/v1/messages_pb.js';
import { ConsumeRequest } from './generated/ferry/v1/messages.js';
import { startGrpc } from './harness.js';

const COUNT = 50;

interface Seen {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  headers: Record<string, string>;
  value: string;
  deliveryCount: number;
}

async function viaConnect(port: number, topic: string, group: string): Promise<Seen[]> {
  const transport = createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: '2' });
  const client = createClient(MessageService, transport);
  const seen: Seen[] = [];
  const abort = new AbortController();
  async function* requests() {
    yield create(ConsumeRequestSchema, { start: { topic, group, start: { position: { case: 'earliest', value: true } } }, credit: COUNT });
    await new Promise((resolve) => abort.signal.addEventListener('abort', resolve));
  }
  try {
    for await (const response of client.consume(requests(), { signal: abort.signal })) {
      for (const message of response.messages) seen.push(fromConnect(message));
      if (seen.length >= COUNT) break;
    }
  } finally {
    abort.abort();
  }
  return seen;
}

function fromConnect(message: Message): Seen {
  return {
    topic: message.topic,
    partition: message.partition,
    offset: Number(message.offset),
    key: message.key === undefined ? null : Buffer.from(message.key).toString('hex'),
    headers: { ...message.headers },
    value: Buffer.from(message.value).toString('hex'),
    deliveryCount: message.deliveryCount,
  };
}

test('fast consume - gRPC (hand-framed) and the Connect protocol (through connect) deliver the same messages', async () => {
  const fixture = await startGrpc();
  try {
    await fixture.broker.createTopic('same', { partitions: 2 });
    await fixture.broker.publish(
      'same',
      Array.from({ length: COUNT }, (_, i) => ({
        value: Buffer.from(`value-${i}-é`),
        ...(i % 3 === 0 ? { key: Buffer.from(`k${i}`) } : {}),
        headers: i % 2 === 0 ? [['h', `${i}`], ['trace', 'x']] : [],
      })),
    );
    const stream = fixture.client.consume(ConsumeRequest.fromPartial({ start: { topic: 'same', group: 'fast', start: { earliest: true } }, credit: COUNT }));
    const fast: Seen[] = [];
    while (fast.length < COUNT) {
      const response = await stream.next();
      assert.ok(response !== null, 'the stream stayed open');
      for (const message of response.messages) {
        fast.push({
          topic: message.topic,
          partition: message.partition,
          offset: message.offset,
          key: message.key === undefined ? null : Buffer.from(message.key).toString('hex'),
          headers: { ...message.headers },
          value: Buffer.from(message.value).toString('hex'),
          deliveryCount: message.deliveryCount,
        });
      }
    }
    stream.call.cancel();
    const general = await viaConnect(fixture.port, 'same', 'general');
    const order = (a: Seen, b: Seen): number => a.partition - b.partition || a.offset - b.offset;
    assert.deepEqual(fast.sort(order), general.sort(order));
    assert.equal(fast.length, COUNT);
    assert.ok(fast.some((seen) => seen.key !== null && Object.keys(seen.headers).length === 2));
  } finally {
    await fixture.close();
  }
});

/** Sends `body` as a whole gRPC Consume request stream; resolves with the call's grpc-status. */
function rawConsume(port: number, body: Buffer): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const stream = session.request({ ':method': 'POST', ':path': '/ferry.v1.MessageService/Consume', 'content-type': 'application/grpc', te: 'trailers' });
    let status: string | undefined;
    stream.on('response', (headers) => (status ??= headers['grpc-status'] as string | undefined));
    stream.on('trailers', (trailers) => (status = trailers['grpc-status'] as string | undefined));
    stream.on('data', () => undefined);
    stream.on('close', () => {
      session.close();
      resolve(status);
    });
    stream.end(body);
  });
}

function envelope(flags: number, message: Uint8Array): Buffer {
  const framed = Buffer.alloc(5 + message.length);
  framed[0] = flags;
  framed.writeUInt32BE(message.length, 1);
  framed.set(message, 5);
  return framed;
}

test('fast consume - a compressed envelope nobody agreed on, a request that does not decode, a first request without start: each ends the call with its status', async () => {
  const fixture = await startGrpc();
  try {
    await fixture.broker.createTopic('raw');
    const start = toBinary(ConsumeRequestSchema, create(ConsumeRequestSchema, { start: { topic: 'raw', group: 'g' }, credit: 1 }));
    assert.equal(await rawConsume(fixture.port, envelope(1, start)), '13', 'INTERNAL, as connect answers a compressed message without an encoding');
    assert.equal(await rawConsume(fixture.port, envelope(0, Buffer.from([0xff, 0xff, 0xff]))), '3', 'INVALID_ARGUMENT');
    const noStart = toBinary(ConsumeRequestSchema, create(ConsumeRequestSchema, { credit: 5 }));
    assert.equal(await rawConsume(fixture.port, envelope(0, noStart)), '3', 'INVALID_ARGUMENT');
    assert.equal(await rawConsume(fixture.port, Buffer.concat([envelope(0, start)]).subarray(0, 7)), '3', 'a stream that ends inside a message');
  } finally {
    await fixture.close();
  }
});

test('fast consume - a long drain acking each turn reads every value intact while response buffers are reused', async () => {
  const fixture = await startGrpc();
  const total = 3000;
  const valueOf = (i: number): Buffer => {
    const value = Buffer.alloc(1024, i % 251);
    value.write(`message-${i}:`, 'latin1');
    return value;
  };
  try {
    await fixture.broker.createTopic('long', { partitions: 1 });
    for (let start = 0; start < total; start += 500) {
      await fixture.broker.publish('long', Array.from({ length: 500 }, (_, j) => ({ value: valueOf(start + j) })));
    }
    const stream = fixture.client.consume(ConsumeRequest.fromPartial({ start: { topic: 'long', group: 'drain', start: { earliest: true } }, credit: 400 }));
    await stream.next();
    let seen = 0;
    while (seen < total) {
      const response = await stream.next();
      assert.ok(response !== null, 'the stream stayed open');
      for (const message of response.messages) {
        assert.equal(message.offset, seen, 'in order');
        assert.ok(Buffer.from(message.value).equals(valueOf(seen)), `value ${seen} intact`);
        seen++;
      }
      // Acks by hand-decoded request (acks and credit only), one per turn of deliveries.
      stream.send({ acks: response.messages.map(({ partition, offset }) => ({ partition, offset })), credit: response.messages.length });
    }
    stream.call.cancel();
    assert.equal(seen, total);
  } finally {
    await fixture.close();
  }
});
