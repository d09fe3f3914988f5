/**
 * The one error type of the etcd client. etcd errors never reach Ferry's wire (the broker turns them
 * into its own refusals), so they have codes of their own rather than wire numbers in
 * src/errors.ts; the codes are stable and listed in docs/CLUSTERING.md ("etcd client").
 */

export const ETCD_ERROR_CODES = {
  /** No endpoint accepted a connection within the call's time: nothing was sent. */
  ETCD_UNREACHABLE: { retryable: true },
  /** An endpoint took the request but gave no complete answer in time (or dropped the connection). */
  ETCD_TIMEOUT: { retryable: true },
  /** etcd answered that it cannot serve now: no leader, leader changed, overloaded, request timed out. */
  ETCD_UNAVAILABLE: { retryable: true },
  /** etcd refused the request: a bad argument, a permission, a precondition. Retrying it as is fails again. */
  ETCD_REJECTED: { retryable: false },
  /** The lease does not exist (expired, revoked, or never granted). */
  ETCD_LEASE_NOT_FOUND: { retryable: false },
  /** The revision asked for is older than etcd's last compaction: read the current state instead. */
  ETCD_COMPACTED: { retryable: false },
  /** The answer was not what the gateway sends (not JSON, a field of the wrong type, too large). */
  ETCD_BAD_RESPONSE: { retryable: false },
  /**
   * The TLS handshake failed: etcd's certificate is not signed by the CA given, or etcd refused
   * this client's certificate (or its absence). Nothing was sent; trying again fails the same way
   * until the certificates change.
   */
  ETCD_TLS_FAILED: { retryable: false },
  /** The client, watch or keeper was closed. */
  ETCD_CLOSED: { retryable: false },
} as const;

export type EtcdErrorCode = keyof typeof ETCD_ERROR_CODES;

export interface EtcdErrorOptions {
  cause?: unknown;
  /** The endpoint that answered or failed, when one did. */
  endpoint?: string;
  /** The gRPC status code etcd answered with, when it answered with an error. */
  grpcCode?: number;
  /**
   * The request reached an endpoint before it failed, so a write (put, delete, txn, grant, revoke)
   * may have been applied. A compare-and-swap caller re-reads before deciding.
   */
  mayHaveApplied?: boolean;
}

export class EtcdError extends Error {
  readonly code: EtcdErrorCode;
  readonly endpoint: string | undefined;
  readonly grpcCode: number | undefined;
  readonly mayHaveApplied: boolean;

  constructor(code: EtcdErrorCode, message: string, options: EtcdErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EtcdError';
    this.code = code;
    this.endpoint = options.endpoint;
    this.grpcCode = options.grpcCode;
    this.mayHaveApplied = options.mayHaveApplied ?? false;
  }

  /** The same request may succeed later (etcd unreachable or unavailable), as opposed to rejected. */
  get retryable(): boolean {
    return ETCD_ERROR_CODES[this.code].retryable;
  }
}

export function isEtcdError(error: unknown, code?: EtcdErrorCode): error is EtcdError {
  return error instanceof EtcdError && (code === undefined || error.code === code);
}

/** gRPC status codes etcd answers with (google.golang.org/grpc/codes). */
const GRPC_NOT_FOUND = 5;
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_RESOURCE_EXHAUSTED = 8;
const GRPC_ABORTED = 10;
const GRPC_OUT_OF_RANGE = 11;
const GRPC_UNAVAILABLE = 14;

/** etcd's messages for the two refusals callers handle on their own (api/v3rpc/rpctypes). */
const LEASE_NOT_FOUND_MESSAGE = 'requested lease not found';
const COMPACTED_MESSAGE = 'required revision has been compacted';
/** Refusals etcd gives before proposing anything: "no leader" (asked with `hasleader`), "too many requests". */
const NOT_PROPOSED_MESSAGES = ['etcdserver: no leader', 'etcdserver: too many requests'];

/** The typed error for an error answer of the gateway: `{"error", "message", "code"}`. */
export function errorFromAnswer(grpcCode: number, message: string, endpoint: string): EtcdError {
  const options = { endpoint, grpcCode };
  if (grpcCode === GRPC_NOT_FOUND && message.includes(LEASE_NOT_FOUND_MESSAGE)) {
    return new EtcdError('ETCD_LEASE_NOT_FOUND', `etcd: ${message}`, options);
  }
  if (grpcCode === GRPC_OUT_OF_RANGE && message.includes(COMPACTED_MESSAGE)) {
    return new EtcdError('ETCD_COMPACTED', `etcd: ${message}`, options);
  }
  const transient = [GRPC_UNAVAILABLE, GRPC_DEADLINE_EXCEEDED, GRPC_RESOURCE_EXHAUSTED, GRPC_ABORTED].includes(grpcCode);
  if (!transient) return new EtcdError('ETCD_REJECTED', `etcd rejected the request: ${message}`, options);
  // Most transient refusals may come after the proposal went to raft ("request timed out"); these
  // two are answered before anything is proposed.
  const refusedBeforeProposal = NOT_PROPOSED_MESSAGES.some((text) => message.includes(text));
  return new EtcdError('ETCD_UNAVAILABLE', `etcd at ${endpoint} cannot serve now: ${message}`, { ...options, mayHaveApplied: !refusedBeforeProposal });
}
