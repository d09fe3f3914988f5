/**
 * What `Subscription.close()` tells the application: whether the broker answered the UNSUBSCRIBE,
 * which it does only after every ack and nack sent before it on that connection has settled
 * (durably on an `always` topic). The chaos consumer (test/chaos/consumer.ts) takes that answer
 * as proof that its acks are durable, so a close that was never answered must say so — also in
 * the moment between the socket failing and the client handling the loss, when no 'reconnecting'
 * event has been emitted yet (`clock` short seed 8 counted acks lost there as confirmed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { channel } from 'node:diagnostics_channel';
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { connect, type FerryClient, type Message, type Subscription } from '../../src/client/index.js';
import { startBroker } from '../transport/harness.js';

/** Reconnects quickly, so the tests see the redelivery that follows a lost ack. */
const FAST_RECONNECT = { delayMsMin: 10, delayMsMax: 50, attemptsMax: 200 };
/** Each test takes well under a second; a missed event must fail it, not hang the suite. */
const TEST_OPTIONS = { timeout: 15_000 };

/** A TCP proxy to the broker that can reset its client-facing sockets (the client reads ECONNRESET). */
class ResettingProxy {
  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly pairs: Set<{ inbound: Socket; outbound: Socket }>,
  ) {}

  static async start(targetPort: number): Promise<ResettingProxy> {
    const pairs = new Set<{ inbound: Socket; outbound: Socket }>();
    const server = createServer((inbound) => {
      const outbound = netConnect({ port: targetPort, host: '127.0.0.1' });
      const pair = { inbound, outbound };
      pairs.add(pair);
      for (const socket of [inbound, outbound]) {
        socket.on('error', () => undefined);
        socket.on('close', () => {
          pairs.delete(pair);
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new ResettingProxy(server, (server.address() as { port: number }).port, pairs);
  }

  /** RST to every client, and the broker's side closed: like a broker killed mid-session. */
  reset(): void {
    for (const { inbound, outbound } of this.pairs) {
      inbound.resetAndDestroy();
      outbound.destroy();
    }
  }

  async close(): Promise<void> {
    this.reset();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Client sockets to `port` opened from now on, as Node creates them (net's diagnostics channel). */
function watchClientSockets(port: number): { sockets: Socket[]; stop(): void } {
  const sockets: Socket[] = [];
  const net = channel('net.client.socket');
  const onSocket = (message: unknown): void => {
    const socket = (message as { socket: Socket }).socket;
    socket.once('connect', () => {
      if (socket.remotePort === port) sockets.push(socket);
    });
  };
  net.subscribe(onSocket);
  return { sockets, stop: () => net.unsubscribe(onSocket) };
}

async function next(sub: Subscription, timeoutMs = 5_000): Promise<Message> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const result = await Promise.race([sub.next(), timeout]);
    assert.equal(result.done, false, 'the subscription ended');
    return result.value as Message;
  } finally {
    clearTimeout(timer);
  }
}

/** A broker behind a resetting proxy, and a client through it whose first socket is known. */
async function withProxiedClient(run: (client: FerryClient, proxy: ResettingProxy, socket: Socket) => Promise<void>): Promise<void> {
  const running = await startBroker();
  const proxy = await ResettingProxy.start(running.port);
  try {
    const watch = watchClientSockets(proxy.port);
    let client: FerryClient;
    try {
      client = await connect({ port: proxy.port, reconnect: FAST_RECONNECT, name: 'close-test' });
    } finally {
      watch.stop();
    }
    try {
      assert.equal(watch.sockets.length, 1);
      await client.createTopic('t', { durability: 'always' });
      await run(client, proxy, watch.sockets[0]!);
    } finally {
      await client.close();
    }
  } finally {
    await proxy.close();
    await running.close();
  }
}

test('subscription - close() resolves true once the broker answered, and the acks sent before it are settled', TEST_OPTIONS, async () => {
  await withProxiedClient(async (client) => {
    await client.publishBatch('t', [{ value: 'a' }, { value: 'b' }]);
    const sub = await client.subscribe('t', { group: 'g', prefetch: 2 });
    const first = await next(sub);
    const second = await next(sub);
    await first.ack();
    await second.nack({ delayMs: 0 });
    assert.equal(await sub.close(), true);
    // The ack is durable and the nack applied: only `b` comes again.
    const again = await client.subscribe('t', { group: 'g', prefetch: 2 });
    const redelivered = await next(again);
    assert.deepEqual([redelivered.offset, redelivered.deliveryCount], [second.offset, 2]);
    assert.equal(await again.close(), true);
    // Closing twice gives the first answer again.
    assert.equal(await again.close(), true);
  });
});

test('subscription - close() resolves false when the socket has already failed, before the client emits reconnecting', TEST_OPTIONS, async () => {
  await withProxiedClient(async (client, proxy, socket) => {
    let reconnecting = 0;
    client.on('reconnecting', () => reconnecting++);
    const reconnected = new Promise<void>((resolve) => client.once('reconnected', () => resolve()));
    await client.publish('t', 'a');
    const sub = await client.subscribe('t', { group: 'g', prefetch: 1 });
    const message = await next(sub);

    // Act where the chaos consumer acted: the socket reported its error (the client's connection
    // is no longer open) but its 'close' — and so the client's loss handling — is still to come.
    const outcome = new Promise<{ closed: boolean; reconnectingThen: number }>((resolve, reject) => {
      socket.once('error', () =>
        process.nextTick(() => {
          void message.ack();
          sub.close().then((closed) => resolve({ closed, reconnectingThen: reconnecting }), reject);
        }),
      );
    });
    proxy.reset();
    const { closed, reconnectingThen } = await outcome;
    // What the consumer saw: the close settled while no loss had been reported yet ...
    assert.equal(reconnectingThen, 0);
    // ... so only the close's own answer can tell that the UNSUBSCRIBE (and the ack) never arrived.
    assert.equal(closed, false, 'an UNSUBSCRIBE that never reached the broker confirms nothing');

    // The ack was lost with the connection: the message comes again after the reconnect.
    await reconnected;
    const again = await client.subscribe('t', { group: 'g', prefetch: 1 });
    const redelivered = await next(again);
    assert.deepEqual([redelivered.offset, redelivered.deliveryCount], [message.offset, 2]);
    await redelivered.ack();
    assert.equal(await again.close(), true);
  });
});

test('subscription - close() resolves false while the connection is lost and not yet replaced', TEST_OPTIONS, async () => {
  const running = await startBroker();
  const proxy = await ResettingProxy.start(running.port);
  // A reconnect that waits long enough for the close to happen while detached; close() wakes it.
  const client = await connect({ port: proxy.port, reconnect: { delayMsMin: 10_000, delayMsMax: 10_000, attemptsMax: 1 } });
  try {
    await client.createTopic('t', { durability: 'always' });
    await client.publish('t', 'a');
    const sub = await client.subscribe('t', { group: 'g', prefetch: 1 });
    await next(sub);
    const lost = new Promise<void>((resolve) => client.once('reconnecting', () => resolve()));
    proxy.reset();
    await lost;
    assert.equal(await sub.close(), false);
  } finally {
    await client.close();
    await proxy.close();
    await running.close();
  }
});
