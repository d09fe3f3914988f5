/**
 * Picks a partition for a message: a keyed message goes to CRC32C(key) mod partitions, so the
 * same key always lands on the same partition (and keeps its order); unkeyed messages rotate.
 * The hash is part of the on-disk contract: changing it would reorder existing keys.
 */
import { crc32c } from '../storage/crc32c.js';

export class Partitioner {
  private nextUnkeyed = 0;

  constructor(private readonly partitions: number) {}

  partitionFor(key: Buffer | null | undefined): number {
    if (this.partitions === 1) return 0;
    if (key !== null && key !== undefined && key.length > 0) return crc32c(key) % this.partitions;
    const partition = this.nextUnkeyed;
    this.nextUnkeyed = (partition + 1) % this.partitions;
    return partition;
  }
}
