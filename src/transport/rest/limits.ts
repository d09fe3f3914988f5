/** Bounds of the REST publish endpoint and the Server-Sent Events stream, each with its reason. */

/**
 * Messages in one joined publish (the requests of a turn for one topic) at most: a turn of a few
 * hundred concurrent requests joins whole, and a joined publish stays a few milliseconds of work.
 */
export const JOINED_PUBLISH_MESSAGES_MAX = 4096;
/** Bytes of values and keys in one joined publish: well inside one storage batch (16 MiB). */
export const JOINED_PUBLISH_BYTES_MAX = 4 * 1024 * 1024;
/**
 * Body of `POST .../messages:batch` at most: one storage batch's worth of values, with room for
 * base64 (4/3) and the JSON around them. Past it the request is refused (413) before it is buffered.
 */
export const BATCH_BODY_BYTES_MAX = 12 * 1024 * 1024;
/** Body of an acks request at most: 100,000 ids of up to 40 characters in JSON. */
export const ACKS_BODY_BYTES_MAX = 4 * 1024 * 1024;
/** Ids in one acks request at most (the TCP protocol's SETTLE_ENTRIES_MAX). */
export const ACK_IDS_MAX = 100_000;
/** Request headers named `Ferry-Header-<name>` at most (the storage's headers per message). */
export const HEADER_PREFIX = 'ferry-header-';
/** Credit of an SSE stream when `prefetch` is not given. */
export const SSE_PREFETCH_DEFAULT = 100;
/** Credit of an SSE stream at most: what one browser tab may have unacknowledged. */
export const SSE_PREFETCH_MAX = 10_000;
/** Open SSE streams on one broker at most: each holds a subscription and a socket. */
export const SSE_STREAMS_MAX = 1_000;
/**
 * A comment line is sent after this long without an event, so proxies and load balancers do not
 * close an idle stream (most close after 60 s) and a vanished client is noticed.
 */
export const SSE_KEEPALIVE_MS = 15_000;
/** The reconnect delay an SSE stream tells EventSource to use (its `retry:` field). */
export const SSE_RETRY_MS = 1_000;
/** `Retry-After` (seconds) of a 503: the broker is busy, recovering or has no leader for the topic. */
export const BUSY_RETRY_AFTER_S = 1;
