/**
 * The UDP receiver thread (started by receiver.ts): it owns the socket and does nothing but read
 * it, so the kernel's receive buffer is drained while the broker's thread is busy (a GC, a burst of
 * fsync completions, a large store). Each datagram is checked for length, reserved in the handoff
 * budget and packed into the current batch (handoff.ts); a batch is posted when full or
 * UDP_BATCH_WAIT_MS after its first datagram. Everything else (parsing, the per-source rate,
 * `udp.topics`, the limits) is the broker thread's, which has the clock and the configuration.
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { BatchPacker, entryBytes, HandoffBudget, UDP_BATCH_WAIT_MS, type ReceiverCommand, type ReceiverEvent, type ReceiverSettings } from './handoff.js';
import { DatagramCounts } from './outcomes.js';

/** Asks for nice value `nice` for this thread alone (Linux keeps one per thread), never lowering its priority; the value it runs at. */
function raisePriority(nice: number): number {
  try {
    if (getPriority(0) > nice) setPriority(0, nice);
  } catch {
    // Not permitted: the thread runs at the process's priority.
  }
  return getPriority(0);
}

function errorCode(error: Error): string | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  return typeof code === 'string' ? code : undefined;
}

function run(settings: ReceiverSettings, port: NonNullable<typeof parentPort>): void {
  const counts = new DatagramCounts(settings.countsBuffer);
  const budget = new HandoffBudget(settings.handoffBytesMax, settings.handoffBuffer);
  const packer = new BatchPacker();
  const post = (event: ReceiverEvent, transfer: ArrayBuffer[] = []): void => port.postMessage(event, transfer);
  let timer: NodeJS.Timeout | null = null;

  const flush = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const batch = packer.take();
    if (batch !== null) post({ kind: 'batch', ...batch }, [batch.bytes]);
  };

  const receive = (datagram: Buffer, source: RemoteInfo): void => {
    if (datagram.length > settings.datagramBytesMax) return counts.add('oversized');
    if (!budget.reserve(entryBytes(datagram))) return counts.add('overloaded');
    if (!packer.fits(datagram.length)) flush();
    packer.add(datagram, source.address);
    timer ??= setTimeout(flush, UDP_BATCH_WAIT_MS);
  };

  const socket = createSocket({ type: isIPv6(settings.host) ? 'udp6' : 'udp4', recvBufferSize: settings.receiveBufferBytes });
  const bindFailed = (error: Error): void => {
    post({ kind: 'bind_failed', message: error.message, code: errorCode(error) });
    port.close();
  };
  socket.once('error', bindFailed);
  socket.on('message', receive);
  socket.bind(settings.port, settings.host, () => {
    socket.off('error', bindFailed);
    // A socket error after the bind (ICMP noise) must not stop the receiver: reported, never thrown.
    socket.on('error', (error) => post({ kind: 'socket_error', message: error.message, code: errorCode(error) }));
    const address = socket.address();
    post({ kind: 'listening', host: address.address, port: address.port, receiveBufferBytes: socket.getRecvBufferSize(), nice: raisePriority(settings.nice) });
  });

  port.on('message', (command: ReceiverCommand) => {
    if (command.kind !== 'close') return;
    socket.off('message', receive);
    socket.close(() => {
      flush();
      port.close();
    });
  });
}

run(workerData as ReceiverSettings, parentPort!);
