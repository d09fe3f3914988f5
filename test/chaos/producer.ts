/**
 * A chaos producer: publishes numbered messages with an id (`<producer>:<seq>`, for the broker's
 * dedup) to a partition of its own (so that their order is checkable), keeps
 * up to `window` messages unconfirmed, and retries a message with the same id — a new attempt —
 * until it is confirmed: after an unknown outcome (timeout, lost connection) or a retryable
 * rejection (DISK_FULL, BROKER_BUSY). Every step is recorded in the history first.
 */
import type { FerryClient } from '../../src/client/index.js';
import { isFerryError } from '../../src/errors.js';
import { encodeValue, nowT, type HistoryWriter, type MessageIdentity } from './history.js';
import { randomInt } from '../sim/random.js';

export interface ProducerSettings {
  /** Messages published and not yet confirmed, at most. */
  window: number;
  /** Messages per second for this producer; absent = as fast as confirmations allow. */
  ratePerSec?: number;
  valueBytes: number;
  /** Share of messages every consumer nacks, so they must end in the dead-letter topic. */
  poisonChance: number;
  /** Share of messages published with a delay in [delayMsMin, delayMsMax]. */
  delayChance: number;
  delayMsMin: number;
  delayMsMax: number;
}

/** Errors after which the client cannot know whether the broker stored the message. */
const UNKNOWN_OUTCOME_CODES = new Set(['TIMEOUT', 'CONNECTION_CLOSED', 'CONNECTION_REFUSED', 'STORAGE_FAILED', 'INTERNAL']);
/** Rejections worth another attempt: the condition is expected to pass. */
const RETRYABLE_REJECTION_CODES = new Set(['DISK_FULL', 'BROKER_BUSY', 'LOG_CLOSED', 'BROKER_CLOSING']);
/** Backoff before a retry: long enough not to spin while the broker restarts. */
const RETRY_DELAY_MS_MIN = 50;
const RETRY_DELAY_MS_MAX = 500;
/** Rate-limited producers top up their allowance this often. */
const RATE_TICK_MS = 20;

export class Producer {
  private nextSeq = 0;
  private unconfirmed = 0;
  private stopping = false;
  /** Set when the stop grace is over: no more retries. */
  private abandoned = false;
  private allowance = 0;
  private rateTimer: NodeJS.Timeout | null = null;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly id: string,
    private readonly client: FerryClient,
    private readonly topic: string,
    private readonly settings: ProducerSettings,
    private readonly history: HistoryWriter,
    private readonly random: () => number,
    /** All of this producer's messages go to one partition, so that their order is checkable. */
    private readonly partition: number,
  ) {}

  start(): void {
    if (this.settings.ratePerSec === undefined) {
      this.pump();
      return;
    }
    let lastMs = performance.now();
    this.rateTimer = setInterval(() => {
      const nowMs = performance.now();
      // Capped at one second's worth: after a stall the producer does not burst.
      this.allowance = Math.min(this.settings.ratePerSec!, this.allowance + ((nowMs - lastMs) * this.settings.ratePerSec!) / 1000);
      lastMs = nowMs;
      this.pump();
    }, RATE_TICK_MS);
  }

  /** Stops publishing new messages; resolves when every message is confirmed, or after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.rateTimer !== null) clearInterval(this.rateTimer);
    if (this.unconfirmed > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
      ]);
      clearTimeout(timer);
    }
    this.abandoned = true;
    for (const timer of this.retryTimers) clearTimeout(timer);
    this.retryTimers.clear();
  }

  private pump(): void {
    const limited = this.settings.ratePerSec !== undefined;
    while (!this.stopping && this.unconfirmed < this.settings.window && (!limited || this.allowance >= 1)) {
      if (limited) this.allowance -= 1;
      const identity: MessageIdentity = { p: this.id, s: this.nextSeq++, a: 1 };
      if (this.random() < this.settings.poisonChance) identity.x = 1;
      if (this.random() < this.settings.delayChance) identity.d = randomInt(this.random, this.settings.delayMsMin, this.settings.delayMsMax);
      this.unconfirmed++;
      this.send(identity);
    }
  }

  private send(identity: MessageIdentity): void {
    const { p, s, a, d } = identity;
    this.history.record({ k: 'pi', t: nowT(), p, s, a, ...(d === undefined ? {} : { d }) });
    const value = encodeValue(identity, this.settings.valueBytes);
    this.client.publish(this.topic, value, { partition: this.partition, id: `${p}:${s}`, ...(d === undefined ? {} : { delayMs: d }) }).then(
      (result) => {
        this.history.record({ k: 'po', t: nowT(), p, s, a, part: result.partition, off: result.offset, ...(result.duplicate ? { dup: true } : {}) });
        this.settled();
      },
      (error: unknown) => {
        const code = isFerryError(error) ? error.code : 'INTERNAL';
        // A leader that appended the message and lost its leadership before committing it says so
        // (`appended`); the cluster client gives up on such a publish with TIMEOUT, outcome unknown.
        const unknown = UNKNOWN_OUTCOME_CODES.has(code) || (isFerryError(error) && error.detail?.['appended'] === true);
        this.history.record({ k: unknown ? 'pu' : 'pf', t: nowT(), p, s, a, code });
        if (this.abandoned || !(unknown || RETRYABLE_REJECTION_CODES.has(code))) {
          this.settled();
          return;
        }
        const timer = setTimeout(() => {
          this.retryTimers.delete(timer);
          if (this.abandoned) return;
          this.send({ ...identity, a: a + 1 });
        }, randomInt(this.random, RETRY_DELAY_MS_MIN, RETRY_DELAY_MS_MAX));
        this.retryTimers.add(timer);
      },
    );
  }

  private settled(): void {
    this.unconfirmed--;
    if (this.unconfirmed === 0 && this.idleWaiters.length > 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
    if (this.settings.ratePerSec === undefined) this.pump();
  }
}
