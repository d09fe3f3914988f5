/**
 * Which offsets of one partition a group has settled (acknowledged). Acks may come out of order,
 * so the state is a floor (every offset below it is settled) plus the settled offsets above it.
 * The set above the floor is bounded by what is in flight: the floor advances as soon as the
 * oldest outstanding message is settled.
 */
import assert from 'node:assert/strict';

export class AckSet {
  private floor: number;
  private readonly above = new Set<number>();

  constructor(floor: number, settledAbove: Iterable<number> = []) {
    assert.ok(Number.isSafeInteger(floor));
    assert.ok(floor >= 0);
    this.floor = floor;
    for (const offset of settledAbove) this.settle(offset);
  }

  /** Every offset below this is settled. */
  get ackFloor(): number {
    return this.floor;
  }

  /** Settled offsets at or above the floor, ascending. */
  settledAboveFloor(): number[] {
    return [...this.above].sort((a, b) => a - b);
  }

  get settledAboveCount(): number {
    return this.above.size;
  }

  isSettled(offset: number): boolean {
    return offset < this.floor || this.above.has(offset);
  }

  /** Marks `offset` settled; returns false when it already was. */
  settle(offset: number): boolean {
    if (this.isSettled(offset)) return false;
    if (offset === this.floor) {
      this.floor += 1;
      while (this.above.delete(this.floor)) this.floor += 1;
    } else {
      this.above.add(offset);
    }
    return true;
  }

  /** Moves the floor up to `offset` (e.g. retention deleted what was below it). */
  raiseFloor(offset: number): void {
    if (offset <= this.floor) return;
    for (const settled of this.above) if (settled < offset) this.above.delete(settled);
    this.floor = offset;
    while (this.above.delete(this.floor)) this.floor += 1;
  }

  /**
   * Forgets every settlement at or above `endOffset`, the floor included: the log ends there
   * (it lost its tail), so those offsets will be given to new messages. Returns how many settled
   * offsets were forgotten.
   */
  truncateAt(endOffset: number): number {
    assert.ok(Number.isSafeInteger(endOffset));
    assert.ok(endOffset >= 0);
    let forgotten = 0;
    for (const settled of this.above) {
      if (settled < endOffset) continue;
      this.above.delete(settled);
      forgotten += 1;
    }
    if (this.floor > endOffset) {
      forgotten += this.floor - endOffset;
      this.floor = endOffset;
    }
    return forgotten;
  }
}
