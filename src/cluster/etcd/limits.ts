/** Bounds and timings of the etcd client, each with its reason. */

/** Default bound of one call, every endpoint tried included: etcd answers metadata calls in milliseconds. */
export const CALL_TIMEOUT_MS_DEFAULT = 2_000;
/**
 * Shortest bound of one attempt on one endpoint. A call's time is shared among its endpoints so that
 * a frozen member (it accepts connections but never answers) leaves time to try the next one, but an
 * attempt needs at least a round trip and an fsync on a loaded machine.
 */
export const ATTEMPT_TIMEOUT_MS_MIN = 250;
/** Pause before trying every endpoint again after all of them failed: spares a restarting etcd a storm. */
export const RETRY_PAUSE_MS = 50;
/** Idle connections kept per endpoint: enough for a broker's concurrent metadata calls. */
export const SOCKETS_PER_ENDPOINT_MAX = 8;
/**
 * Largest answer read into memory (and largest line of a watch stream). Cluster metadata is small;
 * an answer above this is a mistake (values are at most etcd's 1.5 MiB request limit) and is refused
 * rather than buffered without bound.
 */
export const RESPONSE_BYTES_MAX = 64 * 1024 * 1024;
/** Keys per page of a prefix read; pages are read at one revision, so the result is one snapshot. */
export const RANGE_PAGE_KEYS = 1_000;
/** Longest lease etcd grants is far longer, but a broker lease beyond an hour is a configuration mistake. */
export const LEASE_TTL_SEC_MAX = 3_600;
/** etcd's minimum lease TTL is its election timeout; below one second the keeper cannot keep up. */
export const LEASE_TTL_SEC_MIN = 1;
/** A lease is renewed this many times per TTL, so two renewals may fail before it can expire. */
export const LEASE_RENEWALS_PER_TTL = 3;
/** First and last pause between two attempts to re-establish a broken watch stream (doubling). */
export const WATCH_RETRY_MS_MIN = 50;
export const WATCH_RETRY_MS_MAX = 1_000;
/**
 * A watch stream that delivered nothing for this long is opened again from the last revision seen.
 * A stream on a frozen or cut-off member otherwise stays silent for ever (a closed connection is
 * noticed at once; a frozen process is not); one re-open per half minute of quiet costs one request.
 */
export const WATCH_IDLE_MS_DEFAULT = 30_000;
/** Bound of opening a watch stream (until etcd confirms it was created). */
export const WATCH_CREATE_TIMEOUT_MS = 2_000;
/** TCP keepalive probes on a watch socket start after this much silence: notices a vanished host. */
export const WATCH_SOCKET_KEEPALIVE_MS = 10_000;
