/**
 * The compact id table (broker/id-table.ts) against a model: a Map in insertion order. Random
 * pushes, deletes and removals from either end, across growth and shrinking of its slots and
 * its chunks of id bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ID_TABLE_CHUNK_BYTES, ID_TABLE_SLOTS_MIN, IdTable } from '../../src/broker/id-table.js';

type Step =
  | { kind: 'push'; id: string; value: number }
  | { kind: 'delete'; id: string }
  | { kind: 'oldest'; count: number }
  | { kind: 'newest'; count: number };

/** The model: live ids in order, each with its value, and the rows (live or deleted) in order. */
interface Model {
  rows: Array<{ id: string; value: number; live: boolean }>;
}

function liveIds(model: Model): Array<[string, number]> {
  return model.rows.filter((row) => row.live).map((row) => [row.id, row.value]);
}

function tableIds(table: IdTable): Array<[string, number]> {
  const ids: Array<[string, number]> = [];
  for (let seq = table.oldestSeq; seq < table.endSeq; seq++) if (table.isLive(seq)) ids.push([table.idOf(seq), table.value(seq, 1)]);
  return ids;
}

function apply(table: IdTable, model: Model, step: Step): void {
  if (step.kind === 'push') {
    // As NotedIds does: an id held already moves to the end.
    const held = table.find(step.id);
    const modelRow = model.rows.find((row) => row.live && row.id === step.id);
    assert.equal(held >= 0, modelRow !== undefined);
    if (held >= 0) table.delete(held);
    if (modelRow !== undefined) modelRow.live = false;
    const bytes = Buffer.from(`..${step.id}..`);
    table.push(bytes, 2, bytes.length - 2, step.value * 2, step.value);
    model.rows.push({ id: step.id, value: step.value, live: true });
  } else if (step.kind === 'delete') {
    const held = table.find(step.id);
    const modelRow = model.rows.find((row) => row.live && row.id === step.id);
    assert.equal(held >= 0, modelRow !== undefined);
    if (held >= 0) table.delete(held);
    if (modelRow !== undefined) modelRow.live = false;
  } else if (step.kind === 'oldest') {
    for (let n = 0; n < step.count && table.oldestLive() >= 0; n++) {
      table.removeOldest();
      while (model.rows[0]?.live === false) model.rows.shift();
      model.rows.shift();
    }
  } else {
    for (let n = 0; n < step.count && table.newestLive() >= 0; n++) {
      table.removeNewest();
      while (model.rows.at(-1)?.live === false) model.rows.pop();
      model.rows.pop();
    }
  }
}

const idArb = fc.oneof(
  fc.integer({ min: 0, max: 300 }).map((n) => `id-${n}`),
  fc.string({ minLength: 0, maxLength: 12, unit: 'grapheme' }),
);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('push' as const), id: idArb, value: fc.integer() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), id: idArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('oldest' as const), count: fc.integer({ min: 1, max: 400 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('newest' as const), count: fc.integer({ min: 1, max: 400 }) }) },
);

test('id table - finds, orders and removes ids as an insertion-ordered map does', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(stepArb, fc.array(stepArb.filter((s) => s.kind === 'push'), { maxLength: 1500 })), { maxLength: 40 }), (plan) => {
      const table = new IdTable(2);
      const model: Model = { rows: [] };
      for (const entry of plan) {
        for (const step of Array.isArray(entry) ? entry : [entry]) apply(table, model, step);
        const expected = liveIds(model);
        assert.deepEqual(tableIds(table), expected);
        assert.equal(table.size, expected.length);
        for (const [id, value] of expected) {
          const seq = table.find(id);
          assert.ok(seq >= 0, `finds ${id}`);
          assert.equal(table.value(seq, 0), value * 2);
          assert.equal(table.value(seq, 1), value);
        }
        assert.equal(table.find('never-pushed'), -1);
      }
    }),
    { numRuns: 60 },
  );
});

test('id table - an id larger than a chunk has a chunk of its own; slots and chunks go back as rows leave', () => {
  const table = new IdTable(1);
  const empty = table.bytesHeld();
  const big = 'x'.repeat(ID_TABLE_CHUNK_BYTES + 10);
  table.pushString('small', 1);
  table.pushString(big, 2);
  table.pushString('after', 3);
  assert.equal(table.value(table.find(big), 0), 2);
  assert.equal(table.idOf(table.find('after')), 'after');
  for (let i = 0; i < 10 * ID_TABLE_SLOTS_MIN; i++) table.pushString(`id-${i}`, i);
  assert.equal(table.size, 3 + 10 * ID_TABLE_SLOTS_MIN);
  assert.ok(table.bytesHeld() > empty);
  while (table.oldestLive() >= 0) table.removeOldest();
  assert.equal(table.size, 0);
  assert.equal(table.find('id-5'), -1);
  assert.ok(table.bytesHeld() <= empty, `an emptied table holds what a new one does (${table.bytesHeld()} > ${empty})`);
});

test('id table - ids of the same hash slot stay findable after others leave (index deletion keeps probe chains)', () => {
  const table = new IdTable(1);
  for (let i = 0; i < 5000; i++) table.pushString(`k${i}`, i);
  for (let i = 0; i < 5000; i += 3) table.delete(table.find(`k${i}`));
  for (let i = 0; i < 5000; i++) assert.equal(table.find(`k${i}`) >= 0, i % 3 !== 0, `k${i}`);
});
