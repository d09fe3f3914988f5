/**
 * One physical connection to a server: the socket, the HELLO handshake, request ids and their
 * pending replies, heartbeats, and a FrameWriter flushed once per event-loop turn. It knows no
 * topics or subscriptions: replies go back to their request, DELIVER frames and request-less
 * ERROR frames to the handler. The client (client.ts) replaces it after a reconnect.
 */
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { FerryError } from '../errors.js';
import { FRAME_TYPES, frameTypeName, type Frame } from '../protocol/frame.js';
import { FrameDecoder } from '../protocol/decoder.js';
import { FrameWriter } from '../protocol/writer.js';
import { PayloadReader } from '../protocol/reader.js';
import { DEFAULT_PORT, REQUEST_ID_MAX, SUPPORTED_VERSIONS } from '../protocol/limits.js';
import { decodeError, decodeGoodbye, decodeHelloOk, encodeHello, errorFromReply } from '../protocol/codec-session.js';
import { decodeDeliver } from '../protocol/codec-subscribe.js';
import type { DeliverBatch, HelloOk, HelloRequest } from '../protocol/messages.js';
import type { ServerAddress } from './address.js';
import type { ResolvedClientOptions } from './options.js';

/** A request awaiting its reply. Subclassed by the publish path, which answers several callers per frame. */
export interface PendingRequest {
  readonly id: number;
  deadlineMs: number;
  /** The reply frame (anything but ERROR). */
  settle(frame: Frame, reader: PayloadReader): void;
  fail(error: FerryError): void;
}

export interface ConnectionHandler {
  deliver(batch: DeliverBatch): void;
  /** An ERROR without a request (failed ACK/NACK/CREDIT), or a GOODBYE. */
  notice(error: FerryError): void;
  /** Called once, when the socket is gone, with the reason. */
  closed(connection: ClientConnection, error: FerryError): void;
  /** Called before each flush so that coalesced state (credit) can be written. */
  beforeFlush(connection: ClientConnection): void;
}

/** HELLO's credential tags for the client's credentials (none, user and password, or a token). */
function credentialTags(credentials: ResolvedClientOptions['credentials']): Pick<HelloRequest, 'user' | 'password' | 'authToken'> {
  const tags: Pick<HelloRequest, 'user' | 'password' | 'authToken'> = {};
  if (credentials.user !== undefined && credentials.password !== undefined) {
    tags.user = credentials.user;
    tags.password = credentials.password;
  }
  if (credentials.token !== undefined) tags.authToken = credentials.token;
  return tags;
}

/** Sweep period of request deadlines: a timeout fires at most this late. */
const TIMEOUT_SWEEP_MS_MAX = 1000;

export class ClientConnection {
  readonly writer = new FrameWriter();
  private readonly reader = new PayloadReader();
  private readonly decoder: FrameDecoder;
  private readonly pending = new Map<number, PendingRequest>();
  private nextRequestId = 1;
  private flushScheduled = false;
  private closedError: FerryError | null = null;
  private lastReceivedMs = performance.now();
  private lastSentMs = performance.now();
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private timeoutTimer: NodeJS.Timeout | null = null;
  private idleWaiters: Array<() => void> = [];
  hello: HelloOk | null = null;

