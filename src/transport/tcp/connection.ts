/**
 * One client connection: decodes request frames, hands them to the broker, and writes replies and
 * deliveries. Framing and flow control only; every decision about messages is the broker's.
 *
 * Batching: all frames decoded from one socket read are handled together (consecutive PUBLISH
 * frames for one topic become one broker.publish call), and everything queued for the client in
 * one event-loop turn leaves in one socket write (FrameWriter + setImmediate).
 *
 * Bounds: requests awaiting the broker (inFlightRequestsMax) and bytes queued on the socket
 * (readPauseBytes) both stop reading from the socket; above writeHighWaterBytes the sinks refuse
 * deliveries until 'drain'; a socket backed up for slowConsumerGraceMs is disconnected; a
 * subscription's credit is capped (subscriptionUnackedMax).
 *
 * Security: a connection must send HELLO within authTimeoutMs. With authentication on, HELLO
 * carries a user and password or a token (or the TLS client certificate names the user); while
 * they are checked (slowly, after failures) the socket is not read and nothing else is handled.
 * From then on every request goes through the guard's view of the broker for that user
 * (src/security/guard.ts), which refuses what the user's grants do not cover with FORBIDDEN.
 */
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { BrokerApi, Delivery, PublishMessage, PublishResult } from '../../broker/types.js';
import { FerryError, isFerryError, type ErrorCode } from '../../errors.js';
import { FRAME_TYPES, frameTypeName, type Frame, type FrameType } from '../../protocol/frame.js';
import { FrameDecoder, type FrameHandler } from '../../protocol/decoder.js';
import { FrameWriter } from '../../protocol/writer.js';
import { PayloadReader } from '../../protocol/reader.js';
import { FRAME_BYTES_MAX_MIN, FRAME_HEADER_BYTES, PRE_LOGIN_FRAME_BYTES_MAX, SUPPORTED_VERSIONS } from '../../protocol/limits.js';
import { decodeHello, encodeError, encodeGoodbye, encodeHelloOk } from '../../protocol/codec-session.js';
import {
  decodeCreateTopic,
  decodeTopicName,
  encodeTopicInfo,
  encodeTopicList,
} from '../../protocol/codec-topics.js';
import { decodePublish, encodePublishOkFrom } from '../../protocol/codec-publish.js';
import {
  appendDelivery,
  decodeCredit,
  decodeSubscribe,
  decodeUnsubscribe,
  encodeSubscribed,
} from '../../protocol/codec-subscribe.js';
import type { HelloRequest, SubscribeRequest } from '../../protocol/messages.js';
import type { TimerHandle } from '../../platform/clock.js';
import type { Principal } from '../../security/authenticator.js';
import { verifiedPeerName } from '../../security/tls.js';
import type { ResolvedServerOptions } from './options.js';
import { handleGroupRequest, handleSettle, type RequestContext } from './delivery-requests.js';
import { ServerSubscription, type SinkOwner } from './server-subscription.js';
import { Refusal } from './refusal.js';

/** Messages merged into one broker.publish call from consecutive PUBLISH frames: one storage batch's worth. */
const COALESCE_MESSAGES_MAX = 10_000;
/** Time a failed connection gets to flush its ERROR frame before the socket is destroyed. */
const FAIL_LINGER_MS = 1000;

/**
 * Frames handled in one event-loop turn per connection; the rest of a socket read waits for the
 * next turn (reading paused meanwhile), so a client that packs thousands of tiny requests into
 * every read cannot hold the loop and delay everyone else. A run of PUBLISH frames counts once it
 * is handled, as one batch. A 64 KiB read holds at most ~2,300 frames; real clients' reads far fewer.
 */
const FRAMES_PER_TURN_MAX = 128;

/**
 * A turn that refused at least this many of a connection's requests (a client looping on what it
 * may not have: subscriptions past the cap, forbidden topics, an exhausted quota) makes that
 * connection wait THROTTLED_TURN_DELAY_MS before its next frames are handled or read. The refusals
 * still come, one per request, but a flood of them costs the broker a fraction of its thread
 * instead of all of it, and well-behaved clients keep their latency.
 */
const REFUSALS_PER_TURN_THROTTLED = 32;
const THROTTLED_TURN_DELAY_MS = 1;

