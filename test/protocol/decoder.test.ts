import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME_TYPES, type Frame } from '../../src/protocol/frame.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FerryError } from '../../src/errors.js';
import { FRAME_HEADER_BYTES } from '../../src/protocol/limits.js';
import { collector, prng, randomChunks, rawFrame } from './frames.js';

function sampleFrames(count: number): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const payload = Buffer.alloc(i % 7 === 0 ? 0 : (i * 37) % 300, i & 0xff);
    frames.push(rawFrame(i % 2 === 0 ? FRAME_TYPES.PUBLISH : FRAME_TYPES.PING, i + 1, payload));
  }
  return frames;
}

function assertDecoded(frames: Buffer[], decoded: { requestId: number; payload: Buffer }[]): void {
  assert.equal(decoded.length, frames.length);
  for (let i = 0; i < frames.length; i++) {
    assert.equal(decoded[i]!.requestId, i + 1);
    assert.deepEqual(decoded[i]!.payload, frames[i]!.subarray(FRAME_HEADER_BYTES));
  }
}

test('decoder - one frame in one chunk is a zero-copy view', () => {
  const chunk = rawFrame(FRAME_TYPES.PING, 7, Buffer.from('abc'));
  const seen: Frame[] = [];
  const decoder = new FrameDecoder({ onFrames: (frames) => seen.push(...frames), onError: assert.fail });
  decoder.push(chunk);
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.type, FRAME_TYPES.PING);
  assert.equal(seen[0]!.requestId, 7);
  assert.equal(seen[0]!.payload.toString(), 'abc');
  assert.equal(seen[0]!.payload.buffer, chunk.buffer, 'payload is a view of the chunk');
});

test('decoder - byte by byte', () => {
  const frames = sampleFrames(20);
  const c = collector();
  for (const byte of Buffer.concat(frames)) c.decoder.push(Buffer.from([byte]));
  assert.deepEqual(c.errors, []);
  assertDecoded(frames, c.frames);
  assert.equal(c.decoder.bufferedBytes, 0);
});

test('decoder - many frames in one chunk arrive as one batch', () => {
  const frames = sampleFrames(50);
  const c = collector();
  c.decoder.push(Buffer.concat(frames));
  assert.equal(c.batches, 1);
  assertDecoded(frames, c.frames);
});

test('decoder - random chunk splits', () => {
  const frames = sampleFrames(200);
  const all = Buffer.concat(frames);
  for (let seed = 1; seed <= 50; seed++) {
    const c = collector();
    for (const chunk of randomChunks(all, prng(seed), 1 + seed * 7)) c.decoder.push(chunk);
    assert.deepEqual(c.errors, []);
    assertDecoded(frames, c.frames);
    assert.equal(c.decoder.midFrame, false);
  }
});

test('decoder - bad magic is BAD_MAGIC, reported once, later input ignored', () => {
  const c = collector();
  const good = rawFrame(FRAME_TYPES.PING, 1, Buffer.alloc(0));
  const bad = Buffer.from(good);
  bad[0] = 0x00;
  c.decoder.push(Buffer.concat([good, bad, good]));
  assert.equal(c.frames.length, 1, 'the frame before the error is delivered');
  assert.equal(c.errors.length, 1);
  assert.equal(c.errors[0]!.code, 'BAD_MAGIC');
  c.decoder.push(good);
  assert.equal(c.frames.length, 1);
  assert.equal(c.errors.length, 1);
});

test('decoder - bad magic is detected after two bytes', () => {
  const c = collector();
  c.decoder.push(Buffer.from([0x12]));
  assert.equal(c.errors.length, 0);
  c.decoder.push(Buffer.from([0x34]));
  assert.equal(c.errors[0]?.code, 'BAD_MAGIC');
});

test('decoder - unsupported version', () => {
  const c = collector();
  c.decoder.push(rawFrame(FRAME_TYPES.PING, 1, Buffer.alloc(0), 9));
  assert.equal(c.errors[0]?.code, 'UNSUPPORTED_VERSION');
});

test('decoder - unknown frame type', () => {
  const c = collector();
  c.decoder.push(rawFrame(0xee, 1, Buffer.alloc(0)));
  assert.equal(c.errors[0]?.code, 'UNKNOWN_FRAME_TYPE');
});

test('decoder - oversized length is refused before any payload is buffered', () => {
  const c = collector({ frameBytesMax: 1024 });
  const header = rawFrame(FRAME_TYPES.PUBLISH, 1, Buffer.alloc(0));
  header.writeUInt32BE(1024 * 1024 * 1024, 10);
  c.decoder.push(header);
  assert.equal(c.errors[0]?.code, 'FRAME_TOO_LARGE');
  assert.equal(c.decoder.bufferedBytes, 0);
});

test('decoder - a frame exactly at the limit is accepted', () => {
  const limit = 1024;
  const c = collector({ frameBytesMax: limit });
  c.decoder.push(rawFrame(FRAME_TYPES.PUBLISH, 1, Buffer.alloc(limit - FRAME_HEADER_BYTES)));
  assert.equal(c.frames.length, 1);
  const d = collector({ frameBytesMax: limit });
  d.decoder.push(rawFrame(FRAME_TYPES.PUBLISH, 1, Buffer.alloc(limit - FRAME_HEADER_BYTES + 1)));
  assert.equal(d.errors[0]?.code, 'FRAME_TOO_LARGE');
});

