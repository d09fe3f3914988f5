/**
 * The network of a cluster chaos run: a small TCP proxy in front of every broker's advertised port
 * and on every broker-to-etcd link, whose links the harness cuts and heals.
 *
 * A link is (source, destination): a broker dialing another broker, or a broker dialing an etcd
 * member. Brokers dial each other at the address they advertise, which is the proxy's; the proxy
 * tells which broker is calling from the client name in the connection's first frame (HELLO,
 * `ferry-broker <nodeId>`, src/cluster/peer-pool.ts). Anything else (the chaos clients) is a
 * `client` and never faulted. Each broker's etcd endpoints are proxies of their own, so the source
 * of an etcd link is known from the port.
 *
 * Faults, per link:
 * - `drop`: every connection on the link is reset, and new ones are reset as soon as they say who
 *   they are (as a firewall's REJECT, or a peer whose kernel lost the connection);
 * - `blackhole`: nothing passes either way and nothing is closed: the proxy stops reading, so the
 *   bytes wait as they would in a real partition, and flow again, intact, when the link heals;
 * - `one-way`: only one direction passes (`request`: source to destination; `response`: back);
 * - `slow`: every chunk waits `delayMs` before it is passed on (in order).
 * A close seen on a direction that does not pass is held back until it passes again.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

const HOST = '127.0.0.1';
/** Bytes of the frame header before HELLO's client name (src/protocol/frame.ts: magic, version, type, flags, reserved, id, length). */
const FRAME_HEADER_BYTES = 14;
const FRAME_MAGIC = 0xfe77;
const HELLO_TYPE = 0x01;
/** A client name longer than this is not a broker's: classify without waiting for more. */
const CLIENT_NAME_BYTES_MAX = 256;
const BROKER_NAME = /^ferry-broker (\S+)$/;
/** Source name of connections that are not from a broker. */
export const CLIENT_SOURCE = 'client';

export type LinkFault =
  | { kind: 'ok' }
  | { kind: 'drop' }
  | { kind: 'blackhole' }
  | { kind: 'one-way'; passes: 'request' | 'response' }
  | { kind: 'slow'; delayMs: number };

const OK: LinkFault = { kind: 'ok' };

/** Whether bytes in a direction pass under `fault`. */
function passes(fault: LinkFault, direction: 'request' | 'response'): boolean {
  if (fault.kind === 'blackhole' || fault.kind === 'drop') return false;
  if (fault.kind === 'one-way') return fault.passes === direction;
  return true;
}

/** One direction of a proxied connection: reads `from`, writes `to`. */
class Direction {
  private queue: Array<{ chunk: Buffer; dueMs: number }> = [];
  private timer: NodeJS.Timeout | null = null;
  private closePending = false;

  constructor(
    private readonly from: Socket,
    private readonly to: Socket,
    private readonly fault: () => LinkFault,
    private readonly name: 'request' | 'response',
  ) {
    from.on('data', (chunk: Buffer) => this.forward(chunk));
    from.on('close', () => {
      if (passes(this.fault(), this.name)) this.closeTarget();
      else this.closePending = true;
    });
  }

  /** Bytes read before the direction was set up (the HELLO the proxy looked at). */
  forward(chunk: Buffer): void {
    const fault = this.fault();
    const delayMs = fault.kind === 'slow' ? fault.delayMs : 0;
    if (delayMs === 0 && this.queue.length === 0) {
      if (!this.to.destroyed) this.to.write(chunk);
      return;
    }
    this.queue.push({ chunk, dueMs: performance.now() + delayMs });
    this.schedule();
  }

  /** Applies the link's current fault: stop or resume reading, and a held-back close. */
  apply(): void {
    if (passes(this.fault(), this.name)) {
      if (this.closePending) {
        this.closePending = false;
        this.closeTarget();
        return;
      }
      this.from.resume();
    } else {
      this.from.pause();
    }
  }

  private schedule(): void {
    if (this.timer !== null || this.queue.length === 0) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const now = performance.now();
      while (this.queue.length > 0 && this.queue[0]!.dueMs <= now) {
        const { chunk } = this.queue.shift()!;
        if (!this.to.destroyed) this.to.write(chunk);
      }
      this.schedule();
    }, Math.max(0, this.queue[0]!.dueMs - performance.now()));
  }

  private closeTarget(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.to.destroyed) return;
    for (const { chunk } of this.queue.splice(0)) this.to.write(chunk);
    this.to.destroySoon();
  }
}

interface Proxied {
  source: string;
  client: Socket;
  upstream: Socket;
  request: Direction;
  response: Direction;
}

/** One listening proxy: to one destination (a broker or an etcd member). */
class Proxy {
  private readonly connections = new Set<Proxied>();
  private server: Server | null = null;
  private port = 0;

  constructor(
    readonly destination: string,
    private readonly targetPort: number,
    /** The source when known from the port (etcd links); null: from the HELLO (broker ports). */
    private readonly fixedSource: string | null,
    private readonly faultOf: (source: string, destination: string) => LinkFault,
  ) {}

