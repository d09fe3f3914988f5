/**
 * One MQTT connection: the socket (TCP, TLS or a WebSocket stream), the packet parser
 * (`mqtt-packet`), the connect timeout and keepalive, and the dispatch of each packet to the
 * inbound side (PUBLISH, PUBREL: inbound.ts) or the outbound side (SUBSCRIBE, PUBACK, PUBREC,
 * PUBCOMP: outbound.ts). A malformed packet, one over the size limit or one that breaks the
 * protocol closes the connection (5.0: after a DISCONNECT with the reason code), never the broker.
 */
import type { Duplex } from 'node:stream';
import mqttPacket from 'mqtt-packet';
import type { IConnectPacket, IDisconnectPacket, ISubscribePacket, IUnsubscribePacket, Packet, Parser } from 'mqtt-packet';
import type { BrokerApi } from '../../broker/types.js';
import type { Clock, TimerHandle } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { connackOf, ConnectRefusal, login, refuseAuthenticationMethod, refusalConnack, sessionRequest, type MqttSecurity, type SessionRequest } from './connect.js';
import { Inbound, MqttProtocolError } from './inbound.js';
import { KEEPALIVE_GRACE_FACTOR } from './limits.js';
import { Outbound, type OutboundPort } from './outbound.js';
import { REASON } from './reason-codes.js';
import type { RetainedStore } from './retained.js';
import type { SessionHolder, SessionRegistry } from './sessions.js';
import { handleSubscribe, handleUnsubscribe, type SubscribingConnection } from './subscribe.js';
import { PacketWriter } from './packet-writer.js';
import { OutboundTopicAliases } from './topic-aliases.js';
import type { TopicMap } from './topic-map.js';
import type { Will, Wills } from './wills.js';

export interface MqttLimits {
  packetBytesMax: number;
  topicBytesMax: number;
  subscriptionsMax: number;
  inflightMax: number;
  connectTimeoutMs: number;
  sessionExpirySecondsMax: number;
}

/** What every connection shares (the server's). */
export interface ConnectionContext {
  broker: BrokerApi;
  security: MqttSecurity | null;
  limits: MqttLimits;
  sessions: SessionRegistry;
  retained: RetainedStore;
  /** Where MQTT topic names are stored (the first level, or the operator's prefixes). */
  topicMap: TopicMap;
  /** Wills waiting out their delay, per client id. */
  wills: Wills;
  clock: Clock;
  logger: Logger;
}

/** Bytes queued on the socket above which deliveries pause until it drains. */
const WRITE_HIGH_WATER_BYTES = 1024 * 1024;
/** Packets kept while a login is checked (reading is paused: only what one read held). */
const EARLY_PACKETS_MAX = 1_000;

type State = 'connecting' | 'authenticating' | 'open' | 'closed';

export class MqttConnection implements SessionHolder, OutboundPort, SubscribingConnection {
  private state: State = 'connecting';
  private readonly parser: Parser;
  /** Packets that came with or after CONNECT while the login was checked. */
  private readonly early: Packet[] = [];
  private connectTimer: TimerHandle | null;
  private keepaliveTimer: TimerHandle | null = null;
  private lastPacketMs: number;
  private keepaliveMs = 0;
  /** A 5.0 client's maximum packet size: larger packets are not sent to it. */
  private clientPacketBytesMax = Number.POSITIVE_INFINITY;
  protocolVersion = 4;
  private session: SessionRequest | null = null;
  private inbound: Inbound | null = null;
  outbound: Outbound | null = null;
  private will: Will | null = null;
  /** Aliases this server assigns on its PUBLISHes (5.0, up to the client's topic alias maximum). */
  private topicAliases = new OutboundTopicAliases(0);
  /** A new connection took this session over: 'resumed' carries it on (a delayed will is not due), 'ended' started afresh (the will is due now). */
  private takeover: 'resumed' | 'ended' | null = null;
  private view: BrokerApi | null = null;
  /** SUBSCRIBE and UNSUBSCRIBE are answered in order: each waits for the one before. */
  control: Promise<void> = Promise.resolve();
  /** The packets of this tick, encoded and not yet handed to the socket. */
  private readonly outgoing = new PacketWriter();
  /** writable() said no: resume the subscriptions once the bytes are written. */
  private deliveriesHeld = false;
  private flushScheduled = false;
  private readPaused = false;
  /** Resolves once the connection closed and its session was released. */
  readonly closed: Promise<void>;
  private markClosed!: () => void;

