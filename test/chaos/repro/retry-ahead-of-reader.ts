/**
 * Reproduction (found by the chaos suite: power-loss seed 102, checker "redelivered after an ack
 * nothing could have swallowed"): after a restart, a journaled retry that lies ahead of the group's
 * reader is delivered and acked; while that ack is being made durable, the reader reaches the same
 * offset — neither settled (state is applied once durable), nor in flight, nor waiting — and
 * delivers it again. Over TCP the client grants credit as it sends an ack, so the reader runs ahead
 * of the journal's fsync; a slow disk (100 ms per datasync) makes the window wide.
 *
 * Run: node --import tsx test/chaos/repro/retry-ahead-of-reader.ts  → prints BUG or ok.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../../src/index.js';
import { connect } from '../../../src/client/index.js';
import { NodeFileSystem, type FileHandle, type OpenMode } from '../../../src/platform/fs.js';

/** Every datasync takes 100 ms: a slow disk widens the window in which an ack is not yet durable. */
class SlowSyncFs extends NodeFileSystem {
  override async open(path: string, mode: OpenMode): Promise<FileHandle> {
    const handle = await super.open(path, mode);
    const datasync = handle.datasync.bind(handle);
    (handle as { datasync: () => Promise<void> }).datasync = async () => {
      await new Promise((resolve) => setTimeout(resolve, 100));
      await datasync();
    };
    return handle;
  }
}

const keepAlive = setInterval(() => {}, 1000);
const dir = mkdtempSync(join(tmpdir(), 'repro-retry-'));
const first = await Broker.open({ dir, fs: new SlowSyncFs() });
await first.createTopic('t', { partitions: 1 });
await first.publish('t', Array.from({ length: 10 }, (_, i) => ({ value: Buffer.from(`m${i}`) })));
const stream1 = await first.subscribe('t', { group: 'g', prefetch: 10 });
let seen = 0;
for await (const message of stream1) {
  if (message.offset === 5) await message.nack({ delayMs: 3_000 }); // a journaled retry, due in 3 s
  if (++seen === 10) break;
}
await first.close(); // offsets 0..9 delivered once, none acked, offset 5 has a retry due in 3 s

const second = await Broker.open({ dir, fs: new SlowSyncFs() });
const listener = await second.listen({ port: 0 });
const client = await connect({ port: listener.port });
const subscription = await client.subscribe('t', { group: 'g', prefetch: 1 });
const deliveries: string[] = [];
const started = performance.now();
// Fixed, offset 5 comes once and no 11th delivery follows: end the wait after 6 s.
const stop = setTimeout(() => void subscription.close(), 6_000);
for await (const message of subscription) {
  deliveries.push(`${message.offset}(dc${message.deliveryCount})`);
  // Hold the first message until offset 5's retry is due: the reader is then still before 5.
  if (deliveries.length === 1) await new Promise((resolve) => setTimeout(resolve, 3_500));
  await message.ack(); // queued and sent; durable 100+ ms later
  if (deliveries.length >= 11 || performance.now() - started > 6_000) break;
}
clearTimeout(stop);
console.log(deliveries.join(' '));
const fives = deliveries.filter((d) => d.startsWith('5(')).length;
console.log(fives > 1 ? `BUG: offset 5 delivered ${fives} times although acked the first time` : 'ok: offset 5 delivered once');
await client.close();
await second.close();
rmSync(dir, { recursive: true, force: true });
clearInterval(keepAlive);