  async listen(port: number): Promise<number> {
    const server = createServer({ pauseOnConnect: true }, (socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, HOST, () => resolve());
    });
    this.port = (server.address() as { port: number }).port;
    return this.port;
  }

  /**
   * The destination's process is gone: the proxy's port refuses connections too, as the
   * destination's would (a follower elects at once when its leader's port refuses).
   */
  async down(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    // The port stops listening at once; open connections (a blackholed one may wait for its heal)
    // are not waited for.
    server.close();
    await new Promise((resolve) => setImmediate(resolve));
  }

  /** The destination listens again: so does the proxy, on the same port. */
  async up(): Promise<void> {
    if (this.server === null) await this.listen(this.port);
  }

  /** Applies a changed fault to the open connections of a source (every source: null). */
  changed(source: string | null): void {
    for (const connection of this.connections) {
      if (source !== null && connection.source !== source) continue;
      const fault = this.faultOf(connection.source, this.destination);
      if (fault.kind === 'drop') {
        connection.client.resetAndDestroy();
        connection.upstream.resetAndDestroy();
        continue;
      }
      connection.request.apply();
      connection.response.apply();
    }
  }

  async close(): Promise<void> {
    for (const connection of this.connections) {
      connection.client.destroy();
      connection.upstream.destroy();
    }
    await this.down();
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    if (this.fixedSource !== null) {
      this.open(client, this.fixedSource, Buffer.alloc(0));
      return;
    }
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const source = sourceOf(head);
      if (source === null) return;
      client.off('data', onData);
      client.pause();
      this.open(client, source, head);
    };
    client.on('data', onData);
    client.resume();
  }

  private open(client: Socket, source: string, head: Buffer): void {
    client.pause();
    if (this.faultOf(source, this.destination).kind === 'drop') {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: HOST, port: this.targetPort });
    upstream.on('error', () => undefined);
    upstream.pause();
    const fault = (): LinkFault => this.faultOf(source, this.destination);
    const connection: Proxied = {
      source,
      client,
      upstream,
      request: new Direction(client, upstream, fault, 'request'),
      response: new Direction(upstream, client, fault, 'response'),
    };
    this.connections.add(connection);
    const forget = (): void => {
      this.connections.delete(connection);
    };
    client.once('close', forget);
    upstream.once('close', forget);
    if (head.length > 0) connection.request.forward(head);
    upstream.once('connect', () => {
      connection.request.apply();
      connection.response.apply();
    });
  }
}

/**
 * Who sent the first bytes of a connection: a broker's node id, CLIENT_SOURCE, or null while more
 * bytes are needed to tell.
 */
export function sourceOf(head: Buffer): string | null {
  if (head.length < 4) return null;
  if (head.readUInt16BE(0) !== FRAME_MAGIC || head[3] !== HELLO_TYPE) return CLIENT_SOURCE;
  if (head.length < FRAME_HEADER_BYTES + 2) return null;
  const nameBytes = head.readUInt16BE(FRAME_HEADER_BYTES);
  if (nameBytes > CLIENT_NAME_BYTES_MAX) return CLIENT_SOURCE;
  if (head.length < FRAME_HEADER_BYTES + 2 + nameBytes) return null;
  const name = head.subarray(FRAME_HEADER_BYTES + 2, FRAME_HEADER_BYTES + 2 + nameBytes).toString('utf8');
  return BROKER_NAME.exec(name)?.[1] ?? CLIENT_SOURCE;
}

/** Every proxy of a run and the fault of every link. */
export class FaultNetwork {
  private readonly faults = new Map<string, LinkFault>();
  private readonly proxies: Proxy[] = [];

  /** A proxy in front of a broker's port; returns the port it listens on (the broker's advertised one). */
  async brokerProxy(nodeId: string, brokerPort: number, listenPort = 0): Promise<number> {
    const proxy = new Proxy(nodeId, brokerPort, null, (source, destination) => this.fault(source, destination));
    this.proxies.push(proxy);
    return proxy.listen(listenPort);
  }

  /** A proxy for one broker's link to one etcd member; returns its port (one of that broker's etcd endpoints). */
  async etcdProxy(nodeId: string, member: string, memberPort: number): Promise<number> {
    const proxy = new Proxy(member, memberPort, nodeId, (source, destination) => this.fault(source, destination));
    this.proxies.push(proxy);
    return proxy.listen(0);
  }

  fault(source: string, destination: string): LinkFault {
    if (source === CLIENT_SOURCE) return OK;
    return this.faults.get(`${source}>${destination}`) ?? OK;
  }

  /** Sets the fault of the link source → destination (ok heals it). */
  set(source: string, destination: string, fault: LinkFault): void {
    const key = `${source}>${destination}`;
    if (fault.kind === 'ok') this.faults.delete(key);
    else this.faults.set(key, fault);
    for (const proxy of this.proxies) if (proxy.destination === destination) proxy.changed(source);
  }

  /** Every link back to ok. */
  healAll(): void {
    this.faults.clear();
    for (const proxy of this.proxies) proxy.changed(null);
  }

  /** A broker or etcd member stopped (true) or listens again (false): its proxies refuse or accept. */
  async destinationDown(destination: string, down: boolean): Promise<void> {
    for (const proxy of this.proxies) {
      if (proxy.destination !== destination) continue;
      if (down) await proxy.down();
      else await proxy.up();
    }
  }

  /** Links currently faulted, as "a>b:kind". */
  describe(): string[] {
    return [...this.faults].map(([link, fault]) => `${link}:${fault.kind}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.proxies.map((proxy) => proxy.close()));
  }
}
