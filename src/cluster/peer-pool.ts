/**
 * Connections from this broker to the others, one per peer, shared by every topic followed from
 * it: the same protocol and handshake as any client (client/connection.ts), with the broker's own
 * credentials (the `replicator` role). A connection that closes is opened again on next use.
 * Renewed TLS options (the cluster's CA, read again with the broker's certificates) apply to the
 * connections opened from then on; open ones keep the handshake they made.
 */
import { ClientConnection, type ConnectionHandler } from '../client/connection.js';
import { resolveClientOptions, type ConnectOptions, type TlsOptions } from '../client/options.js';
import { FerryError } from '../errors.js';
import type { Logger } from '../platform/logger.js';
import { FETCH_WAIT_MS_MAX } from './limits.js';

/** A replication request may wait at the leader for FETCH_WAIT_MS_MAX; an answer later than this is lost. */
const PEER_REQUEST_TIMEOUT_MS = FETCH_WAIT_MS_MAX + 4_500;
/** Connect and handshake with a peer: short, so a dead peer is noticed quickly. */
const PEER_CONNECT_TIMEOUT_MS = 1_000;

export interface PeerPoolOptions {
  nodeId: string;
  /** Credentials and TLS for broker-to-broker connections (host and port are the peer's). */
  connect: Omit<ConnectOptions, 'host' | 'port' | 'url'>;
  logger: Logger;
}

interface Peer {
  address: string;
  connection: Promise<ClientConnection> | null;
  closedListeners: Set<(error: FerryError) => void>;
}

export class PeerPool {
  private readonly peers = new Map<string, Peer>();
  private closed = false;
  /** Credentials and TLS of the next connection opened. */
  private connect: PeerPoolOptions['connect'];

  constructor(private readonly options: PeerPoolOptions) {
    this.connect = options.connect;
  }

  /** TLS for the connections opened from now on (undefined: plaintext). */
  setTls(tls: TlsOptions | undefined): void {
    const { tls: _previous, ...rest } = this.connect;
    this.connect = tls === undefined ? rest : { ...rest, tls };
  }

  /** The open connection to `nodeId` at `address`, opening one when needed. Rejects with CONNECTION_REFUSED when the peer is down. */
  connection(nodeId: string, address: string): Promise<ClientConnection> {
    if (this.closed) return Promise.reject(new FerryError('BROKER_CLOSING', 'the broker is closing'));
    let peer = this.peers.get(nodeId);
    if (peer !== undefined && peer.address !== address) {
      this.drop(nodeId, new FerryError('CONNECTION_CLOSED', `${nodeId} moved to ${address}`));
      peer = undefined;
    }
    if (peer === undefined) {
      peer = { address, connection: null, closedListeners: new Set() };
      this.peers.set(nodeId, peer);
    }
    peer.connection ??= this.open(nodeId, peer);
    return peer.connection;
  }

  /** Called once when the current connection to `nodeId` closes; returns the unsubscribe. */
  onClosed(nodeId: string, listener: (error: FerryError) => void): () => void {
    const peer = this.peers.get(nodeId);
    if (peer === undefined) return () => {};
    peer.closedListeners.add(listener);
    return () => peer.closedListeners.delete(listener);
  }

  private open(nodeId: string, peer: Peer): Promise<ClientConnection> {
    const [host, portText] = splitAddress(peer.address);
    const options = resolveClientOptions({
      ...this.connect,
      host,
      port: Number(portText),
      name: `ferry-broker ${this.options.nodeId}`,
      requestTimeoutMs: PEER_REQUEST_TIMEOUT_MS,
      connectTimeoutMs: PEER_CONNECT_TIMEOUT_MS,
      reconnect: false,
    });
    const handler: ConnectionHandler = {
      deliver: () => {},
      notice: (error) => this.options.logger.debug('cluster.peer.notice', { peer: nodeId, error }),
      closed: (_connection, error) => this.connectionClosed(nodeId, peer, error),
      beforeFlush: () => {},
    };
    const opening = ClientConnection.open(options, handler);
    opening.catch(() => {
      if (peer.connection === opening) peer.connection = null;
    });
    return opening;
  }

  private connectionClosed(nodeId: string, peer: Peer, error: FerryError): void {
    if (this.peers.get(nodeId) === peer) peer.connection = null;
    for (const listener of [...peer.closedListeners]) listener(error);
    peer.closedListeners.clear();
  }

  private drop(nodeId: string, error: FerryError): void {
    const peer = this.peers.get(nodeId);
    if (peer === undefined) return;
    this.peers.delete(nodeId);
    void peer.connection?.then((connection) => connection.destroy(error), () => undefined);
  }

  close(): void {
    this.closed = true;
    for (const nodeId of [...this.peers.keys()]) this.drop(nodeId, new FerryError('CONNECTION_CLOSED', 'the broker is closing'));
  }
}

/** `host:port`, with `[v6]:port` for IPv6 addresses. */
export function splitAddress(address: string): [string, string] {
  const match = /^\[(.+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  if (match === null) throw new FerryError('INVALID_ARGUMENT', `address ${address} is not host:port`);
  return [match[1]!, match[2]!];
}
