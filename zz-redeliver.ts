import { Broker } from '/work/main/src/broker/broker.js';
import { mkdtempSync, rmSync } from 'node:fs';
const n = Number(process.argv[2]);
const dir = mkdtempSync('/tmp/ferry-redeliver-');
const broker = await Broker.open({ dir });
await broker.createTopic('t');
const payload = Buffer.alloc(1024, 1);
for (let i = 0; i < n; i += 1000) await broker.publish('t', Array.from({ length: Math.min(1000, n - i) }, () => ({ value: payload })));
const t0 = performance.now();
const stream = await broker.subscribe('t', { group: 'g', prefetch: 256 });
let acked = 0;
let marks = [];
for await (const m of stream) {
  if (m.deliveryCount === 1) { void m.nack({ delayMs: 0 }); continue; }
  void m.ack();
  if (++acked % 10000 === 0) marks.push(Math.round(performance.now() - t0));
  if (acked === n) break;
}
console.log(n, 'messages', Math.round(performance.now() - t0), 'ms; per 10k:', marks.join(','));
await broker.close();
rmSync(dir, { recursive: true, force: true });
