/** Bounds of the gRPC / Connect API, each with its reason. */

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Largest request or response message: the TCP protocol's frame limit (16 MiB), so a batch that
 * fits one PUBLISH frame fits one Publish call, and a maximal record (8 MiB) with base64 or framing
 * around it fits one delivery. Larger messages are refused before they are buffered.
 */
export const GRPC_MESSAGE_BYTES_MAX = 16 * MiB;

/**
 * Responses at least this large would be compressed when the client accepts it; set beyond any
 * response, so none is. Payloads are the applications' bytes (often compressed already), and
 * gzipping every 256 KiB delivery batch costs the broker more CPU than a loopback or LAN saves.
 */
export const RESPONSE_COMPRESS_BYTES_MIN = 0xffff_ffff;

/** Deliveries of one event-loop turn share one ConsumeResponse up to this size, like DELIVER frames. */
export const DELIVERY_BATCH_BYTES_MAX = 256 * KiB;

/**
 * Bytes of responses a Consume stream may have waiting for the HTTP/2 stream to take them before
 * its sink reports unwritable and the broker pauses deliveries (the TCP server's high-water mark).
 */
export const CONSUME_QUEUED_BYTES_MAX = 1 * MiB;

/** Pull: messages per call; what a unary answer can carry comfortably and a client can settle in one go. */
export const PULL_MESSAGES_MAX = 1_000;
export const PULL_MESSAGES_DEFAULT = 100;
/** Pull: longest long-poll; beyond a minute proxies and load balancers start cutting idle requests. */
export const PULL_WAIT_MS_MAX = 60_000;
/** A pull consumer no call has named for this long is closed (its messages go to others). */
export const PULL_IDLE_TIMEOUT_MS_DEFAULT = 60_000;
/** Below a second a consumer would expire between two calls of a normal client. */
export const PULL_IDLE_TIMEOUT_MS_MIN = 1_000;
/** An hour: longer and a vanished client holds its messages hostage for too long. */
export const PULL_IDLE_TIMEOUT_MS_MAX = 3_600_000;

/**
 * Open consumers (Consume streams and pull consumers) at once. Each holds a broker subscription and
 * its buffers; past this, opening one fails with TOO_MANY_SUBSCRIPTIONS instead of growing memory.
 */
export const CONSUMERS_MAX = 10_000;

/** Settle entries in one request (acks, nacks, rejects and touches together): the TCP protocol's bound. */
export { SETTLE_ENTRIES_MAX } from '../../protocol/limits.js';
/** Reject reasons are cut to this many characters, as on the TCP protocol (they become a header value). */
export { REJECT_REASON_CHARS_MAX } from '../../protocol/codec-settle.js';
