/**
 * The checkpoint: the prefix of the log that was synced, which recovery trusts without re-reading
 * it. It names a segment, a byte position in it (a batch boundary) and the next offset at that
 * position; everything after it is verified record by record on open.
 *
 * It only ever moves to a point that a completed datasync covered, and it is replaced atomically
 * (temp file, datasync, rename, syncDir), so after any crash it is either the old or the new one.
 */
import { join } from 'node:path';
import type { FileSystem } from '../platform/fs.js';
import { writeFileAtomic } from '../platform/atomic-write.js';
import { crc32c } from './crc32c.js';
import { readU64, writeU64 } from './record-batch.js';

export const CHECKPOINT_FILE = 'log.checkpoint';
/** "FCP1". */
const CHECKPOINT_MAGIC = 0x46435031;
const CHECKPOINT_VERSION = 1;
/** magic u32, version u32, segmentBaseOffset u64, position u64, nextOffset u64, writtenAtMs u64, crc u32. */
export const CHECKPOINT_BYTES = 44;
const CRC_AT = 40;

export interface Checkpoint {
  segmentBaseOffset: number;
  /** Bytes of that segment covered by a completed datasync (a batch boundary). */
  position: number;
  /** Offset of the first record at or after `position`. */
  nextOffset: number;
}

export function encodeCheckpoint(checkpoint: Checkpoint, writtenAtMs: number): Buffer {
  const buf = Buffer.alloc(CHECKPOINT_BYTES);
  buf.writeUInt32BE(CHECKPOINT_MAGIC, 0);
  buf.writeUInt32BE(CHECKPOINT_VERSION, 4);
  writeU64(buf, checkpoint.segmentBaseOffset, 8);
  writeU64(buf, checkpoint.position, 16);
  writeU64(buf, checkpoint.nextOffset, 24);
  writeU64(buf, Math.max(0, Math.floor(writtenAtMs)), 32);
  buf.writeUInt32BE(crc32c(buf.subarray(0, CRC_AT)), CRC_AT);
  return buf;
}

/** The checkpoint in `buf`, or the reason it cannot be trusted. */
export function decodeCheckpoint(buf: Buffer): Checkpoint | string {
  if (buf.length !== CHECKPOINT_BYTES) return `size ${buf.length}, expected ${CHECKPOINT_BYTES}`;
  if (buf.readUInt32BE(0) !== CHECKPOINT_MAGIC) return 'bad magic';
  if (crc32c(buf.subarray(0, CRC_AT)) !== buf.readUInt32BE(CRC_AT)) return 'CRC mismatch';
  if (buf.readUInt32BE(4) !== CHECKPOINT_VERSION) return `unknown version ${buf.readUInt32BE(4)}`;
  const segmentBaseOffset = readU64(buf, 8);
  const position = readU64(buf, 16);
  const nextOffset = readU64(buf, 24);
  if (segmentBaseOffset < 0 || position < 0 || nextOffset < segmentBaseOffset) return 'fields out of range';
  return { segmentBaseOffset, position, nextOffset };
}

/** The checkpoint of the log in `dir`: null when there is none, a string when it is unusable. */
export async function readCheckpoint(fs: FileSystem, dir: string): Promise<Checkpoint | string | null> {
  const path = join(dir, CHECKPOINT_FILE);
  if ((await fs.stat(path)) === null) return null;
  return decodeCheckpoint(await fs.readFile(path));
}

export async function writeCheckpoint(fs: FileSystem, dir: string, checkpoint: Checkpoint, nowMs: number): Promise<void> {
  await writeFileAtomic(fs, join(dir, CHECKPOINT_FILE), encodeCheckpoint(checkpoint, nowMs));
}
