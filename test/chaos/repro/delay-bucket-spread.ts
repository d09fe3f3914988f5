/**
 * Reproduction (found by the chaos suite: clock seed 11, "broker-process exited before ready"): a
 * broker holding a few hundred thousand delayed messages due soon can neither close nor start
 * again. The delay store (then src/broker/delay-store.ts) spread unbounded arrays as call arguments, which
 * overflows the stack (RangeError: Maximum call stack size exceeded): its checkpoint computes
 * `Math.min(indexedEnd, ...bucketMinOffsets, ...this.due.map(...))` (run after moves and at
 * close), and loading a due bucket does `loaded.push(...entries)` (at open).
 * In the chaos run the wall clock had stepped forward, making every bucket due at once; a broker
 * restarted after a long downtime, or simply busy with delayed messages, gets there as well.
 *
 * Run: node --import tsx test/chaos/repro/delay-bucket-spread.ts  → prints BUG or ok.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../../src/broker/broker.js';

/** Comfortably more than V8 accepts as spread arguments (about 120k on a default stack). */
const DELAYED_MESSAGES = 300_000;
const BATCH = 10_000;

const dir = mkdtempSync(join(tmpdir(), 'repro-delay-spread-'));
const first = await Broker.open({ dir });
await first.createTopic('t', { partitions: 1, durability: 'interval' });
const value = Buffer.from('x');
for (let sent = 0; sent < DELAYED_MESSAGES; sent += BATCH) {
  // All due in 20 s: the same one-minute bucket, inside the window loaded at open.
  await first.publish('t', Array.from({ length: BATCH }, () => ({ value, delayMs: 20_000 })));
}
try {
  await first.close();
  console.log('ok: the broker closed with', DELAYED_MESSAGES, 'delayed messages due soon');
} catch (error) {
  console.log(`BUG: the broker cannot close: ${(error as Error).name}: ${(error as Error).message}`);
}
try {
  const second = await Broker.open({ dir });
  console.log('ok: the broker reopened');
  await second.close().catch(() => undefined);
} catch (error) {
  console.log(`BUG: the broker cannot reopen: ${(error as Error).name}: ${(error as Error).message}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