/** Partitions a resuming stream may name: far above the broker's partition limit, so a huge index is malformed intent. */
const RESUME_PARTITIONS_MAX = 65_536;

/** Codes that a broker raises while validating a publish, before anything is written: safe to retry per request. */
const VALIDATION_CODES = new Set(['INVALID_ARGUMENT', 'RECORD_TOO_LARGE', 'KEY_TOO_LARGE', 'HEADERS_TOO_LARGE', 'BATCH_TOO_LARGE']);

export type ConnectionState = 'handshake' | 'authenticating' | 'open' | 'draining' | 'closed';

export interface ConnectionStats {
  id: number;
  clientName: string;
  remoteAddress: string;
  remotePort: number;
  connectedAtMs: number;
  state: ConnectionState;
  /** The authenticated user (null: authentication is off, or not yet done). */
  user: string | null;
  tls: boolean;
  bytesIn: number;
  bytesOut: number;
  framesIn: number;
  framesOut: number;
  inFlightRequests: number;
  /** Turns this connection waited out for refusing too many of its requests at once (abuse throttle). */
  throttledTurns: number;
  subscriptions: Array<{ id: number; topic: string; group: string | undefined; delivered: number }>;
}

/** What the connection reports to its server. */
export interface ConnectionOwner {
  connectionClosed(connection: Connection): void;
  slowConsumer(connection: Connection): void;
  /** An ERROR with this code was sent (counted for the metrics). */
  rejected(code: ErrorCode): void;
  /** May a HELLO be handled in this event-loop turn? (false: the server's per-turn budget is spent) */
  admitHandshake(): boolean;
  /** The connection waits out a turn for refusing too many of its requests (counted for the metrics). */
  throttled(): void;
}

