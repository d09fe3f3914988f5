/**
 * The anomalies Jepsen checks queues for, named and counted for a cluster chaos run, from the
 * history checker's result (checker.ts), two checks of its own over the history, and the offline
 * comparison of the replicas (replica-compare.ts):
 *
 * - lost: acknowledged (confirmed) messages never acked nor dead-lettered, or absent from the log
 *   (for `interval`/`never` topics: other than those a majority's power loss may take, checker.ts);
 * - storedTwice: one publish stored at more than one offset;
 * - inconsistentOffsets: one offset that held different messages: in two reads (deliveries, the
 *   final scan), in a read and a confirmation, or in a read and the replicas on disk; not when the
 *   first of them is one a power loss was allowed to take back (`interval`/`never`, checker.ts):
 *   the log lost its end, and its offsets were given to later messages;
 * - abortedReads: a message read (or found on the replicas) whose publish attempt was refused (a
 *   definite failure must store nothing);
 * - redeliveredAfterConfirmedAck: a delivery after an ack the broker had confirmed;
 * - ackIgnored: a redelivery after an ack nothing could have swallowed;
 * - orderViolations: within a partition, a producer's message stored before one it was confirmed after;
 * - replicasDiffer: positions below the high watermark where the replicas differ, or that one of
 *   them does not hold, plus replicas that could not be read at all.
 *
 * Pure: no I/O.
 */
import type { CheckOptions, CheckResult } from './checker.js';
import type { HistoryEvent } from './history.js';
import type { ReplicaComparison } from './replica-compare.js';

const SAMPLES_MAX = 5;
/**
 * How much later than it happened a client may record a sighting (checker.ts's bound of the same
 * name): a delivery recorded just after a power cut was seen before it. No broker restarts that fast.
 */
const RECORDING_LAG_MS_MAX = 1_000;

export interface QueueAnomalies {
  lost: number;
  storedTwice: number;
  inconsistentOffsets: number;
  abortedReads: number;
  redeliveredAfterConfirmedAck: number;
  ackIgnored: number;
  orderViolations: number;
  replicasDiffer: number;
  /** Messages delivered that nobody published, or whose value does not parse. */
  unexpected: number;
  samples: Record<string, unknown[]>;
}

/** The kinds that break a promise, with the words a failure is reported in. */
const FAILING: ReadonlyArray<[keyof Omit<QueueAnomalies, 'samples'>, string]> = [
  ['lost', 'acknowledged messages lost'],
  ['storedTwice', 'messages stored twice'],
  ['inconsistentOffsets', 'offsets holding different messages'],
  ['abortedReads', 'aborted reads (a refused publish seen)'],
  ['redeliveredAfterConfirmedAck', 'redeliveries after a confirmed ack'],
  ['ackIgnored', 'redeliveries after an ack nothing swallowed'],
  ['orderViolations', 'order violations within a partition'],
  ['replicasDiffer', 'replica positions that differ below the high watermark'],
  ['unexpected', 'unexpected messages'],
];

/**
 * `durability`: the topic's mode. In `interval` and `never` mode the `pl` events (in a cluster,
 * only a majority's power losses: cluster-durability.ts) may take back the end of a log, so an
 * offset held by a message taken back may hold another one later: one the checker allowed to be
 * lost, or a copy never confirmed at that offset (a retry may have stored the message again
 * elsewhere) that the final scan does not find there, with such a power loss between the two
 * sightings.
 */
