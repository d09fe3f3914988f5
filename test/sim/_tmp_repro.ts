import { LogModel, type CaseConfig } from './log-model.js';
const config = JSON.parse(process.argv[2]!) as CaseConfig;
const model = await LogModel.start(config);
const m = model as any;
const dump = async (label: string) => {
  const names = (await m.fs.readdir('/data/log')).sort();
  console.log(label, JSON.stringify(m.boot.log.stats()), names.map((n: string) => `${n}:${m.fs.fileBytes('/data/log/' + n).length}/${m.fs.fileBytes('/data/log/' + n, 'durable')?.length}`).join(' '));
};
await dump('start');
for (const op of config.ops) {
  try { await model.apply(op); } catch (e) { console.log('FAIL', (e as Error).message); break; }
  await dump(op.kind);
  if (op.kind === 'crash') console.log('recovery', JSON.stringify(m.boot.log.recovery));
}
try { await model.finish(); console.log('finished ok'); } catch (e) { console.log('FAIL finish', (e as Error).message); await dump('at failure'); }
