/**
 * Figures a scenario reports beyond the checker's: how a fault was ridden out. Each function reads
 * the merged history and returns plain figures plus the failures it finds.
 */
import type { EventOf, HistoryEvent } from './history.js';

export interface Findings {
  figures: Record<string, unknown>;
  failures: string[];
}

/** Percentile of a sorted array (nearest rank). */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(fraction * sorted.length) - 1))]!;
}

const round1 = (value: number): number => Math.round(value * 10) / 10;

/**
 * Distinct messages delivered again in [from, to) whose previous delivery was not nacked: only a
 * message in flight (timed out, its consumer gone) or an ack that got lost can come back that way.
 */
function unnackedRedeliveriesIn(events: readonly HistoryEvent[], from: number, to: number): number {
  const lastAction = new Map<string, 'd' | 'nk' | 'ak'>();
  const redelivered = new Set<string>();
  for (const event of events) {
    if (event.k === 'nk' || event.k === 'ak') {
      lastAction.set(`${event.p}:${event.s}`, event.k);
      continue;
    }
    if (event.k !== 'd' || event.kind !== 'group' || event.p === undefined) continue;
    const key = `${event.p}:${event.s}`;
    const previous = lastAction.get(key);
    if (previous !== undefined && previous !== 'nk' && event.t >= from && event.t < to) redelivered.add(key);
    lastAction.set(key, 'd');
  }
  return redelivered.size;
}

/**
 * Subscriptions of one consumer that can hold deliveries at once behind a paused broker: the open
 * one, plus those it closed and reopened (every 1–4 s) whose UNSUBSCRIBE is still queued.
 */
const STACKED_SUBSCRIPTIONS_MAX = 4;

/**
 * After a disturbance (a pause, a clock jump), the messages delivered again without having been
 * nacked must stay within what could have been in flight: consumers × prefetch for each
 * subscription a consumer may have stacked behind the pause. More is a redelivery storm (e.g.
 * everything unsettled, or acked messages, coming back). Nacked messages come back after their
 * backoff whatever happens, so they are not counted.
 */
export function redeliveryStorms(
  events: readonly HistoryEvent[],
  windows: ReadonlyArray<{ name: string; from: number; to: number }>,
  inFlightMax: number,
): Findings {
  const boundMessages = inFlightMax * STACKED_SUBSCRIPTIONS_MAX;
  const rows = windows.map(({ name, from, to }) => ({ name, windowMs: Math.round(to - from), redeliveries: unnackedRedeliveriesIn(events, from, to) }));
  const storms = rows.filter((row) => row.redeliveries > boundMessages);
  return {
    figures: { inFlightMax, stormBound: boundMessages, windows: rows, redeliveriesMax: Math.max(0, ...rows.map((row) => row.redeliveries)) },
    failures: storms.length === 0 ? [] : [`${storms.length} redelivery storms (more un-nacked redeliveries than ${boundMessages}): ${JSON.stringify(storms.slice(0, 3))}`],
  };
}

/**
 * Consumer kills: every message the killed consumer held unsettled must be delivered again (or
 * dead-lettered); acks it had sent well before the kill must not be undone.
 */
export function consumerKills(events: readonly HistoryEvent[], ackFlushGraceMs: number): Findings {
  const kills = events.filter((event): event is EventOf<'ck'> => event.k === 'ck');
  const killedAt = new Map(kills.map((kill) => [kill.c, kill.t]));
  const held = new Map<string, { c: string; t: number }>(); // message → consumer holding it unsettled
  const heldAtKill: Array<{ key: string; killT: number }> = [];
  const ackedBy = new Map<string, { c: string; t: number }>();
  for (const event of events) {
    if (event.k === 'd' && event.kind === 'group' && event.p !== undefined) held.set(`${event.p}:${event.s}`, { c: event.c, t: event.t });
    else if ((event.k === 'ak' || event.k === 'nk') && held.get(`${event.p}:${event.s}`)?.c === event.c) {
      held.delete(`${event.p}:${event.s}`);
      if (event.k === 'ak') ackedBy.set(`${event.p}:${event.s}`, { c: event.c, t: event.t });
    } else if (event.k === 'ck') {
      for (const [key, holder] of held) if (holder.c === event.c) heldAtKill.push({ key, killT: event.t });
    }
  }
  const laterDeliveries = new Map<string, number[]>();
  for (const event of events) {
    if ((event.k === 'd' && (event.kind === 'group' || event.kind === 'dlq')) && event.p !== undefined) {
      const key = `${event.p}:${event.s}`;
      let list = laterDeliveries.get(key);
      if (list === undefined) laterDeliveries.set(key, (list = []));
      list.push(event.t);
    }
  }
  const notRedelivered = heldAtKill.filter(({ key, killT }) => !(laterDeliveries.get(key) ?? []).some((t) => t > killT));
  // An ack by a consumer that was killed later: redelivered only if the ack may not have left.
  let ackedThenRedelivered = 0;
  let ackedLongBeforeKillRedelivered = 0;
  for (const [key, ack] of ackedBy) {
    const killT = killedAt.get(ack.c);
    if (killT === undefined || killT < ack.t) continue;
    if (!(laterDeliveries.get(key) ?? []).some((t) => t > ack.t)) continue;
    ackedThenRedelivered++;
    if (killT - ack.t > ackFlushGraceMs) ackedLongBeforeKillRedelivered++;
  }
  const failures: string[] = [];
  if (notRedelivered.length > 0) failures.push(`${notRedelivered.length} messages held by a killed consumer were never delivered again: ${JSON.stringify(notRedelivered.slice(0, 3))}`);
  if (ackedLongBeforeKillRedelivered > 0) failures.push(`${ackedLongBeforeKillRedelivered} messages acked more than ${ackFlushGraceMs} ms before their consumer was killed were redelivered`);
  return {
    figures: { consumerKills: kills.length, heldAtKill: heldAtKill.length, redeliveredAfterKill: heldAtKill.length - notRedelivered.length, ackedThenRedelivered, ackedLongBeforeKillRedelivered },
    failures,
  };
}

