/** Helpers for protocol tests: build frames by hand, collect decoder output. */
import { FerryError } from '../../src/errors.js';
import { FrameDecoder, type FrameDecoderOptions } from '../../src/protocol/decoder.js';
import { FRAME_HEADER_BYTES, writeFrameHeader, type Frame } from '../../src/protocol/frame.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';

export function rawFrame(type: number, requestId: number, payload: Buffer, version = PROTOCOL_VERSION, flags = 0): Buffer {
  const out = Buffer.alloc(FRAME_HEADER_BYTES + payload.length);
  writeFrameHeader(out, 0, version, type, flags, requestId, payload.length);
  payload.copy(out, FRAME_HEADER_BYTES);
  return out;
}

export interface Collected {
  frames: Frame[];
  batches: number;
  errors: FerryError[];
  decoder: FrameDecoder;
}

export function collector(options: FrameDecoderOptions = {}): Collected {
  const collected: Collected = { frames: [], batches: 0, errors: [], decoder: undefined as unknown as FrameDecoder };
  collected.decoder = new FrameDecoder(
    {
      onFrames(frames) {
        collected.batches++;
        // Copy: payloads are views of the pushed chunk.
        for (const frame of frames) collected.frames.push({ ...frame, payload: Buffer.from(frame.payload) });
      },
      onError(error) {
        collected.errors.push(error);
      },
    },
    options,
  );
  return collected;
}

/** Splits `data` into chunks at random points (rng returns [0, 1)). */
export function randomChunks(data: Buffer, rng: () => number, chunkMax = 64): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const size = 1 + Math.floor(rng() * chunkMax);
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** A small deterministic PRNG (mulberry32) so failures reproduce. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
