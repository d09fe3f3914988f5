/**
 * Reproduction (found by the chaos suite: interval scenario): on an `interval` topic a power loss
 * can keep the group's journal (acks, retries) while the partition loses its unsynced tail — two
 * files, synced independently. The power loss is emulated by truncating the partition's segment
 * back to a synced length after a clean close.
 *
 *   loss: the group state still says offsets 5..9 are settled; the messages published at those
 *         (reused) offsets after the restart are confirmed and never delivered.
 *   hang: a journaled retry points past the new end of the log; when it comes due the group
 *         re-reads it forever in microtasks (fetchDue → readOffsets → pump) and the event loop
 *         stops: no timer, no socket, the broker must be killed.
 *
 * Run: node --import tsx test/chaos/repro/interval-group-ahead-of-log.ts loss|hang
 * (hang: the dots — a 100 ms timer — stop; wrap in `timeout 20`).
 *
 * Fixed: a group opening over a partition that ends before its state cuts the state back to the
 * log's end and persists it (src/broker/delivery/group-store.ts `cutToLogs`); both variants print `ok`.
 * The deterministic regression tests are in test/broker/group-recovery.test.ts (simulated disk);
 * this script stays as the same check on the real filesystem.
 */
import { mkdtempSync, readdirSync, rmSync, statSync, truncateSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../../src/broker/broker.js';

const mode = process.argv[2] ?? 'loss';
const keepAlive = setInterval(() => {}, 1000);
const dir = mkdtempSync(join(tmpdir(), 'repro-interval-'));
const partitionDir = join(dir, 'topics', 't', 'partitions', '0');
const segment = () => join(partitionDir, readdirSync(partitionDir).find((name) => name.endsWith('.log'))!);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const first = await Broker.open({ dir });
await first.createTopic('t', { partitions: 1, durability: 'interval', syncIntervalMs: 50 });
for (let i = 0; i < 5; i++) await first.publish('t', `a${i}`);
await sleep(200); // a0..a4 synced
const syncedBytes = statSync(segment()).size;
for (let i = 0; i < 5; i++) await first.publish('t', `b${i}`);
const stream = await first.subscribe('t', { group: 'g', from: 'earliest', prefetch: 100 });
let seen = 0;
for await (const message of stream) {
  if (mode === 'hang' && message.value.toString() === 'b3') await message.nack({ delayMs: 500 });
  else await message.ack();
  if (++seen === 10) break;
}
await sleep(200); // the group journal (acks, the retry) is synced
await first.close();
truncateSync(segment(), syncedBytes); // power loss: b0..b4 never reached the disk
unlinkSync(join(partitionDir, 'log.checkpoint')); // its claim covers the lost bytes (recovery would ignore it anyway)

const second = await Broker.open({ dir });
const heartbeat = setInterval(() => process.stdout.write('.'), 100);
if (mode === 'hang') {
  // A subscriber is there when the retry for offset 8 comes due, with the log ending at 5.
  const early = await second.subscribe('t', { group: 'g', prefetch: 100 });
  await sleep(1_000);
  console.log('\nstill responsive 1 s after the retry came due? (dots above = event loop alive)');
  await early.close();
}
for (let i = 0; i < 5; i++) await second.publish('t', `c${i}`); // offsets 5..9 again
const received: string[] = [];
const stream2 = await second.subscribe('t', { group: 'g', prefetch: 100 });
const timer = setTimeout(() => void stream2.close(), 2_000);
for await (const message of stream2) {
  received.push(message.value.toString());
  await message.ack();
}
clearTimeout(timer);
clearInterval(heartbeat);
console.log(`\nafter the power loss the group received: [${received.join(' ')}]`);
console.log(received.length < 5 ? `BUG: ${5 - received.length} of c0..c4 (published and confirmed after the restart) never delivered` : 'ok');
await second.close();
rmSync(dir, { recursive: true, force: true });
clearInterval(keepAlive);