  constructor(
    private readonly socket: Duplex,
    readonly address: string,
    readonly context: ConnectionContext,
  ) {
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    this.parser = mqttPacket.parser();
    this.parser.on('packet', this.onPacket);
    this.parser.on('error', (error: Error) => this.fail(new MqttProtocolError(REASON.malformedPacket, `malformed packet: ${error.message}`)));
    this.lastPacketMs = context.clock.monotonicMs();
    this.connectTimer = context.clock.schedule(context.limits.connectTimeoutMs, () => {
      if (this.state === 'connecting' || this.state === 'authenticating') this.destroy(`no CONNECT within ${context.limits.connectTimeoutMs} ms`);
    });
    socket.on('data', this.onData);
    socket.on('drain', () => {
      this.deliveriesHeld = false;
      this.outbound?.resume();
    });
    socket.on('error', (error: Error) => this.context.logger.debug('mqtt.socket_error', { address, error }));
    socket.on('close', () => void this.finish());
  }

  nowMs(): number {
    return this.context.clock.nowMs();
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.state === 'closed') return;
    try {
      this.parser.parse(chunk);
    } catch (error) {
      // The parser reports bad input as an 'error' event; anything it throws is bad input too, never the broker's end.
      this.fail(new MqttProtocolError(REASON.malformedPacket, `malformed packet: ${(error as Error).message}`));
      return;
    } finally {
      // The publishes of this read (those before a bad packet too, as they were taken one by one before) go to the broker together.
      this.inbound?.flushBatch();
    }
    // A packet still being read whose declared length is over the limit: refused before its body is buffered.
    const pending = (this.parser as unknown as { packet?: { length?: number } }).packet?.length ?? -1;
    if (pending > this.context.limits.packetBytesMax) this.tooLarge(pending);
  };

  private tooLarge(bytes: number): void {
    this.fail(new MqttProtocolError(REASON.packetTooLarge, `a packet of ${bytes} bytes exceeds the limit of ${this.context.limits.packetBytesMax}`));
  }

  private readonly onPacket = (packet: Packet): void => {
    if (this.state === 'closed') return;
    this.lastPacketMs = this.context.clock.monotonicMs();
    if ((packet.length ?? 0) > this.context.limits.packetBytesMax) {
      this.tooLarge(packet.length!);
      return;
    }
    if (this.state === 'authenticating') {
      if (this.early.length >= EARLY_PACKETS_MAX) this.fail(new MqttProtocolError(REASON.receiveMaximumExceeded, `more than ${EARLY_PACKETS_MAX} packets before CONNACK`));
      else this.early.push(packet);
      return;
    }
    try {
      if (this.state === 'connecting') this.onConnect(packet);
      else this.dispatch(packet);
    } catch (error) {
      if (error instanceof MqttProtocolError) this.fail(error);
      else this.fail(new MqttProtocolError(REASON.implementationSpecificError, `internal error: ${(error as Error).message}`));
    }
  };

  private dispatch(packet: Packet): void {
    // Publishes gathered so far are stored before anything else the client sent is acted on.
    if (packet.cmd !== 'publish') this.inbound!.flushBatch();
    switch (packet.cmd) {
      case 'publish':
        this.inbound!.publish(packet);
        return;
      case 'pubrel':
        this.inbound!.pubrel(packet);
        return;
      case 'puback':
        this.outbound!.puback(packet.messageId!);
        return;
      case 'pubrec':
        this.outbound!.pubrec(packet.messageId!);
        return;
      case 'pubcomp':
        this.outbound!.pubcomp(packet.messageId!);
        return;
      case 'subscribe':
        this.serially(() => handleSubscribe(this, packet as ISubscribePacket));
        return;
      case 'unsubscribe':
        this.serially(() => handleUnsubscribe(this, packet as IUnsubscribePacket));
        return;
      case 'pingreq':
        this.write({ cmd: 'pingresp' });
        return;
      case 'disconnect':
        this.onDisconnect(packet);
        return;
      case 'auth':
        // No authentication method is offered (a CONNECT naming one is refused), so no exchange can be under way (MQTT-4.12.0-1).
        throw new MqttProtocolError(REASON.protocolError, 'AUTH without an authentication method: enhanced authentication is not supported');
      default:
        throw new MqttProtocolError(REASON.protocolError, `a client does not send ${packet.cmd}`);
    }
  }

  private serially(work: () => Promise<void>): void {
    this.control = this.control.then(work).catch((error: unknown) => {
      if (error instanceof MqttProtocolError) this.fail(error);
      else this.context.logger.warn('mqtt.control_failed', { clientId: this.session?.clientId, error });
    });
  }

  private onConnect(packet: Packet): void {
    if (packet.cmd !== 'connect') throw new MqttProtocolError(REASON.protocolError, `the first packet must be CONNECT, not ${packet.cmd}`);
    this.protocolVersion = packet.protocolVersion === 5 ? 5 : 4;
    this.state = 'authenticating';
    this.setReadPaused(true);
    this.connectAsync(packet).then(
      () => this.afterConnect(),
      (error: unknown) => this.refuseConnect(error),
    );
  }

  private async connectAsync(packet: IConnectPacket): Promise<void> {
    const { limits, sessions } = this.context;
    refuseAuthenticationMethod(packet);
    const session = sessionRequest(packet, limits.sessionExpirySecondsMax);
    const { broker } = await login(this.context.security, this.context.broker, this.socket, packet, this.address);
    if (this.state !== 'authenticating') return;
    this.session = session;
    this.view = broker;
    sessions.claim(session.clientId, this, !session.cleanStart);
    await this.context.wills.connected(session.clientId, session.cleanStart);
    const stored = await sessions.load(session.clientId);
    if (session.cleanStart && stored !== null) await this.discardStoredSession(stored.subscriptions);
    const resumed = !session.cleanStart && stored !== null ? stored : null;
    if (session.expirySeconds > 0) await sessions.store(session.clientId, session.expirySeconds, resumed?.subscriptions ?? []);
    else if (stored !== null) await sessions.forget(session.clientId);
    if (this.state !== 'authenticating') return;
    this.will = packet.will ?? null;
    this.clientPacketBytesMax = packet.properties?.maximumPacketSize ?? Number.POSITIVE_INFINITY;
    if (this.protocolVersion === 5) this.topicAliases = new OutboundTopicAliases(packet.properties?.topicAliasMaximum ?? 0);
    this.keepaliveMs = (packet.keepalive ?? 0) * 1000 * KEEPALIVE_GRACE_FACTOR;
    this.inbound = new Inbound(
      {
        broker,
        clientId: session.clientId,
        protocolVersion: this.protocolVersion,
        topicBytesMax: limits.topicBytesMax,
        topicMap: this.context.topicMap,
        inflightMax: limits.inflightMax,
        nowMs: () => this.nowMs(),
        logger: this.context.logger,
        onRetain: (topic, published) => this.context.retained.retain(topic, published),
      },
      this,
    );
    this.outbound = new Outbound({
      broker,
      clientId: session.clientId,
      persistent: session.expirySeconds > 0,
      windowMax: Math.min(limits.inflightMax, session.receiveMaximum),
      topicMap: this.context.topicMap,
      logger: this.context.logger,
    });
    this.write(connackOf(packet, session, resumed !== null, limits));
    this.state = 'open';
    if (resumed !== null) await this.outbound.reattach(this, resumed.subscriptions);
    else this.outbound.attach(this);
  }

  /** A clean start ends the session stored before: its groups start again from now, so nothing queued for it is delivered. */
  private async discardStoredSession(subscriptions: readonly { filter: string; group?: string; shareGroup: string | null }[]): Promise<void> {
    const raw = this.context.broker;
    for (const subscription of subscriptions) {
      if (subscription.group === undefined || subscription.shareGroup !== null || raw.resetGroup === undefined) continue;
      const topics = this.context.topicMap.topicsOfFilter(subscription.filter, () => raw.listTopics().map((info) => info.name));
      for (const topic of topics) await raw.resetGroup(topic, subscription.group, { kind: 'latest' }).catch(() => undefined);
    }
  }

  private afterConnect(): void {
    if (this.state !== 'open') return;
    this.connectTimer?.cancel();
    this.connectTimer = null;
    this.armKeepalive();
    this.setReadPaused(false);
    const early = this.early.splice(0);
    for (const packet of early) this.onPacket(packet);
    this.inbound?.flushBatch();
  }

  private refuseConnect(error: unknown): void {
    if (this.state === 'closed') return;
    const refusal = error instanceof ConnectRefusal ? error : new ConnectRefusal(REASON.serverUnavailable, 3, (error as Error).message);
    this.context.logger.info('mqtt.connect_refused', { address: this.address, reason: refusal.reason, message: refusal.message });
    this.write(refusalConnack(this.protocolVersion, refusal));
    this.flush();
    this.will = null;
    this.end();
  }

  private armKeepalive(): void {
    if (this.keepaliveMs === 0) return;
    const check = (): void => {
      if (this.state !== 'open') return;
      const silentMs = this.context.clock.monotonicMs() - this.lastPacketMs;
      if (silentMs >= this.keepaliveMs) {
        this.fail(new MqttProtocolError(REASON.keepAliveTimeout, `nothing received for ${Math.round(silentMs)} ms (keepalive)`));
        return;
      }
      this.keepaliveTimer = this.context.clock.schedule(this.keepaliveMs - silentMs, check);
    };
    this.keepaliveTimer = this.context.clock.schedule(this.keepaliveMs, check);
  }

  private onDisconnect(packet: IDisconnectPacket): void {
    // 0x04: disconnect with the will message; anything else from the client drops the will (MQTT-3.1.2-10).
    if (packet.reasonCode !== REASON.disconnectWithWill) this.will = null;
    const expiry = packet.properties?.sessionExpiryInterval;
    if (expiry !== undefined && this.session !== null && this.session.expirySeconds > 0) this.session.expirySeconds = Math.min(expiry, this.context.limits.sessionExpirySecondsMax);
    this.end();
  }

  /** Another connection took this client id's session. */
  takenOver(resumed: boolean): void {
    this.takeover = resumed ? 'resumed' : 'ended';
    if (this.protocolVersion === 5 && this.state === 'open') this.write({ cmd: 'disconnect', reasonCode: REASON.sessionTakenOver });
    this.flush();
    this.end();
  }

  write(packet: Packet): boolean {
    if (this.state === 'closed') return false;
    const unalias = packet.cmd === 'publish' ? this.topicAliases.apply(packet) : null;
    const outcome = this.outgoing.add(packet, this.protocolVersion, this.clientPacketBytesMax);
    if (outcome.kind !== 'queued') {
      unalias?.();
      // A packet the encoder refuses (a property out of range, from a stored header): logged, the connection goes on.
      if (outcome.kind === 'refused') this.context.logger.warn('mqtt.encode_failed', { clientId: this.session?.clientId, cmd: packet.cmd, error: outcome.error });
      else this.context.logger.debug('mqtt.delivery_too_large', { clientId: this.session?.clientId, bytes: outcome.bytes, clientPacketBytesMax: this.clientPacketBytesMax });
      return false;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flush);
    }
    return true;
  }

  /** The packets of one tick go out in one write. */
  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.outgoing.queuedBytes === 0 || this.socket.destroyed) return;
    const accepted = this.socket.write(this.outgoing.take()!);
    // Deliveries held back by bytes not yet handed over resume now; by a full socket, at 'drain'.
    if (accepted && this.deliveriesHeld) {
      this.deliveriesHeld = false;
      this.outbound?.resume();
    }
  };

  writable(): boolean {
    if (this.state !== 'open') return false;
    if (this.socket.writableLength + this.outgoing.queuedBytes < WRITE_HIGH_WATER_BYTES) return true;
    this.deliveriesHeld = true;
    return false;
  }

  setReadPaused(paused: boolean): void {
    if (paused === this.readPaused) return;
    this.readPaused = paused;
    if (paused) this.socket.pause();
    else if (this.state !== 'closed') this.socket.resume();
  }

  /**
   * The broker is stopping: 5.0 hears 0x8B. The will is not published: the client did nothing
   * wrong, and a restart must not announce every client as gone.
   */
  shutdown(): void {
    this.will = null;
    this.fail(new MqttProtocolError(REASON.serverShuttingDown, 'the broker is shutting down'));
  }

  /** A protocol error: 5.0 hears the reason code in a DISCONNECT; then the connection closes. */
  fail(error: MqttProtocolError): void {
    if (this.state === 'closed') return;
    this.context.logger.info('mqtt.connection_failed', { clientId: this.session?.clientId, address: this.address, reason: error.reason, message: error.message });
    if (this.protocolVersion === 5 && this.state === 'open') {
      this.write({ cmd: 'disconnect', reasonCode: error.reason, properties: { reasonString: error.message.slice(0, 200) } });
    }
    this.flush();
    this.end();
  }

  /** Closes after what is queued is written. */
  private end(): void {
    this.flush();
    this.socket.end();
    void this.finish();
  }

  private destroy(reason: string): void {
    this.context.logger.info('mqtt.connection_dropped', { address: this.address, reason });
    this.socket.destroy();
    void this.finish();
  }

  /** Once: timers stop, the session is released (or kept, persistent), and a will is published. */
  private async finish(): Promise<void> {
    if (this.state === 'closed') return;
    // A session is claimed once the login passed: released whatever came after (even a failed resume).
    const claimed = this.session !== null;
    this.state = 'closed';
    this.connectTimer?.cancel();
    this.keepaliveTimer?.cancel();
    if (!this.socket.destroyed) setTimeout(() => this.socket.destroy(), 1000).unref();
    try {
      if (claimed) await this.releaseSession();
    } catch (error) {
      this.context.logger.warn('mqtt.session.release_failed', { clientId: this.session?.clientId, error });
    } finally {
      this.markClosed();
    }
  }

  private async releaseSession(): Promise<void> {
    const session = this.session!;
    await this.control.catch(() => undefined);
    const filters = this.outbound?.filters() ?? [];
    await this.outbound?.detach();
    await this.context.sessions.release(session.clientId, this, session.expirySeconds > 0 ? { expirySeconds: session.expirySeconds, subscriptions: filters } : null);
    const will = this.will;
    if (will === null || this.view === null) return;
    // Taken over by a connection that resumes the session: a will with a delay is not due (it reconnected within it, MQTT-3.1.3-9).
    if (this.takeover === 'resumed' && (will.properties?.willDelayInterval ?? 0) > 0) return;
    await this.context.wills.connectionLost(session.clientId, will, this.view, this.takeover === null ? session.expirySeconds : 0);
  }

  get clientId(): string {
    return this.session?.clientId ?? '';
  }

  get persistentExpirySeconds(): number {
    return this.session?.expirySeconds ?? 0;
  }
}
