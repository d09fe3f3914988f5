/**
 * When a nacked or timed-out message is delivered again. The default schedule doubles from 1 s
 * to a 5 min cap and adds up to +20% jitter, so that consumers that fail together do not retry
 * together; jitter only ever delays, so a redelivery is never earlier than its schedule. An
 * explicit `backoffMs` list is used as given (its last value repeats), without jitter.
 */
export const BACKOFF_BASE_MS = 1000;
export const BACKOFF_CAP_MS = 5 * 60 * 1000;
export const BACKOFF_JITTER_FRACTION_MAX = 0.2;
/** Longest explicit schedule accepted; more steps than this are a configuration mistake. */
export const BACKOFF_STEPS_MAX = 64;
/** Longest single delay: one year, the same bound as delayed messages. */
export const BACKOFF_DELAY_MS_MAX = 365 * 24 * 3600 * 1000;

/** The schedule's delay before redelivery number `deliveries` + 1 (deliveries >= 1). */
export function scheduledDelayMs(backoffMs: readonly number[], deliveries: number): number {
  const step = Math.max(1, deliveries);
  if (backoffMs.length > 0) return backoffMs[Math.min(step, backoffMs.length) - 1]!;
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(step - 1, 30));
}

/** The delay actually used: the schedule plus jitter for the default schedule. */
export function backoffDelayMs(backoffMs: readonly number[], deliveries: number, random: () => number): number {
  const scheduled = scheduledDelayMs(backoffMs, deliveries);
  if (backoffMs.length > 0) return scheduled;
  return scheduled + Math.floor(scheduled * BACKOFF_JITTER_FRACTION_MAX * random());
}
