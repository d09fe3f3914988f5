/**
 * The history checker: given the merged history of a chaos run (history.ts), what did the broker
 * promise, and did it keep it?
 *
 * - lost: confirmed, and by the end of the final drain neither acknowledged (an ack sent on the
 *   connection that received it) nor dead-lettered. Split by whether it was ever delivered.
 * - missingFromLog: confirmed, and absent from the final scan of the topic (only with a scan), other
 *   than below where the scan found the log starting (retention removed those).
 *   In `interval`/`never` mode a confirmed message may be lost at a power loss if it was confirmed
 *   within the loss window before the kill (`interval`: max(syncIntervalMs, longest fdatasync) +
 *   longest fdatasync + SYNC_TIMER_LATENESS_MS_MAX, as docs/STORAGE.md states it; `never`: any
 *   time), and only as a suffix of what its producer had confirmed since the broker started;
 *   anything else is a failure.
 * - unexpected: a delivery (or stored copy) of a message never attempted, or of an attempt never
 *   invoked, or whose value does not parse. phantom: a stored copy of an attempt the broker
 *   rejected (a definite failure must store nothing).
 * - duplicates, each with its cause. A redelivery is allowed while no ack of the message had been
 *   sent; after an ack, only if something could have swallowed or outrun that ack: a broker kill,
 *   pause or power loss, or the acking consumer's lost connection, kill or settle error (acks are
 *   fire-and-forget on the wire), or the ack timeout (`ackTimeoutMs`) running out before the ack
 *   arrived. Failures: a delivery after an ack was confirmed (an UNSUBSCRIBE answered after it,
 *   see the `bar` event) — certain across a broker restart, and beyond `ackRaceToleranceMs` within
 *   one incarnation (a DELIVER already on its way can trail the confirmation) — except that in
 *   `interval`/`never` mode a power loss within the loss window after the confirmation may undo
 *   it (a confirmed ack is written, not synced); a redelivery after
 *   an ack that nothing excuses (ackIgnored); one publish stored twice; a delivered copy that
 *   vanished from the log in `always` mode.
 * - order violations: b stored before a in the partition although b was confirmed before a was
 *   first invoked (per producer; each producer publishes to one partition; delayed messages,
 *   which enter the partition when due, are left out).
 * - early deliveries: a delayed message delivered sooner than its delay after its publish was
 *   invoked (the invoke precedes the broker's receipt, so this errs on the lenient side).
 *
 * Pure: no I/O. test/chaos/checker.test.ts feeds it hand-made histories with each anomaly.
 */
import type { EventOf, HistoryEvent } from './history.js';

export interface CheckOptions {
  durability: 'always' | 'interval' | 'never';
  /** interval mode: the topic's syncIntervalMs; the loss window at each power loss is built from it (windowAt). */
  lossWindowMs?: number;
  /** How long a delivery may trail a confirmed ack within one broker incarnation. */
  ackRaceToleranceMs?: number;
  /** The group's ack timeout: a redelivery this long after the acked delivery may have overtaken the ack. */
  ackTimeoutMs?: number;
  /** Slack for early-delivery checks (clock reads round to 1 ms). */
  earlyToleranceMs?: number;
  /** Whether the history contains a final scan of the whole topic. */
  scanned?: boolean;
  /**
   * Whether any broker start ends the deliveries of the one before (a single broker: default
   * true). In a cluster a broker that restarts need not be the one delivering: a delivery trailing
   * a confirmed ack is judged by `ackRaceToleranceMs` alone.
   */
  startsEndDeliveries?: boolean;
  /**
   * Spans in which something besides the consumer's own connection may have swallowed an ack sent
   * (cluster: a network or etcd fault, a leadership change): a redelivery after an unconfirmed ack
   * sent then is allowed, as after a kill. Confirmed acks are not excused.
   */
  disturbances?: ReadonlyArray<{ from: number; to: number }>;
}

