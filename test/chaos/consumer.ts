/**
 * A chaos consumer in the queue group under test. It holds each message a little (so that a kill
 * can land between receive and ack), then acks it — or nacks it: always for poison messages, now
 * and then on a first delivery. Every few seconds it closes its subscription and opens a new one:
 * the broker answers UNSUBSCRIBE only after every ack sent before it has settled, so an answered
 * close is the evidence that those acks are durable (the `bar` event; ACK itself has no reply).
 * Only the answer counts (`close()` resolving true): a close that merely did not fail proves
 * nothing, since the client learns of a lost connection only after its socket has failed.
 *
 * The generation `g` counts lost connections and subscriptions the client moved to another broker
 * (a cluster client follows its topic's leader without a lost connection the consumer sees): an ack
 * of a message received in an earlier generation is dropped by the client, and the history says so
 * (dg != g); and a barrier vouches only for acks of its own generation, so an UNSUBSCRIBE answered
 * by the new leader never confirms acks sent to the old one.
 */
import type { FerryClient, Message, Subscription } from '../../src/client/index.js';
import { isFerryError } from '../../src/errors.js';
import { decodeValue, nowT, type HistoryWriter } from './history.js';
import { randomInt } from '../sim/random.js';

export interface ConsumerSettings {
  group: string;
  prefetch: number;
  ackTimeoutMs: number;
  backoffMs: number[];
  deliveriesMax: number;
  /** Each message is held for a random time up to this before it is settled. */
  holdMsMax: number;
  /** Share of first deliveries that are nacked. */
  nackChance: number;
  rotateMsMin: number;
  rotateMsMax: number;
  /** The client's request timeout: an UNSUBSCRIBE not answered within it counts as unanswered. */
  requestTimeoutMs: number;
}

/** Wait after a failed subscribe before trying again (the broker may be restarting). */
const RESUBSCRIBE_DELAY_MS = 200;

export class Consumer {
  private generation = 0;
  private subscriptionCount = 0;
  private stopping = false;
  private held = 0;
  private heldWaiters: Array<() => void> = [];
  /** Settle errors seen so far (never reset: see settleErrorsAtOpen). */
  private settleErrors = 0;
  /**
   * `settleErrors` when the current subscription opened. A barrier compares with the count when its
   * own subscription opened: the next subscription opens while the close's UNSUBSCRIBE still waits
   * for its acks, and resetting a count there erased the settle errors of the subscription being
   * closed, so a barrier after a failed ack could count as confirming it.
   */
  private settleErrorsAtOpen = 0;
  private pendingSettles: Array<() => void> = [];
  private current: Subscription | null = null;
  private currentLocal = 0;
  private rotateTimer: NodeJS.Timeout | null = null;
  private done: Promise<void> | null = null;

  constructor(
    readonly id: string,
    private readonly client: FerryClient,
    private readonly topic: string,
    private readonly settings: ConsumerSettings,
    private readonly history: HistoryWriter,
    private readonly random: () => number,
  ) {
    client.on('reconnecting', () => {
      this.generation++;
      history.record({ k: 'rc', t: nowT(), c: id, g: this.generation });
    });
    client.on('subscriptionMoved', () => {
      this.generation++;
      history.record({ k: 'rc', t: nowT(), c: id, g: this.generation, moved: true });
    });
    client.on('error', (error: unknown) => {
      this.settleErrors++;
      history.record({ k: 'se', t: nowT(), c: id, code: isFerryError(error) ? error.code : 'INTERNAL' });
    });
  }

  start(): void {
    this.done = this.run();
  }

