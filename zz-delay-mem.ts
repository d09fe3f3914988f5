import { Broker } from './src/broker/broker.js';
import { mkdtempSync, rmSync } from 'node:fs';
const n = Number(process.argv[2]);
const dir = mkdtempSync('/tmp/ferry-delaymem-');
const broker = await Broker.open({ dir });
await broker.createTopic('t');
const payload = Buffer.alloc(1024, 1);
const mb = (b: number) => Math.round(b / 1048576);
const show = (label: string) => { (globalThis as any).gc(); const m = process.memoryUsage(); console.log(label, 'rss', mb(m.rss), 'heapUsed', mb(m.heapUsed), 'external', mb(m.external), 'arrayBuffers', mb(m.arrayBuffers)); };
show('start');
for (let i = 0; i < n; i += 1000) {
  const batch = Array.from({ length: 1000 }, () => ({ value: Buffer.from(payload), delayMs: 60_000 + Math.floor(Math.random() * 3_540_000) }));
  await broker.publish('t', batch);
}
show(`after ${n}`);
await new Promise((r) => setTimeout(r, 2000));
show('after 2 s');
await broker.close();
rmSync(dir, { recursive: true, force: true });
