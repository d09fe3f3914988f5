/**
 * clusterIncarnations: only a power loss of a majority of the brokers at once reaches the checker,
 * as one loss at its first cut, and only the first start after it begins a new incarnation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check } from './checker.js';
import { clusterIncarnations } from './cluster-durability.js';
import type { HistoryEvent } from './history.js';

const start = (t: number, n: string): HistoryEvent => ({ k: 'bs', t, recoveryMs: 10, openMs: 1, n });
const kill = (t: number, n: string): HistoryEvent => ({ k: 'bk', t, n });
const cut = (at: number, n: string, datasyncMsMax = 2): HistoryEvent => ({ k: 'pl', t: at + 5, at, bytesCut: 100, filesTorn: 0, datasyncMsMax, n });

test('cluster durability - a follower\'s power loss is dropped, three at once become one at the first cut', () => {
  const events: HistoryEvent[] = [
    ...['n1', 'n2', 'n3'].map((n) => start(0, n)),
    kill(1_000, 'n2'),
    cut(1_000, 'n2'),
    start(2_000, 'n2'),
    kill(5_000, 'n1'),
    cut(5_000, 'n1', 3),
    kill(5_010, 'n2'),
    cut(5_010, 'n2', 7),
    kill(5_020, 'n3'),
    cut(5_020, 'n3'),
    start(6_000, 'n2'),
    start(6_001, 'n1'),
    start(6_002, 'n3'),
  ];
  const seen = clusterIncarnations(events, 3);
  assert.deepEqual(
    seen.filter((event) => event.k === 'pl'),
    [{ k: 'pl', t: 5_005, at: 5_000, bytesCut: 100, filesTorn: 0, datasyncMsMax: 7, n: 'n1,n2,n3' }],
  );
  assert.deepEqual(seen.filter((event) => event.k === 'bs').map((event) => event.t), [6_000]);
  assert.equal(seen.filter((event) => event.k === 'bk').length, 4, 'kills are kept: they excuse redeliveries');
});

test('cluster durability - an interval message confirmed just before a minority\'s power loss and gone is lost; before a majority\'s, allowed', () => {
  // p0 confirms s0 at 990 (offset 0), the scan finds nothing: gone.
  const history = (losses: HistoryEvent[]): HistoryEvent[] => [
    ...['n1', 'n2', 'n3'].map((n) => start(0, n)),
    { k: 'pi', t: 980, p: 'p0', s: 0, a: 0 },
    { k: 'po', t: 990, p: 'p0', s: 0, a: 0, part: 0, off: 0 },
    ...losses,
    ...['n1', 'n2', 'n3'].map((n) => start(3_000, n)),
    { k: 'ls', t: 4_000, part: 0, off: 0 },
  ] as HistoryEvent[];
  const options = { durability: 'interval' as const, lossWindowMs: 50, scanned: true, startsEndDeliveries: false };
  const minority = check(clusterIncarnations(history([kill(1_000, 'n1'), cut(1_000, 'n1')]), 3), options);
  assert.equal(minority.missingFromLog, 1);
  assert.equal(minority.lostAllowed, 0);
  const majority = check(clusterIncarnations(history([kill(1_000, 'n1'), cut(1_000, 'n1'), kill(1_001, 'n2'), cut(1_001, 'n2')]), 3), options);
  assert.equal(majority.missingFromLog, 0);
  assert.equal(majority.lostAllowed, 1);
  // The same loss long before the cut is outside the interval window, even for a majority.
  const late = check(clusterIncarnations(history([kill(2_000, 'n1'), cut(2_000, 'n1'), kill(2_001, 'n2'), cut(2_001, 'n2')]), 3), options);
  assert.equal(late.lossOutsideWindow, 1);
});
