import { LogModel, type CaseConfig } from './log-model.js';
import { settle } from './sim-clock.js';
const config = JSON.parse(process.argv[2]!) as CaseConfig;
const model = await LogModel.start(config);
const m = model as any;
for (const op of config.ops) await model.apply(op);
await m.settlePending();
const segs = (log: any) => JSON.stringify(log.segments.map((s: any) => [s.baseOffset, s.sizeBytes, s.nextOffset, s.index.count, s.index.count ? s.index.positionAt(s.index.count - 1) : -1]));
console.log('before crash', segs(m.boot.log));
const old = m.boot; old.alive = false;
const report = m.fs.crash({ tearLastWrite: true, garbage: true, random: m.random });
console.log('crash', JSON.stringify(report));
for (const n of (await m.fs.readdir('/data/log')).sort()) console.log(' ', n, m.fs.fileBytes('/data/log/' + n).length);
await m.openBoot(m.newClock(old.clock.nowMs()));
const log = m.boot.log;
console.log('recovered', JSON.stringify(log.recovery), segs(log));
for (const o of [4, 5]) { try { console.log('read', o, (await log.read(o)).map((r: any) => r.offset)); } catch (e) { console.log('read', o, (e as Error).message); } }
m.append([{ keyBytes: 3, headersCount: 1, valueBytes: 10, timestampDeltaMs: 0 }]);
await settle();
console.log('after append', segs(log));
for (const o of [4, 5, 6]) { try { console.log('read', o, (await log.read(o)).map((r: any) => r.offset)); } catch (e) { console.log('read', o, (e as Error).message); } }
