/**
 * A plain copy of files at a fixed rate, for bench/catch-up.ts's floor: what copying as many bytes
 * at the same MiB/s on the same disk costs the leader's publish latency with no broker involved
 * (read, write, no fsync: the kernel writes the copy back as it would any file).
 *
 *   node --import tsx bench/paced-copy.ts <from-dir> <to-dir> <bytes-per-sec>
 *
 * Copies every regular file under <from-dir> (recursively) into <to-dir>, in 4 MiB steps, pacing
 * so that after t seconds at most rate × t bytes are written. Prints the bytes and seconds.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const STEP_BYTES = 4 * 1024 * 1024;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? files(join(dir, entry.name)) : entry.isFile() ? [join(dir, entry.name)] : []));
}

async function main(): Promise<void> {
  const [from, to, rateText] = process.argv.slice(2);
  const rate = Number(rateText);
  if (from === undefined || to === undefined || !(rate > 0)) throw new Error('usage: paced-copy <from-dir> <to-dir> <bytes-per-sec>');
  mkdirSync(to, { recursive: true });
  const started = performance.now();
  const buffer = Buffer.allocUnsafe(STEP_BYTES);
  let copied = 0;
  for (const [index, file] of files(from).entries()) {
    if (statSync(file).size === 0) continue;
    const input = openSync(file, 'r');
    const output = openSync(join(to, `${index}.copy`), 'w');
    for (let got = readSync(input, buffer, 0, STEP_BYTES, null); got > 0; got = readSync(input, buffer, 0, STEP_BYTES, null)) {
      writeSync(output, buffer, 0, got);
      copied += got;
      const aheadMs = (copied / rate) * 1000 - (performance.now() - started);
      if (aheadMs > 0) await new Promise((resolve) => setTimeout(resolve, aheadMs));
    }
    closeSync(input);
    closeSync(output);
  }
  process.stdout.write(JSON.stringify({ bytes: copied, seconds: (performance.now() - started) / 1000 }) + '\n');
}

await main();