  /** Finishes the held messages, closes the subscription (a last barrier) and resolves. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.rotateTimer !== null) clearTimeout(this.rotateTimer);
    await this.closeCurrent();
    await this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      let subscription: Subscription;
      try {
        subscription = await this.client.subscribe(this.topic, {
          group: this.settings.group,
          from: 'earliest',
          prefetch: this.settings.prefetch,
          ackTimeoutMs: this.settings.ackTimeoutMs,
          backoffMs: this.settings.backoffMs,
          deliveriesMax: this.settings.deliveriesMax,
        });
      } catch {
        await new Promise((resolve) => setTimeout(resolve, RESUBSCRIBE_DELAY_MS));
        continue;
      }
      const local = ++this.subscriptionCount;
      this.current = subscription;
      this.currentLocal = local;
      this.settleErrorsAtOpen = this.settleErrors;
      this.rotateTimer = setTimeout(() => void this.closeCurrent(), randomInt(this.random, this.settings.rotateMsMin, this.settings.rotateMsMax));
      try {
        for (;;) {
          const next = await subscription.next();
          if (next.done) break;
          // Closing: a message taken now would be settled after UNSUBSCRIBE (a rejected no-op), so it
          // is only recorded; the broker redelivers it once the subscription is gone.
          this.receive(next.value, local, subscription, this.current === subscription);
        }
      } catch {
        // The subscription failed (reconnecting gave up): open a new one.
      }
      if (this.rotateTimer !== null) clearTimeout(this.rotateTimer);
      await this.closeCurrent();
    }
  }

  private receive(message: Message, sub: number, subscription: Subscription, settle: boolean): void {
    const g = this.generation;
    const identity = decodeValue(message.value);
    const base = { t: nowT(), kind: 'group' as const, c: this.id, sub, g, part: message.partition, off: message.offset, dc: message.deliveryCount };
    if (typeof identity === 'string') {
      this.history.record({ k: 'd', ...base, bad: identity });
      if (settle) this.settleLater(() => void message.ack().catch(() => undefined));
      return;
    }
    const { p, s, a } = identity;
    this.history.record({ k: 'd', ...base, p, s, a });
    if (!settle) return;
    this.held++;
    setTimeout(() => {
      if (subscription.isClosed) {
        // Closed under the message (stop() or a failed subscription): nothing can be settled.
        this.release();
        return;
      }
      const nack = identity.x === 1 || (message.deliveryCount === 1 && this.random() < this.settings.nackChance);
      const event = { t: nowT(), c: this.id, sub, dg: g, g: this.generation, part: message.partition, off: message.offset, p, s };
      this.history.record(nack ? { k: 'nk', ...event } : { k: 'ak', ...event });
      this.settleLater(() => {
        void (nack ? message.nack() : message.ack()).catch(() => undefined);
        this.release();
      });
    }, randomInt(this.random, 0, this.settings.holdMsMax));
  }

  /** Settles in one batch per turn, after one flush of the history: the record precedes the ack. */
  private settleLater(settle: () => void): void {
    this.pendingSettles.push(settle);
    if (this.pendingSettles.length > 1) return;
    setImmediate(() => {
      this.history.flush();
      const settles = this.pendingSettles;
      this.pendingSettles = [];
      for (const run of settles) run();
    });
  }

  private release(): void {
    this.held--;
    if (this.held === 0) for (const resolve of this.heldWaiters.splice(0)) resolve();
  }

  /** Waits for held messages to be settled, then closes the subscription: the barrier. */
  private async closeCurrent(): Promise<void> {
    const subscription = this.current;
    if (subscription === null) return;
    const sub = this.currentLocal;
    const errorsAtOpen = this.settleErrorsAtOpen;
    this.current = null;
    if (this.held > 0) await new Promise<void>((resolve) => this.heldWaiters.push(resolve));
    // Let the settles of this turn leave before UNSUBSCRIBE.
    await new Promise((resolve) => setImmediate(resolve));
    const g = this.generation;
    const attached = subscription.id !== 0;
    const answered = await subscription.close();
    // The broker answered, with no settle error, on the connection of generation g (the acks of
    // this generation went over it; those of an earlier one are keyed by their own g): settled.
    // `why` says which condition failed; 'unanswered' alone is a close that did not fail although
    // the UNSUBSCRIBE never got its answer (the connection was already gone, or it timed out).
    const why = !attached
      ? 'detached'
      : g !== this.generation
        ? 'reconnected'
        : this.settleErrors !== errorsAtOpen
          ? 'settle-error'
          : !answered
            ? 'unanswered'
            : undefined;
    this.history.record({ k: 'bar', t: nowT(), c: this.id, sub, g, ok: why === undefined, ...(why === undefined ? {} : { why }) });
    this.history.flush();
  }
}
