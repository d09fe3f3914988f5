/**
 * Counts every refusal the broker process sends a client, by error code and transport, for the
 * `ferry_rejections_total{code,transport}` metric: TCP counts each ERROR frame and refused
 * connection, the HTTP port (admin API and gRPC) its authentication and authorization refusals.
 */
import type { ErrorCode } from '../protocol/errors.js';

export type Transport = 'tcp' | 'http';

export interface RejectionCount {
  code: ErrorCode;
  transport: Transport;
  count: number;
}

export class Rejections {
  /** Keyed by `${transport} ${code}`: at most (codes × transports) entries. */
  private readonly counts = new Map<string, RejectionCount>();

  count(code: ErrorCode, transport: Transport): void {
    const key = `${transport} ${code}`;
    const entry = this.counts.get(key);
    if (entry === undefined) this.counts.set(key, { code, transport, count: 1 });
    else entry.count++;
  }

  entries(): RejectionCount[] {
    return [...this.counts.values()].map((entry) => ({ ...entry }));
  }

  /** The count for one code (summed over transports unless one is named); for tests and logs. */
  of(code: ErrorCode, transport?: Transport): number {
    let total = 0;
    for (const entry of this.counts.values()) if (entry.code === code && (transport === undefined || entry.transport === transport)) total += entry.count;
    return total;
  }
}
