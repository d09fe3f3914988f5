/**
 * A connection's frames handled in turns, so that no client holds the event loop: at most
 * FRAMES_PER_TURN_MAX per turn, none while its HELLO is being checked, and a wait after a turn that
 * refused many of its requests. What must wait is held, with reading paused, until its turn.
 */
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { FRAME_TYPES, type Frame } from '../../protocol/frame.js';

/**
 * Frames handled in one event-loop turn per connection; the rest of a socket read waits for the
 * next turn (reading paused meanwhile), so a client that packs thousands of tiny requests into
 * every read cannot hold the loop and delay everyone else. A run of PUBLISH frames counts once it
 * is handled, as one batch. A 64 KiB read holds at most ~2,300 frames; real clients' reads far fewer.
 */
const FRAMES_PER_TURN_MAX = 128;

/**
 * Frames decoded from a socket read at a time (FrameDecoder's framesPerPushMax); the rest of the
 * read waits, reading paused, until these are handled. A 64 KiB read of tiny frames is ~2,300 of
 * them, and decoding them all (a header, a frame and a view each) was one stretch of 1–2 ms of the
 * broker's thread every read of a SUBSCRIBE flood. Four turns' worth: a well-behaved client's read
 * (coalesced PUBLISH frames of many messages each, or a few hundred small frames) is still decoded
 * whole, and a run of PUBLISH frames still reaches the broker as one batch.
 */
export const FRAMES_DECODED_PER_READ_MAX = 4 * FRAMES_PER_TURN_MAX;

/**
 * A SUBSCRIBE that opens a subscription counts as this many frames of the turn's budget, so at most
 * FRAMES_PER_TURN_MAX / 8 = 16 open per connection and turn: each costs the broker ~40–60 µs (the
 * guard, the topic's reader, the answer) against a few µs for most frames, and a client opening a
 * thousand at once held the loop ~5 ms a turn. A refused SUBSCRIBE (past subscriptionsMax, forbidden)
 * counts as one frame.
 */
export const SUBSCRIBE_FRAME_WEIGHT = 8;

/**
 * A turn that refused at least this many of a connection's requests (a client looping on what it
 * may not have: subscriptions past the cap, forbidden topics, an exhausted quota) makes that
 * connection wait THROTTLED_TURN_DELAY_MS before its next frames are handled or read. The refusals
 * still come, one per request, but a flood of them costs the broker a fraction of its thread
 * instead of all of it, and well-behaved clients keep their latency.
 */
const REFUSALS_PER_TURN_THROTTLED = 32;
const THROTTLED_TURN_DELAY_MS = 1;

/** What the turns need from their connection. */
export interface TurnHost {
  readonly state: 'handshake' | 'authenticating' | 'open' | 'draining' | 'closed';
  /** Failing or closed: frames are dropped. */
  readonly stopped: boolean;
  /** Requests refused so far (ERROR answers that leave the connection open). */
  readonly refusals: number;
  readonly logger: Logger;
  /** May a HELLO be handled in this turn? (false: the server's per-turn budget is spent) */
  admitHandshake(): boolean;
  /** Handles frames[i] (with the PUBLISH frames after it, as one run); returns the index after what it handled. */
  handleAt(frames: Frame[], i: number): number;
  pauseReading(): void;
  /** Nothing is held and no turn waits: reading may resume, unless the connection itself holds it. */
  resumeReading(): void;
  /** The connection waits out a turn for refusing too much (counted for the metrics). */
  throttled(): void;
  /** Who the connection is, for log lines. */
  logFields(): Record<string, unknown>;
}

export class FrameTurns {
  /** Frames waiting their turn: behind a HELLO still being checked, or past one turn's budget. */
  private held: Frame[] = [];
  /**
   * The first held frame not handled yet: a turn moves it rather than copying the rest into a new
   * array (a 64 KiB read of tiny frames is ~2,000 of them, handled over ~16 turns).
   */
  private heldFrom = 0;
  private scheduled = false;
  /** Turns this connection waited out for refusing too much (REFUSALS_PER_TURN_THROTTLED). */
  throttledTurns = 0;

