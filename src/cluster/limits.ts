/**
 * Every bound and default of cluster mode, with the reason for its value (docs/CLUSTERING.md).
 */

/** A follower that has not caught up with the leader's end for this long leaves the in-sync set (Kafka's replica.lag.time.max.ms). */
export const REPLICA_LAG_MAX_MS_DEFAULT = 10_000;
/**
 * An in-sync follower whose connection is gone for this long leaves the in-sync set without
 * waiting for the lag bound: a dead follower would otherwise hold every confirm for that long.
 */
export const FOLLOWER_GONE_MS = 1_000;
/** How often a leader looks at its followers' lag. */
export const IN_SYNC_CHECK_INTERVAL_MS = 200;
/** A follower's fetch waits at the leader at most this long when there is nothing new (long-poll). */
export const FETCH_WAIT_MS_MAX = 500;
/** Bytes of batches one fetch answer carries at most, over all logs of a topic. */
export const FETCH_BYTES_MAX = 4 * 1024 * 1024;
/**
 * The TTL of a broker's etcd lease: how long a frozen broker (stopped, not dead) holds its topics
 * before the others elect new leaders. A dead broker's topics move at once (its port refuses).
 */
export const LEASE_TTL_MS_DEFAULT = 2_000;
/** Bound of one etcd call. */
export const ETCD_CALL_TIMEOUT_MS = 2_000;
/** Candidates wait this long per place in the preference order before running, so one usually wins at once. */
export const ELECTION_STAGGER_MS = 30;
/** A follower that cannot reach its leader tries again after this long (and up to the max, doubling). */
export const FOLLOWER_RETRY_MS_MIN = 20;
export const FOLLOWER_RETRY_MS_MAX = 500;
/** How long a stopping leader waits for a follower to take each topic over (controlled shutdown). */
export const HANDOVER_TIMEOUT_MS = 5_000;
/** How often a stopping leader looks whether a follower holds everything yet (a follower reports at once). */
export const HANDOVER_POLL_MS = 5;
/**
 * How long a request for a topic whose leadership is changing on this broker (taking it up, or
 * handing it over) waits for the change to end before it is refused with NOT_LEADER: longer than
 * a promotion's open of the topic takes, well under a client's request timeout.
 */
export const LEADERSHIP_CHANGE_WAIT_MS = 2_000;
/**
 * How long a stopping leader gives consumers to settle the deliveries they hold (no new ones are
 * made meanwhile) before the topic moves: a consumer that acks promptly does within a round trip;
 * whatever is still unsettled then is delivered again by the next leader (at-least-once).
 */
export const HANDOVER_DRAIN_MS = 250;
/** A replica whose role change failed (etcd unreachable mid-election) looks again after this long. */
export const TRANSITION_RETRY_MS = 500;
/** A placement change retried this many times when others change the placement at the same moment. */
export const PLACEMENT_CAS_ATTEMPTS = 5;
/** The etcd key prefix of a cluster's metadata, unless configured. */
export const ETCD_PREFIX_DEFAULT = '/ferry/';
/**
 * A leader compares one follower's logs with its own (by digests) per this interval, round robin:
 * leaf digests of sealed segments are kept, so a check costs little more than the new records.
 */
export const REPLICA_VERIFY_INTERVAL_MS_DEFAULT = 60_000;
/** A follower that found damage in its logs and could not reach its leader to report it tries again after this long. */
export const DAMAGE_REPORT_RETRY_MS = 2_000;
/**
 * `cluster.replicaCatchUpBytesPerSec` unless configured (`ferry serve`): a catch-up copies as fast
 * as nothing bounds it, taking every core it can, so the leader's publishes waited behind it (p99
 * 6.9 × unloaded on two shared cores, a plain file copy at 46 MiB/s 1.07 ×). At this rate a 1 GiB
 * topic under 5 MiB/s of publishes is in sync in about 25 s (docs/BENCHMARKS.md, "Catch-up of a new replica").
 */
export const REPLICA_CATCH_UP_BYTES_PER_SEC_DEFAULT = 48 * 1024 * 1024;
/** Bytes of one catch-up chunk at most (and at most one second of `replicaCatchUpBytesPerSec`). */
export const CATCH_UP_CHUNK_BYTES_MAX = 4 * 1024 * 1024;
/**
 * A leader that served a catch-up chunk within this long defers its background replica checks: the
 * copy already takes the disk and the cores, and a first check hashes whole logs on both sides
 * (docs/CLUSTERING.md, "Replica digests"). `ferry topics verify` is never deferred.
 */
export const CATCH_UP_QUIET_MS = 5_000;
/**
 * A follower this many records behind its leader's end (or new, or behind the leader's log start)
 * copies the leader's sealed segments in chunks before it fetches again: a few leaves of digests,
 * so a follower lagging a moment under load keeps fetching.
 */
export const CATCH_UP_LAG_RECORDS_MIN = 16_384;
