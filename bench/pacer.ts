/**
 * The open-loop sender of W3 and its microscopes: send i is due at start + i / rate, whatever
 * happened to earlier ones, so a slow broker meets a growing backlog instead of a politely slowed
 * producer. Node's timers fire at most once a millisecond, so each tick makes every send that has
 * come due.
 */

/** Sender tick: Node's timers do not fire more often than once a millisecond. */
const PACING_TICK_MS = 1;

/**
 * Calls `send(0)` … `send(count - 1)` at `ratePerSec`; resolves once all are made, with how late
 * the latest send was against its due time.
 */
export function sendPaced(count: number, ratePerSec: number, send: (sequence: number) => void): Promise<{ sendLagMaxMs: number }> {
  const intervalMs = 1000 / ratePerSec;
  return new Promise((resolve) => {
    let sent = 0;
    let sendLagMaxMs = 0;
    const start = performance.now();
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(count, Math.floor((now - start) / intervalMs) + 1);
      if (sent < due) sendLagMaxMs = Math.max(sendLagMaxMs, now - (start + sent * intervalMs));
      while (sent < due) send(sent++);
      if (sent < count) setTimeout(tick, PACING_TICK_MS);
      else resolve({ sendLagMaxMs });
    };
    tick();
  });
}
