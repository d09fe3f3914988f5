import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePublish } from '../../src/protocol/codec-publish.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FRAME_TYPES, type Frame } from '../../src/protocol/frame.js';
import { FRAME_HEADER_BYTES } from '../../src/protocol/limits.js';
import type { WirePublishMessage } from '../../src/protocol/messages.js';
import { PublishScanner, type PublishScanLimits } from '../../src/protocol/publish-scan.js';
import { FrameWriter } from '../../src/protocol/writer.js';
import { rawFrame } from './frames.js';

const LIMITS: PublishScanLimits = { keyBytesMax: 16, headersCountMax: 3, headersBytesMax: 40, recordBytesMax: 100 };

/** The payload of a PUBLISH frame of `messages`. */
function publishPayload(messages: WirePublishMessage[], asBroker = false): Buffer {
  const w = new FrameWriter();
  encodePublish(w, 1, { topic: 'orders', messages, ...(asBroker ? { asBroker: true } : {}) });
  return Buffer.from(w.take()!.subarray(FRAME_HEADER_BYTES));
}

/** Scans `payload` in pieces of `step` bytes; the refusal's code and how many bytes had been scanned. */
function scan(payload: Buffer, step: number): { code: string | null; scanned: number; done: boolean } {
  const scanner = new PublishScanner(LIMITS);
  for (let at = 0; at < payload.length; at += step) {
    const end = Math.min(payload.length, at + step);
    const refusal = scanner.scan(payload, at, end);
    if (refusal !== null) return { code: refusal.code, scanned: end, done: scanner.done };
  }
  return { code: null, scanned: payload.length, done: scanner.done };
}

const legal: WirePublishMessage[] = [
  { key: null, value: Buffer.alloc(100, 1) },
  { key: Buffer.alloc(16, 2), value: Buffer.alloc(10), partition: 3, headers: [['a', 'b'.repeat(20)], ['c', 'd']] },
  { key: Buffer.from('k'), value: Buffer.alloc(0), id: 'message-id', delayMs: 5, deliverAtMs: 7 },
];

test('publish scan - messages within the limits pass, whatever the pieces, and the scan ends with the last message', () => {
  for (const asBroker of [false, true]) {
    const payload = publishPayload(legal, asBroker);
    for (const step of [1, 2, 3, 7, 64, payload.length]) assert.deepEqual(scan(payload, step), { code: null, scanned: payload.length, done: true }, `step ${step}`);
  }
});

test('publish scan - a value over the record limit is refused at its length field, before any of its bytes', () => {
  const payload = publishPayload([legal[0]!, { key: Buffer.from('key'), value: Buffer.alloc(98), headers: [['h', '']] }, legal[1]!]);
  // topic 2+6, request tags 1, count 4, message 0 (1 + 2 + 4 + 100 + 1), message 1: flags, key 4+3, headers 2 + 2+1 + 4+0, value length 4.
  const valueLengthEnd = 8 + 1 + 4 + 108 + 1 + 7 + 2 + 3 + 4 + 4;
  for (const step of [1, 5, payload.length]) {
    const { code, scanned } = scan(payload, step);
    assert.equal(code, 'RECORD_TOO_LARGE', `step ${step}`);
    if (step === 1) assert.equal(scanned, valueLengthEnd);
  }
});

test('publish scan - a key, a header count or header bytes over their limits are refused with their own codes', () => {
  assert.equal(scan(publishPayload([{ key: Buffer.alloc(17), value: Buffer.alloc(0) }]), 1).code, 'KEY_TOO_LARGE');
  const four: Array<[string, string]> = [['a', ''], ['b', ''], ['c', ''], ['d', '']];
  assert.equal(scan(publishPayload([{ key: null, value: Buffer.alloc(0), headers: four }]), 1).code, 'HEADERS_TOO_LARGE');
  assert.equal(scan(publishPayload([{ key: null, value: Buffer.alloc(0), headers: [['a', 'x'.repeat(40)]] }]), 1).code, 'HEADERS_TOO_LARGE');
});

test('publish scan - a malformed count ends the scan without a refusal (the decoder refuses the frame)', () => {
  const payload = publishPayload(legal);
  payload.writeUInt32BE(0xffff_ffff, 8 + 1);
  assert.deepEqual(scan(payload, 1), { code: null, scanned: payload.length, done: true });
});

test('publish scan - the decoder refuses a scanned frame part-way: nothing of it is kept, the rest skipped as it arrives', () => {
  const seen: Frame[] = [];
  let scanned = 0;
  const decoder = new FrameDecoder({
    onFrames: (frames) => seen.push(...frames.map((frame) => ({ ...frame, payload: Buffer.from(frame.payload) }))),
    onError: assert.fail,
    scanner: (type) => {
      if (type !== FRAME_TYPES.PUBLISH) return null;
      const scanner = new PublishScanner(LIMITS);
      return {
        scan: (chunk, start, end) => {
          scanned += end - start;
          return scanner.scan(chunk, start, end);
        },
      };
    },
  });
  const oversized = publishPayload([{ key: null, value: Buffer.alloc(50_000, 9) }]);
  const kept = publishPayload(legal);
  const stream = Buffer.concat([rawFrame(FRAME_TYPES.PUBLISH, 2, oversized), rawFrame(FRAME_TYPES.PUBLISH, 3, kept)]);
  let bufferedMax = 0;
  let refusedAfter = -1;
  for (let at = 0; at < stream.length; at += 1000) {
    decoder.push(stream.subarray(at, at + 1000));
    bufferedMax = Math.max(bufferedMax, decoder.bufferedBytes);
    if (refusedAfter < 0 && seen.length > 0) refusedAfter = at + 1000;
  }
  assert.deepEqual(seen.map((frame) => [frame.requestId, frame.refused?.code ?? null, frame.payload.length]), [[2, 'RECORD_TOO_LARGE', 0], [3, null, kept.length]]);
  assert.equal(refusedAfter, 1000, 'refused in the first piece, long before its 50,000 bytes arrived');
  assert.equal(bufferedMax, 0, 'nothing of the refused frame was assembled');
  assert.ok(scanned < 2000, `the skipped bytes are not scanned (${scanned})`);
  assert.equal(decoder.midFrame, false);
});

test('publish scan - scanned frames within the limits are assembled whole, however they arrive', () => {
  const seen: Frame[] = [];
  const decoder = new FrameDecoder({
    onFrames: (frames) => seen.push(...frames.map((frame) => ({ ...frame, payload: Buffer.from(frame.payload) }))),
    onError: assert.fail,
    scanner: (type) => (type === FRAME_TYPES.PUBLISH ? new PublishScanner(LIMITS) : null),
  });
  const payloads = [publishPayload(legal), publishPayload(legal.slice(1)), publishPayload([legal[0]!], true)];
  const stream = Buffer.concat(payloads.map((payload, i) => rawFrame(FRAME_TYPES.PUBLISH, i + 1, payload)));
  for (const step of [1, 13, 200, stream.length]) {
    seen.length = 0;
    for (let at = 0; at < stream.length; at += step) decoder.push(stream.subarray(at, at + step));
    assert.deepEqual(seen.map((frame) => frame.payload), payloads, `step ${step}`);
    assert.ok(seen.every((frame) => frame.refused === undefined));
  }
});
