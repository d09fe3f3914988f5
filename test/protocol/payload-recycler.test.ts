/**
 * Payloads of frames that span socket reads (protocol/payload-recycler.ts): given back, their
 * buffer serves the next such frame; never handed out twice at once, whatever is given back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME_TYPES, type Frame } from '../../src/protocol/frame.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { PayloadRecycler, RECYCLED_PAYLOAD_BYTES_MAX, RECYCLED_PAYLOAD_BYTES_MIN } from '../../src/protocol/payload-recycler.js';
import { rawFrame } from './frames.js';

/** Feeds a frame of `payload` in two chunks, so that its payload is assembled; returns it. */
function spanning(decoder: FrameDecoder, seen: Frame[], payload: Buffer): Buffer {
  const bytes = rawFrame(FRAME_TYPES.PING, 1, payload);
  const half = Math.floor(bytes.length / 2);
  decoder.push(bytes.subarray(0, half));
  decoder.push(bytes.subarray(half));
  const frame = seen.pop()!;
  assert.deepEqual(frame.payload, payload);
  return frame.payload;
}

test('payload recycler - a payload given back serves the next frame that spans reads; one not given back is not reused', () => {
  const seen: Frame[] = [];
  const decoder = new FrameDecoder({ onFrames: (frames) => seen.push(...frames), onError: assert.fail });
  const first = spanning(decoder, seen, Buffer.alloc(RECYCLED_PAYLOAD_BYTES_MIN * 2, 1));
  const second = spanning(decoder, seen, Buffer.alloc(RECYCLED_PAYLOAD_BYTES_MIN, 2));
  assert.notEqual(second.buffer, first.buffer, 'the first was not given back');
  decoder.recycle(first);
  // Given back twice, or a view that is not the whole payload: ignored.
  decoder.recycle(first);
  decoder.recycle(second.subarray(1));
  const third = spanning(decoder, seen, Buffer.alloc(RECYCLED_PAYLOAD_BYTES_MIN + 5, 3));
  assert.equal(third.buffer, first.buffer, 'the given-back buffer is reused');
  const fourth = spanning(decoder, seen, Buffer.alloc(RECYCLED_PAYLOAD_BYTES_MIN + 5, 4));
  assert.notEqual(fourth.buffer, first.buffer, 'a buffer given back twice is still handed out once');
  assert.equal(third[0], 3);
});

test('payload recycler - small payloads are not kept, and free buffers stay within their bound', () => {
  const recycler = new PayloadRecycler();
  const small = recycler.take(100);
  recycler.give(small);
  assert.equal(recycler.freeBytesHeld, 0);
  const big = Array.from({ length: 4 }, () => recycler.take(RECYCLED_PAYLOAD_BYTES_MAX / 3));
  for (const payload of big) recycler.give(payload);
  assert.ok(recycler.freeBytesHeld <= RECYCLED_PAYLOAD_BYTES_MAX);
  assert.ok(recycler.freeBytesHeld > 0);
});