  constructor(
    private readonly host: TurnHost,
    private readonly clock: Clock,
  ) {}

  /** Frames are held, or a turn is scheduled to handle them. */
  get waiting(): boolean {
    return this.held.length > 0 || this.scheduled;
  }

  /** Frames of one socket read: handled now, or behind those still held. */
  push(frames: Frame[]): void {
    if (this.held.length > 0) {
      // Earlier frames still wait: these go behind them, in order.
      for (const frame of frames) this.held.push(frame);
      return;
    }
    this.process(frames);
  }

  drop(): void {
    this.held = [];
    this.heldFrom = 0;
  }

  /** Handles held frames (after a login, or in the next turn), then reads again if nothing is left. */
  readonly next = (): void => {
    this.scheduled = false;
    if (this.host.stopped) {
      this.drop();
      return;
    }
    const held = this.held;
    const from = this.heldFrom;
    // All handled, unless process() stops at its budget or at a HELLO and sets heldFrom there.
    this.heldFrom = held.length;
    this.process(held, from);
    if (this.held === held && this.heldFrom >= held.length) this.drop();
    // Reading resumes once nothing is held, unless a throttled turn (scheduled above) waits first.
    if (!this.waiting) this.host.resumeReading();
  };

  /** Handles frames in order (from `from`) until the turn's budget is spent or a HELLO is being checked; holds the rest. */
  private process(frames: Frame[], from = 0): void {
    const host = this.host;
    const refusalsBefore = host.refusals;
    let i = from;
    /** The turn's budget spent: frames handled, a SUBSCRIBE that opened a subscription weighing SUBSCRIBE_FRAME_WEIGHT. */
    let spent = 0;
    while (i < frames.length && !host.stopped) {
      if (host.state === 'authenticating' || spent >= FRAMES_PER_TURN_MAX || this.helloMustWait(frames[i]!)) {
        // Pipelined behind a HELLO being checked, past the turn's budget, or a HELLO beyond the
        // server's handshakes for this turn: kept, with reading paused (so at most one socket
        // read's worth), until the login is decided or the next turn.
        if (frames === this.held) this.heldFrom = i;
        else for (; i < frames.length; i++) this.held.push(frames[i]!);
        host.pauseReading();
        if (host.state !== 'authenticating') this.schedule(host.refusals - refusalsBefore >= REFUSALS_PER_TURN_THROTTLED);
        return;
      }
      const refusalsNow = host.refusals;
      const at = i;
      i = host.handleAt(frames, i);
      spent += frames[at]!.type === FRAME_TYPES.SUBSCRIBE && host.refusals === refusalsNow ? SUBSCRIBE_FRAME_WEIGHT : i - at;
    }
    if (host.refusals - refusalsBefore >= REFUSALS_PER_TURN_THROTTLED && host.state === 'open' && !host.stopped) {
      // Nothing held, but the next read waits out the delay too (next() resumes reading).
      host.pauseReading();
      this.schedule(true);
    }
  }

  /** A HELLO waits for the next turn when the server has handled its HANDSHAKES_PER_TURN_MAX this turn. */
  private helloMustWait(frame: Frame): boolean {
    return this.host.state === 'handshake' && frame.type === FRAME_TYPES.HELLO && !this.host.admitHandshake();
  }

  /** Handles the held frames in the next turn, or after THROTTLED_TURN_DELAY_MS when `throttled`. */
  private schedule(throttled: boolean): void {
    if (this.scheduled) return;
    this.scheduled = true;
    if (!throttled) {
      setImmediate(this.next);
      return;
    }
    this.throttledTurns++;
    this.host.throttled();
    if (this.throttledTurns === 1) {
      this.host.logger.warn('transport.connection.throttled', {
        ...this.host.logFields(),
        refusalsPerTurn: REFUSALS_PER_TURN_THROTTLED,
        delayMs: THROTTLED_TURN_DELAY_MS,
      });
    }
    this.clock.schedule(THROTTLED_TURN_DELAY_MS, this.next);
  }
}
