/**
 * Requests pausing for a topic's next leader (src/client/leader-waits.ts): a pause ends when a new
 * leader is learnt — not for the broker the request failed on, nor for the leader known when it
 * began — or at its end; METADATA is polled one request at a time while any pause lasts, and not
 * after.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { LeaderWaits, ROUTE_POLL_MS } from '../../src/client/leader-waits.js';
import type { LeaderEntry } from '../../src/client/metadata.js';

function entry(nodeId: string, epoch: number, stale = false): LeaderEntry {
  return { nodeId, address: `127.0.0.1:${7700 + epoch}`, epoch, stale };
}

test('leader waits - a pause ends as soon as another leader is learnt, not for the one it failed on or already knew', async () => {
  const waits = new LeaderWaits(async () => undefined);
  let leader: LeaderEntry | undefined = entry('n1', 4, true);
  let ended = false;
  const started = performance.now();
  const pausing = waits.wait('t', { nodeId: 'n1', epoch: 4 }, leader, 2_000).then(() => (ended = true));
  leader = entry('n1', 4);
  waits.learned(() => leader);
  leader = { nodeId: '', address: null, epoch: 4, stale: true };
  waits.learned(() => leader);
  await sleep(5);
  assert.equal(ended, false, 'the broker it failed on, or no leader: still pausing');
  leader = entry('n2', 5);
  waits.learned(() => leader);
  await pausing;
  assert.ok(performance.now() - started < 1_000);
  assert.equal(waits.size, 0);
  waits.close();
});

test('leader waits - METADATA is polled one request at a time while a pause lasts, and no more once none does', async () => {
  let polls = 0;
  let inFlight = 0;
  let most = 0;
  const waits = new LeaderWaits(async () => {
    polls++;
    most = Math.max(most, ++inFlight);
    await sleep(ROUTE_POLL_MS * 2);
    inFlight--;
  });
  await Promise.all(Array.from({ length: 50 }, () => waits.wait('t', { nodeId: 'n1', epoch: 1 }, undefined, ROUTE_POLL_MS * 8)));
  assert.equal(most, 1, 'one poll at a time, however many requests wait');
  assert.ok(polls >= 1 && polls <= 4, `${polls} polls over ${ROUTE_POLL_MS * 8} ms`);
  const after = polls;
  await sleep(ROUTE_POLL_MS * 5);
  assert.ok(polls <= after + 1, 'polling stops with the last pause');
  waits.close();
});
