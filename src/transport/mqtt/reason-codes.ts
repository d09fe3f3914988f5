/**
 * MQTT reason codes (5.0, section 2.4) and 3.1.1's CONNACK return codes, and the reason code of
 * each Ferry error, so a refusal says the same thing on every way in.
 */
import { isFerryError, type ErrorCode } from '../../errors.js';

export const REASON = {
  success: 0x00,
  grantedQos1: 0x01,
  grantedQos2: 0x02,
  disconnectWithWill: 0x04,
  noMatchingSubscribers: 0x10,
  noSubscriptionExisted: 0x11,
  unspecifiedError: 0x80,
  malformedPacket: 0x81,
  protocolError: 0x82,
  implementationSpecificError: 0x83,
  unsupportedProtocolVersion: 0x84,
  clientIdentifierNotValid: 0x85,
  badUserNameOrPassword: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  serverBusy: 0x89,
  serverShuttingDown: 0x8b,
  badAuthenticationMethod: 0x8c,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicFilterInvalid: 0x8f,
  topicNameInvalid: 0x90,
  packetIdentifierInUse: 0x91,
  packetIdentifierNotFound: 0x92,
  receiveMaximumExceeded: 0x93,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  payloadFormatInvalid: 0x99,
  sharedSubscriptionsNotSupported: 0x9e,
  wildcardSubscriptionsNotSupported: 0xa2,
} as const;

export type ReasonCode = (typeof REASON)[keyof typeof REASON];

/** 3.1.1 CONNACK return codes (section 3.2.2.3). */
export const CONNACK_V4 = {
  accepted: 0,
  unacceptableProtocolVersion: 1,
  identifierRejected: 2,
  serverUnavailable: 3,
  badUserNameOrPassword: 4,
  notAuthorized: 5,
} as const;

/** 3.1.1 SUBACK: the one failure code (0x80). */
export const SUBACK_V4_FAILURE = 0x80;

const BY_ERROR_CODE: Partial<Record<ErrorCode, ReasonCode>> = {
  UNKNOWN_TOPIC: REASON.topicNameInvalid,
  FORBIDDEN: REASON.notAuthorized,
  AUTH_REQUIRED: REASON.notAuthorized,
  AUTH_FAILED: REASON.badUserNameOrPassword,
  RATE_LIMITED: REASON.quotaExceeded,
  BROKER_BUSY: REASON.serverBusy,
  DISK_FULL: REASON.serverBusy,
  BROKER_CLOSING: REASON.serverShuttingDown,
  TOO_MANY_SUBSCRIPTIONS: REASON.quotaExceeded,
  TOO_MANY_CONNECTIONS: REASON.serverBusy,
  RECORD_TOO_LARGE: REASON.packetTooLarge,
  HEADERS_TOO_LARGE: REASON.packetTooLarge,
  KEY_TOO_LARGE: REASON.packetTooLarge,
  BATCH_TOO_LARGE: REASON.packetTooLarge,
  NOT_LEADER: REASON.serverUnavailable,
  NOT_ENOUGH_REPLICAS: REASON.serverUnavailable,
  INVALID_ARGUMENT: REASON.implementationSpecificError,
};

/** The 5.0 reason code of a failure: its Ferry code's, else unspecified error. */
export function reasonOf(error: unknown): ReasonCode {
  if (!isFerryError(error)) return REASON.unspecifiedError;
  return BY_ERROR_CODE[error.code] ?? REASON.unspecifiedError;
}

/** The 3.1.1 CONNACK return code of a refused login. */
export function connackV4Of(error: unknown): number {
  if (isFerryError(error, 'AUTH_FAILED')) return CONNACK_V4.badUserNameOrPassword;
  if (isFerryError(error, 'AUTH_REQUIRED') || isFerryError(error, 'FORBIDDEN')) return CONNACK_V4.notAuthorized;
  return CONNACK_V4.serverUnavailable;
}