export function queueAnomalies(events: readonly HistoryEvent[], check: CheckResult, replicas: ReplicaComparison | null, durability: CheckOptions['durability'] = 'always'): QueueAnomalies {
  const samples: Record<string, unknown[]> = {};
  const sample = (kind: string, example: unknown): void => {
    const list = (samples[kind] ??= []);
    if (list.length < SAMPLES_MAX) list.push(example);
  };
  const refused = new Set<string>();
  for (const event of events) if (event.k === 'pf') refused.add(`${event.p}:${event.s}:${event.a}`);

  // What each position held, by whoever saw it first: "p:s" (attempts of one message share an id).
  const held = new Map<string, { message: string; seenBy: string; t: number }>();
  const inconsistent = new Set<string>();
  const takenBack = takenBackBetween(events, check, durability);
  const see = (position: string, message: string, seenBy: string, t: number): void => {
    const first = held.get(position);
    if (first === undefined || (first.message !== message && takenBack(position, first.message, first.t, t))) {
      held.set(position, { message, seenBy, t });
    } else if (first.message !== message && !inconsistent.has(position)) {
      inconsistent.add(position);
      sample('inconsistentOffsets', { position, first, then: { message, seenBy } });
    }
  };
  const aborted = new Set<string>();
  for (const event of events) {
    if (event.k === 'po') see(`${event.part}:${event.off}`, `${event.p}:${event.s}`, 'confirm', event.t);
    if (event.k !== 'd' || event.p === undefined || event.s === undefined) continue;
    const attempt = `${event.p}:${event.s}:${event.a}`;
    if (refused.has(attempt) && !aborted.has(attempt)) {
      aborted.add(attempt);
      sample('abortedReads', { attempt, read: event });
    }
    // Dead letters live in another topic, at its own offsets.
    if (event.kind !== 'dlq') see(`${event.part}:${event.off}`, `${event.p}:${event.s}`, `${event.kind} ${event.c}`, event.t);
  }
  for (const [position, identity] of replicas?.agreed ?? []) {
    if (identity === 'not-a-message') continue;
    if (refused.has(identity) && !aborted.has(identity)) {
      aborted.add(identity);
      sample('abortedReads', { attempt: identity, on: 'every replica', position });
    }
    see(position, identity.slice(0, identity.lastIndexOf(':')), 'replicas', Infinity);
  }

  const replicasDiffer = replicas === null ? 0 : replicas.differing + replicas.missing + replicas.unreadable.length;
  if (replicas !== null && replicasDiffer > 0) samples['replicasDiffer'] = [...replicas.unreadable, ...replicas.examples].slice(0, SAMPLES_MAX);
  for (const kind of ['lost', 'missingFromLog', 'storedTwice', 'afterConfirmedAck', 'ackIgnored', 'orderViolations', 'unexpected', 'phantom']) {
    if (check.samples[kind] !== undefined) samples[kind] = check.samples[kind]!.slice(0, SAMPLES_MAX);
  }
  return {
    // interval/never: a loss a majority's power loss cannot explain (outside its window, or not a suffix) is a loss too.
    lost: check.lost + check.missingFromLog + check.lossOutsideWindow + check.lossNotSuffix,
    storedTwice: check.duplicates.storedTwice,
    inconsistentOffsets: inconsistent.size,
    abortedReads: aborted.size,
    redeliveredAfterConfirmedAck: check.duplicates.afterConfirmedAck,
    ackIgnored: check.duplicates.ackIgnored,
    orderViolations: check.orderViolations,
    replicasDiffer,
    unexpected: check.unexpected,
    samples,
  };
}

/** One line per anomaly kind that occurred. */
export function anomalyFailures(anomalies: QueueAnomalies): string[] {
  return FAILING.filter(([kind]) => anomalies[kind] > 0).map(([kind, words]) => `${anomalies[kind]} ${words}`);
}

/** Whether a power loss may have taken `message` ("p:s", seen at `position` at `from`) back before `to` (see queueAnomalies). */
function takenBackBetween(
  events: readonly HistoryEvent[],
  check: CheckResult,
  durability: CheckOptions['durability'],
): (position: string, message: string, from: number, to: number) => boolean {
  if (durability === 'always') return () => false;
  const allowed = new Set(check.lostAllowedMessages);
  // "part:off=p:s": a copy confirmed at, or found by the final scan at, that position.
  const confirmedAt = new Set<string>();
  const scannedAt = new Set<string>();
  const losses: number[] = [];
  for (const event of events) {
    if (event.k === 'po') confirmedAt.add(`${event.part}:${event.off}=${event.p}:${event.s}`);
    else if (event.k === 'd' && event.kind === 'scan') scannedAt.add(`${event.part}:${event.off}=${event.p}:${event.s}`);
    else if (event.k === 'pl') losses.push(event.at);
  }
  return (position, message, from, to) => {
    if (allowed.has(message)) return true;
    const copy = `${position}=${message}`;
    // A sighting is recorded up to RECORDING_LAG_MS_MAX after it happened: one just after a cut may precede it.
    return !confirmedAt.has(copy) && !scannedAt.has(copy) && losses.some((at) => at > from - RECORDING_LAG_MS_MAX && at < to);
  };
}
