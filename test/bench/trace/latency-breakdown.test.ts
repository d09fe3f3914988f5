import { test } from 'node:test';
import assert from 'node:assert/strict';
import { breakDown, busiestWriter, countBySecond, type MessageTimes } from '../../../bench/trace/latency-breakdown.js';
import type { FileSpan } from '../../../bench/trace/process-observer.js';

const LOG_FD = 20;
const JOURNAL_FD = 21;

function times(rows: Array<[sent: number, confirmed: number, received: number]>): MessageTimes {
  return {
    sentMs: Float64Array.from(rows.map((row) => row[0])),
    confirmedMs: Float64Array.from(rows.map((row) => row[1])),
    receivedMs: Float64Array.from(rows.map((row) => row[2])),
  };
}

test('latency breakdown - the busiest writer is the descriptor with the most bytes, not the most writes', () => {
  const writes: FileSpan[] = [
    [0, 1, JOURNAL_FD, 40],
    [1, 1, JOURNAL_FD, 40],
    [2, 1, JOURNAL_FD, 40],
    [3, 1, LOG_FD, 5000],
  ];
  assert.equal(busiestWriter(writes), LOG_FD);
});

test('latency breakdown - each message is split at the write and the sync that confirmed it', () => {
  // Two write+sync cycles of the log, a journal sync in between that must be ignored.
  const writes: FileSpan[] = [
    [100.2, 0.1, LOG_FD, 1100],
    [101.5, 0.2, LOG_FD, 2200],
  ];
  const syncs: FileSpan[] = [
    [100.4, 0.5, LOG_FD, 0],
    [100.9, 0.3, JOURNAL_FD, 0],
    [101.8, 2.0, LOG_FD, 0],
  ];
  const messages = times([
    [100.0, 101.0, 100.95], // written at 100.2, synced 100.4-100.9, confirmed 101.0
    [100.5, 104.0, 103.9], // arrived during the first sync: waits for the second cycle
    [101.0, 104.1, 103.95],
  ]);
  const breakdown = breakDown(messages, writes, syncs, LOG_FD, 0, 3);
  assert.deepEqual(breakdown.messages, [0, 1, 2]);
  const round = (values: number[]): number[] => values.map((value) => Math.round(value * 100) / 100);
  assert.deepEqual(round(breakdown.parts.beforeWrite), [0.2, 1.0, 0.5]);
  assert.deepEqual(round(breakdown.parts.write), [0.1, 0.2, 0.2]);
  assert.deepEqual(round(breakdown.parts.writeToSync), [0.1, 0.1, 0.1]);
  assert.deepEqual(round(breakdown.parts.sync), [0.5, 2.0, 2.0]);
  assert.deepEqual(round(breakdown.parts.syncToConfirm), [0.1, 0.2, 0.3]);
  assert.deepEqual(round(breakdown.parts.confirmToReceipt), [-0.05, -0.1, -0.15]);
});

test('latency breakdown - a batch written while a sync pass runs waits for it, then for its own', () => {
  const writes: FileSpan[] = [
    [10.0, 0.2, LOG_FD, 1100],
    [10.5, 0.1, LOG_FD, 1100], // written while the pass for the first write runs (10.3-11.5)
  ];
  const syncs: FileSpan[] = [
    [10.3, 1.2, LOG_FD, 0],
    [11.5, 0.3, LOG_FD, 0],
  ];
  const breakdown = breakDown(times([[10.4, 11.9, 11.85]]), writes, syncs, LOG_FD, 0, 1);
  const round = (values: number[]): number[] => values.map((value) => Math.round(value * 100) / 100);
  assert.deepEqual(round(breakdown.parts.beforeWrite), [0.1]);
  assert.deepEqual(round(breakdown.parts.writeToSync), [0.9]);
  assert.deepEqual(round(breakdown.parts.sync), [0.3]);
});

test('latency breakdown - a message confirmed before any traced sync ended is left out', () => {
  const writes: FileSpan[] = [[10, 0.1, LOG_FD, 1100]];
  const syncs: FileSpan[] = [[10.2, 1, LOG_FD, 0]];
  const breakdown = breakDown(times([[9, 9.5, 9.6], [9.8, 11.3, 11.4]]), writes, syncs, LOG_FD, 0, 2);
  assert.deepEqual(breakdown.messages, [1]);
});

test('latency breakdown - counts by second, with later times in the last second and earlier ones left out', () => {
  assert.deepEqual(countBySecond([999, 1000, 1500, 2999, 3000, 9000, 500], 1000, 3), [2, 1, 2]);
});
