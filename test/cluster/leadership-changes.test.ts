/**
 * Requests for a topic whose leadership is changing on this broker wait for the change to end
 * (src/cluster/leadership-changes.ts), on the simulated clock: at once when none is under way,
 * until the last of overlapping changes ends, at most the bound, and all at once on close.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeadershipChanges } from '../../src/cluster/leadership-changes.js';
import { SimClock, settle } from '../sim/sim-clock.js';

function watch(promise: Promise<void>): { settled: () => boolean } {
  let settled = false;
  void promise.then(() => (settled = true));
  return { settled: () => settled };
}

test('leadership changes - a request waits while the topic is taken up or handed over, until the last change ends', async () => {
  const clock = new SimClock();
  const changes = new LeadershipChanges(clock);
  const idle = watch(changes.settled(2_000));
  await settle();
  assert.equal(idle.settled(), true, 'no change under way: no wait');

  const opening = changes.begin();
  const handing = changes.begin();
  assert.equal(changes.changing, true);
  const request = watch(changes.settled(2_000));
  await clock.advanceAndSettle(100);
  opening();
  opening();
  await settle();
  assert.equal(request.settled(), false, 'one change is still under way (an end counts once)');
  handing();
  await settle();
  assert.equal(request.settled(), true, 'served (or refused naming the new leader) the moment the change ends, not on a timer');
  assert.equal(changes.changing, false);
});

test('leadership changes - a change that does not end holds a request only for the bound; close wakes every request', async () => {
  const clock = new SimClock();
  const changes = new LeadershipChanges(clock);
  changes.begin();
  const bounded = watch(changes.settled(2_000));
  await clock.advanceAndSettle(1_999);
  assert.equal(bounded.settled(), false);
  await clock.advanceAndSettle(1);
  assert.equal(bounded.settled(), true);
  const waiting = watch(changes.settled(2_000));
  changes.release();
  await settle();
  assert.equal(waiting.settled(), true);
});
