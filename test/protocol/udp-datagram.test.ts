/**
 * UDP ingest datagrams (src/protocol/udp-datagram.ts): the binary form round-trips topic, key,
 * headers and value; the plain-text form is "topic value" less one line end; everything else is a
 * MALFORMED_FRAME naming why, and random bytes never fail any other way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FerryError } from '../../src/errors.js';
import { decodeUdpDatagram, encodeUdpDatagram, UDP_DATAGRAM_BYTES_MAX } from '../../src/protocol/udp-datagram.js';

function malformed(datagram: Buffer, why: RegExp): void {
  assert.throws(() => decodeUdpDatagram(datagram), (error: unknown) => error instanceof FerryError && error.code === 'MALFORMED_FRAME' && why.test(error.message));
}

test('udp datagram - the binary form round-trips topic, key, headers and value', () => {
  const datagram = encodeUdpDatagram({ topic: 'metrics.cpu', value: Buffer.from([0, 1, 2, 255]), key: 'host-1', headers: { unit: 'ratio', traceparent: '00-abc' } });
  assert.deepEqual(datagram.subarray(0, 4), Buffer.from([0xfe, 0x77, 1, 0x03]));
  const message = decodeUdpDatagram(datagram);
  assert.equal(message.topic, 'metrics.cpu');
  assert.deepEqual(message.key, Buffer.from('host-1'));
  assert.deepEqual(message.headers, [
    ['unit', 'ratio'],
    ['traceparent', '00-abc'],
  ]);
  assert.deepEqual(message.value, Buffer.from([0, 1, 2, 255]));
  const bare = decodeUdpDatagram(encodeUdpDatagram({ topic: 't', value: '' }));
  assert.deepEqual(bare, { topic: 't', key: null, headers: [], value: Buffer.alloc(0) });
});

test('udp datagram - plain text is the topic up to the first space and the value after it, less one line end', () => {
  assert.deepEqual(decodeUdpDatagram(Buffer.from('metrics cpu=0.5\n')), { topic: 'metrics', key: null, headers: [], value: Buffer.from('cpu=0.5') });
  assert.deepEqual(decodeUdpDatagram(Buffer.from('metrics a b\r\n')).value, Buffer.from('a b'));
  assert.deepEqual(decodeUdpDatagram(Buffer.from('logs line one\nline two\n')).value, Buffer.from('line one\nline two'));
  malformed(Buffer.from('metrics\n'), /topic value/);
  malformed(Buffer.from(' value'), /topic value/);
  malformed(Buffer.from('bad/topic value'), /not a topic name/);
});

test('udp datagram - a binary datagram that breaks its layout is malformed, naming why', () => {
  const good = encodeUdpDatagram({ topic: 'orders', value: 'v', key: 'k', headers: { a: 'b' } });
  const version = Buffer.from(good);
  version[2] = 2;
  malformed(version, /version 2/);
  const flags = Buffer.from(good);
  flags[3] = 0x80;
  malformed(flags, /unknown flags/);
  malformed(good.subarray(0, 4), /shorter than its fixed prefix/);
  // Cut inside the key (topic "orders" ends at byte 11, the key length is 2 bytes, the key 1).
  malformed(good.subarray(0, 13), /key runs past/);
  const longTopic = Buffer.from(good);
  longTopic[4] = 250;
  malformed(longTopic, /topic runs past/);
  // The broker's own header names are refused: encode a look-alike, then turn it into ferry-id.
  const reserved = encodeUdpDatagram({ topic: 'orders', value: 'v', headers: { 'xerry-id': '1' } });
  reserved.write('f', reserved.indexOf('xerry-id'), 'latin1');
  malformed(reserved, /ferry-id: names starting with ferry-/);
});

test('udp datagram - encoding refuses what no datagram may carry, sending nothing', () => {
  const code = (fn: () => unknown, expected: string): void =>
    assert.throws(fn, (error: unknown) => error instanceof FerryError && error.code === expected);
  code(() => encodeUdpDatagram({ topic: 'a b', value: 'v' }), 'INVALID_ARGUMENT');
  code(() => encodeUdpDatagram({ topic: 't', value: 'v', headers: { 'ferry-priority': '9' } }), 'INVALID_ARGUMENT');
  code(() => encodeUdpDatagram({ topic: 't', value: 12 as unknown as string }), 'INVALID_ARGUMENT');
  code(() => encodeUdpDatagram({ topic: 't', value: Buffer.alloc(UDP_DATAGRAM_BYTES_MAX) }), 'RECORD_TOO_LARGE');
  assert.equal(encodeUdpDatagram({ topic: 't', value: Buffer.alloc(UDP_DATAGRAM_BYTES_MAX - 6) }).length, UDP_DATAGRAM_BYTES_MAX);
});

test('udp datagram - random bytes decode or fail with MALFORMED_FRAME, never otherwise', () => {
  const prefixed = fc.uint8Array({ maxLength: 64 }).map((tail) => Buffer.concat([Buffer.from([0xfe, 0x77, 1]), Buffer.from(tail)]));
  fc.assert(
    fc.property(fc.oneof(prefixed, fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes))), (datagram) => {
      try {
        const message = decodeUdpDatagram(datagram);
        assert.ok(message.value.length <= datagram.length);
      } catch (error) {
        assert.ok(error instanceof FerryError && error.code === 'MALFORMED_FRAME', String(error));
      }
    }),
    { numRuns: 2000 },
  );
});
