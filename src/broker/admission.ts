/**
 * Admission control for publishes: when the broker's memory passes its high watermark, or the
 * data disk's free space falls below its low watermark, publishes are refused with a typed,
 * retryable error (BROKER_BUSY, DISK_FULL) instead of the process growing until it is killed or
 * the disk filling until appends fail. Both are sampled on a timer, so the check on the publish
 * path is two comparisons.
 *
 * Reference points: RabbitMQ blocks publishers at 40% of RAM (vm_memory_high_watermark 0.4) and at
 * 50 MB of free disk (disk_free_limit); NATS limits JetStream by max_memory_store/max_file_store.
 */
import { totalmem } from 'node:os';
import type { Clock, TimerHandle } from '../platform/clock.js';
import type { FileSystem } from '../platform/fs.js';
import type { Logger } from '../platform/logger.js';
import { FerryError } from '../errors.js';

export const DEFAULT_MEMORY_HIGH_WATERMARK_FRACTION = 0.4;
/** Free disk below which publishes are refused: room for recovery, checkpoints and group journals. */
export const DEFAULT_DISK_FREE_LOW_BYTES = 64 * 1024 * 1024;
export const ADMISSION_SAMPLE_INTERVAL_MS = 1000;

export interface AdmissionOptions {
  /** Resident memory (bytes) above which publishes get BROKER_BUSY; default 40% of RAM. */
  memoryHighWatermarkBytes?: number;
  /** Free bytes on the data disk below which publishes get DISK_FULL; 0 turns the check off. */
  diskFreeLowBytes?: number;
}

export class Admission {
  private memoryHigh = false;
  private diskLow = false;
  private timer: TimerHandle | null = null;
  private sampling = false;
  private readonly memoryHighWatermarkBytes: number;
  private readonly diskFreeLowBytes: number;

  constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
    options: AdmissionOptions = {},
    private readonly residentBytes: () => number = () => process.memoryUsage.rss(),
  ) {
    this.memoryHighWatermarkBytes = options.memoryHighWatermarkBytes ?? Math.floor(totalmem() * DEFAULT_MEMORY_HIGH_WATERMARK_FRACTION);
    this.diskFreeLowBytes = options.diskFreeLowBytes ?? DEFAULT_DISK_FREE_LOW_BYTES;
  }

  start(): void {
    void this.sample();
  }

  /** Throws the typed error when publishes must wait. */
  check(): void {
    if (this.memoryHigh) throw new FerryError('BROKER_BUSY', 'the broker is above its memory high watermark; retry later');
    if (this.diskLow) throw new FerryError('DISK_FULL', 'the data disk is below its free-space low watermark; retry once space is freed');
  }

  async sample(): Promise<void> {
    if (this.sampling) return;
    this.sampling = true;
    try {
      const resident = this.residentBytes();
      this.setMemoryHigh(resident > this.memoryHighWatermarkBytes, resident);
      if (this.diskFreeLowBytes > 0) {
        const free = await this.fs.freeBytes(this.dir);
        this.setDiskLow(free < this.diskFreeLowBytes, free);
      }
    } catch (error) {
      this.logger.error('broker.admission.sample_failed', { error });
    } finally {
      this.sampling = false;
      this.timer = this.clock.schedule(ADMISSION_SAMPLE_INTERVAL_MS, () => void this.sample());
    }
  }

  private setMemoryHigh(high: boolean, residentBytes: number): void {
    if (high === this.memoryHigh) return;
    this.memoryHigh = high;
    const event = high ? 'broker.memory_high.entered' : 'broker.memory_high.left';
    this.logger.warn(event, { residentBytes, watermarkBytes: this.memoryHighWatermarkBytes });
  }

  private setDiskLow(low: boolean, freeBytes: number): void {
    if (low === this.diskLow) return;
    this.diskLow = low;
    const event = low ? 'broker.disk_low.entered' : 'broker.disk_low.left';
    this.logger.warn(event, { freeBytes, watermarkBytes: this.diskFreeLowBytes });
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = null;
  }
}
