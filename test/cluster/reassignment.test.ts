import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { completedMove, planDrain, readyToComplete, startMove, targetReplicas } from '../../src/cluster/reassignment.js';
import type { TopicPlacement } from '../../src/cluster/cluster-store.js';
import { isFerryError } from '../../src/errors.js';

function placement(name: string, replicas: string[]): TopicPlacement {
  return { name, config: {}, replicas, minInSync: 2, createdAtMs: 0 };
}

const live = new Set(['n1', 'n2', 'n3', 'n4']);

test('reassignment - a move lists both replicas until the new one is in sync, then keeps the target set in the old order', () => {
  const moving = startMove(placement('t', ['n1', 'n2', 'n3']), 'n1', 'n4', live);
  assert.deepEqual(moving.replicas, ['n4', 'n2', 'n3', 'n1']);
  assert.deepEqual(targetReplicas(moving), ['n4', 'n2', 'n3']);
  assert.equal(readyToComplete(moving, ['n1', 'n2', 'n3']), false, 'the new replica is not in sync yet');
  assert.equal(readyToComplete(moving, ['n1', 'n2', 'n3', 'n4']), true);
  const done = completedMove(moving);
  assert.deepEqual(done.replicas, ['n4', 'n2', 'n3']);
  assert.equal(done.adding, undefined);
  assert.equal(done.removing, undefined);
});

test('reassignment - refused: a broker without the replica, a target that has one, a dead target, a topic already moving', () => {
  const start = placement('t', ['n1', 'n2', 'n3']);
  assert.throws(() => startMove(start, 'n4', 'n1', live), (error) => isFerryError(error, 'INVALID_ARGUMENT'));
  assert.throws(() => startMove(start, 'n1', 'n2', live), (error) => isFerryError(error, 'INVALID_ARGUMENT'));
  assert.throws(() => startMove(start, 'n1', 'n9', live), (error) => isFerryError(error, 'NOT_ENOUGH_REPLICAS'));
  const moving = startMove(start, 'n1', 'n4', live);
  assert.throws(() => startMove(moving, 'n2', 'n1', live), (error) => isFerryError(error, 'INVALID_ARGUMENT'));
});

test('reassignment - a drain moves each replica off the node to a broker outside the topic, spreading them, and says what cannot move', () => {
  fc.assert(
    fc.property(fc.array(fc.shuffledSubarray(['n1', 'n2', 'n3', 'n4', 'n5'], { minLength: 1, maxLength: 5 }), { maxLength: 12 }), (sets) => {
      const placements = sets.map((replicas, index) => placement(`t${index}`, replicas));
      const liveNodes = ['n1', 'n2', 'n3', 'n4', 'n5'];
      const plan = planDrain('n1', placements, liveNodes);
      const holding = placements.filter((p) => p.replicas.includes('n1'));
      assert.equal(plan.moves.length + plan.refused.length, holding.length, 'every topic on the node is moved or refused');
      for (const move of plan.moves) {
        const p = placements.find((candidate) => candidate.name === move.topic)!;
        assert.ok(!p.replicas.includes(move.to), 'to a broker without a replica');
        assert.notEqual(move.to, 'n1');
      }
      for (const refusal of plan.refused) assert.equal(placements.find((p) => p.name === refusal.topic)!.replicas.length, 5, 'refused only when every broker holds one');
    }),
  );
});