/** Disk full: rejections were typed, nothing failed harder, and publishing resumed after each return of space. */
export function diskFull(events: readonly HistoryEvent[], resumeMsMax: number): Findings {
  const codes: Record<string, number> = {};
  for (const event of events) if (event.k === 'pf' || event.k === 'pu') codes[`${event.k}:${event.code}`] = (codes[`${event.k}:${event.code}`] ?? 0) + 1;
  const spaceBack = events.filter((event) => event.k === 'ph' && event.name === 'space-back').map((event) => event.t);
  const fullAt = events.filter((event) => event.k === 'ph' && event.name === 'disk-full').map((event) => event.t);
  const confirms = events.filter((event) => event.k === 'po').map((event) => event.t);
  const resumeMs = spaceBack.map((t) => {
    const next = confirms.find((c) => c > t);
    return next === undefined ? Infinity : round1(next - t);
  });
  const failures: string[] = [];
  const diskFullRejections = codes['pf:DISK_FULL'] ?? 0;
  if (fullAt.length > 0 && diskFullRejections === 0) failures.push('the disk was filled but no publish was rejected with DISK_FULL');
  const damaging = Object.keys(codes).filter((code) => code.endsWith('STORAGE_FAILED') || code.endsWith('INTERNAL'));
  if (damaging.length > 0) failures.push(`publishes failed with ${damaging.join(', ')} instead of DISK_FULL`);
  const slow = resumeMs.filter((ms) => ms > resumeMsMax);
  if (slow.length > 0) failures.push(`publishing did not resume within ${resumeMsMax} ms after space returned (${slow.join(', ')} ms)`);
  return { figures: { diskFullPhases: fullAt.length, errorCodes: codes, resumeMs }, failures };
}

/** Latency over time: publish (invoke → confirm) and end to end (invoke → first delivery), per bucket. */
export function latencySeries(events: readonly HistoryEvent[], bucketMs: number): Array<Record<string, number>> {
  const invoked = new Map<string, number>();
  const delivered = new Set<string>();
  const buckets = new Map<number, { publish: number[]; endToEnd: number[] }>();
  const firstT = events[0]?.t ?? 0;
  const bucket = (t: number) => {
    const index = Math.floor((t - firstT) / bucketMs);
    let found = buckets.get(index);
    if (found === undefined) buckets.set(index, (found = { publish: [], endToEnd: [] }));
    return found;
  };
  for (const event of events) {
    if (event.k === 'pi' && event.a === 1) invoked.set(`${event.p}:${event.s}`, event.t);
    else if (event.k === 'po') {
      const start = invoked.get(`${event.p}:${event.s}`);
      if (start !== undefined) bucket(event.t).publish.push(event.t - start);
    } else if (event.k === 'd' && event.kind === 'group' && event.p !== undefined) {
      const key = `${event.p}:${event.s}`;
      if (delivered.has(key)) continue;
      delivered.add(key);
      const start = invoked.get(key);
      if (start !== undefined) bucket(event.t).endToEnd.push(event.t - start);
    }
  }
  return [...buckets.entries()]
    .sort(([a], [b]) => a - b)
    .map(([index, { publish, endToEnd }]) => {
      publish.sort((a, b) => a - b);
      endToEnd.sort((a, b) => a - b);
      return {
        atS: (index * bucketMs) / 1000,
        confirmed: publish.length,
        publishP50Ms: round1(percentile(publish, 0.5)),
        publishP99Ms: round1(percentile(publish, 0.99)),
        endToEndP50Ms: round1(percentile(endToEnd, 0.5)),
        endToEndP99Ms: round1(percentile(endToEnd, 0.99)),
      };
    });
}

/** Resource samples of the broker over time. */
export function resourceSeries(events: readonly HistoryEvent[]): Array<Record<string, number>> {
  const firstT = events[0]?.t ?? 0;
  return events
    .filter((event): event is EventOf<'m'> => event.k === 'm')
    .map((event) => ({
      atS: Math.round((event.t - firstT) / 1000),
      rssMiB: round1(event.rssBytes / 2 ** 20),
      openFiles: event.openFiles,
      diskMiB: round1(event.diskBytes / 2 ** 20),
    }));
}

/**
 * Delivery counts against the group's deliveriesMax: a nack or timeout past it dead-letters, so a
 * count above it means some other path redelivered without counting against the bound.
 */
export function deliveryCounts(events: readonly HistoryEvent[], deliveriesMax: number): Findings {
  let deliveryCountMax = 0;
  let overDeliveriesMax = 0;
  const messagesOver = new Set<string>();
  for (const event of events) {
    if (event.k !== 'd' || event.kind !== 'group') continue;
    deliveryCountMax = Math.max(deliveryCountMax, event.dc);
    if (event.dc > deliveriesMax) {
      overDeliveriesMax++;
      messagesOver.add(`${event.p}:${event.s}`);
    }
  }
  return { figures: { deliveriesMax, deliveryCountMax, deliveriesOverMax: overDeliveriesMax, messagesOverMax: messagesOver.size }, failures: [] };
}
