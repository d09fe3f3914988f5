/**
 * One connection as the client uses it: the ClientConnection, the subscriptions attached to it by
 * their per-connection wire ids, and what is known of the broker at the other end (its node id in
 * a cluster, whether it answers METADATA). Frames the connection does not handle itself go to the
 * link's owner: the client with one server, the cluster router with several.
 */
import { isFerryError, type FerryError } from '../errors.js';
import type { DeliverBatch } from '../protocol/messages.js';
import { addressKey, type ServerAddress } from './address.js';
import { ClientConnection, type ConnectionHandler } from './connection.js';
import type { ResolvedClientOptions } from './options.js';
import type { Subscription } from './subscription.js';

export interface LinkOwner {
  /** An ERROR without a request (a failed ACK, a subscription the broker ended) or a GOODBYE. */
  linkNotice(link: Link, error: FerryError): void;
  /** Called once, when the connection is gone. */
  linkClosed(link: Link, error: FerryError): void;
  /** Before each flush: coalesced credit is written. */
  beforeFlush(connection: ClientConnection): void;
}

/** Reasons a connect or reconnect gives up at once instead of trying again (or trying another server). */
export const GIVE_UP_CODES: ReadonlySet<string> = new Set(['AUTH_FAILED', 'AUTH_REQUIRED', 'UNSUPPORTED_VERSION']);

/**
 * Connects to the first of the servers that completes the handshake, trying them in the order
 * given; rejects with the last failure, or at once when a server refuses the login (the others
 * would too).
 */
export async function openFirst(options: ResolvedClientOptions, owner: LinkOwner): Promise<Link> {
  let lastError: unknown;
  for (const server of options.servers) {
    try {
      return await Link.open(options, server, owner);
    } catch (error) {
      if (isFerryError(error) && GIVE_UP_CODES.has(error.code)) throw error;
      lastError = error;
    }
  }
  throw lastError;
}

/** Whether the broker answers METADATA: a broker without cluster support closes the connection instead. */
export type MetadataSupport = 'unknown' | 'supported' | 'unsupported';

export class Link implements ConnectionHandler {
  /** Subscriptions attached on this connection, by the server's id for them. */
  readonly subscriptions = new Map<number, Subscription>();
  /** Topics of the requests sent here since the connection was last idle (cluster mode: to tell whether they moved away). */
  readonly routedTopics = new Set<string>();
  private conn: ClientConnection | null = null;
  /** The broker's node id: from HELLO_OK in cluster mode, or from its METADATA answer. */
  nodeId: string | undefined;
  metadata: MetadataSupport = 'unknown';

  private constructor(
    /** The address key of the server dialed. */
    readonly key: string,
    public owner: LinkOwner,
  ) {}

  /** Connects and completes the handshake (rejects like ClientConnection.open). */
  static async open(options: ResolvedClientOptions, server: ServerAddress, owner: LinkOwner): Promise<Link> {
    const link = new Link(addressKey(server), owner);
    link.conn = await ClientConnection.open(options, link, server);
    const nodeId = link.conn.hello?.clusterNodeId;
    if (nodeId !== undefined && nodeId !== '') {
      link.nodeId = nodeId;
      link.metadata = 'supported';
    }
    return link;
  }

  get connection(): ClientConnection {
    return this.conn!;
  }

  get isOpen(): boolean {
    return this.conn !== null && this.conn.isOpen;
  }

  /** The broker announced cluster mode in HELLO_OK. */
  get announcedCluster(): boolean {
    const nodeId = this.conn?.hello?.clusterNodeId;
    return nodeId !== undefined && nodeId !== '';
  }

  deliver(batch: DeliverBatch): void {
    this.subscriptions.get(batch.subscriptionId)?.onDeliver(batch);
  }

  notice(error: FerryError): void {
    this.owner.linkNotice(this, error);
  }

  closed(_connection: ClientConnection, error: FerryError): void {
    this.owner.linkClosed(this, error);
  }

  beforeFlush(connection: ClientConnection): void {
    this.owner.beforeFlush(connection);
  }
}
