/**
 * The HTTP status that says what a Ferry error code means, for every JSON answer on the HTTP port
 * (the admin API and the REST endpoints alike); 500 for a code not listed (the server's fault).
 */
import type { ErrorCode } from '../../errors.js';

const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  RECORD_TOO_LARGE: 413,
  KEY_TOO_LARGE: 413,
  HEADERS_TOO_LARGE: 413,
  BATCH_TOO_LARGE: 413,
  UNKNOWN_TOPIC: 404,
  NOT_FOUND: 404,
  AUTH_REQUIRED: 401,
  AUTH_FAILED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  TOO_MANY_SUBSCRIPTIONS: 429,
  UNKNOWN_GROUP: 404,
  OFFSET_OUT_OF_RANGE: 416,
  TOPIC_EXISTS: 409,
  BROKER_CLOSING: 503,
  BROKER_BUSY: 503,
  LOG_CLOSED: 503,
  NOT_LEADER: 503,
  NOT_ENOUGH_REPLICAS: 503,
  STALE_EPOCH: 503,
  DISK_FULL: 507,
};

export function statusForCode(code: ErrorCode): number {
  return STATUS_BY_CODE[code] ?? 500;
}

