/**
 * Every error Ferry reports has a stable code: a name for programs and people, and a number on the
 * wire. `fatal` means "the connection is closed after this error" (a protocol violation); other
 * errors fail one request and leave the connection usable. docs/ERRORS.md lists every code, and
 * test/errors-doc.test.ts keeps the two in step. Every layer and the client use it, so it sits at
 * the bottom of src/ and imports nothing.
 */
export const ERROR_CODES = {
  // Requests and arguments
  INVALID_ARGUMENT: { wire: 1, fatal: false, retryable: false },
  UNKNOWN_TOPIC: { wire: 2, fatal: false, retryable: false },
  TOPIC_EXISTS: { wire: 3, fatal: false, retryable: false },
  UNKNOWN_GROUP: { wire: 4, fatal: false, retryable: false },
  UNKNOWN_SUBSCRIPTION: { wire: 5, fatal: false, retryable: false },
  UNKNOWN_DELIVERY: { wire: 6, fatal: false, retryable: false },
  /** An HTTP path that names nothing (the admin port); topics and groups have codes of their own. */
  NOT_FOUND: { wire: 7, fatal: false, retryable: false },
  // Limits on what one record may hold
  RECORD_TOO_LARGE: { wire: 20, fatal: false, retryable: false },
  KEY_TOO_LARGE: { wire: 21, fatal: false, retryable: false },
  HEADERS_TOO_LARGE: { wire: 22, fatal: false, retryable: false },
  BATCH_TOO_LARGE: { wire: 23, fatal: false, retryable: false },
  // Storage
  DISK_FULL: { wire: 40, fatal: false, retryable: true },
  STORAGE_FAILED: { wire: 41, fatal: false, retryable: false },
  CORRUPT_RANGE: { wire: 42, fatal: false, retryable: false },
  OFFSET_OUT_OF_RANGE: { wire: 43, fatal: false, retryable: false },
  LOG_CLOSED: { wire: 44, fatal: false, retryable: true },
  DATA_DIR_LOCKED: { wire: 45, fatal: false, retryable: false },
  // Security
  AUTH_REQUIRED: { wire: 10, fatal: true, retryable: false },
  AUTH_FAILED: { wire: 11, fatal: true, retryable: false },
  FORBIDDEN: { wire: 12, fatal: false, retryable: false },
  RATE_LIMITED: { wire: 13, fatal: false, retryable: true },
  TOO_MANY_CONNECTIONS: { wire: 14, fatal: true, retryable: true },
  // Broker state
  BROKER_CLOSING: { wire: 60, fatal: false, retryable: true },
  BROKER_BUSY: { wire: 61, fatal: false, retryable: true },
  TOO_MANY_SUBSCRIPTIONS: { wire: 62, fatal: false, retryable: false },
  // Cluster
  NOT_LEADER: { wire: 63, fatal: false, retryable: true },
  NOT_ENOUGH_REPLICAS: { wire: 64, fatal: false, retryable: true },
  STALE_EPOCH: { wire: 65, fatal: false, retryable: true },
  // Protocol violations: the connection is closed after the error frame
  BAD_MAGIC: { wire: 80, fatal: true, retryable: false },
  UNSUPPORTED_VERSION: { wire: 81, fatal: true, retryable: false },
  UNKNOWN_FRAME_TYPE: { wire: 82, fatal: true, retryable: false },
  FRAME_TOO_LARGE: { wire: 83, fatal: true, retryable: false },
  MALFORMED_FRAME: { wire: 84, fatal: true, retryable: false },
  HANDSHAKE_REQUIRED: { wire: 85, fatal: true, retryable: false },
  HEARTBEAT_TIMEOUT: { wire: 86, fatal: true, retryable: false },
  SLOW_CONSUMER: { wire: 87, fatal: true, retryable: false },
  // Client side: no wire use, but typed like the rest
  CONNECTION_CLOSED: { wire: 100, fatal: true, retryable: true },
  CONNECTION_REFUSED: { wire: 101, fatal: true, retryable: true },
  TIMEOUT: { wire: 102, fatal: false, retryable: true },
  INTERNAL: { wire: 127, fatal: false, retryable: false },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

const CODE_BY_WIRE = new Map<number, ErrorCode>(
  (Object.keys(ERROR_CODES) as ErrorCode[]).map((code) => [ERROR_CODES[code].wire, code]),
);

export function errorCodeFromWire(wire: number): ErrorCode {
  return CODE_BY_WIRE.get(wire) ?? 'INTERNAL';
}

export interface FerryErrorOptions {
  cause?: unknown;
  /** Extra machine-readable detail (e.g. the damaged offset range for CORRUPT_RANGE). */
  detail?: Record<string, unknown>;
}

export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly detail: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.detail = options.detail;
  }

  /** The connection is closed after this error. */
  get fatal(): boolean {
    return ERROR_CODES[this.code].fatal;
  }

  /** The same request may succeed if tried again later. */
  get retryable(): boolean {
    return ERROR_CODES[this.code].retryable;
  }
}

export function isFerryError(error: unknown, code?: ErrorCode): error is FerryError {
  return error instanceof FerryError && (code === undefined || error.code === code);
}
