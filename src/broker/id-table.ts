/**
 * Message ids (`ferry-id`) in insertion order, each with a few numbers (its offset, its timestamp),
 * held compactly: the ids' bytes in large chunks, the numbers in typed columns, and an
 * open-addressing hash of row slots over them. In cluster mode every publish carries an id, so a
 * busy topic's followers note every message of the last dedup window (hundreds of thousands); a
 * Map of strings to objects held about 112 bytes of heap per id, all of it traced by every major
 * GC. Here an id of 20 bytes costs about 60 bytes, none of it on V8's heap (docs/CLUSTERING.md,
 * "Memory").
 *
 * Rows are numbered by a sequence that only grows (the oldest row is `oldestSeq`); a row is live
 * until deleted. Rows leave from either end: the oldest (expiry) or the newest (a cut log).
 */
import assert from 'node:assert/strict';

/** Rows a new table has room for; the room doubles as rows arrive and halves as they leave. */
export const ID_TABLE_SLOTS_MIN = 1024;
/**
 * Bytes of one chunk of id bytes: large enough that chunks are few, small enough that a table of a
 * few ids holds little. An id larger than a chunk gets a chunk of its own size.
 */
export const ID_TABLE_CHUNK_BYTES = 256 * 1024;
/** Numbers a row carries at most. */
const COLUMNS_MAX = 5;
const EMPTY = 0;

export class IdTable {
  private slots: number;
  private firstSeq = 0;
  /** Rows held, live or deleted (they occupy slots until they leave an end). */
  private rows = 0;
  private liveRows = 0;
  private columns: Float64Array[];
  /** Where each row's id is: chunk number, byte in the chunk, length; its hash; whether it is live. */
  private chunkOf: Int32Array;
  private byteAt: Int32Array;
  private byteLength: Int32Array;
  private hashes: Int32Array;
  private live: Uint8Array;
  /** Open addressing, linear probing: slot + 1 of a live row, EMPTY where none. */
  private index: Int32Array;
  /** Chunks of id bytes; `chunks[0]` is chunk number `firstChunk`. */
  private chunks: Buffer[] = [];
  private firstChunk = 0;
  /** Where the next id's bytes go: chunk number and byte in it (the chunk may not exist yet). */
  private writeChunk = 0;
  private writeAt = ID_TABLE_CHUNK_BYTES;
  /** The id of a string lookup, encoded. */
  private scratch = Buffer.allocUnsafe(256);

  constructor(private readonly columnCount: number) {
    assert.ok(Number.isInteger(columnCount) && columnCount >= 1 && columnCount <= COLUMNS_MAX, 'a row carries 1 to 5 numbers');
    this.slots = ID_TABLE_SLOTS_MIN;
    ({ columns: this.columns, chunkOf: this.chunkOf, byteAt: this.byteAt, byteLength: this.byteLength, hashes: this.hashes, live: this.live } = this.allocRows(this.slots));
    this.index = new Int32Array(2 * this.slots);
  }

  /** Live ids held. */
  get size(): number {
    return this.liveRows;
  }

  /** Sequence number of the oldest row held, live or not. */
  get oldestSeq(): number {
    return this.firstSeq;
  }

  /** One past the newest row's sequence number. */
  get endSeq(): number {
    return this.firstSeq + this.rows;
  }

  /** Appends an id (the bytes `source[start..end)`) with its numbers; returns its sequence number. Does not look for it first. */
  push(source: Uint8Array, start: number, end: number, v0: number, v1 = 0, v2 = 0, v3 = 0, v4 = 0): number {
    if (this.rows === this.slots) this.resize(this.slots * 2);
    const length = end - start;
    this.reserveBytes(length);
    const seq = this.firstSeq + this.rows;
    const slot = seq & (this.slots - 1);
    const chunk = this.chunks[this.writeChunk - this.firstChunk]!;
    chunk.set(source.subarray(start, end), this.writeAt);
    this.chunkOf[slot] = this.writeChunk;
    this.byteAt[slot] = this.writeAt;
    this.byteLength[slot] = length;
    this.writeAt += length;
    const hash = hashBytes(source, start, end);
    this.hashes[slot] = hash;
    this.live[slot] = 1;
    const columns = this.columns;
    columns[0]![slot] = v0;
    if (this.columnCount > 1) columns[1]![slot] = v1;
    if (this.columnCount > 2) columns[2]![slot] = v2;
    if (this.columnCount > 3) columns[3]![slot] = v3;
    if (this.columnCount > 4) columns[4]![slot] = v4;
    this.rows++;
    this.liveRows++;
    this.insertIndex(slot, hash);
    return seq;
  }

  /** Appends `id` (as UTF-8) with its numbers. */
  pushString(id: string, v0: number, v1 = 0, v2 = 0, v3 = 0, v4 = 0): number {
    const length = this.encode(id);
    return this.push(this.scratch, 0, length, v0, v1, v2, v3, v4);
  }