/** Figures of one run; `failures` is empty when every promise was kept. */
export interface CheckResult {
  attempted: number;
  confirmed: number;
  /** Attempts the broker rejected (definite failures), by error code. */
  rejectedByCode: Record<string, number>;
  /** Attempts whose outcome the client could not know, by error code. */
  unknownByCode: Record<string, number>;
  /** Messages attempted but never confirmed (e.g. the run ended while retrying). */
  neverConfirmed: number;
  delivered: number;
  deliveries: number;
  acked: number;
  deadLettered: number;
  lost: number;
  lostNeverDelivered: number;
  lostDeliveredNotSettled: number;
  /** interval/never: confirmed, gone at a power loss, within the window and a suffix. */
  lostAllowed: number;
  /** Those messages ("producer:seq"): their offsets may hold other messages later. */
  lostAllowedMessages: string[];
  missingFromLog: number;
  /** The oldest allowed loss: how long before its kill it was confirmed. */
  lossAgeMsMax: number;
  lossOutsideWindow: number;
  /** How far beyond its window the worst of those was confirmed. */
  lossOutsideWindowExcessMsMax: number;
  lossNotSuffix: number;
  unexpected: number;
  phantom: number;
  duplicates: {
    total: number;
    redeliveryUnacked: number;
    redeliveryAfterUnconfirmedAck: number;
    /** The delivery's ack timeout may have run out before its ack arrived, or (interval) a copy lost at a power loss. */
    racesAllowed: number;
    afterConfirmedAck: number;
    ackIgnored: number;
    storedTwice: number;
    copyVanished: number;
  };
  orderViolations: number;
  earlyDeliveries: number;
  failures: string[];
  /** A few examples per failure kind, for the report. */
  samples: Record<string, unknown[]>;
}

const ACK_RACE_TOLERANCE_MS = 1_000;
/**
 * How much later than the harness a client's history may date something that happened before a
 * kill. The harness records the kill just before it sends SIGKILL; an answer the broker sent before
 * that is recorded only once the client's process is scheduled and its event loop reads the socket
 * (it runs 4 producers and 4 consumers, and flushes up to 256 KiB of history in one turn). Seen on
 * this 2-core machine under load: 8.2 ms (`interval` seed 1). (The 192 ms once put down to `clock`
 * short seed 8 was an UNSUBSCRIBE that was never answered, which consumer.ts no longer counts as a
 * barrier.) 1 s, like ACK_RACE_TOLERANCE_MS, leaves a wide margin. Its size cannot excuse more than a
 * power loss can undo: the answer must also be recorded before the next incarnation started — one
 * recorded between the kill and the restart came from the killed broker, before it died.
 */
const RECORDING_LAG_MS_MAX = 1_000;
/**
 * `interval` loss window: how late the sync timer may fire. It fires when the broker's event loop
 * gets to it; under the chaos load a turn takes a few ms and a major GC of the broker's heap (up to
 * ~300 MB RSS in the soak) tens of ms. Stalls during an fdatasync are already in the measured
 * fdatasync durations (timed from call to callback). 50 ms: one default syncIntervalMs.
 */
const SYNC_TIMER_LATENESS_MS_MAX = 50;
/**
 * A consumer takes a message from its buffer some time after the broker sent it: this much of the
 * ack timeout may already have run when the history records the delivery.
 */
const BUFFERED_SLACK_MS = 1_000;
const EARLY_TOLERANCE_MS = 2;
/** Examples kept per failure kind. */
const SAMPLES_MAX = 5;

interface Attempt {
  invokeT: number;
  outcome: 'ok' | 'rejected' | 'unknown' | null;
  delayMs: number | undefined;
}

interface Delivery {
  t: number;
  c: string;
  sub: number;
  g: number;
  part: number;
  off: number;
  a: number;
}

interface Ack {
  t: number;
  /** When the acked delivery was received. */
  deliveredT: number;
  c: string;
  sub: number;
  g: number;
}

interface MessageState {
  p: string;
  s: number;
  firstInvokeT: number;
  attempts: Map<number, Attempt>;
  confirmT: number | null;
  confirmPart: number;
  confirmOff: number;
  deliveries: Delivery[];
  /** Valid acks only: sent in the generation that received the delivery. */
  acks: Ack[];
  deadLettered: boolean;
  scanned: Array<{ part: number; off: number }>;
}

