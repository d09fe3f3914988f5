/**
 * The `ferry` launcher's Node flags: `npm start` passes the same ones as the bin's
 * `#!/usr/bin/env -S node …` line (so `npm start`, `npx ferry serve` and the benchmark run the
 * same broker), which are the broker's tuning flags (src/cli/node-flags.ts), and this Node accepts
 * every one of them; a broker started without them says so once, with how to set them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { shebangNodeFlags } from '../../bench/checkout.js';
import { BROKER_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { tempDir } from '../helpers.js';
import { BIN, serve } from './run-ferry.js';

const PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));

test('launcher - npm start runs bin/ferry.js with the Node flags of its #! line', () => {
  const { scripts } = JSON.parse(readFileSync(PACKAGE, 'utf8')) as { scripts: Record<string, string> };
  const start = scripts['start']!.split(' ');
  assert.equal(start[0], 'node');
  const binAt = start.indexOf('bin/ferry.js');
  assert.ok(binAt > 0, scripts['start']);
  assert.deepEqual(start.slice(1, binAt), shebangNodeFlags());
  assert.equal(start[binAt + 1], 'serve');
});

test('launcher - this Node accepts every flag of the #! line', () => {
  const flags = shebangNodeFlags();
  assert.ok(flags.length > 0);
  const result = spawnSync(process.execPath, [...flags, '-e', '0'], { encoding: 'utf8' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stderr, '', 'no warning about an unknown flag');
});

test('launcher - the #! line passes exactly the broker\'s tuning flags (npm start, the image and the unit follow it)', () => {
  assert.deepEqual(shebangNodeFlags(), [...BROKER_NODE_FLAGS]);
});

test('launcher - node bin/ferry.js serve without the flags says once what it misses and how to set them; the #! line and explicit flags do not', async () => {
  await using dir = await tempDir();
  const launches: Array<{ launch: string[]; warns: boolean }> = [
    { launch: [process.execPath, BIN], warns: true },
    { launch: [BIN], warns: false },
    { launch: [process.execPath, ...BROKER_NODE_FLAGS, BIN], warns: false },
  ];
  for (const { launch, warns } of launches) {
    const broker = serve(['--dir', dir.path, '--port', '0', '--http-port', '0'], launch);
    try {
      assert.ok(await broker.waitFor('broker.listening'), JSON.stringify(broker.events));
      const warnings = broker.events.filter((line) => line['event'] === 'broker.node_flags_missing');
      const what = launch.map((part) => (part === process.execPath ? 'node' : part === BIN ? 'bin/ferry.js' : part)).join(' ');
      assert.equal(warnings.length, warns ? 1 : 0, what);
      if (warns) {
        assert.deepEqual(warnings[0]!['missing'], [...BROKER_NODE_FLAGS]);
        assert.ok(String(warnings[0]!['hint']).includes(`node ${BROKER_NODE_FLAGS.join(' ')} bin/ferry.js serve`), what);
      }
    } finally {
      broker.child.kill('SIGTERM');
      await once(broker.child, 'exit');
    }
  }
});
