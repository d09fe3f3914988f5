/**
 * A client that is not ours, in a process of its own: @grpc/grpc-js with ts-proto stubs
 * (test/grpc/child-client.ts) publishes, consumes with acks and nacks, dead-letters, reads the
 * dead letters with Pull/Ack and redrives them, against the real broker over h2c.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { startGrpc } from './harness.js';

const CHILD = fileURLToPath(new URL('./child-client.ts', import.meta.url));
/** Process start with tsx plus the whole scenario, on a loaded 2-core machine. */
const CHILD_TIMEOUT_MS = 30_000;

function runChild(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', CHILD, address], { timeout: CHILD_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`child client failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

test('grpc - a grpc-js client in another process publishes, consumes, nacks, dead-letters and redrives', async () => {
  const fixture = await startGrpc();
  try {
    const output = JSON.parse(await runChild(fixture.address)) as Record<string, any>;
    assert.equal(output.created, 'orders');
    assert.deepEqual(output.offsets, [0, 1, 2, 3, 4]);
    assert.equal(output.synced, true, 'an always topic answers after fdatasync');
    assert.match(output.consumerId, /^[A-Za-z0-9_-]{22}$/);
    const counts = (value: string) => output.deliveries.filter((d: any) => d.value === value).map((d: any) => d.deliveryCount);
    assert.deepEqual(counts('ok-1'), [1]);
    assert.deepEqual(counts('nack-once'), [1, 2], 'a nacked message comes back with its delivery count raised');
    assert.deepEqual(counts('nack-always'), [1, 2], 'after deliveries_max deliveries a nack dead-letters');
    assert.deepEqual(counts('reject'), [1]);
    assert.ok(output.deliveries.every((d: any) => d.origin === 'child'), 'headers travel with the message');
    assert.equal(output.settleFailures, 0);
    assert.deepEqual(
      [...output.deadLetters].sort((a: any, b: any) => a.value.localeCompare(b.value)),
      [
        { value: 'nack-always', reason: 'nack after 2 deliveries', group: 'workers' },
        { value: 'reject', reason: 'cannot parse', group: 'workers' },
      ],
    );
    assert.equal(output.dlqAckFailures, 0);
    assert.equal(output.redriveMoved, 2);
    assert.deepEqual(output.redriven, ['nack-always', 'reject']);
    assert.equal(output.streamEndedCleanly, true, 'a half-closed Consume ends with OK');
    assert.deepEqual(output.group, { pending: 0, inFlight: 0, deadLetteredTotal: 2 });
    assert.deepEqual(fixture.errors, []);
  } finally {
    await fixture.close();
  }
});
