/**
 * When a request routed in a cluster is sent again, and how long to wait first. A request is
 * retried only where a second send cannot do harm: before it left (connecting, routing), after a
 * NOT_LEADER (the broker did nothing — or, marked `appended`, wrote a publish it could not commit,
 * which the next leader stores at most once by its id), and after a lost connection or a timeout
 * only for requests that are safe to repeat (publishes carry ids, so the broker stores a repeat
 * once; reads and resets change nothing a second time). A publish that gives up after a try that
 * may have been stored fails with TIMEOUT, outcome unknown, never with a refusal.
 */
import { FerryError, isFerryError, type ErrorCode } from '../errors.js';

/** What a request is, for the retry rules. */
export type CallKind =
  /** A publish (every message carries an id): repeated until stored or the time is up. */
  | 'publish'
  /** Safe to repeat: reads, group resets, redrive chunks, METADATA. */
  | 'idempotent'
  /** Not safe to repeat once sent (create and delete a topic): retried only when it provably did nothing. */
  | 'once'
  /** A SUBSCRIBE: a subscription lost with its connection is made again. */
  | 'subscribe';

/** Failures that say the request did nothing and another broker (or a later try) may succeed. */
const NOTHING_DONE: readonly ErrorCode[] = ['NOT_LEADER', 'CONNECTION_REFUSED', 'BROKER_CLOSING'];
/** Failures after which the request may or may not have been applied. */
const MAYBE_DONE: readonly ErrorCode[] = ['CONNECTION_CLOSED', 'TIMEOUT', 'LOG_CLOSED'];

const RETRIED: Record<CallKind, ReadonlySet<ErrorCode>> = {
  publish: new Set([...NOTHING_DONE, ...MAYBE_DONE, 'NOT_ENOUGH_REPLICAS']),
  idempotent: new Set([...NOTHING_DONE, ...MAYBE_DONE]),
  once: new Set(NOTHING_DONE),
  subscribe: new Set([...NOTHING_DONE, ...MAYBE_DONE]),
};

/**
 * Whether a try that failed with `error` after it was sent may have been applied: its answer was
 * lost or late, or the broker says it appended the write before its leadership ended.
 */
export function mayHaveApplied(error: unknown): boolean {
  if (!isFerryError(error)) return false;
  return MAYBE_DONE.includes(error.code) || error.detail?.['appended'] === true;
}

/**
 * What a publish fails with when it gives up after `last` (its time is up, or `last` is not worth
 * another try): `last` itself when no try can have stored it (a refusal stays a refusal), else
 * TIMEOUT — the outcome is unknown, whatever the later tries said — with `detail.outcome:
 * 'unknown'`, `detail.lastCode` and `last` as the cause.
 */
export function publishGiveUpError(topic: string | null, last: unknown, mayBeStored: boolean): unknown {
  if (!mayBeStored) return last;
  const lastCode = isFerryError(last) ? last.code : 'INTERNAL';
  return new FerryError('TIMEOUT', `publish to ${topic ?? 'a topic'} not confirmed; a try may have been stored, so the outcome is unknown (last error: ${lastCode}): publish it again with the same id`, {
    cause: last,
    detail: { outcome: 'unknown', lastCode },
  });
}

/** Failures before anything was sent (no connection, no leader): every kind retries them. */
const UNSENT_RETRIED: ReadonlySet<ErrorCode> = new Set([...NOTHING_DONE, 'CONNECTION_CLOSED', 'TIMEOUT']);

/** True when `error` (from sending, when `sent`, else from finding a broker) is worth another try. */
export function shouldRetry(kind: CallKind, error: unknown, sent: boolean): boolean {
  if (!isFerryError(error)) return false;
  return (sent ? RETRIED[kind] : UNSENT_RETRIED).has(error.code);
}

/** First pause before a retry: short, a leader election takes tens of milliseconds. */
const ROUTE_BACKOFF_MS_MIN = 10;
/** Longest pause: a request waiting for a new leader asks again at least this often. */
const ROUTE_BACKOFF_MS_MAX = 500;

/**
 * The request's `pause`th pause before a retry (1, 2, ...; a retry sent at once to a leader a
 * refusal named is no pause): doubling from ROUTE_BACKOFF_MS_MIN. No jitter: publishes that failed
 * together are sent again together, in their order. A pause waiting for a leader ends early when
 * one is learnt (leader-waits.ts).
 */
export function routeBackoffMs(pause: number): number {
  return Math.min(ROUTE_BACKOFF_MS_MAX, ROUTE_BACKOFF_MS_MIN * 2 ** Math.min(pause - 1, 16));
}

/**
 * `attempt`, or TIMEOUT at `deadlineMs` when it has not settled by then (the attempt goes on; its
 * late answer is dropped). No timer when the deadline is no earlier than `unlessFromMs` from now.
 */
export function withDeadline<T>(attempt: Promise<T>, deadlineMs: number, what: string, unlessFromMs = Number.POSITIVE_INFINITY): Promise<T> {
  const remainingMs = deadlineMs - performance.now();
  if (remainingMs >= unlessFromMs) return attempt;
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new FerryError('TIMEOUT', `${what}: no answer in time`)), Math.max(0, remainingMs));
    attempt.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

export function sleep(delayMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, delayMs));
}
