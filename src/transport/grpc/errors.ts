/**
 * Ferry errors as gRPC statuses: every Ferry code maps to the gRPC code a generic client should
 * react to (retry, fix the request, give up), and the Ferry code itself travels in a
 * ferry.v1.ErrorDetail in the status details. docs/GRPC.md has the table; the Record type below
 * makes a new Ferry code a compile error until it is mapped.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import type { JsonObject } from '@bufbuild/protobuf';
import type { Logger } from '../../platform/logger.js';
import { ERROR_CODES, FerryError, isFerryError, type ErrorCode } from '../../errors.js';
import { ErrorDetailSchema, type ErrorDetail } from '../../generated/ferry/v1/errors_pb.js';
import { create } from '@bufbuild/protobuf';

export const STATUS_BY_FERRY_CODE: Readonly<Record<ErrorCode, Code>> = {
  INVALID_ARGUMENT: Code.InvalidArgument,
  UNKNOWN_TOPIC: Code.NotFound,
  TOPIC_EXISTS: Code.AlreadyExists,
  UNKNOWN_GROUP: Code.NotFound,
  UNKNOWN_SUBSCRIPTION: Code.NotFound,
  UNKNOWN_DELIVERY: Code.NotFound,
  NOT_FOUND: Code.NotFound,
  // The request itself is too big: fixing it, not retrying, helps.
  RECORD_TOO_LARGE: Code.InvalidArgument,
  KEY_TOO_LARGE: Code.InvalidArgument,
  HEADERS_TOO_LARGE: Code.InvalidArgument,
  BATCH_TOO_LARGE: Code.InvalidArgument,
  // Out of a resource that comes back (space freed): retry with backoff.
  DISK_FULL: Code.ResourceExhausted,
  // fsync failed: the log refuses writes until the broker is restarted.
  STORAGE_FAILED: Code.Internal,
  CORRUPT_RANGE: Code.DataLoss,
  OFFSET_OUT_OF_RANGE: Code.OutOfRange,
  LOG_CLOSED: Code.Unavailable,
  DATA_DIR_LOCKED: Code.FailedPrecondition,
  NOT_LEADER: Code.Unavailable,
  NOT_ENOUGH_REPLICAS: Code.Unavailable,
  STALE_EPOCH: Code.FailedPrecondition,
  AUTH_REQUIRED: Code.Unauthenticated,
  AUTH_FAILED: Code.Unauthenticated,
  FORBIDDEN: Code.PermissionDenied,
  RATE_LIMITED: Code.ResourceExhausted,
  TOO_MANY_CONNECTIONS: Code.ResourceExhausted,
  // Transient: the same call succeeds later (shutdown in progress, recovery or memory pressure).
  BROKER_CLOSING: Code.Unavailable,
  BROKER_BUSY: Code.Unavailable,
  TOO_MANY_SUBSCRIPTIONS: Code.ResourceExhausted,
  // TCP framing errors cannot happen over gRPC; mapped for completeness.
  BAD_MAGIC: Code.InvalidArgument,
  UNSUPPORTED_VERSION: Code.InvalidArgument,
  UNKNOWN_FRAME_TYPE: Code.InvalidArgument,
  FRAME_TOO_LARGE: Code.ResourceExhausted,
  MALFORMED_FRAME: Code.InvalidArgument,
  HANDSHAKE_REQUIRED: Code.FailedPrecondition,
  HEARTBEAT_TIMEOUT: Code.DeadlineExceeded,
  SLOW_CONSUMER: Code.ResourceExhausted,
  CONNECTION_CLOSED: Code.Unavailable,
  CONNECTION_REFUSED: Code.Unavailable,
  TIMEOUT: Code.DeadlineExceeded,
  INTERNAL: Code.Internal,
};

export function statusForFerryCode(code: ErrorCode): Code {
  return STATUS_BY_FERRY_CODE[code];
}

/** The ErrorDetail for a Ferry error (INTERNAL with a generic message for anything else). */
export function errorDetail(error: FerryError): ErrorDetail {
  const spec = ERROR_CODES[error.code];
  return create(ErrorDetailSchema, {
    code: error.code,
    wireCode: spec.wire,
    retryable: spec.retryable,
    ...(error.detail === undefined ? {} : { detail: toJsonObject(error.detail) }),
  });
}

/**
 * Turns whatever a handler threw into the ConnectError that leaves the server. ConnectErrors
 * (from connect itself: bad JSON, a message over the size limit) pass through; FerryErrors get
 * their status and detail; anything else is a bug, logged here once and sent as INTERNAL
 * "internal error" without its message, as the TCP server does.
 */
export function toConnectError(error: unknown, logger: Logger, method: string): ConnectError {
  if (error instanceof ConnectError) return error;
  let ferry: FerryError;
  if (isFerryError(error)) {
    ferry = error;
  } else {
    logger.error('grpc.request_failed', { method, error });
    ferry = new FerryError('INTERNAL', 'internal error');
  }
  return new ConnectError(ferry.message, statusForFerryCode(ferry.code), undefined, [{ desc: ErrorDetailSchema, value: errorDetail(ferry) }], ferry);
}

/** FerryError detail values are plain data; anything not JSON (a bigint, a function) is dropped. */
function toJsonObject(detail: Record<string, unknown>): JsonObject {
  try {
    return JSON.parse(JSON.stringify(detail)) as JsonObject;
  } catch {
    return {};
  }
}
