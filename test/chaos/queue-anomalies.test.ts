/**
 * The queue anomalies of the cluster chaos suite, from hand-made histories: a clean history counts
 * nothing; each anomaly (inconsistent offsets in reads, against a confirmation or against the
 * replicas; aborted reads, in a read or on the replicas; replicas that differ) is counted once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check } from './checker.js';
import type { HistoryEvent } from './history.js';
import { anomalyFailures, queueAnomalies } from './queue-anomalies.js';
import type { ReplicaComparison } from './replica-compare.js';

const d = (t: number, kind: 'group' | 'scan', part: number, off: number, p: string, s: number, a = 1): HistoryEvent => ({
  k: 'd',
  t,
  kind,
  c: kind === 'scan' ? 'drain' : 'c0',
  sub: 1,
  g: 0,
  part,
  off,
  dc: 1,
  p,
  s,
  a,
});

/** p0:0 and p0:1 published, confirmed at 0:0 and 0:1, delivered, acked, and found by the scan. */
function clean(): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  for (const s of [0, 1]) {
    events.push({ k: 'pi', t: 10 + s, p: 'p0', s, a: 1 });
    events.push({ k: 'po', t: 20 + s, p: 'p0', s, a: 1, part: 0, off: s });
    events.push(d(30 + s, 'group', 0, s, 'p0', s));
    events.push({ k: 'ak', t: 40 + s, c: 'c0', sub: 1, dg: 0, g: 0, part: 0, off: s, p: 'p0', s });
    events.push(d(100 + s, 'scan', 0, s, 'p0', s));
  }
  return events;
}

function comparison(overrides: Partial<ReplicaComparison> = {}): ReplicaComparison {
  return {
    replicas: ['n1', 'n2', 'n3'],
    partitions: 1,
    recordsCompared: 2,
    differing: 0,
    missing: 0,
    unreadable: [],
    examples: [],
    agreed: new Map([
      ['0:0', 'p0:0:1'],
      ['0:1', 'p0:1:1'],
    ]),
    ...overrides,
  };
}

function anomaliesOf(events: HistoryEvent[], replicas: ReplicaComparison | null = comparison()) {
  const sorted = [...events].sort((a, b) => a.t - b.t);
  return queueAnomalies(sorted, check(sorted, { durability: 'always', scanned: true, startsEndDeliveries: false }), replicas);
}

test('queue anomalies - a clean history counts nothing', () => {
  const anomalies = anomaliesOf(clean());
  assert.deepEqual(anomalyFailures(anomalies), []);
  assert.equal(anomalies.inconsistentOffsets + anomalies.abortedReads + anomalies.replicasDiffer + anomalies.lost, 0);
});

test('queue anomalies - one offset holding different messages in two reads is an inconsistent offset', () => {
  const events = clean();
  // A consumer saw p0:1 at offset 0 (where the scan and the replicas hold p0:0).
  events.push(d(35, 'group', 0, 0, 'p0', 1));
  const anomalies = anomaliesOf(events);
  assert.equal(anomalies.inconsistentOffsets, 1);
  assert.match(anomalyFailures(anomalies).join('\n'), /1 offsets holding different messages/);
});

test('queue anomalies - a confirmation at an offset the replicas hold another message at is inconsistent', () => {
  const events = clean();
  events.push({ k: 'pi', t: 50, p: 'p1', s: 0, a: 1 }, { k: 'po', t: 51, p: 'p1', s: 0, a: 1, part: 0, off: 1 });
  const anomalies = anomaliesOf(events);
  assert.equal(anomalies.inconsistentOffsets, 1);
});

test('queue anomalies - a read of a refused publish is an aborted read, as is a refused publish on the replicas', () => {
  const events = clean();
  events.push({ k: 'pi', t: 50, p: 'p0', s: 2, a: 1 }, { k: 'pf', t: 51, p: 'p0', s: 2, a: 1, code: 'NOT_LEADER' });
  events.push(d(60, 'group', 0, 2, 'p0', 2));
  assert.equal(anomaliesOf(events).abortedReads, 1);
  const stored = clean();
  stored.push({ k: 'pi', t: 50, p: 'p0', s: 2, a: 1 }, { k: 'pf', t: 51, p: 'p0', s: 2, a: 1, code: 'NOT_ENOUGH_REPLICAS' });
  const replicas = comparison();
  replicas.agreed.set('0:2', 'p0:2:1');
  assert.equal(anomaliesOf(stored, replicas).abortedReads, 1);
  // The retry of a refused attempt, stored and read, is no aborted read.
  const retried = clean();
  retried.push({ k: 'pi', t: 50, p: 'p0', s: 2, a: 1 }, { k: 'pf', t: 51, p: 'p0', s: 2, a: 1, code: 'NOT_LEADER' });
  retried.push({ k: 'pi', t: 52, p: 'p0', s: 2, a: 2 }, { k: 'po', t: 53, p: 'p0', s: 2, a: 2, part: 0, off: 2 });
  retried.push(d(60, 'scan', 0, 2, 'p0', 2, 2));
  assert.equal(anomaliesOf(retried).abortedReads, 0);
});

