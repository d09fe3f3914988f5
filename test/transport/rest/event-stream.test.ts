/**
 * One SSE stream against a stand-in response (issue 24): events as text, credit after each write,
 * and backpressure — unwritable while the response holds a high-water mark of unsent bytes (HTTP/1.1
 * and HTTP/2 alike), deliveries resumed on 'drain'.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { silentLogger } from '../../../src/platform/logger.js';
import type { Delivery, Subscription } from '../../../src/broker/types.js';
import { EventStream, eventText } from '../../../src/transport/rest/event-stream.js';

class FakeResponse extends EventEmitter {
  written = '';
  status = 0;
  writableLength = 0;
  writableHighWaterMark = 16 * 1024;
  writableEnded = false;
  writeHead(status: number): this {
    this.status = status;
    return this;
  }
  write(text: string): boolean {
    this.written += text;
    return true;
  }
  end(): void {
    this.writableEnded = true;
  }
}

function delivery(offset: number, value: string | Buffer): Delivery {
  return { topic: 't', partition: 0, offset, timestampMs: 0, key: null, headers: [], value: Buffer.from(value), deliveryCount: 1 };
}

function fakeSubscription(): Subscription & { credit: number; resumed: number; closed: boolean } {
  return {
    id: 1,
    topic: 't',
    group: undefined,
    credit: 0,
    resumed: 0,
    closed: false,
    grantCredit(count: number) {
      this.credit += count;
    },
    ack: async () => undefined,
    nack: async () => undefined,
    resume() {
      this.resumed++;
    },
    async close() {
      this.closed = true;
    },
  };
}

test('sse event - values as data lines, base64 for what text cannot carry', () => {
  assert.equal(eventText(delivery(3, 'one'), 'utf8'), 'id: 0:3\ndata: one\n\n');
  assert.equal(eventText(delivery(4, 'a\nb'), 'utf8'), 'id: 0:4\ndata: a\ndata: b\n\n');
  assert.equal(eventText(delivery(5, 'a\r\nb'), 'utf8'), `id: 0:5\nevent: base64\ndata: ${Buffer.from('a\r\nb').toString('base64')}\n\n`);
  assert.equal(eventText(delivery(6, Buffer.from([0xc3])), 'utf8'), 'id: 0:6\nevent: base64\ndata: ww==\n\n');
  assert.equal(eventText(delivery(7, 'x'), 'base64'), 'id: 0:7\ndata: eA==\n\n');
  assert.equal(eventText(delivery(8, ''), 'utf8'), 'id: 0:8\ndata: \n\n');
});

test('sse event - a stream grants credit per written event, pauses past the high-water mark and resumes on drain', async () => {
  const res = new FakeResponse();
  let closed = 0;
  const stream = new EventStream(res as unknown as ServerResponse, { topic: 't', group: undefined, autoAck: false, encoding: 'utf8', logger: silentLogger, onClose: () => closed++ });
  const subscription = fakeSubscription();
  // Delivered before the subscribe returned: kept, and written once the stream starts.
  stream.deliver(delivery(0, 'early'));
  stream.start(subscription);
  assert.equal(res.status, 200);
  assert.match(res.written, /^retry: 1000\n/);
  assert.match(res.written, /id: 0:0\ndata: early\n\n$/);
  assert.equal(subscription.credit, 1);
  stream.deliver(delivery(1, 'a'));
  stream.deliver(delivery(2, 'b'));
  await Promise.resolve();
  assert.equal(subscription.credit, 3, 'one write for the burst, one credit per event');
  assert.equal(stream.writable(), true);
  res.writableLength = res.writableHighWaterMark;
  assert.equal(stream.writable(), false);
  res.writableLength = 0;
  res.emit('drain');
  assert.equal(subscription.resumed, 1);
  res.emit('close');
  await Promise.resolve();
  assert.equal(subscription.closed, true);
  assert.equal(closed, 1);
  assert.equal(stream.writable(), false);
});
