/**
 * The delay store's bucket files: one file per DELAY_BUCKET_MS of wall-clock due time, holding a
 * journal of 16-byte items, appended and never rewritten. An item either schedules a delay-log
 * record ("due at D: offset O") or says that it was moved into the topic ("moved: D, O"). An entry
 * is pending while its bucket schedules it and holds no moved item for it: what has been moved is
 * decided per message, never from a due-time watermark, so wall-clock due times may go up and down
 * as the clock steps.
 *
 * Items name a message by (offset, due time), not by offset alone: an item left behind by a delay-log
 * record that a power loss took back cannot be taken for the record that reused its offset, which
 * would have another due time.
 */
import assert from 'node:assert/strict';
import type { FileSystem } from '../../platform/fs.js';

/** Width of one bucket of due times: a bucket is loaded one width before it starts. */
export const DELAY_BUCKET_MS = 60_000;
export const BUCKET_ITEM_BYTES = 16;
/** Marks a "moved" item in the top bit of its first word; due times (ms since 1970) stay far below 2^63. */
const MOVED_FLAG = 0x8000_0000;
const U32 = 0x1_0000_0000;
const BUCKET_SUFFIX = '.bin';
/** Digits of a bucket file name: ms since 1970, zero-padded so names sort like numbers. */
const BUCKET_NAME_DIGITS = 15;

export interface BucketItem {
  /** Wall-clock due time, as recorded in the delay log. */
  dueMs: number;
  /** Offset of the record in the delay log. */
  offset: number;
  moved: boolean;
}

export function bucketOf(dueMs: number): number {
  return Math.floor(dueMs / DELAY_BUCKET_MS) * DELAY_BUCKET_MS;
}

export function bucketFileName(bucket: number): string {
  return `${String(bucket).padStart(BUCKET_NAME_DIGITS, '0')}${BUCKET_SUFFIX}`;
}

/** The bucket a file name stands for, or null for other files. */
export function parseBucketFileName(name: string): number | null {
  if (!name.endsWith(BUCKET_SUFFIX)) return null;
  const bucket = Number(name.slice(0, -BUCKET_SUFFIX.length));
  return Number.isSafeInteger(bucket) ? bucket : null;
}

/** A key naming one message: its offset and its due time. */
export function itemKey(item: { offset: number; dueMs: number }): string {
  return `${item.offset}@${item.dueMs}`;
}

export function encodeItems(items: readonly BucketItem[]): Buffer {
  const buffer = Buffer.allocUnsafe(items.length * BUCKET_ITEM_BYTES);
  items.forEach((item, index) => {
    assert.ok(Number.isSafeInteger(item.dueMs) && item.dueMs >= 0, `due time ${item.dueMs} out of range`);
    assert.ok(Number.isSafeInteger(item.offset) && item.offset >= 0, `offset ${item.offset} out of range`);
    const position = index * BUCKET_ITEM_BYTES;
    buffer.writeUInt32BE((Math.floor(item.dueMs / U32) | (item.moved ? MOVED_FLAG : 0)) >>> 0, position);
    buffer.writeUInt32BE(item.dueMs % U32, position + 4);
    buffer.writeUInt32BE(Math.floor(item.offset / U32), position + 8);
    buffer.writeUInt32BE(item.offset % U32, position + 12);
  });
  return buffer;
}

/** Decodes whole items; a torn last item (a crash mid-append) is ignored. */
export function decodeItems(bytes: Buffer): BucketItem[] {
  const items: BucketItem[] = [];
  for (let position = 0; position + BUCKET_ITEM_BYTES <= bytes.length; position += BUCKET_ITEM_BYTES) {
    const high = bytes.readUInt32BE(position);
    items.push({
      dueMs: (high & ~MOVED_FLAG) * U32 + bytes.readUInt32BE(position + 4),
      offset: bytes.readUInt32BE(position + 8) * U32 + bytes.readUInt32BE(position + 12),
      moved: (high & MOVED_FLAG) !== 0,
    });
  }
  return items;
}

export async function readBucketItems(fs: FileSystem, path: string): Promise<BucketItem[]> {
  if ((await fs.stat(path)) === null) return [];
  return decodeItems(await fs.readFile(path));
}

/**
 * Appends items at the end of the last whole item, so that a torn tail (a crash or a failed write
 * mid-item) is overwritten instead of shifting every later item out of alignment.
 */
export async function appendBucketItems(fs: FileSystem, path: string, items: readonly BucketItem[]): Promise<void> {
  const handle = await fs.open(path, 'create');
  try {
    const size = await handle.size();
    await handle.write(encodeItems(items), size - (size % BUCKET_ITEM_BYTES));
  } finally {
    await handle.close();
  }
}

/** The scheduled items no moved item cancels, each message once. */
export function pendingItems(items: readonly BucketItem[]): BucketItem[] {
  const moved = new Set<string>();
  for (const item of items) if (item.moved) moved.add(itemKey(item));
  const pending = new Map<string, BucketItem>();
  for (const item of items) {
    if (item.moved) continue;
    const key = itemKey(item);
    if (!moved.has(key) && !pending.has(key)) pending.set(key, item);
  }
  return [...pending.values()];
}