export class Connection implements FrameHandler, SinkOwner, RequestContext {
  state: ConnectionState = 'handshake';
  clientName = '';
  private readonly decoder: FrameDecoder;
  readonly writer = new FrameWriter();
  private readonly reader = new PayloadReader();
  private readonly subscriptions = new Map<number, ServerSubscription>();
  private readonly pausedSinks = new Set<ServerSubscription>();
  private nextWireId = 1;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private closedWaiters: Array<() => void> = [];
  private flushScheduled = false;
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
  /** Frames waiting their turn: behind a HELLO still being checked, or past one turn's budget. */
  private held: Frame[] = [];
  /**
   * The first held frame not handled yet: a turn moves it rather than copying the rest into a new
   * array (a 64 KiB read of tiny frames is ~2,000 of them, handled over ~16 turns).
   */
  private heldFrom = 0;
  private heldScheduled = false;
  /** Requests refused so far (ERROR answers that leave the connection open). */
  private refusals = 0;
  /** Turns this connection waited out for refusing too much (REFUSALS_PER_TURN_THROTTLED). */
  private throttledTurns = 0;
  private authTimer: TimerHandle | null;
  private tooManySubscriptions: Refusal | null = null;
  readonly tls: boolean;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    broker: BrokerApi,
    private readonly options: ResolvedServerOptions,
    private readonly owner: ConnectionOwner,
  ) {
    const now = options.clock.monotonicMs();
    this.lastReceivedMs = now;
    this.lastSentMs = now;
    this.connectedAtMs = options.clock.nowMs();
    this.remoteAddress = socket.remoteAddress ?? '';
    this.remotePort = socket.remotePort ?? 0;
    this.tls = socket instanceof TLSSocket;
    this.broker = broker;
    // Until HELLO_OK a client gets the small pre-login limit: nobody has vouched for it yet.
    this.decoder = new FrameDecoder(this, { frameBytesMax: Math.min(PRE_LOGIN_FRAME_BYTES_MAX, options.maxFrameBytes), versions: SUPPORTED_VERSIONS });
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('drain', this.onDrain);
    socket.on('error', this.onSocketError);
    socket.on('close', this.onClose);
    this.authTimer = options.clock.schedule(options.authTimeoutMs, this.onAuthTimeout);
  }

  private get authRequired(): boolean {
    return this.options.security?.authenticator.enabled ?? false;
  }

  /** No HELLO in time (a silent socket, half a frame, a slowloris). */
  private readonly onAuthTimeout = (): void => {
    this.authTimer = null;
    if (this.state !== 'handshake') return;
    const code = this.authRequired ? 'AUTH_REQUIRED' : 'HANDSHAKE_REQUIRED';
    this.fail(new FerryError(code, `no HELLO${this.authRequired ? ' with credentials' : ''} within ${this.options.authTimeoutMs} ms`), 0);
  };

  // ---- socket events ----

  private readonly onData = (chunk: Buffer): void => {
    try {
      this.decoder.push(chunk);
    } catch (error) {
      // A bug, not a client error (the decoder reports those typed): keep the process up.
      this.options.logger.error('transport.internal_error', { connection: this.id, error });
      this.socket.destroy();
    }
  };

  private readonly onDrain = (): void => {
    this.backedUpSinceMs = -1;
    this.updateReading();
    this.resumePausedSinks();
  };

  private readonly onSocketError = (error: Error): void => {
    this.options.logger.debug('transport.socket_error', { connection: this.id, error });
  };

  private readonly onClose = (): void => {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.authTimer?.cancel();
    this.dropHeld();
    this.writer.reset();
    this.pausedSinks.clear();
    const sinks = [...this.subscriptions.values()];
    this.subscriptions.clear();
    // Subscriptions still open when the socket closes were not left but lost (the client's close
    // unsubscribes first), unless the client said GOODBYE.
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
    if (this.held.length > 0) {
      // Earlier frames still wait: these go behind them, in order.
      for (const frame of frames) this.held.push(frame);
      return;
    }
    this.process(frames);
  }

  /** Handles frames in order (from `from`) until the turn's budget is spent or a HELLO is being checked; holds the rest. */
  private process(frames: Frame[], from = 0): void {
    const refusalsBefore = this.refusals;
    let i = from;
    while (i < frames.length && !this.failing && this.state !== 'closed') {
      if (this.state === 'authenticating' || i - from >= FRAMES_PER_TURN_MAX || this.helloMustWait(frames[i]!)) {
        // Pipelined behind a HELLO being checked, past the turn's budget, or a HELLO beyond the
        // server's handshakes for this turn: kept, with reading paused (so at most one socket
        // read's worth), until the login is decided or the next turn.
        if (frames === this.held) this.heldFrom = i;
        else for (; i < frames.length; i++) this.held.push(frames[i]!);
        this.socket.pause();
        if (this.state !== 'authenticating') this.scheduleHeld(this.refusedTooMany(refusalsBefore));
        return;
      }
      const frame = frames[i]!;
      if (frame.refused !== undefined) {
        this.requestFailed(frame.requestId, frame.refused);
        i++;
        continue;
      }
      if (frame.type === FRAME_TYPES.PUBLISH && this.state === 'open') {
        i = this.handlePublishRun(frames, i);
        continue;
      }
      try {
        this.handleFrame(frame);
      } catch (error) {
        this.requestFailed(frame.requestId, error);
      }
      i++;
    }
    if (this.refusedTooMany(refusalsBefore) && this.state === 'open' && !this.failing) {
      // Nothing held, but the next read waits out the delay too (processHeld resumes reading).
      this.socket.pause();
      this.scheduleHeld(true);
    }
  }

  /** Whether this turn refused enough requests (since `refusalsBefore`) to be throttled. */
  private refusedTooMany(refusalsBefore: number): boolean {
    return this.refusals - refusalsBefore >= REFUSALS_PER_TURN_THROTTLED;
  }

  /** A HELLO waits for the next turn when the server has handled its HANDSHAKES_PER_TURN_MAX this turn. */
  private helloMustWait(frame: Frame): boolean {
    return this.state === 'handshake' && frame.type === FRAME_TYPES.HELLO && !this.owner.admitHandshake();
  }

  private dropHeld(): void {
    this.held = [];
    this.heldFrom = 0;
  }

  /** Handles the held frames in the next turn, or after THROTTLED_TURN_DELAY_MS when `throttled`. */
  private scheduleHeld(throttled = false): void {
    if (this.heldScheduled) return;
    this.heldScheduled = true;
    if (!throttled) {
      setImmediate(this.processHeld);
      return;
    }
    this.throttledTurns++;
    this.owner.throttled();
    if (this.throttledTurns === 1) {
      this.options.logger.warn('transport.connection.throttled', {
        connection: this.id,
        client: this.clientName,
        address: this.remoteAddress,
        user: this.principal?.name ?? null,
        refusalsPerTurn: REFUSALS_PER_TURN_THROTTLED,
        delayMs: THROTTLED_TURN_DELAY_MS,
      });
    }
    this.options.clock.schedule(THROTTLED_TURN_DELAY_MS, this.processHeld);
  }

  /** Handles held frames (after a login, or in the next turn), then reads again if nothing is left. */
  private readonly processHeld = (): void => {
    this.heldScheduled = false;
    if (this.state === 'closed' || this.failing) {
      this.dropHeld();
      return;
    }
    const held = this.held;
    const from = this.heldFrom;
    // All handled, unless process() stops at its budget or at a HELLO and sets heldFrom there.
    this.heldFrom = held.length;
    this.process(held, from);
    if (this.held === held && this.heldFrom >= held.length) this.dropHeld();
    // Reading resumes once nothing is held, unless a throttled turn (scheduled above) waits first.
    if (this.held.length === 0 && !this.heldScheduled && !this.readPaused && this.state === 'open') this.socket.resume();
  };

  onError(error: FerryError): void {
    if (error.code === 'FRAME_TOO_LARGE' && this.state !== 'open' && this.state !== 'draining') {
      const frameBytes = error.detail?.['frameBytes'];
      const limit = this.decoder.frameBytesMax;
      error = new FerryError('FRAME_TOO_LARGE', `a frame of ${String(frameBytes)} bytes before login exceeds the pre-login limit of ${limit} bytes; send HELLO and wait for HELLO_OK first`, {
        detail: { frameBytes, frameBytesMax: limit, beforeLogin: true },
      });
    }
    this.fail(error, 0);
  }

  /**
   * A PUBLISH from a user whose publish quota is used up is refused at its header: its payload is
   * dropped as it arrives instead of being assembled only to be refused (decoder.ts, admit).
   */
  admit(type: FrameType): FerryError | null {
    if (type !== FRAME_TYPES.PUBLISH || this.state !== 'open') return null;
    return this.options.security?.guard.publishRefusal({ principal: this.principal, address: this.remoteAddress }) ?? null;
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
      case FRAME_TYPES.CREATE_TOPIC: {
        const request = decodeCreateTopic(r);
        this.run(id, this.broker.createTopic(request.name, request.config), (info) => encodeTopicInfo(this.writer, id, info));
        return;
      }
      case FRAME_TYPES.DELETE_TOPIC: {
        const name = decodeTopicName(r);
        this.run(id, this.broker.deleteTopic(name), () => this.writer.emptyFrame(FRAME_TYPES.OK, id));
        return;
      }
      case FRAME_TYPES.LIST_TOPICS:
        r.done();
        encodeTopicList(this.writer, id, this.broker.listTopics());
        this.scheduleFlush();
        return;
      case FRAME_TYPES.DESCRIBE_TOPIC: {
        const name = decodeTopicName(r);
        encodeTopicInfo(this.writer, id, this.broker.describeTopic(name));
        this.scheduleFlush();
        return;
      }
      case FRAME_TYPES.SUBSCRIBE:
        this.handleSubscribe(id);
        return;
      case FRAME_TYPES.UNSUBSCRIBE:
        this.handleUnsubscribe(id, decodeUnsubscribe(r));
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
        this.handleCredit(id);
        return;
      default:
        throw new FerryError('MALFORMED_FRAME', `${frameTypeName(frame.type)} is not a request a client may send`);
    }
  }

  private handleHello(id: number): void {
    const hello = decodeHello(this.reader);
    let version = 0;
    for (const offered of hello.versions) if (SUPPORTED_VERSIONS.includes(offered) && offered > version) version = offered;
    if (version === 0) {
      throw new FerryError('UNSUPPORTED_VERSION', `no common protocol version (client offers ${hello.versions.join(', ')})`, {
        detail: { supported: [...SUPPORTED_VERSIONS] },
      });
    }
    this.clientName = hello.clientName;
    this.authTimer?.cancel();
    this.authTimer = null;
    const security = this.options.security;
    if (security === null) {
      this.completeHello(id, version, hello);
      return;
    }
    if (!security.authenticator.enabled) {
      this.broker = security.guard.for({ principal: null, address: this.remoteAddress, inner: this.broker });
      this.completeHello(id, version, hello);
      return;
    }
    this.state = 'authenticating';
    this.socket.pause();
    this.authenticate(hello).then(
      (principal) => {
        if (this.state !== 'authenticating') return;
        this.principal = principal;
        this.broker = security.guard.for({ principal, address: this.remoteAddress, inner: this.broker });
        this.completeHello(id, version, hello);
        this.lastReceivedMs = this.options.clock.monotonicMs();
        this.processHeld();
      },
      (error: unknown) => {
        if (this.state !== 'authenticating') return;
        this.dropHeld();
        this.fail(isFerryError(error) ? error : new FerryError('AUTH_FAILED', 'authentication failed'), id);
      },
    );
  }

  /** Who this is: the TLS client certificate's user, else HELLO's user and password or token. */
  private async authenticate(hello: HelloRequest): Promise<Principal> {
    const authenticator = this.options.security!.authenticator;
    const certified = this.socket instanceof TLSSocket ? verifiedPeerName(this.socket) : null;
    if (certified !== null) return authenticator.certificatePrincipal(certified);
    const { user, password, authToken: token } = hello;
    if (token !== undefined) return authenticator.authenticate({ token }, this.remoteAddress);
    if (user === undefined || password === undefined) {
      throw new FerryError('AUTH_REQUIRED', 'this server requires authentication: send a user and password, a token, or a client certificate');
    }
    return authenticator.authenticate({ user, password }, this.remoteAddress);
  }

  private completeHello(id: number, version: number, hello: HelloRequest): void {
    this.writer.version = version;
    const clientFrameBytesMax = hello.frameBytesMax ?? this.options.maxFrameBytes;
    this.writer.frameBytesMax = Math.max(FRAME_BYTES_MAX_MIN, Math.min(clientFrameBytesMax, this.options.maxFrameBytes));
    this.decoder.frameBytesMax = this.options.maxFrameBytes;
    this.state = 'open';
    encodeHelloOk(this.writer, id, {
      version,
      serverName: this.options.serverName,
      frameBytesMax: this.options.maxFrameBytes,
      payloadBytesMax: this.options.maxFrameBytes - FRAME_HEADER_BYTES,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
    });
    this.scheduleFlush();
    this.options.logger.info('transport.connection.hello', { connection: this.id, client: this.clientName, version, user: this.principal?.name ?? null });
  }

  // ---- publishing ----

  /** Handles the run of PUBLISH frames starting at `start`; returns the index after it. */
  private handlePublishRun(frames: Frame[], start: number): number {
    let topic: string | null = null;
    let requestIds: number[] = [];
    let counts: number[] = [];
    let messages: PublishMessage[] = [];
    let shared = false;
    let i = start;
    for (; i < frames.length && frames[i]!.type === FRAME_TYPES.PUBLISH && frames[i]!.refused === undefined; i++) {
      const frame = frames[i]!;
      let request;
      try {
        request = decodePublish(this.reader.reset(frame.payload));
      } catch (error) {
        if (topic !== null) this.publish(topic, requestIds, counts, messages);
        this.requestFailed(frame.requestId, error);
        return frames.length;
      }
      if (topic !== null && (request.topic !== topic || messages.length + request.messages.length > COALESCE_MESSAGES_MAX)) {
        this.publish(topic, requestIds, counts, messages);
        requestIds = [];
        counts = [];
        topic = null;
      }
      if (topic === null) {
        topic = request.topic;
        messages = request.messages;
        shared = true;
      } else {
        if (shared) {
          messages = messages.slice();
          shared = false;
        }
        for (const message of request.messages) messages.push(message);
      }
      requestIds.push(frame.requestId);
      counts.push(request.messages.length);
    }
    if (topic !== null) this.publish(topic, requestIds, counts, messages);
    return i;
  }

  private publish(topic: string, requestIds: number[], counts: number[], messages: PublishMessage[]): void {
    this.requestsStarted(requestIds.length);
    let pending: Promise<PublishResult[]>;
    try {
      pending = this.broker.publish(topic, messages);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (results) => this.published(requestIds, counts, results),
      (error: unknown) => this.publishFailed(topic, requestIds, counts, messages, error),
    );
  }

  private published(requestIds: number[], counts: number[], results: PublishResult[]): void {
    this.requestsFinished(requestIds.length);
    if (this.state === 'closed') return;
    let start = 0;
    for (let i = 0; i < requestIds.length; i++) {
      const count = counts[i]!;
      if (start + count > results.length) {
        this.requestFailed(requestIds[i]!, new FerryError('INTERNAL', 'the broker returned fewer results than messages'));
      } else {
        encodePublishOkFrom(this.writer, requestIds[i]!, results, start, count);
      }
      start += count;
    }
    this.scheduleFlush();
  }

  private publishFailed(topic: string, requestIds: number[], counts: number[], messages: PublishMessage[], error: unknown): void {
    this.requestsFinished(requestIds.length);
    if (this.state === 'closed') return;
    if (requestIds.length > 1 && isFerryError(error) && VALIDATION_CODES.has(error.code)) {
      // One request's message spoiled a coalesced call that wrote nothing: retry each request alone
      // so that only the offending request fails.
      let start = 0;
      for (let i = 0; i < requestIds.length; i++) {
        this.publish(topic, [requestIds[i]!], [counts[i]!], messages.slice(start, start + counts[i]!));
        start += counts[i]!;
      }
      return;
    }
    for (const id of requestIds) this.requestFailed(id, error);
  }

  // ---- consuming ----

  private handleSubscribe(id: number): void {
    if (this.subscriptions.size >= this.options.subscriptionsMax) {
      // Refused before the request is decoded, with a frame encoded once (refusal.ts): a client
      // looping on SUBSCRIBE costs a frame header and a copy per refusal.
      this.tooManySubscriptions ??= new Refusal('TOO_MANY_SUBSCRIPTIONS', `a connection holds at most ${this.options.subscriptionsMax} subscriptions`);
      this.owner.rejected(this.tooManySubscriptions.code);
      this.refusals++;
      this.tooManySubscriptions.write(this.writer, id);
      this.scheduleFlush();
      return;
    }
    const request = decodeSubscribe(this.reader);
    const sink = new ServerSubscription(this.nextWireId++, request.topic, request.group, this, this.options.subscriptionUnackedMax);
    // The initial credit counts against the cap like any grant; a larger ask is clamped, not refused.
    request.credit = sink.admitCredit(request.credit);
    this.subscriptions.set(sink.wireId, sink);
    this.requestsStarted(1);
    let pending;
    try {
      pending = this.broker.subscribe(request.topic, subscribeOptions(request), sink);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (subscription) => {
        this.requestsFinished(1);
        if (sink.closing || this.state === 'closed') {
          this.subscriptions.delete(sink.wireId);
          subscription.close().catch(() => undefined);
          return;
        }
        sink.subscription = subscription;
        encodeSubscribed(this.writer, id, { subscriptionId: sink.wireId });
        sink.announce();
        this.scheduleFlush();
        if (sink.paused) {
          sink.paused = false;
          this.pausedSinks.delete(sink);
          subscription.resume();
        }
      },
      (error: unknown) => {
        this.requestsFinished(1);
        this.subscriptions.delete(sink.wireId);
        sink.closing = true;
        this.requestFailed(id, error);
      },
    );
  }

  private handleUnsubscribe(id: number, wireId: number): void {
    const sink = this.subscriptions.get(wireId);
    if (sink === undefined) throw new FerryError('UNKNOWN_SUBSCRIPTION', `no subscription ${wireId} on this connection`);
    this.subscriptions.delete(wireId);
    this.pausedSinks.delete(sink);
    this.run(id, sink.close(), () => this.writer.emptyFrame(FRAME_TYPES.OK, id));
  }

  get logger(): ResolvedServerOptions['logger'] {
    return this.options.logger;
  }

  replied(): void {
    this.scheduleFlush();
  }

  sinkFor(wireId: number): ServerSubscription {
    const sink = this.subscriptions.get(wireId);
    if (sink === undefined || sink.subscription === null || sink.closing) {
      throw new FerryError('UNKNOWN_SUBSCRIPTION', `no subscription ${wireId} on this connection`, { detail: { subscriptionId: wireId } });
    }
    return sink;
  }

  private handleCredit(id: number): void {
    for (const grant of decodeCredit(this.reader)) {
      try {
        const sink = this.sinkFor(grant.subscriptionId);
        const count = sink.admitCredit(grant.count);
        if (count > 0) sink.subscription!.grantCredit(count);
      } catch (error) {
        this.requestFailed(id, error);
      }
    }
  }

  /**
   * The broker ended a subscription (its topic was deleted: UNKNOWN_SUBSCRIPTION), or the guard
   * withdrew it (FORBIDDEN): the client hears it as an ERROR naming the subscription.
   */
  subscriptionEnded(sink: ServerSubscription, reason: string, code: ErrorCode = 'UNKNOWN_SUBSCRIPTION'): void {
    if (this.subscriptions.get(sink.wireId) !== sink) return;
    this.subscriptions.delete(sink.wireId);
    this.pausedSinks.delete(sink);
    void sink.close().catch(() => undefined);
    if (this.state === 'closed' || !sink.announced) return;
    this.owner.rejected(code);
    encodeError(this.writer, 0, { code, message: reason, detail: { subscriptionId: sink.wireId, ended: true } });
    this.scheduleFlush();
  }

  settleFailed(sink: ServerSubscription, error: unknown): void {
    if (this.state === 'closed') return;
    // ACK and NACK have no reply; a failure is reported with request id 0 and the subscription.
    const detail = { subscriptionId: sink.wireId };
    const typed = isFerryError(error)
      ? new FerryError(error.code, error.message, { detail: { ...error.detail, ...detail } })
      : error;
    this.requestFailed(0, typed);
  }

  // ---- DeliverySink support ----

  queueDelivery(sink: ServerSubscription, delivery: Delivery): void {
    if (this.state === 'closed') return;
    try {
      appendDelivery(this.writer, sink.wireId, sink.topic, delivery);
    } catch (error) {
      this.options.logger.error('transport.delivery_failed', { connection: this.id, subscription: sink.wireId, error });
      this.requestFailed(0, error);
    }
    this.scheduleFlush();
  }

  acceptsDeliveries(): boolean {
    if (this.state !== 'open' || this.failing) return false;
    if (this.socket.writableLength + this.writer.length < this.options.writeHighWaterBytes) return true;
    if (this.backedUpSinceMs < 0) this.backedUpSinceMs = this.options.clock.monotonicMs();
    return false;
  }

  notePaused(sink: ServerSubscription): void {
    if (sink.paused) return;
    sink.paused = true;
    this.pausedSinks.add(sink);
  }

  private resumePausedSinks(): void {
    if (this.pausedSinks.size === 0 || this.state !== 'open') return;
    const sinks = [...this.pausedSinks];
    this.pausedSinks.clear();
    for (const sink of sinks) {
      sink.paused = false;
      if (sink.subscription === null || sink.closing) continue;
      // resume() may deliver at once and refill the socket: stop as soon as it is backed up again.
      sink.subscription.resume();
    }
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
  private requestFailed(id: number, error: unknown): void {
    if (this.state === 'closed') return;
    this.writer.abortFrame();
    if (isFerryError(error)) {
      if (error.fatal) {
        this.fail(error, id);
        return;
      }
      this.owner.rejected(error.code);
      this.refusals++;
      encodeError(this.writer, id, { code: error.code, message: error.message, ...(error.detail ? { detail: error.detail } : {}) });
    } else {
      this.options.logger.error('transport.internal_error', { connection: this.id, requestId: id, error });
      this.owner.rejected('INTERNAL');
      encodeError(this.writer, id, { code: 'INTERNAL', message: 'internal error' });
    }
    this.scheduleFlush();
  }

  /** A protocol violation: send the ERROR, stop reading, close. */
  fail(error: FerryError, id: number): void {
    if (this.state === 'closed' || this.failing) return;
    this.failing = true;
    this.authTimer?.cancel();
    this.owner.rejected(error.code);
    this.options.logger.warn('transport.protocol_error', {
      connection: this.id,
      client: this.clientName,
      address: this.remoteAddress,
      user: this.principal?.name ?? null,
      code: error.code,
      message: error.message,
    });
    this.writer.abortFrame();
    encodeError(this.writer, id, { code: error.code, message: error.message, ...(error.detail ? { detail: error.detail } : {}) });
    this.flush();
    // Cut off (a protocol error, silence, not reading): its subscriptions are lost, not left.
    for (const sink of this.subscriptions.values()) void sink.close({ lost: true }).catch(() => undefined);
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
    if (this.state === 'closed' || this.socket.destroyed) {
      this.writer.reset();
      return;
    }
    const frames = this.writer.frames;
    const out = this.writer.take();
    if (out === null) return;
    this.bytesOut += out.length;
    this.framesOut += frames;
    this.lastSentMs = this.options.clock.monotonicMs();
    this.socket.write(out, () => this.writer.release(out));
    if (this.socket.writableLength >= this.options.writeHighWaterBytes) {
      if (this.backedUpSinceMs < 0) this.backedUpSinceMs = this.lastSentMs;
    } else {
      this.backedUpSinceMs = -1;
      this.resumePausedSinks();
    }
    this.updateReading();
  };

  private requestsStarted(count: number): void {
    this.inFlight += count;
    if (this.inFlight >= this.options.inFlightRequestsMax) this.updateReading();
  }

  private requestsFinished(count: number): void {
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
      if (this.held.length === 0 && !this.heldScheduled && this.state !== 'authenticating') this.socket.resume();
    }
  }

  // ---- timers (driven by the server's sweep) ----

  sweep(nowMs: number): void {
    if (this.state === 'closed' || this.failing) return;
    const { heartbeatIntervalMs, heartbeatMissesMax, slowConsumerGraceMs } = this.options;
    if (this.backedUpSinceMs >= 0 && nowMs - this.backedUpSinceMs > slowConsumerGraceMs) {
      this.options.logger.warn('transport.slow_consumer', {
        connection: this.id,
        client: this.clientName,
        address: this.remoteAddress,
        user: this.principal?.name ?? null,
        queuedBytes: this.socket.writableLength,
        backedUpMs: nowMs - this.backedUpSinceMs,
      });
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

  /**
   * Stops reading and deliveries, lets in-flight requests be answered (bounded by deadlineMs of
   * the monotonic clock), then says GOODBYE and closes.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    if (this.state === 'closed') return;
    const wasHandshake = this.state === 'handshake' || this.state === 'authenticating';
    this.authTimer?.cancel();
    this.dropHeld();
    this.state = 'draining';
    this.socket.pause();
    const deadline = new Promise<void>((resolve) => this.options.clock.schedule(timeoutMs, resolve));
    const sinks = [...this.subscriptions.values()];
    this.subscriptions.clear();
    this.pausedSinks.clear();
    await Promise.race([Promise.allSettled(sinks.map((sink) => sink.close())), deadline]);
    await Promise.race([this.whenIdle(), deadline]);
    // The socket may have closed while we waited.
    if (this.isOpenSocket()) {
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
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  whenClosed(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    return new Promise((resolve) => this.closedWaiters.push(resolve));
  }

  /** Closes at once (no GOODBYE): used when the server rejects or abandons a socket. */
  destroy(): void {
    this.socket.destroy();
  }

  stats(): ConnectionStats {
    return {
      id: this.id,
      clientName: this.clientName,
      remoteAddress: this.remoteAddress,
      remotePort: this.remotePort,
      connectedAtMs: this.connectedAtMs,
      state: this.state,
      user: this.principal?.name ?? null,
      tls: this.tls,
      bytesIn: this.decoder.bytesIn,
      bytesOut: this.bytesOut,
      framesIn: this.decoder.framesIn,
      framesOut: this.framesOut,
      inFlightRequests: this.inFlight,
      throttledTurns: this.throttledTurns,
      subscriptions: [...this.subscriptions.values()].map((sink) => ({
        id: sink.wireId,
        topic: sink.topic,
        group: sink.group,
        delivered: sink.delivered,
      })),
    };
  }
}

/** The broker's subscribe options for a SUBSCRIBE: a resuming stream's positions become partitionOffsets. */
function subscribeOptions(request: SubscribeRequest): Parameters<BrokerApi['subscribe']>[1] {
  const { topic: _topic, resumeOffsets, ...options } = request;
  if (resumeOffsets === undefined || request.group !== undefined) return options;
  const partitionOffsets: number[] = [];
  for (const [partition, offset] of resumeOffsets) {
    if (partition < RESUME_PARTITIONS_MAX) partitionOffsets[partition] = offset;
  }
  return { ...options, partitionOffsets };
}
