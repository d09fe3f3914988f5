/**
 * Test harness for the TCP server and the client: a real broker in a temp dir (or the in-memory
 * fake), a raw protocol socket for tests that speak frames by hand, and a cuttable TCP proxy.
 */
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { Broker } from '../../src/index.js';
import type { BrokerApi } from '../../src/broker/types.js';
import { silentLogger, type Logger } from '../../src/platform/logger.js';
import { FerryError } from '../../src/errors.js';
import { FrameDecoder } from '../../src/protocol/decoder.js';
import { FRAME_TYPES, type Frame } from '../../src/protocol/frame.js';
import { FrameWriter } from '../../src/protocol/writer.js';
import { PayloadReader } from '../../src/protocol/reader.js';
import { decodeError, encodeHello } from '../../src/protocol/codec-session.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { TcpServer, type TcpServerOptions } from '../../src/transport/tcp/server.js';
import { eventually, tempDir, type TempDir } from '../helpers.js';
import { FakeBroker } from './fake-broker.js';

export interface RunningServer {
  broker: BrokerApi;
  server: TcpServer | null;
  port: number;
  close(): Promise<void>;
}

/** The real broker in a fresh temp dir, listening through broker.listen({ port: 0 }). */
export async function startBroker(dir?: TempDir, port = 0): Promise<RunningServer & { dir: TempDir; realBroker: Broker }> {
  const directory = dir ?? (await tempDir('ferry-net-'));
  const broker = await Broker.open({ dir: directory.path });
  const listener = await broker.listen({ port, host: '127.0.0.1' });
  return {
    broker,
    realBroker: broker,
    server: null,
    port: listener.port,
    dir: directory,
    close: async () => {
      await broker.close();
      if (dir === undefined) await directory.remove();
    },
  };
}

/** The real broker behind a TcpServer built with explicit options (heartbeats, limits). */
export async function startBrokerWith(options: TcpServerOptions): Promise<RunningServer & { dir: TempDir }> {
  const directory = await tempDir('ferry-net-');
  const broker = await Broker.open({ dir: directory.path });
  const server = new TcpServer(broker, { logger: silentLogger, ...options });
  const { port } = await server.listen(0, '127.0.0.1');
  return {
    broker,
    server,
    port,
    dir: directory,
    close: async () => {
      await server.close();
      await broker.close();
      await directory.remove();
    },
  };
}

/** The in-memory fake broker behind a TcpServer. */
export async function startFake(options: TcpServerOptions = {}, logger: Logger = silentLogger): Promise<RunningServer & { fake: FakeBroker; server: TcpServer }> {
  const fake = new FakeBroker();
  const server = new TcpServer(fake, { logger, ...options });
  const { port } = await server.listen(0, '127.0.0.1');
  return { broker: fake, fake, server, port, close: () => server.close() };
}

/** A socket that speaks frames by hand and records what it receives. */
export class RawPeer {
  readonly frames: Frame[] = [];
  decodeError: FerryError | null = null;
  closed = false;
  readonly writer = new FrameWriter();
  private readonly reader = new PayloadReader();

  private constructor(readonly socket: Socket) {
    const decoder = new FrameDecoder({
      onFrames: (frames) => this.frames.push(...frames.map((f) => ({ ...f, payload: Buffer.from(f.payload) }))),
      onError: (error) => (this.decodeError = error),
    });
    socket.on('data', (chunk: Buffer) => decoder.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closed = true));
  }

  /** `localAddress` (another loopback address, 127.0.0.2...) makes the peer look like another host. */
  static connect(port: number, localAddress?: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = netConnect({ port, host: '127.0.0.1', ...(localAddress === undefined ? {} : { localAddress }) });
      socket.once('connect', () => resolve(new RawPeer(socket)));
      socket.once('error', reject);
    });
  }

  /** Connects and completes HELLO. */
  static async ready(port: number): Promise<RawPeer> {
    const peer = await RawPeer.connect(port);
    encodeHello(peer.writer, 1, { clientName: 'raw', versions: [PROTOCOL_VERSION] });
    peer.flush();
    await peer.reply(1, FRAME_TYPES.HELLO_OK);
    return peer;
  }

  flush(): void {
    const out = this.writer.take();
    if (out !== null) this.socket.write(out);
  }

  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Waits for a frame answering `requestId` (of `type` if given). */
  async reply(requestId: number, type?: number): Promise<Frame> {
    return eventually(() => {
      const frame = this.frames.find((f) => f.requestId === requestId && (type === undefined || f.type === type));
      if (frame === undefined) throw new Error(`no reply to ${requestId} yet (closed: ${this.closed})`);
      return frame;
    });
  }

  /** The error codes of every ERROR frame received. */
  errorCodes(): string[] {
    return this.frames.filter((f) => f.type === FRAME_TYPES.ERROR).map((f) => decodeError(this.reader.reset(f.payload)).code);
  }

  async waitClosed(timeoutMs = 5000): Promise<void> {
    await eventually(() => this.closed || (() => { throw new Error('still open'); })(), { timeoutMs });
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A TCP proxy whose connections can be cut, to simulate a network failure between client and server. */
export class CuttableProxy {
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly sockets: Set<Socket>,
    private readonly replies: Set<{ from: Socket; to: Socket }>,
  ) {}

  static async start(targetPort: number): Promise<CuttableProxy> {
    const sockets = new Set<Socket>();
    const replies = new Set<{ from: Socket; to: Socket }>();
    const server = createServer((inbound) => {
      const outbound = netConnect({ port: targetPort, host: '127.0.0.1' });
      const reply = { from: outbound, to: inbound };
      replies.add(reply);
      for (const s of [inbound, outbound]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          sockets.delete(s);
          replies.delete(reply);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    return new CuttableProxy(server, typeof address === 'object' && address !== null ? address.port : 0, sockets, replies);
  }

  /**
   * Stops passing the server's bytes to the clients of the current connections (requests still
   * reach the server): what the server answers from now on is lost when the connection is cut.
   */
  holdReplies(): void {
    for (const { from, to } of this.replies) {
      from.unpipe(to);
      from.pause();
    }
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  /** Destroys every proxied connection at once (both sides see a reset). */
  cut(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
