/**
 * Node's timers hold a delay in a signed 32-bit integer: past 2^31−1 ms (about 24.8 days) Node
 * warns (`TimeoutOverflowWarning`) and fires after 1 ms instead. Ferry's delays go further (a
 * `deliverAt` up to 366 days ahead, a nack's `delayMs` up to 2^32−1 ms), so every clock arms a long
 * delay in steps of at most TIMER_DELAY_MS_MAX, re-arming from its monotonic time until it is due.
 */

/** The longest delay one Node timer can hold. */
export const TIMER_DELAY_MS_MAX = 2 ** 31 - 1;

/** What a clock can arm: one timer of at most TIMER_DELAY_MS_MAX. */
export type ArmTimer = (delayMs: number, fire: () => void) => { cancel(): void };

/**
 * Runs `callback` once `delayMs` has passed on `monotonicMs`, whatever its length, arming `arm`
 * with at most TIMER_DELAY_MS_MAX at a time. A short delay is armed as it is (no extra work).
 */
export function scheduleCapped(arm: ArmTimer, monotonicMs: () => number, delayMs: number, callback: () => void): { cancel(): void } {
  const delay = Math.max(0, delayMs);
  if (delay <= TIMER_DELAY_MS_MAX) return arm(delay, callback);
  const dueMs = monotonicMs() + delay;
  let cancelled = false;
  let current: { cancel(): void };
  const step = (): void => {
    if (cancelled) return;
    const remainingMs = dueMs - monotonicMs();
    current = remainingMs > TIMER_DELAY_MS_MAX ? arm(TIMER_DELAY_MS_MAX, step) : arm(Math.max(0, remainingMs), callback);
  };
  current = arm(TIMER_DELAY_MS_MAX, step);
  return {
    cancel: () => {
      cancelled = true;
      current.cancel();
    },
  };
}
