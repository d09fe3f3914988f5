/**
 * The changes of a topic's leadership under way on this broker: taking the topic up (etcd names
 * this broker leader; its service opens) or handing it over (a controlled shutdown, a move). A
 * request for the topic that arrives meanwhile waits for the change to end, bounded, instead of
 * being refused at once: the refusal would name this broker itself, or a successor that does not
 * serve yet, and send the client into its backoff. Once the change is over the request is served,
 * or refused naming the leader as it now is.
 */
import type { Clock, TimerHandle } from '../platform/clock.js';

interface Waiter {
  wake(): void;
}

export class LeadershipChanges {
  private underway = 0;
  private readonly waiting = new Set<Waiter>();

  constructor(private readonly clock: Clock) {}

  /** Whether a change is under way. */
  get changing(): boolean {
    return this.underway > 0;
  }

  /** A change begins; the function returned ends it (once, however often it is called). */
  begin(): () => void {
    this.underway++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.underway--;
      if (this.underway === 0) this.release();
    };
  }

  /** Resolves once no change is under way, or after `timeoutMs`; at once when none is. */
  settled(timeoutMs: number): Promise<void> {
    if (this.underway === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: TimerHandle | null = null;
      const waiter: Waiter = {
        wake: () => {
          if (!this.waiting.delete(waiter)) return;
          timer?.cancel();
          resolve();
        },
      };
      this.waiting.add(waiter);
      timer = this.clock.schedule(timeoutMs, waiter.wake);
    });
  }

  /** Wakes every waiter now (the replica closes). */
  release(): void {
    for (const waiter of [...this.waiting]) waiter.wake();
  }
}
