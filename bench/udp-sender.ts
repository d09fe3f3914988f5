/**
 * The UDP benchmark's producer, a child process of its own (so that its sending does not share an
 * event loop with the broker's or the harness's): sends `ratePerSec` datagrams a second for
 * `durationMs` with Ferry's built client (UdpPublisher.publishUdp, the binary form), open loop
 * (pacer.ts), then reports what it sent over IPC and exits.
 */
import { pathToFileURL } from 'node:url';
import { sendPaced } from './pacer.js';

export interface SenderJob {
  clientModule: string;
  host: string;
  port: number;
  topic: string;
  ratePerSec: number;
  durationMs: number;
  valueBytes: number;
}

export interface SenderReport {
  /** Datagrams handed to the socket. */
  sent: number;
  /** Dropped in the client: its send queue was full. */
  dropped: number;
  /** Send errors the socket reported (nothing listening). */
  errors: number;
  /** From the first send to the last: the achieved rate is sent / elapsed. */
  elapsedMs: number;
  sendLagMaxMs: number;
}

interface Publisher {
  sent: number;
  dropped: number;
  errors: number;
  publishUdp(topic: string, value: Buffer): boolean;
  close(): Promise<void>;
}

async function run(job: SenderJob): Promise<SenderReport> {
  const client = (await import(pathToFileURL(job.clientModule).href)) as { UdpPublisher: new (options: { host: string; port: number }) => Publisher };
  const publisher = new client.UdpPublisher({ host: job.host, port: job.port });
  const value = Buffer.alloc(job.valueBytes, 'ferry-bench-udp;');
  const count = Math.round((job.ratePerSec * job.durationMs) / 1000);
  const startedMs = performance.now();
  const { sendLagMaxMs } = await sendPaced(count, job.ratePerSec, () => {
    publisher.publishUdp(job.topic, value);
  });
  const elapsedMs = performance.now() - startedMs;
  await publisher.close();
  return { sent: publisher.sent, dropped: publisher.dropped, errors: publisher.errors, elapsedMs, sendLagMaxMs };
}

process.once('message', (job: SenderJob) => {
  run(job).then(
    (report) => process.send!(report, () => process.disconnect()),
    (error: unknown) => {
      process.stderr.write(`udp sender: ${error instanceof Error ? error.stack : String(error)}\n`);
      process.exit(1);
    },
  );
});
