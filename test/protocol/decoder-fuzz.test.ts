/**
 * Fuzz: random and mutated byte streams fed in random chunks. Asserts that nothing but a typed
 * decode error ever comes out, that decoding never throws, and that buffered bytes never exceed
 * the frame limit. 100,000+ cases under CI, fewer locally.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../src/errors.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FRAME_TYPES } from '../../src/protocol/frame.js';
import { FRAME_HEADER_BYTES } from '../../src/protocol/limits.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { decodeAck, decodeCredit, decodeDeliver, decodeNack, decodeSubscribe } from '../../src/protocol/codec-subscribe.js';
import { decodePublish, decodePublishOk } from '../../src/protocol/codec-publish.js';
import { decodeError, decodeHello, decodeHelloOk } from '../../src/protocol/codec-session.js';
import { decodeCreateTopic, decodeTopicInfo, decodeTopicList } from '../../src/protocol/codec-topics.js';
import { prng, randomChunks, rawFrame } from './frames.js';

const CASES = process.env.CI ? 100_000 : 10_000;
const FRAME_LIMIT = 4096;
const DECODE_ERRORS = new Set(['BAD_MAGIC', 'UNSUPPORTED_VERSION', 'UNKNOWN_FRAME_TYPE', 'FRAME_TOO_LARGE', 'MALFORMED_FRAME']);
const TYPES = Object.values(FRAME_TYPES);
const PAYLOAD_DECODERS = [
  decodeHello,
  decodeHelloOk,
  decodeError,
  decodeCreateTopic,
  decodeTopicInfo,
  decodeTopicList,
  decodePublish,
  decodePublishOk,
  decodeSubscribe,
  decodeDeliver,
  decodeAck,
  decodeNack,
  decodeCredit,
];

function randomBytes(rng: () => number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(rng() * 256);
  return out;
}

function validStream(rng: () => number): Buffer {
  const frames: Buffer[] = [];
  const count = 1 + Math.floor(rng() * 4);
  for (let i = 0; i < count; i++) {
    const type = TYPES[Math.floor(rng() * TYPES.length)]!;
    frames.push(rawFrame(type, Math.floor(rng() * 2 ** 32), randomBytes(rng, Math.floor(rng() * 200))));
  }
  return Buffer.concat(frames);
}

function mutate(data: Buffer, rng: () => number): Buffer {
  const out = Buffer.from(data);
  const flips = 1 + Math.floor(rng() * 4);
  for (let i = 0; i < flips && out.length > 0; i++) out[Math.floor(rng() * out.length)] = Math.floor(rng() * 256);
  // Sometimes aim at the length field, the most dangerous one.
  if (rng() < 0.2 && out.length >= FRAME_HEADER_BYTES) out.writeUInt32BE(Math.floor(rng() * 2 ** 32), 10);
  return out;
}

test('decoder fuzz - random and mutated streams only ever yield typed decode errors, memory bounded', () => {
  const rng = prng(0xfe77);
  const reader = new PayloadReader();
  let errors = 0;
  let frames = 0;
  for (let i = 0; i < CASES; i++) {
    const kind = i % 3;
    const data = kind === 0 ? randomBytes(rng, Math.floor(rng() * 300)) : kind === 1 ? mutate(validStream(rng), rng) : validStream(rng);
    let failed: FerryError | null = null;
    const decoder = new FrameDecoder(
      {
        onFrames(batch) {
          frames += batch.length;
          for (const frame of batch) {
            // Every payload decoder must also fail only with MALFORMED_FRAME on garbage.
            const decode = PAYLOAD_DECODERS[Math.floor(rng() * PAYLOAD_DECODERS.length)]!;
            try {
              decode(reader.reset(frame.payload));
            } catch (error) {
              assert.ok(error instanceof FerryError, `payload decoder threw ${String(error)}`);
              assert.equal(error.code, 'MALFORMED_FRAME');
            }
          }
        },
        onError(error) {
          assert.equal(failed, null, 'onError is called once');
          failed = error;
        },
      },
      { frameBytesMax: FRAME_LIMIT },
    );
    for (const chunk of randomChunks(data, rng, 97)) {
      decoder.push(chunk);
      assert.ok(decoder.bufferedBytes <= FRAME_LIMIT + FRAME_HEADER_BYTES, 'buffered bytes exceed the frame limit');
    }
    if (failed !== null) {
      errors++;
      assert.ok(DECODE_ERRORS.has((failed as FerryError).code), (failed as FerryError).code);
    }
    if (kind === 2) assert.equal(failed, null, 'a valid stream decodes without error');
  }
  assert.ok(errors > 0);
  assert.ok(frames > 0);
});
