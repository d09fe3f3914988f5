/**
 * Sends a gateway call to etcd's endpoints in turn until one answers or the call's time is up, and
 * remembers whether etcd was reachable (the `etcdUp` health view).
 *
 * The retry policy follows etcd's own Go client: a read (and a lease keepalive, which changes nothing
 * but the lease's deadline) is sent to the next endpoint after any failure that may be passing
 * (refused, timed out, cut off, "no leader"); a write is sent elsewhere only when it provably never
 * left (the connection was refused), because a write that timed out may still be applied, and
 * applying a compare-and-swap twice, or reporting failure for one that succeeded, is for the caller to
 * rule out by reading again. A write refused before etcd proposed it ("no leader") is sent on too.
 */
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { EtcdConnector } from './connector.js';
import { EtcdError, isEtcdError } from './errors.js';
import type { Endpoint } from './endpoint.js';
import { AttemptFailure, postJson } from './http.js';
import { ATTEMPT_TIMEOUT_MS_MIN, RETRY_PAUSE_MS } from './limits.js';

export interface CallOptions {
  /** Safe to send again after it may have reached etcd (reads, keepalives). */
  idempotent: boolean;
  timeoutMs: number;
}

/**
 * gRPC metadata (`hasleader`) asking a member without a raft leader to refuse at once ("no leader",
 * nothing proposed) instead of holding the request until its own timeout: then the next member is tried.
 */
export const REQUIRE_LEADER_HEADER: Readonly<Record<string, string>> = { 'Grpc-Metadata-hasleader': 'true' };

export interface EtcdHealth {
  /** The last call reached etcd and was served or refused on its merits (not "unavailable"). */
  up: boolean;
  /** The endpoint calls go to first. */
  endpoint: string;
  /** Why the last failed call failed, while down. */
  lastError: EtcdError | undefined;
}

export class Caller {
  /** Index of the endpoint tried first: the last one that answered. */
  private preferred = 0;
  private upValue = true;
  private lastError: EtcdError | undefined = undefined;
  private closed = false;

