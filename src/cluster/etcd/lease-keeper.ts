/**
 * Keeps one lease alive: a keepalive every TTL/3, and a report when the lease is lost, once. Lost
 * means etcd said the lease is gone (expired or revoked), or no keepalive got through for a whole TTL
 * counted from the last one that did (so etcd may have expired it meanwhile: the holder must act as
 * if it had). The deadline is counted from when the successful keepalive was *sent*, which is never
 * later than when etcd renewed the lease, so the report never comes after the real expiry (clock
 * rates being equal).
 */
import type { TimerHandle } from '../../platform/clock.js';
import type { CallTimeout, EtcdClient, Lease } from './client.js';
import { isEtcdError } from './errors.js';
import { LEASE_RENEWALS_PER_TTL } from './limits.js';
import type { LeaseId } from './wire.js';

export interface LeaseLoss {
  reason: 'expired' | 'unreachable';
  /** The last error of a keepalive, if one failed. */
  error: Error | undefined;
}

/** The client calls the keeper makes (an interface so a test can stand in for etcd's answers). */
export interface LeaseRenewer {
  readonly clock: EtcdClient['clock'];
  readonly logger: EtcdClient['logger'];
  keepAlive(id: LeaseId, options?: CallTimeout): Promise<{ ttlSec: number }>;
}

export class LeaseKeeper {
  private lostValue: LeaseLoss | undefined = undefined;
  private stopped = false;
  private aliveUntilMs: number;
  private expiryTimer: TimerHandle | undefined = undefined;
  private renewTimer: TimerHandle | undefined = undefined;
  private inFlight: Promise<void> | undefined = undefined;
  private lastError: Error | undefined = undefined;
  private readonly intervalMs: number;

  constructor(
    private readonly client: LeaseRenewer,
    readonly lease: Lease,
    private readonly onLost: (loss: LeaseLoss) => void,
  ) {
    this.intervalMs = (lease.ttlSec * 1000) / LEASE_RENEWALS_PER_TTL;
    this.aliveUntilMs = lease.sentAtMs + lease.ttlSec * 1000;
    this.armExpiry();
    this.scheduleRenewal(lease.sentAtMs + this.intervalMs);
  }

  /** How the lease was lost, once it was. */
  get lost(): LeaseLoss | undefined {
    return this.lostValue;
  }

  /** Monotonic time until which the lease is known to be alive. */
  get aliveUntil(): number {
    return this.aliveUntilMs;
  }

  /** Stops renewing (the lease then expires after its TTL unless revoked); waits for a keepalive in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.expiryTimer?.cancel();
    this.renewTimer?.cancel();
    await this.inFlight;
  }

  private scheduleRenewal(atMs: number): void {
    if (this.stopped) return;
    const delayMs = Math.max(0, atMs - this.client.clock.monotonicMs());
    this.renewTimer = this.client.clock.schedule(delayMs, () => {
      this.inFlight = this.renew().finally(() => (this.inFlight = undefined));
    });
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    const sentAtMs = this.client.clock.monotonicMs();
    try {
      const { ttlSec } = await this.client.keepAlive(this.lease.id, { timeoutMs: this.intervalMs });
      if (this.stopped) return;
      this.aliveUntilMs = Math.max(this.aliveUntilMs, sentAtMs + ttlSec * 1000);
      this.lastError = undefined;
      this.armExpiry();
    } catch (error) {
      if (this.stopped) return;
      this.lastError = error instanceof Error ? error : new Error(String(error));
      if (isEtcdError(error, 'ETCD_LEASE_NOT_FOUND')) {
        this.lose('expired');
        return;
      }
      this.client.logger.warn('cluster.etcd.lease_renew_failed', { lease: this.lease.id, error, aliveForMs: Math.round(this.aliveUntilMs - this.client.clock.monotonicMs()) });
    }
    this.scheduleRenewal(sentAtMs + this.intervalMs);
  }

  private armExpiry(): void {
    this.expiryTimer?.cancel();
    const delayMs = Math.max(0, this.aliveUntilMs - this.client.clock.monotonicMs());
    this.expiryTimer = this.client.clock.schedule(delayMs, () => {
      // A renewal that got through moved the deadline; the timer may have been due before it.
      if (this.client.clock.monotonicMs() >= this.aliveUntilMs) this.lose('unreachable');
      else this.armExpiry();
    });
  }

  private lose(reason: LeaseLoss['reason']): void {
    if (this.stopped) return;
    this.stopped = true;
    this.expiryTimer?.cancel();
    this.renewTimer?.cancel();
    this.lostValue = { reason, error: this.lastError };
    this.client.logger.warn('cluster.etcd.lease_lost', { lease: this.lease.id, reason, error: this.lastError });
    try {
      this.onLost(this.lostValue);
    } catch (error) {
      this.client.logger.error('cluster.etcd.lease_lost_handler_failed', { lease: this.lease.id, error });
    }
  }
}
