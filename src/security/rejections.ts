/**
 * Counts every refusal the broker process sends a client, by error code and transport, for the
 * `ferry_rejections_total{code,transport}` metric: TCP counts each ERROR frame and refused
 * connection, the HTTP port (admin API and gRPC) its authentication and authorization refusals.
 */
import type { ErrorCode } from '../errors.js';

export type Transport = 'tcp' | 'http';

export interface RejectionCount {
  code: ErrorCode;
  transport: Transport;
  count: number;
}

export class Rejections {
  /** Per transport, per code: at most (transports × codes) entries. Counted per refusal, so no key strings are built. */
  private readonly counts: Record<Transport, Map<ErrorCode, RejectionCount>> = { tcp: new Map(), http: new Map() };

  count(code: ErrorCode, transport: Transport): void {
    const byCode = this.counts[transport];
    const entry = byCode.get(code);
    if (entry === undefined) byCode.set(code, { code, transport, count: 1 });
    else entry.count++;
  }

  entries(): RejectionCount[] {
    return [...this.counts.tcp.values(), ...this.counts.http.values()].map((entry) => ({ ...entry }));
  }

  /** The count for one code (summed over transports unless one is named); for tests and logs. */
  of(code: ErrorCode, transport?: Transport): number {
    return (transport === undefined || transport === 'tcp' ? this.counts.tcp.get(code)?.count ?? 0 : 0) + (transport === undefined || transport === 'http' ? this.counts.http.get(code)?.count ?? 0 : 0);
  }
}