  constructor(
    readonly endpoints: readonly Endpoint[],
    /** How requests reach an endpoint (http, or https with the TLS options); the watch streams use it too. */
    readonly connector: EtcdConnector,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  get health(): EtcdHealth {
    return { up: this.upValue, endpoint: this.endpoints[this.preferred]!.url, lastError: this.upValue ? undefined : this.lastError };
  }

  /** The endpoint a stream should use: the preferred one, after moving past `failed` if it still is. */
  streamEndpoint(failed?: { endpoint: Endpoint; reason: string }): Endpoint {
    if (failed !== undefined) this.rotate(failed.endpoint, new Error(failed.reason));
    return this.endpoints[this.preferred]!;
  }

  async call(path: string, body: unknown, options: CallOptions): Promise<unknown> {
    const deadline = this.clock.monotonicMs() + options.timeoutMs;
    const attemptMs = Math.max(ATTEMPT_TIMEOUT_MS_MIN, options.timeoutMs / this.endpoints.length);
    let lastFailure: AttemptFailure | EtcdError | Error | undefined = undefined;
    let sentSomewhere = false;
    for (;;) {
      let tlsRefused = 0;
      for (let tried = 0; tried < this.endpoints.length; tried++) {
        const remainingMs = deadline - this.clock.monotonicMs();
        if (remainingMs <= 0) return this.fail(this.giveUp(path, lastFailure, sentSomewhere, options));
        if (this.closed) throw new EtcdError('ETCD_CLOSED', 'the etcd client is closed');
        const endpoint = this.endpoints[this.preferred]!;
        try {
          const answer = await postJson(endpoint, path, body, {
            connector: this.connector,
            clock: this.clock,
            // A write that left cannot be sent elsewhere, so it may use all the time left.
            timeoutMs: options.idempotent ? Math.min(attemptMs, remainingMs) : remainingMs,
            headers: REQUIRE_LEADER_HEADER,
          });
          this.markUp();
          return answer;
        } catch (error) {
          if (this.closed) throw new EtcdError('ETCD_CLOSED', 'the etcd client is closed', { cause: error });
          const verdict = this.classify(error, endpoint, options);
          if (verdict.passing) this.rotate(endpoint, verdict.failure);
          if (!verdict.tryNext) throw verdict.failure instanceof EtcdError ? this.settle(verdict.failure) : verdict.failure;
          const failure = verdict.failure;
          if (isEtcdError(failure, 'ETCD_TLS_FAILED')) tlsRefused += 1;
          if (failure instanceof AttemptFailure && failure.sent) sentSomewhere = true;
          // An attempt the deadline cut short before it connected says less than the failure before it.
          const cutShort = failure instanceof AttemptFailure && failure.timedOut && !failure.sent;
          if (!cutShort || lastFailure === undefined) lastFailure = failure;
        }
      }
      // Every endpoint refused the TLS handshake: waiting out the call's time would change nothing.
      if (tlsRefused === this.endpoints.length && lastFailure instanceof EtcdError) return this.fail(lastFailure);
      await this.pause(Math.min(RETRY_PAUSE_MS, deadline - this.clock.monotonicMs()));
    }
  }

  /**
   * What a failed attempt means: `passing` when the endpoint may serve again later (so the next call
   * starts elsewhere), `tryNext` when this call may go on to the next endpoint.
   */
  private classify(error: unknown, endpoint: Endpoint, options: CallOptions): { failure: AttemptFailure | EtcdError | Error; passing: boolean; tryNext: boolean } {
    // A refused handshake sent nothing; another member may hold a certificate that verifies.
    if (isEtcdError(error, 'ETCD_TLS_FAILED')) return { failure: error, passing: true, tryNext: true };
    if (isEtcdError(error)) {
      const passing = error.code === 'ETCD_UNAVAILABLE';
      return { failure: error, passing, tryNext: passing && (options.idempotent || !error.mayHaveApplied) };
    }
    if (!(error instanceof AttemptFailure)) return { failure: error as Error, passing: false, tryNext: false };
    if (!error.sent || options.idempotent) return { failure: error, passing: true, tryNext: true };
    const what = error.timedOut ? 'did not answer in time' : 'dropped the connection';
    const failure = new EtcdError('ETCD_TIMEOUT', `etcd at ${endpoint.url} ${what}; the write may have been applied`, { cause: error, endpoint: endpoint.url, mayHaveApplied: true });
    return { failure, passing: true, tryNext: false };
  }

  /** Records the outcome of a call that ends with `error` and returns it. */
  private settle(error: EtcdError): EtcdError {
    if (error.retryable) this.fail(error);
    this.markUp();
    return error;
  }

  /** The error of a call whose time ran out: the last refusal, else a timeout if any member took the request. */
  private giveUp(path: string, last: AttemptFailure | EtcdError | Error | undefined, sentSomewhere: boolean, options: CallOptions): EtcdError {
    if (last instanceof EtcdError) return last;
    const tried = this.endpoints.map((endpoint) => endpoint.url).join(', ');
    const why = last === undefined ? 'no attempt fitted in the time' : last.message;
    if (sentSomewhere) {
      // Only reads are sent on after they left, so nothing here may have been applied.
      return new EtcdError('ETCD_TIMEOUT', `etcd did not answer ${path} within ${options.timeoutMs} ms (tried ${tried}): ${why}`, { cause: last });
    }
    return new EtcdError('ETCD_UNREACHABLE', `no etcd endpoint reachable within ${options.timeoutMs} ms (tried ${tried}): ${why}`, { cause: last });
  }

  private rotate(failed: Endpoint, why: Error | undefined): void {
    if (this.endpoints[this.preferred] !== failed) return;
    this.preferred = (this.preferred + 1) % this.endpoints.length;
    if (this.endpoints.length > 1) {
      this.logger.warn('cluster.etcd.endpoint_failed', { endpoint: failed.url, next: this.endpoints[this.preferred]!.url, reason: why?.message });
    }
  }

  private markUp(): void {
    if (!this.upValue) this.logger.info('cluster.etcd.up', { endpoint: this.endpoints[this.preferred]!.url });
    this.upValue = true;
    this.lastError = undefined;
  }

  private fail(error: EtcdError): never {
    if (this.upValue) this.logger.warn('cluster.etcd.down', { error });
    this.upValue = false;
    this.lastError = error;
    throw error;
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => this.clock.schedule(Math.max(0, ms), resolve));
  }

  close(): void {
    this.closed = true;
    this.connector.close();
  }
}
