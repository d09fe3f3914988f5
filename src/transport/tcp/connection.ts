/**
 * One client connection: the socket, its frames handled in turns, replies flushed once per turn,
 * backpressure, heartbeats and the lifecycle from HELLO to close; each request goes to its verb's
 * module (session, topics, publish, subscriptions, settle, groups).
 * The rest: docs/INTERNALS.md.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { BrokerApi } from '../../broker/types.js';
import { FerryError, isFerryError, type ErrorCode } from '../../errors.js';
import { FRAME_TYPES, frameTypeName, type Frame, type FrameType } from '../../protocol/frame.js';
import { FrameDecoder, type FrameHandler, type PayloadScanner } from '../../protocol/decoder.js';
import { FrameWriter, writeParts } from '../../protocol/writer.js';
import { PayloadReader } from '../../protocol/reader.js';
import { PRE_LOGIN_FRAME_BYTES_MAX, SUPPORTED_VERSIONS } from '../../protocol/limits.js';
import { decodeHello, encodeError, encodeGoodbye } from '../../protocol/codec-session.js';
import { decodeUnsubscribe } from '../../protocol/codec-subscribe.js';
import type { HelloRequest } from '../../protocol/messages.js';
import type { TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { Principal } from '../../security/authenticator.js';
import type { ResolvedServerOptions } from './options.js';
import { handleGroupRequest } from './groups.js';
import { closesUnread, handlePublishRun, publishScanner } from './publish.js';
import type { ServerSubscription } from './server-subscription.js';
import { login, negotiateVersion, tooLargeBeforeLogin, writeHelloOk, type Login } from './session.js';
import { handleSettle } from './settle.js';
import { ConnectionSubscriptions, type SubscriptionsHost } from './subscriptions.js';
import { handleClusterFrame, isClusterFrame, type ClusterPeer } from './cluster.js';
import { handleTopicRequest } from './topics.js';
import { FRAMES_DECODED_PER_READ_MAX, FrameTurns, type TurnHost } from './turns.js';
import type { ConnectionState, ConnectionStats } from './connection-stats.js';
import { Refusal } from './refusal.js';

/** Time a failed connection gets to flush its ERROR frame before the socket is destroyed. */
const FAIL_LINGER_MS = 1000;

export type { ConnectionState, ConnectionStats } from './connection-stats.js';

/** What the connection reports to its server. */
export interface ConnectionOwner {
  connectionClosed(connection: Connection): void;
  slowConsumer(connection: Connection): void;
  /** An ERROR with this code was sent (counted for the metrics). */
  rejected(code: ErrorCode): void;
  /** May a HELLO be handled in this event-loop turn? (false: the server's per-turn budget is spent) */
  admitHandshake(): boolean;
  /** The ERROR for a connection whose HELLO did not come within authTimeoutMs, encoded once for all. */
  loginTimedOut(): Refusal;
  /** The connection waits out a turn for refusing too many of its requests (counted for the metrics). */
  throttled(): void;
}