  private constructor(
    private readonly socket: Socket,
    private readonly options: ResolvedClientOptions,
    private readonly handler: ConnectionHandler,
    /** The server this connection dialed. */
    readonly server: ServerAddress,
  ) {
    this.decoder = new FrameDecoder(
      { onFrames: (frames) => this.onFrames(frames), onError: (error) => this.destroy(explainForeignReply(error, server)) },
      { frameBytesMax: options.frameBytesMax, versions: SUPPORTED_VERSIONS },
    );
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.decoder.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      this.closedError ??= new FerryError('CONNECTION_CLOSED', `connection error: ${error.message}`, { cause: error });
    });
    socket.on('close', () => this.onClose());
  }

  /**
   * Connects (over TLS if asked) and completes the handshake, or rejects with CONNECTION_REFUSED /
   * TIMEOUT, or with the server's reason (AUTH_FAILED, AUTH_REQUIRED, TOO_MANY_CONNECTIONS, ...).
   */
  static open(options: ResolvedClientOptions, handler: ConnectionHandler, server: ServerAddress = options): Promise<ClientConnection> {
    return new Promise((resolve, reject) => {
      const tls = options.tls;
      const { host, port } = server;
      const socket =
        tls === null
          ? netConnect({ host, port })
          : tlsConnect({
              host,
              port,
              ...tls,
              // SNI carries names only; an address is checked against the certificate's IP entries.
              ...(tls.servername === undefined && isIP(host) === 0 ? { servername: host } : {}),
            });
      const connection = new ClientConnection(socket, options, handler, { host, port });
      let done = false;
      const timer = setTimeout(() => {
        finish(new FerryError('TIMEOUT', `no handshake with ${host}:${port} within ${options.connectTimeoutMs} ms`));
        socket.destroy();
      }, options.connectTimeoutMs);
      const finish = (error: FerryError | null): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (error === null) resolve(connection);
        else reject(error);
      };
      socket.once('error', (error: NodeJS.ErrnoException) =>
        finish(new FerryError('CONNECTION_REFUSED', `cannot connect to ${host}:${port}: ${error.message}`, { cause: error })),
      );
      socket.once(tls === null ? 'connect' : 'secureConnect', () => {
        connection
          .handshake()
          .then(() => finish(null))
          .catch((error: unknown) => {
            finish(error instanceof FerryError ? error : new FerryError('CONNECTION_REFUSED', String(error)));
            socket.destroy();
          });
      });
    });
  }

  private async handshake(): Promise<void> {
    const hello = await this.request<HelloOk>(
      (w, id) =>
        encodeHello(w, id, {
          clientName: this.options.name,
          versions: [...SUPPORTED_VERSIONS],
          frameBytesMax: this.options.frameBytesMax,
          ...credentialTags(this.options.credentials),
        }),
      FRAME_TYPES.HELLO_OK,
      decodeHelloOk,
    );
    if (!SUPPORTED_VERSIONS.includes(hello.version)) {
      throw new FerryError('UNSUPPORTED_VERSION', `server chose protocol version ${hello.version}`);
    }
    this.hello = hello;
    this.writer.version = hello.version;
    this.writer.frameBytesMax = hello.frameBytesMax;
    this.startTimers(hello.heartbeatIntervalMs);
  }

  get isOpen(): boolean {
    return this.closedError === null && !this.socket.destroyed;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** How long no frame has come from the server. */
  get silentForMs(): number {
    return performance.now() - this.lastReceivedMs;
  }

  // ---- requests ----

  allocateRequestId(): number {
    const id = this.nextRequestId;
    this.nextRequestId = id >= REQUEST_ID_MAX ? 1 : id + 1;
    return id;
  }

  /** Registers a pending request whose frame the caller has written (or is writing) with `id`. */
  track(pending: PendingRequest): void {
    this.pending.set(pending.id, pending);
    this.scheduleFlush();
  }

  pendingRequest(id: number): PendingRequest | undefined {
    return this.pending.get(id);
  }

  deadline(): number {
    return performance.now() + this.options.requestTimeoutMs;
  }

  /**
   * Gives a reply's payload (PayloadReader.payload) back once nothing reads it or any view of it
   * any more, so a later large reply reuses its buffer (FrameDecoder.recycle).
   */
  recyclePayload(payload: Buffer): void {
    this.decoder.recycle(payload);
  }

  /** Sends one request frame and resolves with its decoded reply of type `replyType`. */
  request<T>(encode: (w: FrameWriter, id: number) => void, replyType: number, decode: (r: PayloadReader) => T): Promise<T> {
    if (this.closedError !== null) return Promise.reject(this.closedError);
    return new Promise<T>((resolve, reject) => {
      const id = this.allocateRequestId();
      try {
        encode(this.writer, id);
      } catch (error) {
        this.writer.abortFrame();
        reject(error);
        return;
      }
      this.track({
        id,
        deadlineMs: this.deadline(),
        settle: (frame, reader) => {
          if (frame.type !== replyType) {
            reject(new FerryError('MALFORMED_FRAME', `expected ${frameTypeName(replyType)}, got ${frameTypeName(frame.type)}`));
            return;
          }
          try {
            resolve(decode(reader.reset(frame.payload)));
          } catch (error) {
            reject(error);
          }
        },
        fail: reject,
      });
    });
  }

  // ---- receiving ----

  private onFrames(frames: Frame[]): void {
    this.lastReceivedMs = performance.now();
    for (const frame of frames) {
      try {
        this.onFrame(frame);
      } catch (error) {
        this.destroy(error instanceof FerryError ? error : new FerryError('INTERNAL', String(error), { cause: error }));
        return;
      }
    }
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case FRAME_TYPES.DELIVER:
        this.handler.deliver(decodeDeliver(this.reader.reset(frame.payload)));
        return;
      case FRAME_TYPES.PING:
        this.writer.emptyFrame(FRAME_TYPES.PONG, frame.requestId);
        this.scheduleFlush();
        return;
      case FRAME_TYPES.PONG:
        return;
      case FRAME_TYPES.GOODBYE: {
        const goodbye = decodeGoodbye(this.reader.reset(frame.payload));
        this.closedError = new FerryError('CONNECTION_CLOSED', `server said goodbye: ${goodbye.message}`, { detail: { code: goodbye.code } });
        this.handler.notice(new FerryError(goodbye.code, goodbye.message));
        return;
      }
      case FRAME_TYPES.ERROR: {
        const error = errorFromReply(decodeError(this.reader.reset(frame.payload)));
        const pending = frame.requestId === 0 ? undefined : this.pending.get(frame.requestId);
        if (pending !== undefined) {
          this.pending.delete(frame.requestId);
          pending.fail(error);
          this.checkIdle();
        } else if (this.hello === null && error.fatal) {
          // Refused before the handshake finished (a connection limit, TLS only, no HELLO in time):
          // the handshake fails with the server's reason, not with "connection closed".
          this.closedError ??= error;
        } else {
          this.handler.notice(error);
        }
        if (error.fatal) this.closedError ??= new FerryError('CONNECTION_CLOSED', `server closed the connection: ${error.message}`, { cause: error });
        return;
      }
      default: {
        const pending = this.pending.get(frame.requestId);
        if (pending === undefined) return; // timed out earlier: the late answer is dropped
        this.pending.delete(frame.requestId);
        pending.settle(frame, this.reader);
        this.checkIdle();
      }
    }
  }

  // ---- sending ----

  /** Sends what is queued now instead of at the end of the turn (a subscription owing much credit). */
  flushNow(): void {
    this.flush();
  }

  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (!this.isOpen) {
      this.writer.reset();
      return;
    }
    this.handler.beforeFlush(this);
    const out = this.writer.take();
    if (out === null) return;
    this.lastSentMs = performance.now();
    this.socket.write(out, () => this.writer.release(out));
  };

  // ---- timers ----

  private startTimers(heartbeatIntervalMs: number): void {
    const checkEveryMs = heartbeatIntervalMs / 2;
    let lastCheckMs = performance.now();
    this.heartbeatTimer = setInterval(() => {
      const now = performance.now();
      const stalled = now - lastCheckMs > checkEveryMs + heartbeatIntervalMs;
      lastCheckMs = now;
      // This process stood still (a debugger, a frozen VM, a long pause): the server's frames wait
      // unread in the socket buffer, so silence measured across the stall is not the server's.
      if (stalled) this.lastReceivedMs = Math.max(this.lastReceivedMs, now);
      if (now - this.lastReceivedMs > heartbeatIntervalMs * this.options.heartbeatMissesMax) {
        this.destroy(new FerryError('HEARTBEAT_TIMEOUT', `no frame from the server for ${this.options.heartbeatMissesMax} heartbeat intervals`));
        return;
      }
      if (now - this.lastSentMs >= heartbeatIntervalMs) {
        this.writer.emptyFrame(FRAME_TYPES.PING, 0);
        this.scheduleFlush();
      }
    }, checkEveryMs);
    this.heartbeatTimer.unref();
    this.timeoutTimer = setInterval(() => this.expireRequests(), Math.min(TIMEOUT_SWEEP_MS_MAX, this.options.requestTimeoutMs / 2));
    this.timeoutTimer.unref();
  }

  private expireRequests(): void {
    const now = performance.now();
    // Every request gets the same timeout, so the map's insertion order is deadline order.
    for (const [id, pending] of this.pending) {
      if (pending.deadlineMs > now) break;
      this.pending.delete(id);
      pending.fail(new FerryError('TIMEOUT', `no answer to request ${id} within ${this.options.requestTimeoutMs} ms`));
    }
    this.checkIdle();
  }

  // ---- closing ----

  /** Resolves when no request is pending (used by a graceful close). */
  whenIdle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.pending.size > 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Flushes what is queued and half-closes the socket. */
  end(): void {
    this.flush();
    this.closedError ??= new FerryError('CONNECTION_CLOSED', 'the client closed the connection');
    this.socket.end();
  }

  destroy(error: FerryError): void {
    this.closedError ??= error.code === 'CONNECTION_CLOSED' ? error : new FerryError('CONNECTION_CLOSED', error.message, { cause: error });
    this.socket.destroy();
  }

  private onClose(): void {
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    if (this.timeoutTimer !== null) clearInterval(this.timeoutTimer);
    const error = (this.closedError ??= new FerryError('CONNECTION_CLOSED', 'the server closed the connection'));
    this.writer.reset();
    const pending = [...this.pending.values()];
    this.pending.clear();
    // Requests without an answer are failed, never dropped: the caller decides whether to retry.
    for (const request of pending) request.fail(error);
    this.checkIdle();
    this.handler.closed(this, error);
  }
}


/** The first two bytes of an HTTP response ("HTTP/1.1 400 ..."), read as a frame's magic. */
const HTTP_REPLY_MAGIC = 0x4854;

/**
 * A reply that is not Ferry's, in words a person can act on: an HTTP server answering (a client
 * pointed at a broker's HTTP port) says so and names the Ferry protocol's default port.
 */
function explainForeignReply(error: FerryError, server: ServerAddress): FerryError {
  if (error.code !== 'BAD_MAGIC' || error.detail?.['magic'] !== HTTP_REPLY_MAGIC) return error;
  return new FerryError(
    'BAD_MAGIC',
    `${server.host}:${server.port} answers HTTP: it is an HTTP port (such as a broker's admin port), not the Ferry protocol's; ` +
      `the Ferry protocol listens on port ${DEFAULT_PORT} by default`,
    { cause: error, detail: error.detail },
  );
}