test('decoder - a half-sent frame stays buffered, bounded by its declared length', () => {
  const c = collector();
  const frame = rawFrame(FRAME_TYPES.PUBLISH, 1, Buffer.alloc(1000, 1));
  c.decoder.push(frame.subarray(0, 500));
  assert.equal(c.frames.length, 0);
  assert.ok(c.decoder.midFrame);
  assert.ok(c.decoder.bufferedBytes <= frame.length);
  c.decoder.push(frame.subarray(500));
  assert.equal(c.frames.length, 1);
  assert.equal(c.decoder.midFrame, false);
});

test('decoder - counts bytes and frames', () => {
  const frames = sampleFrames(10);
  const all = Buffer.concat(frames);
  const c = collector();
  c.decoder.push(all);
  assert.equal(c.decoder.bytesIn, all.length);
  assert.equal(c.decoder.framesIn, 10);
});

test('decoder - a frame refused at its header is skipped as it arrives, handed on in order with refused set', () => {
  const refusal = new FerryError('RATE_LIMITED', 'over quota');
  const seen: Frame[] = [];
  const decoder = new FrameDecoder({
    onFrames: (frames) => seen.push(...frames.map((frame) => ({ ...frame, payload: Buffer.from(frame.payload) }))),
    onError: assert.fail,
    admit: (type, requestId) => (type === FRAME_TYPES.PUBLISH && requestId === 2 ? refusal : null),
  });
  const big = rawFrame(FRAME_TYPES.PUBLISH, 2, Buffer.alloc(100_000, 7));
  const stream = Buffer.concat([rawFrame(FRAME_TYPES.PING, 1, Buffer.alloc(0)), big, rawFrame(FRAME_TYPES.PUBLISH, 3, Buffer.from('kept'))]);
  // Arrives in small pieces: the refused payload never counts as buffered.
  let bufferedMax = 0;
  for (let at = 0; at < stream.length; at += 1000) {
    decoder.push(stream.subarray(at, at + 1000));
    bufferedMax = Math.max(bufferedMax, decoder.bufferedBytes);
  }
  assert.deepEqual(seen.map((frame) => [frame.requestId, frame.refused?.code ?? null, frame.payload.length]), [[1, null, 0], [2, 'RATE_LIMITED', 0], [3, null, 4]]);
  assert.ok(bufferedMax <= FRAME_HEADER_BYTES, `buffered at most ${bufferedMax} bytes`);
  assert.equal(decoder.midFrame, false);
});

test('decoder - a lowered frame limit applies from the next header; a raised one too', () => {
  const c = collector({ frameBytesMax: 64 });
  c.decoder.push(rawFrame(FRAME_TYPES.PUBLISH, 1, Buffer.alloc(40)));
  c.decoder.frameBytesMax = 1024;
  c.decoder.push(rawFrame(FRAME_TYPES.PUBLISH, 2, Buffer.alloc(500)));
  assert.deepEqual(c.frames.map((frame) => frame.requestId), [1, 2]);
  c.decoder.frameBytesMax = 64;
  c.decoder.push(rawFrame(FRAME_TYPES.PUBLISH, 3, Buffer.alloc(500)));
  assert.equal(c.errors[0]?.code, 'FRAME_TOO_LARGE');
  assert.equal(c.decoder.bufferedBytes, 0);
});

test('decoder - framesPerPushMax: a chunk of many frames is decoded that many at a time, the rest held until resume(), in order with later pushes', () => {
  const frames = sampleFrames(50);
  const batches: Frame[][] = [];
  const decoder = new FrameDecoder({ onFrames: (batch) => batches.push(batch), onError: assert.fail }, { framesPerPushMax: 16 });
  decoder.push(Buffer.concat(frames.slice(0, 40)));
  assert.deepEqual(batches.map((b) => b.length), [16]);
  assert.equal(decoder.holding, true);
  // A read that comes while bytes are held goes behind them.
  decoder.push(Buffer.concat(frames.slice(40)));
  while (decoder.holding) decoder.resume();
  assert.deepEqual(batches.map((b) => b.length), [16, 16, 8, 10]);
  assertDecoded(frames, batches.flat());
  assert.equal(decoder.framesIn, 50);
});

test('decoder - framesPerPushMax stops only between frames: a frame split across chunks is completed', () => {
  const frames = sampleFrames(30);
  const all = Buffer.concat(frames);
  const batches: Frame[][] = [];
  const decoder = new FrameDecoder({ onFrames: (batch) => batches.push(batch), onError: assert.fail }, { framesPerPushMax: 4 });
  const cut = Math.floor(all.length / 2) + 3;
  decoder.push(all.subarray(0, cut));
  while (decoder.holding) decoder.resume();
  decoder.push(all.subarray(cut));
  while (decoder.holding) decoder.resume();
  assert.ok(batches.every((b) => b.length <= 4));
  assertDecoded(frames, batches.flat());
});