export class Connection implements FrameHandler, SubscriptionsHost, TurnHost {
  state: ConnectionState = 'handshake';
  clientName = '';
  private readonly decoder: FrameDecoder;
  readonly writer = new FrameWriter();
  readonly reader = new PayloadReader();
  private readonly subscriptions = new ConnectionSubscriptions(this);
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private closedWaiters: Array<() => void> = [];
  private flushScheduled = false;
  private decodeScheduled = false; // a decodeHeld() is scheduled (holdReading)
  private readPaused = false;
  private failing = false;
  /** The client said GOODBYE: the close that follows is a clean one. */
  private goodbyeReceived = false;
  private lastReceivedMs: number;
  private lastSentMs: number;
  /** When the socket went above the high-water mark, or -1. */
  private backedUpSinceMs = -1;
  private readonly connectedAtMs: number;
  private bytesOut = 0;
  private framesOut = 0;
  private readonly remoteAddress: string;
  private readonly remotePort: number;
  /** What requests go to: the broker itself, or the guard's view of it for the authenticated user. */
  broker: BrokerApi;
  private principal: Principal | null = null;
  private readonly turns: FrameTurns;
  /** Requests refused so far (ERROR answers that leave the connection open). */
  private refusalCount = 0;
  private authTimer: TimerHandle | null;
  readonly tls: boolean;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    broker: BrokerApi,
    readonly options: ResolvedServerOptions,
    private readonly owner: ConnectionOwner,
  ) {
    this.lastReceivedMs = this.lastSentMs = options.clock.monotonicMs();
    this.connectedAtMs = options.clock.nowMs();
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.tls = socket instanceof TLSSocket;
    this.broker = broker;
    this.turns = new FrameTurns(this, options.clock);
    // Until HELLO_OK a client gets the small pre-login limit: nobody has vouched for it yet.
    // A read of tiny frames (~2,300 in 64 KiB) is decoded a few turns' worth at a time, not in one stretch.
    this.decoder = new FrameDecoder(this, { frameBytesMax: Math.min(PRE_LOGIN_FRAME_BYTES_MAX, options.maxFrameBytes), versions: SUPPORTED_VERSIONS, framesPerPushMax: FRAMES_DECODED_PER_READ_MAX });
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onClose);
    this.authTimer = options.clock.schedule(options.authTimeoutMs, this.onAuthTimeout);
  }

  /** Closed within the server's per-turn handshake budget, like a HELLO: a slowloris's timers fire together. */
  private readonly onAuthTimeout = (): void => {
    this.authTimer = null;
    if (this.state !== 'handshake') return;
    if (!this.owner.admitHandshake()) return void setImmediate(this.onAuthTimeout);
    // A slowloris's hundreds of sockets time out together: their ERROR is encoded once, not per socket.
    this.fail(this.owner.loginTimedOut(), 0);
  };

  // ---- socket events ----

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.decoder.push(chunk);
      if (this.decoder.holding) this.holdReading();
    } catch (error) {
      // A bug, not a client error (the decoder reports those typed): keep the process up.
      this.options.logger.error('transport.internal_error', { connection: this.id, error });
      this.socket.destroy();
    }
  };

  private readonly onDrain = (): void => {
    this.backedUpSinceMs = -1;
    this.updateReading();
    this.subscriptions.resumePaused();
  };

  private readonly onSocketError = (error: Error): void => {
    this.options.logger.debug('transport.socket_error', { connection: this.id, error });
  };

  private readonly onClose = (): void => {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.authTimer?.cancel();
    this.turns.drop();
    this.writer.reset();
    const sinks = this.subscriptions.detachAll();
    // Still open when the socket closes: lost, not left (a client's close unsubscribes first), unless it said GOODBYE.
    const lost = !this.goodbyeReceived;
    for (const sink of sinks) {
      sink.close({ lost }).catch((error: unknown) =>
        this.options.logger.warn('transport.unsubscribe_failed', { connection: this.id, error }),
      );
    }
    this.options.logger.info('transport.connection.close', { connection: this.id, client: this.clientName });
    this.owner.connectionClosed(this);
    const waiters = this.closedWaiters;
    this.closedWaiters = [];
    for (const resolve of waiters) resolve();
  };

  // ---- decoded frames ----

  onFrames(frames: Frame[]): void {
    this.lastReceivedMs = this.options.clock.monotonicMs();
    this.turns.push(frames);
  }

  handleAt(frames: Frame[], i: number): number {
    const frame = frames[i]!;
    if (frame.refused !== undefined) {
      this.requestFailed(frame.requestId, frame.refused);
      // A large rest (an oversized message's value) is not read only to be dropped: the ERROR, then the close.
      if (frame.type === FRAME_TYPES.PUBLISH && closesUnread(frame.refused, this.decoder.skipping)) this.close({ unread: true });
      return i + 1;
    }
    if (frame.type === FRAME_TYPES.PUBLISH && this.state === 'open') return handlePublishRun(this, frames, i);
    try {
      this.handleFrame(frame);
    } catch (error) {
      this.requestFailed(frame.requestId, error);
    }
    return i + 1;
  }

  onError(error: FerryError): void {
    const tooLarge = error.code === 'FRAME_TOO_LARGE';
    const beforeLogin = tooLarge && this.state !== 'open' && this.state !== 'draining';
    // A frame refused at its header is not read on: its bytes would only be dropped.
    this.fail(beforeLogin ? tooLargeBeforeLogin(error, this.decoder.frameBytesMax) : error, 0, { unread: tooLarge });
  }

  /** A PUBLISH past the user's quota is refused at its header, its payload dropped as it arrives (decoder.ts, admit). */
  admit(type: FrameType): FerryError | null {
    if (type !== FRAME_TYPES.PUBLISH || this.state !== 'open') return null;
    return this.options.security?.guard.publishRefusal({ principal: this.principal, address: this.remoteAddress }) ?? null;
  }

  /** A large PUBLISH is checked as it arrives: a message over the limits is refused at its length (publish.ts). */
  scanner(type: FrameType, _requestId: number, payloadBytes: number): PayloadScanner | null {
    return type === FRAME_TYPES.PUBLISH && this.state === 'open' ? publishScanner(payloadBytes) : null;
  }

  private handleFrame(frame: Frame): void {
    const r = this.reader.reset(frame.payload);
    const id = frame.requestId;
    if (this.state === 'handshake') {
      if (frame.type !== FRAME_TYPES.HELLO) {
        throw new FerryError('HANDSHAKE_REQUIRED', `${frameTypeName(frame.type)} before HELLO`);
      }
      this.handleHello(id);
      return;
    }
    if (this.state !== 'open') {
      throw new FerryError('BROKER_CLOSING', 'the server is closing');
    }
    switch (frame.type) {
      case FRAME_TYPES.PING:
        this.writer.emptyFrame(FRAME_TYPES.PONG, id);
        this.scheduleFlush();
        return;
      case FRAME_TYPES.PONG:
        return;
      case FRAME_TYPES.GOODBYE:
        this.goodbyeReceived = true;
        this.socket.end();
        return;
      case FRAME_TYPES.HELLO:
        throw new FerryError('INVALID_ARGUMENT', 'HELLO was already received');
      case FRAME_TYPES.CREATE_TOPIC:
      case FRAME_TYPES.DELETE_TOPIC:
      case FRAME_TYPES.LIST_TOPICS:
      case FRAME_TYPES.DESCRIBE_TOPIC:
        handleTopicRequest(this, frame, r);
        return;
      case FRAME_TYPES.SUBSCRIBE:
        this.subscriptions.subscribe(id);
        return;
      case FRAME_TYPES.UNSUBSCRIBE:
        this.subscriptions.unsubscribe(id, decodeUnsubscribe(r));
        return;
      case FRAME_TYPES.ACK:
      case FRAME_TYPES.NACK:
      case FRAME_TYPES.TOUCH:
      case FRAME_TYPES.REJECT:
        handleSettle(this, frame, r);
        return;
      case FRAME_TYPES.LIST_GROUPS:
      case FRAME_TYPES.DESCRIBE_GROUP:
      case FRAME_TYPES.RESET_GROUP:
      case FRAME_TYPES.REDRIVE:
        handleGroupRequest(this, frame, r);
        return;
      case FRAME_TYPES.CREDIT:
        this.subscriptions.credit(id);
        return;
      default:
        if (isClusterFrame(frame.type)) return handleClusterFrame(this, frame, r);
        throw new FerryError('MALFORMED_FRAME', `${frameTypeName(frame.type)} is not a request a client may send`);
    }
  }

  private handleHello(id: number): void {
    const hello = decodeHello(this.reader);
    const version = negotiateVersion(hello);
    this.clientName = hello.clientName;
    this.authTimer?.cancel();
    this.authTimer = null;
    const done = login(this.options.security, this.broker, this.socket, hello, this.remoteAddress);
    if (!(done instanceof Promise)) {
      this.completeHello(id, version, hello, done);
      return;
    }
    this.state = 'authenticating';
    this.socket.pause();
    done.then(
      (checked) => {
        if (this.state !== 'authenticating') return;
        this.completeHello(id, version, hello, checked);
        this.lastReceivedMs = this.options.clock.monotonicMs();
        this.turns.next();
      },
      (error: unknown) => {
        if (this.state !== 'authenticating') return;
        this.turns.drop();
        this.fail(isFerryError(error) ? error : new FerryError('AUTH_FAILED', 'authentication failed'), id);
      },
    );
  }

  private completeHello(id: number, version: number, hello: HelloRequest, done: Login): void {
    this.broker = done.broker;
    this.principal = done.principal;
    writeHelloOk(this.writer, this.decoder, id, version, hello, this.options);
    this.state = 'open';
    this.scheduleFlush();
    this.options.logger.info('transport.connection.hello', { connection: this.id, client: this.clientName, version, user: this.principal?.name ?? null });
  }

  // ---- what the request handlers use (request-context.ts, subscriptions.ts) ----

  get logger(): Logger {
    return this.options.logger;
  }

  /** Who this connection is, for the cluster frames (cluster.ts). */
  get peer(): ClusterPeer {
    return { socket: this.socket, principal: this.principal, security: this.options.security, cluster: this.options.cluster };
  }

  get closed(): boolean {
    return this.state === 'closed';
  }

  get open(): boolean {
    return this.state === 'open';
  }

  get refusals(): number {
    return this.refusalCount;
  }

  get stopped(): boolean {
    return this.failing || this.state === 'closed';
  }

  admitHandshake(): boolean {
    return this.owner.admitHandshake();
  }

  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    if (this.decoder.holding) this.holdReading();
    else if (!this.readPaused && this.state === 'open') this.socket.resume();
  }

  /** The decoder holds the rest of a read (framesPerPushMax): no more reads; a turn's worth more once the held frames are handled. */
  private holdReading(): void {
    this.socket.pause();
    if (this.turns.waiting || this.decodeScheduled) return;
    this.decodeScheduled = true;
    setImmediate(this.decodeHeld);
  }

  private readonly decodeHeld = (): void => {
    this.decodeScheduled = false;
    if (this.stopped) return;
    this.decoder.resume();
    if (this.decoder.holding) this.holdReading();
    else if (!this.turns.waiting) this.resumeReading();
  };

  throttled(): void {
    this.owner.throttled();
  }

  logFields(): Record<string, unknown> {
    return { connection: this.id, client: this.clientName, address: this.remoteAddress, user: this.principal?.name ?? null };
  }

  replied(): void {
    this.scheduleFlush();
  }

  sinkFor(wireId: number): ServerSubscription {
    return this.subscriptions.sinkFor(wireId);
  }

  rejected(code: ErrorCode, refusal: boolean): void {
    this.owner.rejected(code);
    if (refusal) this.refusalCount++;
  }

  acceptsDeliveries(): boolean {
    if (this.state !== 'open' || this.failing) return false;
    if (this.socket.writableLength + this.writer.length < this.options.writeHighWaterBytes) return true;
    if (this.backedUpSinceMs < 0) this.backedUpSinceMs = this.options.clock.monotonicMs();
    return false;
  }

  // ---- replies, errors, flushing ----

  /** Runs an async broker call and writes its reply, or an ERROR, when it settles. */
  run<T>(id: number, pending: Promise<T>, reply: (value: T) => void): void {
    this.requestsStarted(1);
    pending.then(
      (value) => {
        this.requestsFinished(1);
        if (this.state === 'closed') return;
        try {
          reply(value);
        } catch (error) {
          this.writer.abortFrame();
          this.requestFailed(id, error);
        }
        this.scheduleFlush();
      },
      (error: unknown) => {
        this.requestsFinished(1);
        this.requestFailed(id, error);
      },
    );
  }

  /** Reports a failed request: fatal errors close the connection, others become an ERROR frame. */
  requestFailed(id: number, error: unknown): void {
    if (this.state === 'closed') return;
    this.writer.abortFrame();
    if (isFerryError(error)) {
      if (error.fatal) {
        this.fail(error, id);
        return;
      }
      this.rejected(error.code, true);
      encodeError(this.writer, id, { code: error.code, message: error.message, ...(error.detail ? { detail: error.detail } : {}) });
    } else {
      this.options.logger.error('transport.internal_error', { connection: this.id, requestId: id, error });
      this.owner.rejected('INTERNAL');
      encodeError(this.writer, id, { code: 'INTERNAL', message: 'internal error' });
    }
    this.scheduleFlush();
  }

  /** A protocol violation: send the ERROR (a Refusal's, encoded once), stop handling requests, close (`unread`: see close()). */
  fail(error: FerryError | Refusal, id: number, how: { unread?: boolean } = {}): void {
    if (this.state === 'closed' || this.failing) return;
    this.owner.rejected(error.code);
    this.options.logger.warn('transport.protocol_error', { ...this.logFields(), code: error.code, message: error.message });
    this.writer.abortFrame();
    if (error instanceof Refusal) error.write(this.writer, id);
    else encodeError(this.writer, id, { code: error.code, message: error.message, ...(error.detail ? { detail: error.detail } : {}) });
    this.close(how);
  }

  /**
   * Stops handling requests, flushes what is written (an ERROR last), closes. `unread`: reading stops
   * too; what the client still sends (the rest of a frame not to be read) is left until the destroy.
   */
  private close(how: { unread?: boolean }): void {
    if (this.state === 'closed' || this.failing) return;
    this.failing = true;
    this.authTimer?.cancel();
    if (how.unread === true) this.socket.pause();
    this.flush();
    // Cut off (a protocol error, silence, not reading): its subscriptions are lost, not left.
    for (const sink of this.subscriptions.all()) void sink.close({ lost: true }).catch(() => undefined);
    this.socket.end();
    this.options.clock.schedule(FAIL_LINGER_MS, () => this.socket.destroy());
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    // Ended (closing after an ERROR): a late reply would only be a write-after-end error, with its stack.
    if (this.state === 'closed' || this.socket.destroyed || this.socket.writableEnded) {
      this.writer.reset();
      return;
    }
    const frames = this.writer.frames;
    const parts = this.writer.takeParts();
    if (parts === null) return;
    this.framesOut += frames;
    this.lastSentMs = this.options.clock.monotonicMs();
    this.bytesOut += writeParts(this.socket, parts, () => this.writer.release(parts[0]!));
    if (this.socket.writableLength >= this.options.writeHighWaterBytes) {
      if (this.backedUpSinceMs < 0) this.backedUpSinceMs = this.lastSentMs;
    } else {
      this.backedUpSinceMs = -1;
      this.subscriptions.resumePaused();
    }
    this.updateReading();
  };

  requestsStarted(count: number): void {
    this.inFlight += count;
    if (this.inFlight >= this.options.inFlightRequestsMax) this.updateReading();
  }

  requestsFinished(count: number): void {
    this.inFlight -= count;
    if (this.readPaused) this.updateReading();
    if (this.inFlight === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Stops reading while the broker or the client is behind; resumes once both catch up. */
  private updateReading(): void {
    if (this.state === 'closed' || this.state === 'draining' || this.failing) return;
    const behind =
      this.inFlight >= this.options.inFlightRequestsMax || this.socket.writableLength >= this.options.readPauseBytes;
    if (behind && !this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    } else if (!behind && this.readPaused) {
      this.readPaused = false;
      // Silence while we were not reading is not the client's fault.
      this.lastReceivedMs = this.options.clock.monotonicMs();
      // Held frames (a login being checked, or the rest of a large read) are handled first; their
      // handler resumes reading once they are done.
      if (this.decoder.holding) this.holdReading();
      else if (!this.turns.waiting && this.state !== 'authenticating') this.socket.resume();
    }
  }

  // ---- timers (driven by the server's sweep) ----

  sweep(nowMs: number): void {
    if (this.state === 'closed' || this.failing) return;
    const { heartbeatIntervalMs, heartbeatMissesMax, slowConsumerGraceMs } = this.options;
    if (this.backedUpSinceMs >= 0 && nowMs - this.backedUpSinceMs > slowConsumerGraceMs) {
      this.options.logger.warn('transport.slow_consumer', { ...this.logFields(), queuedBytes: this.socket.writableLength, backedUpMs: nowMs - this.backedUpSinceMs });
      this.owner.slowConsumer(this);
      this.fail(new FerryError('SLOW_CONSUMER', `the client did not read for ${slowConsumerGraceMs} ms`), 0);
      // Its queued bytes will not drain: do not wait for them.
      this.socket.destroy();
      return;
    }
    // While credentials are checked (slowly, after failures) the socket is not read on purpose.
    if (this.state === 'authenticating') return;
    if (!this.readPaused && nowMs - this.lastReceivedMs > heartbeatIntervalMs * heartbeatMissesMax) {
      this.fail(new FerryError('HEARTBEAT_TIMEOUT', `no frame from the client for ${heartbeatMissesMax} heartbeat intervals`), 0);
      return;
    }
    if (this.state === 'open' && nowMs - this.lastSentMs >= heartbeatIntervalMs) {
      this.writer.emptyFrame(FRAME_TYPES.PING, 0);
      this.scheduleFlush();
    }
  }

  /** The broker's thread stood still until `nowMs`: silence and backlog up to now are not the client's doing. */
  excuseStall(nowMs: number): void {
    this.lastReceivedMs = Math.max(this.lastReceivedMs, nowMs);
    if (this.backedUpSinceMs >= 0) this.backedUpSinceMs = nowMs;
  }

  // ---- graceful close ----

  /** Stops reading and deliveries, lets in-flight requests be answered (within timeoutMs), then says GOODBYE and closes. */
  async shutdown(timeoutMs: number): Promise<void> {
    if (this.state === 'closed') return;
    const wasHandshake = this.state === 'handshake' || this.state === 'authenticating';
    this.authTimer?.cancel();
    this.turns.drop();
    this.state = 'draining';
    this.socket.pause();
    const deadline = new Promise<void>((resolve) => this.options.clock.schedule(timeoutMs, resolve));
    const sinks = this.subscriptions.detachAll();
    await Promise.race([Promise.allSettled(sinks.map((sink) => sink.close())), deadline]);
    await Promise.race([this.whenIdle(), deadline]);
    if (this.isOpenSocket() && !this.socket.writableEnded) { // it may have closed (or failed) while we waited
      if (!wasHandshake) encodeGoodbye(this.writer, 0, { code: 'BROKER_CLOSING', message: 'the server is shutting down' });
      this.flush();
      this.socket.end();
      // Read again, discarding, so that the client's FIN (and so 'close') is seen.
      this.socket.off('data', this.onData);
      this.socket.resume();
      await Promise.race([this.whenClosed(), deadline]);
    }
    if (this.isOpenSocket()) this.socket.destroy();
  }

  private isOpenSocket(): boolean {
    return (this.state as ConnectionState) !== 'closed';
  }

  private whenIdle(): Promise<void> {
    return this.inFlight === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  whenClosed(): Promise<void> {
    return this.state === 'closed' ? Promise.resolve() : new Promise((resolve) => this.closedWaiters.push(resolve));
  }

  /** Closes at once (no GOODBYE): used when the server rejects or abandons a socket. */
  destroy(): void {
    this.socket.destroy();
  }

  stats(): ConnectionStats {
    const { id, clientName, remoteAddress, remotePort, connectedAtMs, state, tls, bytesOut, framesOut, decoder } = this;
    const counts = { bytesIn: decoder.bytesIn, bytesOut, framesIn: decoder.framesIn, framesOut, inFlightRequests: this.inFlight, throttledTurns: this.turns.throttledTurns };
    return { id, clientName, remoteAddress, remotePort, connectedAtMs, state, user: this.principal?.name ?? null, tls, ...counts, subscriptions: this.subscriptions.stats() };
  }
}