/** Sorted times of events, with "is there one in (from, to)" queries. */
class Timeline {
  readonly times: number[] = [];

  add(t: number): void {
    this.times.push(t);
  }

  /** Index of the first time > t. */
  after(t: number): number {
    let low = 0;
    let high = this.times.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.times[mid]! <= t) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  anyBetween(from: number, to: number): boolean {
    const index = this.after(from);
    return index < this.times.length && this.times[index]! < to;
  }

  /** How many times are <= t. */
  countUpTo(t: number): number {
    return this.after(t);
  }
}

export function check(events: readonly HistoryEvent[], options: CheckOptions): CheckResult {
  const ackRaceToleranceMs = options.ackRaceToleranceMs ?? ACK_RACE_TOLERANCE_MS;
  // Unknown ack timeout: assume any redelivery may have overtaken an ack (lenient).
  const ackTimeoutMs = options.ackTimeoutMs ?? 0;
  const earlyToleranceMs = options.earlyToleranceMs ?? EARLY_TOLERANCE_MS;
  const result = emptyResult();
  const sample = (kind: string, example: unknown): void => {
    const list = (result.samples[kind] ??= []);
    if (list.length < SAMPLES_MAX) list.push(example);
  };

  const messages = new Map<string, MessageState>();
  const starts = new Timeline();
  const kills = new Timeline();
  const powerLosses: Array<EventOf<'pl'>> = [];
  const pauses: Array<{ from: number; to: number }> = [];
  const disruptionsOf = new Map<string, Timeline>(); // consumer → its reconnects, kills, settle errors
  const barriers = new Map<string, number>(); // c#sub#g → time of an ok barrier
  /** Per partition, where the final scan found the log starting (retention removed what is below). */
  const logStarts = new Map<number, number>();
  let releaseT = Infinity;

  const disruptions = (consumer: string): Timeline => {
    let timeline = disruptionsOf.get(consumer);
    if (timeline === undefined) {
      timeline = new Timeline();
      disruptionsOf.set(consumer, timeline);
    }
    return timeline;
  };
  const unexpected = (event: EventOf<'d'>, why: string): void => {
    result.unexpected++;
    sample('unexpected', { why, event });
  };

  for (const event of events) {
    switch (event.k) {
      case 'pi': {
        const key = `${event.p}:${event.s}`;
        let message = messages.get(key);
        if (message === undefined) {
          message = {
            p: event.p,
            s: event.s,
            firstInvokeT: event.t,
            attempts: new Map(),
            confirmT: null,
            confirmPart: -1,
            confirmOff: -1,
            deliveries: [],
            acks: [],
            deadLettered: false,
            scanned: [],
          };
          messages.set(key, message);
        }
        message.attempts.set(event.a, { invokeT: event.t, outcome: null, delayMs: event.d });
        break;
      }
      case 'po': {
        const message = messages.get(`${event.p}:${event.s}`);
        const attempt = message?.attempts.get(event.a);
        if (message === undefined || attempt === undefined) break;
        attempt.outcome = 'ok';
        if (message.confirmT === null) {
          message.confirmT = event.t;
          message.confirmPart = event.part;
          message.confirmOff = event.off;
        }
        break;
      }
      case 'pf':
      case 'pu': {
        const attempt = messages.get(`${event.p}:${event.s}`)?.attempts.get(event.a);
        if (attempt !== undefined && attempt.outcome === null) attempt.outcome = event.k === 'pf' ? 'rejected' : 'unknown';
        const counts = event.k === 'pf' ? result.rejectedByCode : result.unknownByCode;
        counts[event.code] = (counts[event.code] ?? 0) + 1;
        break;
      }
      case 'd': {
        if (event.kind === 'group') result.deliveries++;
        if (event.p === undefined || event.s === undefined || event.a === undefined) {
          unexpected(event, `value does not parse: ${event.bad ?? '?'}`);
          break;
        }
        const message = messages.get(`${event.p}:${event.s}`);
        const attempt = message?.attempts.get(event.a);
        if (message === undefined || attempt === undefined) {
          unexpected(event, 'never attempted');
          break;
        }
        if (attempt.outcome === 'rejected') {
          result.phantom++;
          sample('phantom', event);
        }
        if (event.kind === 'group') {
          message.deliveries.push({ t: event.t, c: event.c, sub: event.sub, g: event.g, part: event.part, off: event.off, a: event.a });
        } else if (event.kind === 'dlq') {
          message.deadLettered = true;
        } else {
          message.scanned.push({ part: event.part, off: event.off });
        }
        break;
      }
      case 'ak': {
        // An ack sent after its delivery's connection was lost is dropped by the client: a no-op.
        if (event.dg !== event.g) break;
        const message = messages.get(`${event.p}:${event.s}`);
        if (message === undefined) break;
        let deliveredT = event.t;
        for (let i = message.deliveries.length - 1; i >= 0; i--) {
          const delivery = message.deliveries[i]!;
          if (delivery.c === event.c && delivery.sub === event.sub) {
            deliveredT = delivery.t;
            break;
          }
        }
        message.acks.push({ t: event.t, deliveredT, c: event.c, sub: event.sub, g: event.g });
        break;
      }
      case 'bar':
        if (event.ok) barriers.set(`${event.c}#${event.sub}#${event.g}`, event.t);
        break;
      case 'rc':
      case 'se':
        disruptions(event.c).add(event.t);
        break;
      case 'ck':
        disruptions(event.c).add(event.t);
        break;
      case 'bs':
        starts.add(event.t);
        break;
      case 'bk':
        kills.add(event.t);
        break;
      case 'pl':
        powerLosses.push(event);
        break;
      case 'pz':
        pauses.push({ from: event.t, to: event.t + event.ms });
        break;
      case 'ph':
        if (event.name === 'release') releaseT = Math.min(releaseT, event.t);
        break;
      case 'ls':
        logStarts.set(event.part, event.off);
        break;
      default:
        break;
    }
  }

  const epochOf = (t: number): number => starts.countUpTo(t);
  const powerLossBetween = (from: number, to: number): boolean => powerLosses.some((loss) => loss.at > from && loss.at < to);
  /**
   * How long before a power loss a write may still have been unsynced (docs/STORAGE.md, the
   * `interval` row): a write is covered by the first fdatasync that starts after it — the next
   * tick when no sync is running, else the one right after the running one — so
   * max(syncIntervalMs, fdatasync) + fdatasync, plus the timer's lateness. `never`: no bound.
   * (The group journal syncs at the default 50 ms; the scenario's topic uses the same.)
   */
  const windowAt = (loss: EventOf<'pl'>): number => {
    if (options.durability === 'never') return Infinity;
    const syncIntervalMs = options.lossWindowMs ?? 0;
    return Math.max(syncIntervalMs, loss.datasyncMsMax) + loss.datasyncMsMax + SYNC_TIMER_LATENESS_MS_MAX;
  };
  /**
   * interval/never: whether a power loss may have undone an ack confirmed at `barrierT` before it
   * was delivered again at `deliveryT`. A confirmed ack is written, not synced: a loss within the
   * window after the confirmation may take it back. The confirmation is recorded by the consumer,
   * possibly after the kill (RECORDING_LAG_MS_MAX), but never after the next start.
   */
  const ackUndoneByPowerLoss = (barrierT: number, deliveryT: number): boolean =>
    options.durability !== 'always' &&
    powerLosses.some(
      (loss) =>
        loss.at < deliveryT &&
        loss.at > barrierT - RECORDING_LAG_MS_MAX &&
        loss.at - barrierT <= windowAt(loss) &&
        !starts.anyBetween(loss.at, barrierT),
    );
  const pausedBetween = (from: number, to: number): boolean => pauses.some((pause) => pause.to > from && pause.from < to);
  /** The power loss that ended the incarnation in which `t` happened, if one did. */
  const powerLossEnding = (t: number): EventOf<'pl'> | undefined => {
    const epoch = epochOf(t);
    const nextStart = epoch < starts.times.length ? starts.times[epoch]! : Infinity;
    return powerLosses.find((loss) => loss.at > (epoch === 0 ? -Infinity : starts.times[epoch - 1]!) && loss.at < nextStart);
  };

  // Per producer and incarnation: confirmed messages in log order, to check that losses are a suffix.
  const confirmedByEpoch = new Map<string, MessageState[]>();
  const byProducer = new Map<string, MessageState[]>();

  for (const message of messages.values()) {
    result.attempted++;
    let producerList = byProducer.get(message.p);
    if (producerList === undefined) byProducer.set(message.p, (producerList = []));
    producerList.push(message);
    const settled = message.acks.length > 0 || message.deadLettered;
    if (message.deliveries.length > 0) result.delivered++;
    if (message.acks.length > 0) result.acked++;
    if (message.deadLettered) result.deadLettered++;
    checkDuplicates(message);
    checkEarly(message);
    if (message.confirmT === null) {
      result.neverConfirmed++;
      continue;
    }
    result.confirmed++;
    const epochKey = `${message.p}#${epochOf(message.confirmT)}`;
    let epochList = confirmedByEpoch.get(epochKey);
    if (epochList === undefined) confirmedByEpoch.set(epochKey, (epochList = []));
    epochList.push(message);
    // Below the log's start at the scan, retention removed it: absent from the scan, not missing
    // (unsettled, it is still lost: deleted before anyone took it).
    const retained = message.confirmOff >= 0 && message.confirmOff < (logStarts.get(message.confirmPart) ?? 0);
    const inLog = !options.scanned || message.scanned.length > 0 || retained;
    if (settled && inLog) continue;
    // Gone at a power loss is allowed in interval/never mode, within the window and as a suffix.
    const loss = options.durability === 'always' ? undefined : powerLossEnding(message.confirmT);
    const gone = options.scanned ? !inLog : !settled;
    if (loss !== undefined && gone) {
      const ageMs = loss.at - message.confirmT;
      const windowMs = windowAt(loss);
      if (ageMs > windowMs) {
        result.lossOutsideWindow++;
        result.lossOutsideWindowExcessMsMax = Math.max(result.lossOutsideWindowExcessMsMax, round(ageMs - windowMs));
        sample('lossOutsideWindow', { p: message.p, s: message.s, ageMs: round(ageMs), windowMs: round(windowMs) });
      } else {
        result.lostAllowed++;
        result.lostAllowedMessages.push(`${message.p}:${message.s}`);
        result.lossAgeMsMax = Math.max(result.lossAgeMsMax, round(ageMs));
      }
      continue;
    }
    if (!inLog) {
      result.missingFromLog++;
      sample('missingFromLog', { p: message.p, s: message.s, part: message.confirmPart, off: message.confirmOff, settled });
    }
    if (settled) continue;
    result.lost++;
    if (message.deliveries.length === 0) result.lostNeverDelivered++;
    else result.lostDeliveredNotSettled++;
    sample('lost', {
      p: message.p,
      s: message.s,
      part: message.confirmPart,
      off: message.confirmOff,
      confirmT: message.confirmT,
      deliveries: message.deliveries.length,
    });
  }

  // Losses at a power loss must be a suffix of what the producer confirmed in that incarnation.
  if (options.durability !== 'always') {
    for (const list of confirmedByEpoch.values()) {
      list.sort((a, b) => a.confirmPart - b.confirmPart || a.confirmOff - b.confirmOff);
      let seenGone = false;
      for (const message of list) {
        const gone = options.scanned ? message.scanned.length === 0 : message.acks.length === 0 && !message.deadLettered;
        if (gone) seenGone = true;
        else if (seenGone) {
          result.lossNotSuffix++;
          sample('lossNotSuffix', { p: message.p, s: message.s, part: message.confirmPart, off: message.confirmOff });
        }
      }
    }
  }

  for (const list of byProducer.values()) checkOrder(list);

  function checkDuplicates(message: MessageState): void {
    if (options.scanned) {
      const positions = new Set(message.scanned.map(({ part, off }) => `${part}:${off}`));
      if (positions.size > 1) {
        result.duplicates.storedTwice += positions.size - 1;
        sample('storedTwice', { p: message.p, s: message.s, positions: [...positions] });
      }
    }
    const deliveries = message.deliveries;
    if (deliveries.length < 2) return;
    deliveries.sort((a, b) => a.t - b.t);
    const first = deliveries[0]!;
    for (let i = 1; i < deliveries.length; i++) {
      const delivery = deliveries[i]!;
      result.duplicates.total++;
      if (delivery.part !== first.part || delivery.off !== first.off) {
        if (options.scanned && message.scanned.length > 1) continue; // counted as storedTwice above
        // A DELIVER sent before a kill can be recorded just after it: the tolerance covers that.
        if (options.durability !== 'always' && powerLossBetween(first.t - ackRaceToleranceMs, delivery.t)) {
          result.duplicates.racesAllowed++;
        } else {
          result.duplicates.copyVanished++;
          sample('copyVanished', { p: message.p, s: message.s, first, delivery });
        }
        continue;
      }
      classifyRedelivery(message, delivery);
    }
  }

  function classifyRedelivery(message: MessageState, delivery: Delivery): void {
    const priorAcks = message.acks.filter((ack) => ack.t < delivery.t);
    if (priorAcks.length === 0) {
      result.duplicates.redeliveryUnacked++;
      return;
    }
    let verdict: 'unconfirmed' | 'race' | 'afterConfirmedAck' | 'ackIgnored' = 'unconfirmed';
    let evidence: unknown = null;
    for (const ack of priorAcks) {
      const disturbed =
        kills.anyBetween(ack.deliveredT, delivery.t) ||
        pausedBetween(ack.deliveredT, delivery.t) ||
        powerLossBetween(ack.deliveredT, delivery.t) ||
        (options.disturbances?.some((span) => span.to > ack.deliveredT && span.from < delivery.t) ?? false) ||
        // The acker learns of a lost connection or a failed settle after the broker acted on it.
        (disruptionsOf.get(ack.c)?.anyBetween(ack.deliveredT, delivery.t + ackRaceToleranceMs) ?? false);
      const timedOut = delivery.t - ack.deliveredT >= ackTimeoutMs - BUFFERED_SLACK_MS;
      const barrierT = barriers.get(`${ack.c}#${ack.sub}#${ack.g}`);
      if (barrierT !== undefined && barrierT > ack.t) {
        // Interval mode: a confirmed ack is written, not synced; a power loss may take it back.
        if (ackUndoneByPowerLoss(barrierT, delivery.t)) continue;
        const restarted = (options.startsEndDeliveries ?? true) && epochOf(delivery.t) > epochOf(barrierT);
        if (restarted || delivery.t - barrierT > ackRaceToleranceMs) {
          verdict = 'afterConfirmedAck';
          evidence = { ack, barrierT, restarted, gapMs: round(delivery.t - barrierT) };
          break;
        }
      }
      if (disturbed) continue;
      if (timedOut) {
        verdict = 'race';
        continue;
      }
      // Nothing swallowed the ack and the delivery had not timed out: the broker had no reason.
      verdict = 'ackIgnored';
      evidence = { ack, barrierT, sinceAckMs: round(delivery.t - ack.t) };
      break;
    }
    if (verdict === 'afterConfirmedAck') {
      result.duplicates.afterConfirmedAck++;
      sample('afterConfirmedAck', { p: message.p, s: message.s, delivery, evidence });
    } else if (verdict === 'ackIgnored') {
      result.duplicates.ackIgnored++;
      sample('ackIgnored', { p: message.p, s: message.s, delivery, evidence });
    } else if (verdict === 'race') {
      result.duplicates.racesAllowed++;
    } else {
      result.duplicates.redeliveryAfterUnconfirmedAck++;
    }
  }

  function checkEarly(message: MessageState): void {
    const first = message.deliveries[0];
    if (first === undefined) return;
    const attempt = message.attempts.get(first.a);
    if (attempt?.delayMs === undefined || first.t >= releaseT) return;
    const waitedMs = first.t - attempt.invokeT;
    if (waitedMs < attempt.delayMs - earlyToleranceMs) {
      result.earlyDeliveries++;
      sample('earlyDeliveries', { p: message.p, s: message.s, delayMs: attempt.delayMs, waitedMs: round(waitedMs) });
    }
  }

  function checkOrder(list: MessageState[]): void {
    // Where each message sits in the log: the scan if there is one, else where it was confirmed.
    const placed: Array<{ message: MessageState; part: number; off: number }> = [];
    for (const message of list) {
      // A delayed message enters the partition when it is due: its place there says nothing of order.
      if ([...message.attempts.values()].some((attempt) => attempt.delayMs !== undefined)) continue;
      if (options.scanned) {
        for (const { part, off } of message.scanned) placed.push({ message, part, off });
      } else if (message.confirmT !== null) {
        placed.push({ message, part: message.confirmPart, off: message.confirmOff });
      }
    }
    placed.sort((a, b) => a.part - b.part || a.off - b.off);
    // Walking backwards: the earliest confirmation among messages later in the same partition.
    let part = -1;
    let laterConfirmMin = Infinity;
    let laterExample: MessageState | null = null;
    for (let i = placed.length - 1; i >= 0; i--) {
      const { message, off } = placed[i]!;
      if (placed[i]!.part !== part) {
        part = placed[i]!.part;
        laterConfirmMin = Infinity;
      }
      if (laterConfirmMin < message.firstInvokeT) {
        result.orderViolations++;
        sample('orderViolations', { p: message.p, s: message.s, part, off, storedBefore: laterExample?.s });
      }
      if (message.confirmT !== null && message.confirmT < laterConfirmMin) {
        laterConfirmMin = message.confirmT;
        laterExample = message;
      }
    }
  }

  const failures = result.failures;
  const fail = (count: number, what: string): void => {
    if (count > 0) failures.push(`${count} ${what}`);
  };
  fail(result.lost, 'lost (confirmed, never acked nor dead-lettered)');
  fail(result.missingFromLog, 'confirmed but missing from the log');
  fail(result.lossOutsideWindow, 'lost outside the interval window');
  fail(result.lossNotSuffix, 'kept after an earlier loss of the same producer (loss not a suffix)');
  fail(result.unexpected, 'unexpected (delivered, never attempted)');
  fail(result.phantom, 'phantom (stored although the publish was rejected)');
  fail(result.duplicates.afterConfirmedAck, 'delivered after a confirmed ack');
  fail(result.duplicates.ackIgnored, 'redelivered after an ack nothing could have swallowed (ack ignored)');
  fail(result.duplicates.storedTwice, 'extra stored copies of one publish');
  fail(result.duplicates.copyVanished, 'delivered copies that vanished from the log');
  fail(result.orderViolations, 'order violations');
  fail(result.earlyDeliveries, 'delayed messages delivered early');
  return result;
}

function emptyResult(): CheckResult {
  return {
    attempted: 0,
    confirmed: 0,
    rejectedByCode: {},
    unknownByCode: {},
    neverConfirmed: 0,
    delivered: 0,
    deliveries: 0,
    acked: 0,
    deadLettered: 0,
    lost: 0,
    lostNeverDelivered: 0,
    lostDeliveredNotSettled: 0,
    lostAllowed: 0,
    lostAllowedMessages: [],
    missingFromLog: 0,
    lossAgeMsMax: 0,
    lossOutsideWindow: 0,
    lossOutsideWindowExcessMsMax: 0,
    lossNotSuffix: 0,
    unexpected: 0,
    phantom: 0,
    duplicates: {
      total: 0,
      redeliveryUnacked: 0,
      redeliveryAfterUnconfirmedAck: 0,
      racesAllowed: 0,
      afterConfirmedAck: 0,
      ackIgnored: 0,
      storedTwice: 0,
      copyVanished: 0,
    },
    orderViolations: 0,
    earlyDeliveries: 0,
    failures: [],
    samples: {},
  };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