  /** Appends row `seq` of `other` (a table with the same columns). */
  pushRow(other: IdTable, seq: number): number {
    const slot = other.slotOf(seq);
    const chunk = other.chunks[other.chunkOf[slot]! - other.firstChunk]!;
    const at = other.byteAt[slot]!;
    const v = (column: number): number => (column < other.columnCount ? other.columns[column]![slot]! : 0);
    return this.push(chunk, at, at + other.byteLength[slot]!, v(0), v(1), v(2), v(3), v(4));
  }

  /** The live row of an id given as bytes, or -1. */
  findBytes(source: Uint8Array, start: number, end: number): number {
    const hash = hashBytes(source, start, end);
    const mask = this.index.length - 1;
    for (let probe = hash & mask; ; probe = (probe + 1) & mask) {
      const held = this.index[probe]!;
      if (held === EMPTY) return -1;
      const slot = held - 1;
      if (this.hashes[slot] === hash && this.sameBytes(slot, source, start, end)) return this.seqOfSlot(slot);
    }
  }

  /** The live row of `id`, or -1. */
  find(id: string): number {
    const length = this.encode(id);
    return this.findBytes(this.scratch, 0, length);
  }

  value(seq: number, column: number): number {
    return this.columns[column]![this.slotOf(seq)]!;
  }

  isLive(seq: number): boolean {
    return this.live[this.slotOf(seq)] === 1;
  }

  idOf(seq: number): string {
    const slot = this.slotOf(seq);
    const chunk = this.chunks[this.chunkOf[slot]! - this.firstChunk]!;
    return chunk.toString('utf8', this.byteAt[slot]!, this.byteAt[slot]! + this.byteLength[slot]!);
  }

  /** Deletes a live row where it is; it keeps its slot until it reaches an end. */
  delete(seq: number): void {
    const slot = this.slotOf(seq);
    assert.ok(this.live[slot] === 1, 'only a live row is deleted');
    this.removeIndex(slot);
    this.live[slot] = 0;
    this.liveRows--;
  }

  /** The oldest live row (deleted rows before it leave), or -1 when none is left. */
  oldestLive(): number {
    while (this.rows > 0 && this.live[this.firstSeq & (this.slots - 1)] === 0) this.dropOldest();
    return this.rows > 0 ? this.firstSeq : -1;
  }

  /** The newest live row (deleted rows after it leave), or -1 when none is left. */
  newestLive(): number {
    while (this.rows > 0 && this.live[(this.firstSeq + this.rows - 1) & (this.slots - 1)] === 0) this.dropNewest();
    return this.rows > 0 ? this.firstSeq + this.rows - 1 : -1;
  }

  /** Removes the oldest row. */
  removeOldest(): void {
    assert.ok(this.rows > 0, 'a row to remove');
    const slot = this.firstSeq & (this.slots - 1);
    if (this.live[slot] === 1) this.delete(this.firstSeq);
    this.dropOldest();
  }

  /** Removes the newest row. */
  removeNewest(): void {
    assert.ok(this.rows > 0, 'a row to remove');
    const seq = this.firstSeq + this.rows - 1;
    if (this.live[seq & (this.slots - 1)] === 1) this.delete(seq);
    this.dropNewest();
  }

  /** Bytes held (chunks and columns), for tests and diagnostics. */
  bytesHeld(): number {
    let bytes = this.index.byteLength + this.slots * (8 * this.columnCount + 4 * 4 + 1);
    for (const chunk of this.chunks) bytes += chunk.length;
    return bytes;
  }

  private slotOf(seq: number): number {
    assert.ok(seq >= this.firstSeq && seq < this.firstSeq + this.rows, 'the row is held');
    return seq & (this.slots - 1);
  }

  /** Sequence number of the row in `slot` (held rows are the `rows` after `firstSeq`). */
  private seqOfSlot(slot: number): number {
    const firstSlot = this.firstSeq & (this.slots - 1);
    return this.firstSeq + ((slot - firstSlot + this.slots) & (this.slots - 1));
  }

  private dropOldest(): void {
    this.firstSeq++;
    this.rows--;
    if (this.rows === 0) this.releaseAllBytes();
    else this.releaseChunksBefore(this.chunkOf[this.firstSeq & (this.slots - 1)]!);
    this.shrinkIfSparse();
  }

  private dropNewest(): void {
    const slot = (this.firstSeq + this.rows - 1) & (this.slots - 1);
    this.rows--;
    if (this.rows === 0) {
      this.releaseAllBytes();
    } else {
      // The next id goes where this one began; chunks after it are empty now.
      this.writeChunk = this.chunkOf[slot]!;
      this.writeAt = this.byteAt[slot]!;
      this.chunks.length = this.writeChunk - this.firstChunk + 1;
    }
    this.shrinkIfSparse();
  }