test('queue anomalies - replicas that differ, miss a position or cannot be read are counted', () => {
  const anomalies = anomaliesOf(clean(), comparison({ differing: 2, missing: 1, unreadable: ['n3 partition 0: checksum'] }));
  assert.equal(anomalies.replicasDiffer, 4);
  assert.match(anomalyFailures(anomalies).join('\n'), /4 replica positions that differ/);
  // No comparison (a single broker): nothing is counted for it.
  assert.equal(anomaliesOf(clean(), null).replicasDiffer, 0);
});

test('queue anomalies - an offset reused after a power loss took its message back is not inconsistent; any other reuse is', () => {
  // p0:1 confirmed at 0:1, then p0:2 confirmed at the same offset (the log lost its end).
  const events = clean().filter((event) => !(event.k === 'd' && event.kind === 'scan' && event.s === 1));
  events.push({ k: 'pi', t: 50, p: 'p0', s: 2, a: 1 });
  events.push({ k: 'po', t: 60, p: 'p0', s: 2, a: 1, part: 0, off: 1 });
  events.push(d(101, 'scan', 0, 1, 'p0', 2));
  const result = check(events, { durability: 'never', scanned: true });
  assert.equal(queueAnomalies(events, { ...result, lostAllowedMessages: ['p0:1'] }, null, 'never').inconsistentOffsets, 0);
  assert.equal(queueAnomalies(events, { ...result, lostAllowedMessages: ['p0:1'] }, null, 'always').inconsistentOffsets, 1, 'always: nothing is taken back');
  assert.equal(queueAnomalies(events, { ...result, lostAllowedMessages: [] }, null, 'never').inconsistentOffsets, 1);
  assert.equal(queueAnomalies(events, { ...result, lostAllowedMessages: ['p0:0'] }, null, 'never').inconsistentOffsets, 1, 'only the message taken back frees its offset');
});

test('queue anomalies - an unconfirmed message read, then gone after a power loss, frees its offset; without the loss between, not', () => {
  // p0:5 (outcome unknown) stored at 0:2 and delivered at 50; the scan finds p0:6 at 0:2.
  const events = clean();
  events.push({ k: 'pi', t: 45, p: 'p0', s: 5, a: 1 });
  events.push({ k: 'pu', t: 48, p: 'p0', s: 5, a: 1, code: 'TIMEOUT' });
  events.push(d(50, 'group', 0, 2, 'p0', 5));
  events.push({ k: 'pi', t: 70, p: 'p0', s: 6, a: 1 });
  events.push({ k: 'po', t: 80, p: 'p0', s: 6, a: 1, part: 0, off: 2 });
  events.push(d(102, 'scan', 0, 2, 'p0', 6));
  const lossAt = (at: number): HistoryEvent => ({ k: 'pl', t: at + 1, at, bytesCut: 10, filesTorn: 0, datasyncMsMax: 1, n: 'n1,n2,n3' });
  const anomalies = (history: HistoryEvent[]): number => queueAnomalies(history, check(history, { durability: 'never', scanned: true }), null, 'never').inconsistentOffsets;
  assert.equal(anomalies([...events, lossAt(60)].sort((a, b) => a.t - b.t)), 0);
  assert.equal(anomalies([...events, lossAt(90)].sort((a, b) => a.t - b.t)), 1, 'the loss came after the offset was given to p0:6');
  // A retry of p0:5 confirmed at another offset (0:3) and found there: its copy at 0:2 was still taken back.
  const retried: HistoryEvent[] = [
    ...events,
    lossAt(60),
    { k: 'pi', t: 85, p: 'p0', s: 5, a: 2 },
    { k: 'po', t: 86, p: 'p0', s: 5, a: 2, part: 0, off: 3 },
    d(103, 'scan', 0, 3, 'p0', 5, 2),
  ];
  assert.equal(anomalies(retried.sort((a, b) => a.t - b.t)), 0);
});
