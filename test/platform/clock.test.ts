import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { SystemClock } from '../../src/platform/clock.js';

test('system clock - on Linux, bootTime is one boot for every process, its clock running on between them', { skip: process.platform !== 'linux' && 'Linux only' }, () => {
  const clock = new SystemClock();
  const before = clock.bootTime();
  assert.ok(before !== null, 'Linux has /proc/sys/kernel/random/boot_id');
  const script = "const b = Number(process.hrtime.bigint()) / 1e6; const id = require('node:fs').readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(); process.stdout.write(JSON.stringify({ id, b }));";
  const child = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { id: string; b: number };
  const after = clock.bootTime()!;
  assert.equal(child.id, before.bootId);
  assert.equal(after.bootId, before.bootId);
  assert.ok(before.monotonicMs <= child.b && child.b <= after.monotonicMs, 'the same clock in another process');
});