  private releaseAllBytes(): void {
    this.chunks = [];
    this.firstChunk = this.writeChunk + 1;
    this.writeChunk = this.firstChunk;
    this.writeAt = ID_TABLE_CHUNK_BYTES;
  }

  private releaseChunksBefore(chunkNumber: number): void {
    if (chunkNumber > this.firstChunk) {
      this.chunks.splice(0, chunkNumber - this.firstChunk);
      this.firstChunk = chunkNumber;
    }
  }

  /** Room for `length` bytes at the write position, in a new chunk if the current one is full. */
  private reserveBytes(length: number): void {
    const current = this.chunks[this.writeChunk - this.firstChunk];
    if (current !== undefined && this.writeAt + length <= current.length) return;
    if (this.chunks.length > 0) this.writeChunk++;
    this.chunks.push(Buffer.allocUnsafeSlow(Math.max(ID_TABLE_CHUNK_BYTES, length)));
    this.firstChunk = this.writeChunk - this.chunks.length + 1;
    this.writeAt = 0;
  }

  private shrinkIfSparse(): void {
    if (this.slots > ID_TABLE_SLOTS_MIN && this.rows * 4 < this.slots) this.resize(this.slots / 2);
  }

  private encode(id: string): number {
    const length = Buffer.byteLength(id, 'utf8');
    if (length > this.scratch.length) this.scratch = Buffer.allocUnsafe(Math.max(length, this.scratch.length * 2));
    return this.scratch.write(id, 0, 'utf8');
  }

  private sameBytes(slot: number, source: Uint8Array, start: number, end: number): boolean {
    const length = this.byteLength[slot]!;
    if (length !== end - start) return false;
    const chunk = this.chunks[this.chunkOf[slot]! - this.firstChunk]!;
    const at = this.byteAt[slot]!;
    for (let i = 0; i < length; i++) if (chunk[at + i] !== source[start + i]) return false;
    return true;
  }

  private allocRows(slots: number) {
    return {
      columns: Array.from({ length: this.columnCount }, () => new Float64Array(slots)),
      chunkOf: new Int32Array(slots),
      byteAt: new Int32Array(slots),
      byteLength: new Int32Array(slots),
      hashes: new Int32Array(slots),
      live: new Uint8Array(slots),
    };
  }

  /** Moves every row to a table of `slots` slots (each row's slot follows from its sequence number). */
  private resize(slots: number): void {
    const next = this.allocRows(slots);
    for (let seq = this.firstSeq; seq < this.firstSeq + this.rows; seq++) {
      const from = seq & (this.slots - 1);
      const to = seq & (slots - 1);
      for (let column = 0; column < this.columnCount; column++) next.columns[column]![to] = this.columns[column]![from]!;
      next.chunkOf[to] = this.chunkOf[from]!;
      next.byteAt[to] = this.byteAt[from]!;
      next.byteLength[to] = this.byteLength[from]!;
      next.hashes[to] = this.hashes[from]!;
      next.live[to] = this.live[from]!;
    }
    ({ columns: this.columns, chunkOf: this.chunkOf, byteAt: this.byteAt, byteLength: this.byteLength, hashes: this.hashes, live: this.live } = next);
    this.slots = slots;
    this.index = new Int32Array(2 * slots);
    for (let seq = this.firstSeq; seq < this.firstSeq + this.rows; seq++) {
      const slot = seq & (slots - 1);
      if (this.live[slot] === 1) this.insertIndex(slot, this.hashes[slot]!);
    }
  }

  private insertIndex(slot: number, hash: number): void {
    const mask = this.index.length - 1;
    let probe = hash & mask;
    while (this.index[probe] !== EMPTY) probe = (probe + 1) & mask;
    this.index[probe] = slot + 1;
  }

  /** Removes `slot` from the index, shifting back the entries after it (no tombstones). */
  private removeIndex(slot: number): void {
    const mask = this.index.length - 1;
    let hole = this.hashes[slot]! & mask;
    while (this.index[hole] !== slot + 1) {
      assert.ok(this.index[hole] !== EMPTY, 'a live row is in the index');
      hole = (hole + 1) & mask;
    }
    for (let probe = (hole + 1) & mask; this.index[probe] !== EMPTY; probe = (probe + 1) & mask) {
      const home = this.hashes[this.index[probe]! - 1]! & mask;
      // The entry at `probe` may move into the hole unless its home lies in (hole, probe].
      const homeAfterHole = hole <= probe ? home > hole && home <= probe : home > hole || home <= probe;
      if (!homeAfterHole) {
        this.index[hole] = this.index[probe]!;
        hole = probe;
      }
    }
    this.index[hole] = EMPTY;
  }
}

/** FNV-1a over the bytes, then mixed so that the low bits (the index's) depend on all of them. */
function hashBytes(source: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ source[i]!, 0x01000193);
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  return hash | 0;
}
