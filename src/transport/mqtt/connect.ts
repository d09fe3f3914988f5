/**
 * CONNECT: who the client is (a verified TLS client certificate, else the username and password,
 * checked by Ferry's authenticator; the guard then checks every publish and subscribe against the
 * user's grants on the Ferry topic and group), what session it asks for, and the CONNACK.
 */
import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { IConnackPacket, IConnectPacket } from 'mqtt-packet';
import type { BrokerApi } from '../../broker/types.js';
import { FerryError } from '../../errors.js';
import type { Authenticator, Principal } from '../../security/authenticator.js';
import type { AccessGuard } from '../../security/guard.js';
import { presentedCertificate } from '../../security/tls.js';
import { CLIENT_ID_BYTES_MAX, TOPIC_ALIASES_MAX } from './limits.js';
import { CONNACK_V4, connackV4Of, REASON, reasonOf } from './reason-codes.js';

export interface MqttSecurity {
  authenticator: Authenticator;
  guard: AccessGuard;
}

/** A refused CONNECT: the CONNACK says why, then the connection closes. */
export class ConnectRefusal extends Error {
  constructor(
    readonly reason: number,
    readonly returnCodeV4: number,
    message: string,
  ) {
    super(message);
  }
}

/** The broker as this client may use it (the guard's view), and who it is. */
export async function login(security: MqttSecurity | null, broker: BrokerApi, socket: Duplex, packet: IConnectPacket, address: string): Promise<{ broker: BrokerApi; principal: Principal | null }> {
  if (security === null) return { broker, principal: null };
  const { authenticator, guard } = security;
  if (!authenticator.enabled) return { broker: guard.for({ principal: null, address, inner: broker }), principal: null };
  try {
    const principal = await authenticate(authenticator, socket, packet, address);
    return { broker: guard.for({ principal, address, inner: broker }), principal };
  } catch (error) {
    const missing = error instanceof FerryError && error.code === 'AUTH_REQUIRED';
    throw new ConnectRefusal(missing ? REASON.notAuthorized : reasonOf(error), connackV4Of(error), (error as Error).message);
  }
}

async function authenticate(authenticator: Authenticator, socket: Duplex, packet: IConnectPacket, address: string): Promise<Principal> {
  const certificate = socket instanceof TLSSocket ? presentedCertificate(socket) : null;
  if (certificate !== null) return authenticator.certificateLogin(certificate, address);
  if (packet.username === undefined || packet.password === undefined) {
    throw new FerryError('AUTH_REQUIRED', 'this server requires a username and password (or a client certificate)');
  }
  return authenticator.authenticate({ user: packet.username, password: packet.password.toString('utf8') }, address);
}

/** What the client asked for, within the server's bounds. */
export interface SessionRequest {
  clientId: string;
  /** The server made the id up (an empty one with a clean start). */
  assigned: boolean;
  cleanStart: boolean;
  /** Seconds the session outlives its connection; 0: it ends with it. */
  expirySeconds: number;
  /** 5.0 receive maximum: QoS 1 and 2 messages the client takes unacknowledged. */
  receiveMaximum: number;
}

/**
 * Enhanced authentication (5.0 AUTH) is not offered: Ferry knows no authentication method beyond a
 * username and password or a client certificate, so a CONNECT naming one is refused with 0x8C
 * (MQTT-4.12.0-1), and an AUTH packet later is a protocol error (connection.ts).
 */
export function refuseAuthenticationMethod(packet: IConnectPacket): void {
  const method = packet.properties?.authenticationMethod;
  if (packet.protocolVersion !== 5 || method === undefined) return;
  throw new ConnectRefusal(REASON.badAuthenticationMethod, CONNACK_V4.notAuthorized, `authentication method '${method.slice(0, 100)}' is not supported (only username/password and client certificates)`);
}

export function sessionRequest(packet: IConnectPacket, expirySecondsMax: number): SessionRequest {
  const v5 = packet.protocolVersion === 5;
  let clientId = packet.clientId;
  let assigned = false;
  if (clientId === '') {
    if (!packet.clean && !v5) throw new ConnectRefusal(REASON.clientIdentifierNotValid, CONNACK_V4.identifierRejected, 'an empty client id needs clean session 1 (MQTT-3.1.3-7)');
    clientId = `ferry-${randomBytes(12).toString('hex')}`;
    assigned = true;
  }
  if (Buffer.byteLength(clientId) > CLIENT_ID_BYTES_MAX) {
    throw new ConnectRefusal(REASON.clientIdentifierNotValid, CONNACK_V4.identifierRejected, `client id longer than ${CLIENT_ID_BYTES_MAX} bytes`);
  }
  const asked = v5 ? (packet.properties?.sessionExpiryInterval ?? 0) : packet.clean ? 0 : expirySecondsMax;
  return {
    clientId,
    assigned,
    cleanStart: packet.clean !== false,
    expirySeconds: assigned && !v5 ? 0 : Math.min(asked, expirySecondsMax),
    receiveMaximum: packet.properties?.receiveMaximum ?? 0xffff,
  };
}

export interface ServerLimits {
  packetBytesMax: number;
  inflightMax: number;
}

export function connackOf(packet: IConnectPacket, session: SessionRequest, sessionPresent: boolean, limits: ServerLimits): IConnackPacket {
  if (packet.protocolVersion !== 5) return { cmd: 'connack', returnCode: CONNACK_V4.accepted, sessionPresent };
  const properties: NonNullable<IConnackPacket['properties']> = {
    receiveMaximum: limits.inflightMax,
    maximumPacketSize: limits.packetBytesMax,
    topicAliasMaximum: TOPIC_ALIASES_MAX,
    retainAvailable: true,
    wildcardSubscriptionAvailable: true,
    sharedSubscriptionAvailable: true,
    subscriptionIdentifiersAvailable: true,
  };
  if (session.assigned) properties.assignedClientIdentifier = session.clientId;
  if (session.expirySeconds !== (packet.properties?.sessionExpiryInterval ?? 0)) properties.sessionExpiryInterval = session.expirySeconds;
  return { cmd: 'connack', reasonCode: REASON.success, sessionPresent, properties };
}

export function refusalConnack(protocolVersion: number, refusal: ConnectRefusal): IConnackPacket {
  if (protocolVersion === 5) return { cmd: 'connack', reasonCode: refusal.reason, sessionPresent: false, properties: { reasonString: refusal.message.slice(0, 200) } };
  return { cmd: 'connack', returnCode: refusal.returnCodeV4, sessionPresent: false };
}
