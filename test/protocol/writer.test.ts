/**
 * FrameWriter's attached payloads (protocol/writer.ts, `bytesAttached`): a large payload is sent
 * from the caller's buffer as it is, between pieces of the writer's own, and the frames decode
 * exactly as if it had been copied; a frame dropped or refused drops its attachment with it; a
 * CATCH_UP_READ_OK chunk goes out without being copied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isFerryError } from '../../src/errors.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FRAME_TYPES, type Frame } from '../../src/protocol/frame.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { ATTACH_BYTES_MIN, FrameWriter, writeParts } from '../../src/protocol/writer.js';
import { decodeCatchUpReadOk, encodeCatchUpReadOk, type CatchUpChunk } from '../../src/protocol/codec-catch-up.js';

function decodeAll(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  new FrameDecoder({ onFrames: (batch) => frames.push(...batch), onError: (error) => assert.fail(error) }).push(bytes);
  return frames;
}

const payload = (length: number, fill: number): Buffer => Buffer.alloc(length, fill);

/** Three frames, the middle one carrying `big`, written with `bytesAttached` or `bytes`. */
function threeFrames(w: FrameWriter, big: Buffer, attach: boolean): void {
  w.beginFrame(FRAME_TYPES.OK, 1);
  w.u32(11);
  w.endFrame();
  w.beginFrame(FRAME_TYPES.CATCH_UP_READ_OK, 2);
  w.u32(22);
  if (attach) w.bytesAttached(big);
  else w.bytes(big);
  w.u8(0);
  w.endFrame();
  w.beginFrame(FRAME_TYPES.OK, 3);
  w.u32(33);
  w.endFrame();
}

test('writer - an attached payload is sent as it is, between the writer\'s pieces, and decodes as a copied one', () => {
  const big = payload(ATTACH_BYTES_MIN + 5, 0xab);
  const copied = new FrameWriter();
  threeFrames(copied, big, false);
  const attached = new FrameWriter();
  threeFrames(attached, big, true);
  assert.equal(attached.length, copied.length);
  const parts = attached.takeParts()!;
  assert.equal(parts.length, 3);
  assert.equal(parts[1], big, 'the payload itself, not a copy');
  assert.deepEqual(Buffer.concat(parts), copied.take(), 'the same bytes as a copied payload');
  assert.equal(attached.length, 0);
  assert.equal(attached.takeParts(), null, 'nothing left');
  const frames = decodeAll(Buffer.concat(parts));
  assert.deepEqual(frames.map((frame) => frame.requestId), [1, 2, 3]);
  const r = new PayloadReader().reset(frames[1]!.payload);
  assert.equal(r.u32(), 22);
  assert.deepEqual(r.bytes(), big);
});

test('writer - a small payload is copied; take() joins attached parts; writeParts writes them in order', () => {
  const small = payload(ATTACH_BYTES_MIN - 1, 1);
  const w = new FrameWriter();
  threeFrames(w, small, true);
  assert.equal(w.takeParts()!.length, 1, 'below ATTACH_BYTES_MIN: copied into the frame');
  const big = payload(ATTACH_BYTES_MIN, 2);
  threeFrames(w, big, true);
  const joined = w.take()!;
  const copied = new FrameWriter();
  threeFrames(copied, big, false);
  assert.deepEqual(joined, copied.take());
  threeFrames(w, big, true);
  const parts = w.takeParts()!;
  const written: Buffer[] = [];
  const corks: string[] = [];
  let done = 0;
  const bytes = writeParts(
    {
      write: (data, callback) => {
        written.push(data);
        if (callback !== undefined) done++;
        return true;
      },
      cork: () => void corks.push('cork'),
      uncork: () => void corks.push('uncork'),
    },
    parts,
    () => undefined,
  );
  assert.deepEqual(written, parts);
  assert.equal(bytes, joined.length);
  assert.equal(done, 1, 'done once, with the last part');
  assert.deepEqual(corks, ['cork', 'uncork'], 'several parts: one writev');
});

test('writer - an aborted or oversized frame drops its attachment; the frame limit counts it', () => {
  const big = payload(ATTACH_BYTES_MIN * 2, 3);
  const w = new FrameWriter();
  w.beginFrame(FRAME_TYPES.OK, 1);
  w.endFrame();
  w.beginFrame(FRAME_TYPES.CATCH_UP_READ_OK, 2);
  w.bytesAttached(big);
  w.abortFrame();
  assert.equal(w.takeParts()!.length, 1, 'only the first frame is left');
  w.frameBytesMax = ATTACH_BYTES_MIN;
  w.beginFrame(FRAME_TYPES.CATCH_UP_READ_OK, 3);
  w.bytesAttached(big);
  assert.throws(() => w.endFrame(), (error) => isFerryError(error, 'FRAME_TOO_LARGE'));
  assert.equal(w.takeParts(), null, 'the refused frame is gone with its attachment');
});

test('writer - a catch-up chunk is sent from the leader\'s read, not copied, and decodes whole', () => {
  const batches = payload(4 * ATTACH_BYTES_MIN, 7);
  const chunk: CatchUpChunk = { logId: 'p0', logStartOffset: 0, sealedEnd: 4096, fromOffset: 0, toOffset: 1024, ranges: [{ fromOffset: 0, toOffset: 1024, digest: payload(16, 9) }], batches };
  const w = new FrameWriter();
  encodeCatchUpReadOk(w, 5, chunk);
  const parts = w.takeParts()!;
  assert.ok(parts.includes(batches), 'the chunk\'s own buffer is one of the parts');
  const [frame] = decodeAll(Buffer.concat(parts));
  assert.deepEqual(decodeCatchUpReadOk(new PayloadReader().reset(frame!.payload)), chunk);
});
