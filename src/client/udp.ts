/**
 * Fire-and-forget publishing over UDP (docs/PROTOCOL.md, "UDP ingest"): one datagram per message,
 * in the binary form, to a broker started with `--udp-port`. Nothing is confirmed; a datagram is
 * stored whole or dropped (at most once), so this is for producers that prefer losing a sample to
 * waiting (metrics, logs, sensors). Needs nothing beyond node:dgram.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { FerryError } from '../errors.js';
import { DEFAULT_HOST, DEFAULT_UDP_PORT } from '../protocol/limits.js';
import { encodeUdpDatagram } from '../protocol/udp-datagram.js';

/**
 * Datagrams waiting in the socket's send queue at most (the kernel's buffer was full): past it a
 * publish is dropped here rather than queued, so a producer faster than the network never grows
 * its memory. Counted in `dropped`.
 */
export const UDP_SEND_QUEUE_MAX = 1024;

export interface UdpPublishOptions {
  key?: string | Uint8Array | null;
  /** Header names starting with `ferry-` are the broker's and refused. */
  headers?: Record<string, string>;
}

export interface UdpPublisherOptions {
  host?: string;
  port?: number;
}

/** Time close() waits for queued datagrams to leave before closing the socket anyway. */
const CLOSE_DRAIN_MS_MAX = 1000;

/** One UDP socket to one broker's ingest port, opened (connected) at the first publish. */
export class UdpPublisher {
  readonly host: string;
  readonly port: number;
  private socket: Socket | null = null;
  /** Datagrams published while the socket connects (its address is looked up); sent once connected. */
  private connecting: Buffer[] | null = null;
  private closed = false;
  /** Datagrams handed to the socket. */
  sent = 0;
  /** Datagrams dropped here: the send queue was full (UDP_SEND_QUEUE_MAX), or the address did not resolve. */
  dropped = 0;
  /** Send errors the socket reported (e.g. nothing listening: ECONNREFUSED from an ICMP reply). */
  errors = 0;

  constructor(options: UdpPublisherOptions = {}) {
    this.host = options.host ?? DEFAULT_HOST;
    this.port = options.port ?? DEFAULT_UDP_PORT;
    if (!Number.isInteger(this.port) || this.port < 1 || this.port > 65_535) {
      throw new FerryError('INVALID_ARGUMENT', `port must be an integer from 1 to 65535, got ${String(options.port)}`);
    }
  }

  /** Datagrams waiting to leave: published while connecting, or queued in the socket. */
  get queued(): number {
    return this.connecting?.length ?? this.socket?.getSendQueueCount() ?? 0;
  }

  /**
   * Sends one message as one datagram; returns true once handed to the socket, false when dropped
   * here (send queue full). Throws INVALID_ARGUMENT (bad topic, header or type), KEY_TOO_LARGE,
   * HEADERS_TOO_LARGE or RECORD_TOO_LARGE (more than one datagram holds) at once, sending nothing;
   * CONNECTION_CLOSED after close().
   */
  publishUdp(topic: string, value: Buffer | string | Uint8Array, options: UdpPublishOptions = {}): boolean {
    if (this.closed) throw new FerryError('CONNECTION_CLOSED', 'the UDP publisher is closed');
    const datagram = encodeUdpDatagram({ topic, value, key: options.key, headers: options.headers });
    const socket = (this.socket ??= this.open());
    const waiting = this.connecting;
    if ((waiting?.length ?? socket.getSendQueueCount()) >= UDP_SEND_QUEUE_MAX) {
      this.dropped += 1;
      return false;
    }
    if (waiting !== null) waiting.push(datagram);
    else socket.send(datagram);
    this.sent += 1;
    return true;
  }

  /** Closes the socket once what it was handed has left (waiting at most CLOSE_DRAIN_MS_MAX). */
  async close(): Promise<void> {
    this.closed = true;
    const socket = this.socket;
    this.socket = null;
    if (socket === null) return;
    const startedMs = performance.now();
    while ((this.connecting !== null || socket.getSendQueueCount() > 0) && performance.now() - startedMs < CLOSE_DRAIN_MS_MAX) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }

  private open(): Socket {
    const socket = createSocket(isIPv6(this.host) ? 'udp6' : 'udp4');
    this.connecting = [];
    // Send errors arrive as events (a refused port, an unreachable host): counted, never thrown.
    socket.on('error', () => {
      this.errors += 1;
    });
    socket.connect(this.port, this.host, (error?: Error) => {
      const waiting = this.connecting ?? [];
      this.connecting = null;
      if (error !== undefined && error !== null) {
        // The address did not resolve: what waited is lost, and the next publish tries again.
        this.dropped += waiting.length;
        this.sent -= waiting.length;
        if (this.socket === socket) this.socket = null;
        socket.close();
        return;
      }
      for (const datagram of waiting) socket.send(datagram);
    });
    // The socket alone never keeps the process alive: sends in flight do, until they leave.
    socket.unref();
    return socket;
  }
}
